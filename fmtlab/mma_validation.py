"""The tensor-core models against outputs measured on real GPUs (docs/tensor-cores.md §6).

The measurements ship with fmtlab (``fmtlab/data/tc_validation``: the model-validation data of
the MATLAB-tensor-core project, BSD-2-Clause, read through importlib.resources so that they are
found from any install).  They are one configuration per GPU and input type (``H100-fp16``,
``B200-e4m3``, ...): 5000 dot products D = sum_k a_k b_k + c with the hardware's FP32 and/or
FP16 results.  A directory of ``GPU-INPUT.npz`` files (the same arrays, one file per
configuration, as :func:`write_measured_files` writes them) can be checked instead.  The data
use NVIDIA's input names, in which "e4m3" is OCP's e4m3fn; a :class:`ValidationCase` carries
fmtlab's real format name (``e4m3fn``).  :func:`validation_cases` lists them and
:func:`match_count` counts how many a model reproduces bit for bit; ``fmtlab mma check`` and
the tests both use them.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.resources
import io
import json
import pathlib

import numpy as np

__all__ = ["OPEN_CONFIGURATIONS", "FILE_INPUT_NAMES", "BUNDLED", "ValidationCase", "bundled_sources",
           "measured_files", "validation_cases", "match_count", "write_measured_files"]

# The input names of the data files -> fmtlab's format names (only NVIDIA's "e4m3" differs).
FILE_INPUT_NAMES = {"fp16": "fp16", "bf16": "bf16", "tf32": "tf32", "e4m3": "e4m3fn", "e5m2": "e5m2"}

# Configurations whose model is not known (docs/tensor-cores.md §5): their counts are reported,
# not required to be 5000/5000.  Keys: (gpu, input, out).
OPEN_CONFIGURATIONS = {(gpu, fp8, "fp16") for gpu in ("h100", "h200", "b200") for fp8 in ("e4m3fn", "e5m2")}

# The hardware ran with c = 0 here (H100/H200 FP8 through wgmma, FP32 output), whatever c the file stores.
_ZERO_C = {(gpu, fp8, "fp32") for gpu in ("h100", "h200") for fp8 in ("e4m3fn", "e5m2")}

BUNDLED = "the measurements shipped with fmtlab (MATLAB-tensor-core project, BSD-2-Clause)"
_BUNDLE_FOLDER = ("data", "tc_validation")


@functools.lru_cache(maxsize=1)
def _bundle():
    """(index, arrays) of the bundled data: index.json and the NpzFile of measurements.npz (read once)."""
    folder = importlib.resources.files("fmtlab")
    for part in _BUNDLE_FOLDER:  # one joinpath per part: several at once needs Python 3.11
        folder = folder.joinpath(part)
    index = json.loads(folder.joinpath("index.json").read_text(encoding="utf-8"))
    arrays = np.load(io.BytesIO(folder.joinpath("measurements.npz").read_bytes()))
    return index, arrays


def bundled_sources() -> list[str]:
    """The configurations shipped with fmtlab, in name order: ["A100-bf16", ..., "V100-fp16"]."""
    return sorted(_bundle()[0]["configurations"])


def _bundled_arrays(source):
    """The arrays of one bundled configuration, each checked against the SHA-256 recorded when
    the bundle was built from the original files (a damaged install is an error, not a mismatch)."""
    index, arrays = _bundle()
    result = {}
    for field, entry in index["configurations"][source].items():
        array = arrays[entry["array"]]
        if hashlib.sha256(array.tobytes()).hexdigest() != entry["sha256"]:
            raise RuntimeError(f"the bundled validation data is damaged: {source} {field} does not have the "
                               "recorded SHA-256 (reinstall fmtlab)")
        result[field] = array
    return result


@dataclasses.dataclass(frozen=True)
class ValidationCase:
    """One measured configuration: where its data are and which of its outputs to compare."""
    source: str       # the configuration's name in the data's terms, e.g. "H100-e4m3"
    gpu: str          # preset GPU name, e.g. "h100"
    input: str        # fmtlab's format name: fp16, bf16, tf32, e4m3fn, e5m2
    out: str          # fp32 or fp16
    zero_c: bool      # the hardware ran with c = 0 (H100/H200 FP8 via wgmma, FP32 output)
    data_dir: pathlib.Path | None = None   # None: the data shipped with fmtlab

    @property
    def label(self) -> str:
        """The configuration and the output compared, e.g. "H100-e4m3 -> fp32"."""
        return f"{self.source} -> {self.out}"

    @property
    def known(self) -> bool:
        return (self.gpu, self.input, self.out) not in OPEN_CONFIGURATIONS

    def arrays(self) -> dict[str, np.ndarray]:
        """The configuration's uint32 arrays: a, b (float32 bits, 5000 x K), c, d_fp32 and/or d_fp16."""
        if self.data_dir is None:
            return _bundled_arrays(self.source)
        with np.load(pathlib.Path(self.data_dir) / f"{self.source}.npz") as data:
            return {field: data[field] for field in data.files}


def _gpu_names() -> set[str]:
    """The GPU names of the presets: GPU presets are named "gpu-input-out", reference models
    have a name without "-" (their variants, such as "exact-fp32-fp16", start with it)."""
    from .mma import mma_models

    names = [model.name for model in mma_models()]
    references = {name for name in names if "-" not in name}
    return {name.split("-")[0] for name in names if name.count("-") == 2} - references


def _parse_source(source, gpus):
    """(gpu, fmtlab input name) of "GPU-INPUT", or None if it is not a measured configuration."""
    gpu, _, input_name = source.lower().partition("-")
    if gpu in gpus and input_name in FILE_INPUT_NAMES:
        return gpu, FILE_INPUT_NAMES[input_name]
    return None


def measured_files(data_dir) -> list[tuple[pathlib.Path, str, str]]:
    """(path, gpu, input) of every ``GPU-INPUT.npz`` file in ``data_dir``, in file-name order.

    GPU is a preset GPU name of :func:`fmtlab.mma_model` (any case) and INPUT a file input
    name (fp16, bf16, tf32, e4m3, e5m2); other files are not measurements and are left out.
    ``input`` is fmtlab's format name (e4m3 -> e4m3fn).
    """
    data_dir = pathlib.Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data_dir={str(data_dir)!r} is not a directory (a directory of GPU-INPUT.npz "
                                "files; data_dir=None checks the measurements shipped with fmtlab)")
    gpus = _gpu_names()
    found = []
    for path in sorted(data_dir.glob("*-*.npz")):
        parsed = _parse_source(path.stem, gpus)
        if parsed:
            found.append((path, *parsed))
    return found


def validation_cases(data_dir=None) -> list[ValidationCase]:
    """Every (configuration, output) pair, in name order: of the data shipped with fmtlab
    (``data_dir=None``) or of the ``GPU-INPUT.npz`` files in ``data_dir`` (see :func:`measured_files`).

    Raises FileNotFoundError when ``data_dir`` is not a directory or holds no measured file.
    """
    if data_dir is None:
        gpus = _gpu_names()
        sources = [(source, *_parse_source(source, gpus)) for source in bundled_sources()]
        fields = {source: _bundle()[0]["configurations"][source] for source, _, _ in sources}
        directory = None
    else:
        files = measured_files(data_dir)
        if not files:
            raise FileNotFoundError(f"data_dir={str(data_dir)!r} has no measured GPU-INPUT.npz files "
                                    "(such as H100-fp16.npz or B200-e4m3.npz)")
        sources, fields = [], {}
        for path, gpu, input_name in files:
            with np.load(path) as data:
                fields[path.stem] = data.files
            sources.append((path.stem, gpu, input_name))
        directory = pathlib.Path(data_dir)
    cases = []
    for source, gpu, input_name in sources:
        for out in ("fp32", "fp16"):
            if f"d_{out}" in fields[source]:
                cases.append(ValidationCase(source, gpu, input_name, out, (gpu, input_name, out) in _ZERO_C,
                                            directory))
    return cases


def write_measured_files(directory, sources=None) -> list[pathlib.Path]:
    """Write the bundled configurations (all, or the names in ``sources``) as ``GPU-INPUT.npz``
    files of uint32 arrays into ``directory`` (which must exist); return their paths."""
    from ._files import atomic_path

    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"directory={str(directory)!r} is not a directory")
    available = bundled_sources()
    chosen = available if sources is None else list(sources)
    unknown = [source for source in chosen if source not in available]
    if unknown:
        raise ValueError(f"sources has {unknown[0]!r}, which is not a bundled configuration; allowed: "
                         f"{', '.join(available)}")
    written = []
    for source in chosen:
        path = directory / f"{source}.npz"
        with atomic_path(path) as temporary:
            with open(temporary, "wb") as stream:
                np.savez_compressed(stream, **_bundled_arrays(source))
        written.append(path)
    return written


def match_count(case: ValidationCase, model=None) -> tuple[int, int]:
    """(bit-identical results, vectors) of ``model`` (default: the case's preset) on the case's data.

    Each vector is D = sum_k a_k b_k + c: one 1 x K by K x 1 product, all 5000 in one batched call.
    """
    from .mma import matmul, mma_model
    if model is None:
        model = mma_model(case.gpu, case.input, case.out)
    data = case.arrays()
    a = data["a"].view(np.float32)
    b = data["b"].view(np.float32)
    c = np.zeros(len(a), np.float32) if case.zero_c else data["c"].view(np.float32)
    expected = data[f"d_{case.out}"]
    d = matmul(a[:, None, :], b[:, :, None], c[:, None, None], model=model)[:, 0, 0]
    return int(np.count_nonzero(d.view(np.uint32) == expected)), len(expected)
