"""``fmtlab mma``: list the tensor-core models, or check them against measured GPU outputs.

``fmtlab mma list`` prints every preset with its parameters.  ``fmtlab mma check`` runs each
preset on the dot products measured on real GPUs (``../shared/tc-validation``, see
docs/tensor-cores.md §4) and prints how many results are bit-identical.  The helpers
:func:`validation_cases` and :func:`match_count` are what the tests use too.
"""
from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

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


def configure(parser):
    subparsers = parser.add_subparsers(dest="mma_command", metavar="ACTION")
    subparsers.add_parser("list", help="every preset model and its parameters")
    check = subparsers.add_parser("check", help="bit-exact match counts against measured GPU outputs")
    check.add_argument("--data", default=None,
                       help="directory of GPU-input.npz files (default ../shared/tc-validation)")


def _table(rows):
    widths = [max(len(str(row[column])) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _show(value):
    return "-" if value is None else str(value)


def run_list() -> int:
    from .mma import mma_models
    rows = [("model", "A x B", "block", "F", "out", "rounding", "acc", "floor", "c", "source")]
    for model in mma_models():
        formats = str(model.a_format) if model.a_format == model.b_format else f"{model.a_format} x {model.b_format}"
        block = "pairwise" if model.summation == "pairwise" else ("K" if model.block is None else model.block)
        rows.append((model.name, formats, block, _show(model.frac_bits), str(model.out_format), model.out_rounding,
                     _show(model.acc_frac_bits), _show(model.exp_floor), model.c_addition, model.note))
    print(_table(rows))
    print("\ne4m3 is NVIDIA's FP8 E4M3 (fl.E4M3FN). Models are plain parameter sets: "
          "fl.mma_model('h100', 'e4m3').replace(promote_every=128)")
    return 0


def run_check(data_dir) -> int:
    data_dir = pathlib.Path(data_dir) if data_dir else default_data_dir()
    rows = [("configuration", "preset", "bit-exact", "status")]
    failures = 0
    for case in validation_cases(data_dir):
        from .mma import mma_model
        model = mma_model(case.gpu, case.input, case.out)
        matched, total = match_count(case, model)
        if case.known:
            status = "ok" if matched == total else "MISMATCH"
            failures += matched != total
        else:
            status = "open question (model unknown)"
        rows.append((case.label + (" (c = 0)" if case.zero_c else ""), model.name, f"{matched}/{total}", status))
    print(_table(rows))
    print(f"\ndata: {data_dir}")
    return 1 if failures else 0


def run(args) -> int:
    if getattr(args, "mma_command", None) == "check":
        return run_check(args.data)
    return run_list()
