"""`fmtlab formats`: the presets and their limits, or one format's details."""
from __future__ import annotations

from . import formats as formats_module


def configure(parser):
    parser.add_argument("name", nargs="?", default=None,
                        help='a format, e.g. "cfloat8_1_4_3:bias=10"; without it every preset is listed')
    parser.add_argument("--values", action="store_true",
                        help="also list every finite value of the format (formats of 8 bits or fewer)")


def _row(fmt):
    return (str(fmt), f"{int(fmt.signed)}/{fmt.exp_bits}/{fmt.man_bits}", str(fmt.bias), fmt.specials,
            fmt.subnormals, f"{fmt.max:.6g}", f"{fmt.min_normal:.6g}", f"{fmt.min_subnormal:.6g}",
            f"{fmt.dynamic_range_binades:.1f}", str(fmt.ml_dtype) if fmt.ml_dtype is not None else "-")


def run(args) -> int:
    header = ("format", "s/e/m", "bias", "specials", "subnormals", "max", "min_normal", "min_subnormal",
              "binades", "ml_dtype")
    if args.name is None:
        chosen = [formats_module.format(name) for name in formats_module.preset_names()]
    else:
        chosen = [formats_module.format(args.name)]
    rows = [header] + [_row(fmt) for fmt in chosen]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))
    if args.values:
        for fmt in chosen:
            if fmt.bits > 8:
                raise ValueError(f"--values lists every code; {fmt} has {fmt.bits} bits, at most 8 are allowed")
            import numpy as np
            values = fmt.values()
            finite = np.unique(values[np.isfinite(values)])
            print(f"\n{fmt}: {finite.size} distinct finite values")
            print(" ".join(f"{value:g}" for value in finite))
    if args.name is None:
        print("\nconfigurable bias (0..63) and subnormals=ieee|tesla: cfloat8_1_4_3, cfloat8_1_5_2, shp;"
              ' e.g. fmtlab formats "cfloat8_1_4_3:bias=10"')
    return 0
