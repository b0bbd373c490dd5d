"""The tensor-core models against outputs measured on real GPUs (docs/tensor-cores.md §4).

The measurements (``../shared/tc-validation``) are one ``GPU-INPUT.npz`` file per
configuration (``H100-fp16.npz``, ``B200-e4m3.npz``, ...): 5000 dot products
D = sum_k a_k b_k + c with the hardware's FP32 and/or FP16 results.  The files use NVIDIA's
input names, in which "e4m3" is OCP's e4m3fn; a :class:`ValidationCase` carries fmtlab's real
format name (``e4m3fn``).  :func:`validation_cases` lists them and :func:`match_count` counts
how many a model reproduces bit for bit; ``fmtlab mma check`` and the tests both use them.
"""
from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

__all__ = ["OPEN_CONFIGURATIONS", "FILE_INPUT_NAMES", "ValidationCase", "default_data_dir", "measured_files",
           "validation_cases", "match_count"]

# The input names of the data files -> fmtlab's format names (only NVIDIA's "e4m3" differs).
FILE_INPUT_NAMES = {"fp16": "fp16", "bf16": "bf16", "tf32": "tf32", "e4m3": "e4m3fn", "e5m2": "e5m2"}

# Configurations whose model is not known (docs/tensor-cores.md §3): their counts are reported,
# not required to be 5000/5000.  Keys: (gpu, input, out).
OPEN_CONFIGURATIONS = {(gpu, fp8, "fp16") for gpu in ("h100", "h200", "b200") for fp8 in ("e4m3fn", "e5m2")}

# The hardware ran with c = 0 here (H100/H200 FP8 through wgmma, FP32 output), whatever c the file stores.
_ZERO_C = {(gpu, fp8, "fp32") for gpu in ("h100", "h200") for fp8 in ("e4m3fn", "e5m2")}


@dataclasses.dataclass(frozen=True)
class ValidationCase:
    """One measured configuration: a file and which of its outputs to compare."""
    path: pathlib.Path
    gpu: str          # preset GPU name, e.g. "h100"
    input: str        # fmtlab's format name: fp16, bf16, tf32, e4m3fn, e5m2
    out: str          # fp32 or fp16
    zero_c: bool      # the hardware ran with c = 0 (H100/H200 FP8 via wgmma, FP32 output)

    @property
    def label(self) -> str:
        """The data file and the output compared, e.g. "H100-e4m3 -> fp32"."""
        return f"{self.path.stem} -> {self.out}"

    @property
    def known(self) -> bool:
        return (self.gpu, self.input, self.out) not in OPEN_CONFIGURATIONS


def default_data_dir() -> pathlib.Path:
    """../shared/tc-validation beside the checkout (or beside the current directory)."""
    candidates = [pathlib.Path(__file__).resolve().parents[2] / "shared" / "tc-validation",
                  pathlib.Path.cwd().resolve().parent / "shared" / "tc-validation"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


def _gpu_names() -> set[str]:
    """The GPU names of the presets: GPU presets are named "gpu-input-out", reference models
    have a name without "-" (their variants, such as "exact-fp32-fp16", start with it)."""
    from .mma import mma_models

    names = [model.name for model in mma_models()]
    references = {name for name in names if "-" not in name}
    return {name.split("-")[0] for name in names if name.count("-") == 2} - references


def measured_files(data_dir) -> list[tuple[pathlib.Path, str, str]]:
    """(path, gpu, input) of every ``GPU-INPUT.npz`` file in ``data_dir``, in file-name order.

    GPU is a preset GPU name of :func:`fmtlab.mma_model` (any case) and INPUT a file input
    name (fp16, bf16, tf32, e4m3, e5m2); other files are not measurements and are left out.
    ``input`` is fmtlab's format name (e4m3 -> e4m3fn).
    """
    data_dir = pathlib.Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data_dir={str(data_dir)!r} is not a directory (the measured data is "
                                "../shared/tc-validation beside the checkout)")
    gpus = _gpu_names()
    found = []
    for path in sorted(data_dir.glob("*-*.npz")):
        gpu, _, input_name = path.stem.lower().partition("-")
        if gpu in gpus and input_name in FILE_INPUT_NAMES:
            found.append((path, gpu, FILE_INPUT_NAMES[input_name]))
    return found


def validation_cases(data_dir) -> list[ValidationCase]:
    """Every (file, output) pair in ``data_dir``, in file-name order (see :func:`measured_files`).

    Raises FileNotFoundError when ``data_dir`` is not a directory or holds no measured file.
    """
    files = measured_files(data_dir)
    if not files:
        raise FileNotFoundError(f"data_dir={str(data_dir)!r} has no measured GPU-INPUT.npz files "
                                "(such as H100-fp16.npz or B200-e4m3.npz)")
    cases = []
    for path, gpu, input_name in files:
        with np.load(path) as data:
            outputs = [out for out in ("fp32", "fp16") if f"d_{out}" in data.files]
        for out in outputs:
            cases.append(ValidationCase(path, gpu, input_name, out, (gpu, input_name, out) in _ZERO_C))
    return cases


def match_count(case: ValidationCase, model=None) -> tuple[int, int]:
    """(bit-identical results, vectors) of ``model`` (default: the case's preset) on the case's data.

    Each vector is D = sum_k a_k b_k + c: one 1 x K by K x 1 product, all 5000 in one batched call.
    """
    from .mma import matmul, mma_model
    if model is None:
        model = mma_model(case.gpu, case.input, case.out)
    with np.load(case.path) as data:
        a = data["a"].view(np.float32)
        b = data["b"].view(np.float32)
        c = np.zeros(len(a), np.float32) if case.zero_c else data["c"].view(np.float32)
        expected = data[f"d_{case.out}"]
    d = matmul(a[:, None, :], b[:, :, None], c[:, None, None], model=model)[:, 0, 0]
    return int(np.count_nonzero(d.view(np.uint32) == expected)), len(expected)
