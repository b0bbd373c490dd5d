"""``fmtlab formats``: the presets and their limits, or one format's details.

Every argument is checked before anything is printed, so an error is the only output.
"""
from __future__ import annotations

from . import formats as formats_module
from ._parse import parse_cli_format
from ._table import render_table

VALUES_MAX_BITS = 8  # --values prints every finite value: 2^8 codes at most, one line each format

_HEADER = ("format", "s/e/m", "bias", "specials", "subnormals", "max", "min_normal", "min_subnormal",
           "binades", "ml_dtype")
_NUMBER_COLUMNS = (2, 5, 6, 7, 8)


def configure(parser):
    parser.add_argument("name", nargs="?", default=None, metavar="NAME",
                        help='a format, e.g. "cfloat8_1_4_3:bias=10"; without it every preset is listed')
    parser.add_argument("--values", action="store_true",
                        help=f"also list every finite value of the format (formats of {VALUES_MAX_BITS} bits "
                             "or fewer)")


def _row(fmt):
    return (str(fmt), f"{int(fmt.signed)}/{fmt.exp_bits}/{fmt.man_bits}", str(fmt.bias), fmt.specials,
            fmt.subnormals, f"{fmt.max:.6g}", f"{fmt.min_normal:.6g}", f"{fmt.min_subnormal:.6g}",
            f"{fmt.dynamic_range_binades:.1f}", str(fmt.ml_dtype) if fmt.ml_dtype is not None else "-")


def run(args) -> int:
    if args.name is None:
        if args.values:
            raise ValueError(f"--values needs a format NAME of at most {VALUES_MAX_BITS} bits, "
                             "e.g. fmtlab formats e4m3fn --values")
        chosen = [formats_module.format(name) for name in formats_module.preset_names()]
    else:
        chosen = [parse_cli_format(args.name, "format")]
        if args.values and chosen[0].bits > VALUES_MAX_BITS:
            raise ValueError(f"--values lists every value of formats of at most {VALUES_MAX_BITS} bits; "
                             f"{args.name} has {chosen[0].bits} bits")

    print(render_table(_HEADER, [_row(fmt) for fmt in chosen], right=_NUMBER_COLUMNS))
    if args.values:
        import numpy as np

        fmt = chosen[0]
        values = fmt.values()
        finite = np.unique(values[np.isfinite(values)])
        print(f"\n{fmt}: {finite.size} distinct finite values")
        print(" ".join(f"{value:g}" for value in finite))
    if args.name is None:
        configurable = [fmt for fmt in chosen if formats_module.is_configurable(fmt)]
        allowed = formats_module.bias_range(configurable[0])
        print(f"\nconfigurable bias ({allowed.start}..{allowed.stop - 1}) and subnormals=ieee|tesla: "
              f"{', '.join(fmt.name for fmt in configurable)}; e.g. fmtlab formats \"{configurable[0].name}:bias=10\"")
    return 0
