"""``fmtlab mma``: list the tensor-core models, or check them against measured GPU outputs.

``fmtlab mma list`` prints every preset with its parameters.  ``fmtlab mma check`` runs each
preset on the dot products measured on real GPUs (:mod:`fmtlab.mma_validation`) and prints
how many results are bit-identical.
"""
from __future__ import annotations

import pathlib

from .mma_validation import default_data_dir, match_count, validation_cases


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
