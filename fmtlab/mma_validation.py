"""The tensor-core models against outputs measured on real GPUs (docs/tensor-cores.md §4).

The measurements (``../shared/tc-validation``) are one ``GPU-INPUT.npz`` file per
configuration: 5000 dot products D = sum_k a_k b_k + c with the hardware's FP32 and/or FP16
results.  :func:`validation_cases` lists them and :func:`match_count` counts how many a
model reproduces bit for bit; ``fmtlab mma check`` and the tests both use them.
"""
from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

__all__ = ["OPEN_CONFIGURATIONS", "ValidationCase", "default_data_dir", "validation_cases", "match_count"]

# Configurations whose model is not known (docs/tensor-cores.md §3): their counts are reported,
# not required to be 5000/5000.  Keys: (gpu, input, out).
OPEN_CONFIGURATIONS = {(gpu, fp8, "fp16") for gpu in ("h100", "h200", "b200") for fp8 in ("e4m3", "e5m2")}


@dataclasses.dataclass(frozen=True)
class ValidationCase:
    """One measured configuration: a file and which of its outputs to compare."""
    path: pathlib.Path
    gpu: str          # preset GPU name, e.g. "h100"
    input: str        # fp16, bf16, tf32, e4m3, e5m2
    out: str          # fp32 or fp16
    zero_c: bool      # the hardware ran with c = 0 (H100/H200 FP8 via wgmma, FP32 output)

    @property
    def label(self) -> str:
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


def validation_cases(data_dir) -> list[ValidationCase]:
    """Every (file, output) pair in ``data_dir``, in file-name order."""
    data_dir = pathlib.Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"no validation data directory {data_dir} (expected ../shared/tc-validation "
                                "beside the checkout; pass --data DIR)")
    cases = []
    for path in sorted(data_dir.glob("*-*.npz")):
        gpu, input_name = path.stem.lower().split("-", 1)
        with np.load(path) as data:
            outputs = [out for out in ("fp32", "fp16") if f"d_{out}" in data.files]
        for out in outputs:
            zero_c = gpu in ("h100", "h200") and input_name in ("e4m3", "e5m2") and out == "fp32"
            cases.append(ValidationCase(path, gpu, input_name, out, zero_c))
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
