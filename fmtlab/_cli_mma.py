"""``fmtlab mma``: list the tensor-core models, or check them against measured GPU outputs.

``fmtlab mma list`` prints every preset with its parameters.  ``fmtlab mma check`` runs each
preset on the dot products measured on real GPUs (:mod:`fmtlab.mma_validation`; the data ship
with fmtlab, ``--data DIR`` checks a directory of GPU-INPUT.npz files instead) and prints
how many results are bit-identical; it exits 1 when a known configuration does not match.
"""
from __future__ import annotations

import pathlib

from ._table import render_table

_LIST_HEADER = ("model", "A x B", "block", "F", "out", "rounding", "acc", "floor", "c", "source")
_CHECK_HEADER = ("configuration", "preset", "bit-exact", "status")


def configure(parser):
    subparsers = parser.add_subparsers(dest="mma_command", metavar="ACTION")
    subparsers.add_parser("list", help="every preset model and its parameters (the default)")
    check = subparsers.add_parser("check", help="bit-exact match counts against measured GPU outputs")
    check.add_argument("--data", default=None, metavar="DIR",
                       help="directory of measured GPU-INPUT.npz files, e.g. H100-fp16.npz "
                            "(default: the measurements shipped with fmtlab)")


def _show(value):
    return "-" if value is None else str(value)


def run_list() -> int:
    from .mma import mma_models

    rows = []
    for model in mma_models():
        formats = str(model.a_format) if model.a_format == model.b_format else f"{model.a_format} x {model.b_format}"
        block = "K" if model.block is None else str(model.block)
        if model.summation == "pairwise":
            block = "pairwise" if model.block is None else f"pairwise/{model.block}"
        rounding = model.out_rounding + (", ftz" if model.flush_inputs or model.flush_outputs else "")
        c_addition = model.c_addition + (", odd/even" if model.product_grouping == "odd_even" else "")
        rows.append((model.name, formats, block, _show(model.frac_bits), str(model.out_format), rounding,
                     _show(model.acc_frac_bits), _show(model.exp_floor), c_addition, model.note))
    print(render_table(_LIST_HEADER, rows, right=(2, 3, 6, 7)))
    print('\nNVIDIA calls e4m3fn "E4M3" (--models h100:e4m3 is read as h100:e4m3fn); fmtlab\'s e4m3 is the '
          "IEEE-like format with infinities (max 240), which no tensor core takes.\n"
          "Use a model in a sweep as GPU:INPUT[:OUT][:promote=N], e.g. "
          "fmtlab sweep-mma --models h100:e4m3fn,h100:e4m3fn:promote=128")
    return 0


def _cases(data):
    """The validation cases of ``--data`` (None: the measurements shipped with fmtlab), checked in --data's terms."""
    from .mma_validation import BUNDLED, measured_files, validation_cases

    if not data:
        return BUNDLED, validation_cases()
    data_dir = pathlib.Path(data)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"--data {data} is not a directory; allowed: a directory of the measured "
                                "GPU-INPUT.npz files (e.g. H100-fp16.npz), such as ../shared/tc-validation")
    if not measured_files(data_dir):
        raise FileNotFoundError(f"--data {data} has no GPU-INPUT.npz files; allowed: a directory of the "
                                "measured files, such as H100-fp16.npz or B200-e4m3.npz "
                                "(GPU a preset GPU name, INPUT fp16, bf16, tf32, e4m3 or e5m2)")
    return data_dir, validation_cases(data_dir)


def run_check(data) -> int:
    from .mma import mma_model
    from .mma_validation import match_count

    data_dir, cases = _cases(data)
    rows = []
    failures = 0
    for case in cases:
        model = mma_model(case.gpu, case.input, case.out)
        matched, total = match_count(case, model)
        if case.known:
            status = "ok" if matched == total else "MISMATCH"
            failures += matched != total
        else:
            status = "open question (model unknown)"
        rows.append((case.label + (" (c = 0)" if case.zero_c else ""), model.name, f"{matched}/{total}", status))
    print(render_table(_CHECK_HEADER, rows, right=(2,)))
    print(f"\ndata: {data_dir}")
    return 1 if failures else 0


def run(args) -> int:
    if getattr(args, "mma_command", None) == "check":
        return run_check(args.data)
    return run_list()
