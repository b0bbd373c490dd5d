"""``fmtlab formats``: the presets and their limits, or one format's details.

Three kinds, each with its own table: binary float formats (fields, bias, specials, limits),
integer formats (range and step) and block-scaled formats (element, scale, block, rule, bits
per value).  Every argument is checked before anything is printed, so an error is the only output.
"""
from __future__ import annotations

import math

from . import formats as formats_module
from . import integers as integers_module
from . import scaled as scaled_module
from ._parse import parse_cli_format
from ._table import render_table

VALUES_MAX_BITS = 8  # --values prints every finite value: 2^8 codes at most, one line each format

_HEADER = ("format", "s/e/m", "bias", "specials", "subnormals", "max", "min_normal", "min_subnormal",
           "binades", "ml_dtype")
_NUMBER_COLUMNS = (2, 5, 6, 7, 8)


_INTEGER_HEADER = ("format", "bits", "signed", "min", "max", "step", "ml_dtype")
_INTEGER_NUMBER_COLUMNS = (1, 3, 4, 5)
#: listed with the presets: the integer formats people use (any intN/uintN is accepted)
INTEGER_EXAMPLES = ("int8", "int4", "int2", "uint8", "uint4", "int8:symmetric=true", "int8:step_exponent=-6")

_SCALED_HEADER = ("format", "element", "scale", "block", "rule", "tensor scale", "bits/value", "element max",
                  "scales")
_SCALED_NUMBER_COLUMNS = (6, 7)


def configure(parser):
    parser.add_argument("name", nargs="?", default=None, metavar="NAME",
                        help='a format, e.g. "cfloat8_1_4_3:bias=10", "int8", "mxfp4" or '
                             '"e4m3fn:block=64,scale=e8m0"; without it every preset is listed')
    parser.add_argument("--values", action="store_true",
                        help=f"also list every finite value of the format (formats of {VALUES_MAX_BITS} bits "
                             "or fewer)")


def _row(fmt):
    return (str(fmt), f"{int(fmt.signed)}/{fmt.exp_bits}/{fmt.man_bits}", str(fmt.bias), fmt.specials,
            fmt.subnormals, f"{fmt.max:.6g}", f"{fmt.min_normal:.6g}", f"{fmt.min_subnormal:.6g}",
            f"{fmt.dynamic_range_binades:.1f}", str(fmt.ml_dtype) if fmt.ml_dtype is not None else "-")


def _integer_row(fmt):
    return (str(fmt), str(fmt.bits), "yes" if fmt.signed else "no", f"{fmt.min:.6g}", f"{fmt.max:.6g}",
            f"{fmt.step:.6g}", str(fmt.ml_dtype) if fmt.ml_dtype is not None else "-")


def _block_text(block) -> str:
    return "x".join(str(size) for size in block) if isinstance(block, tuple) else str(block)


def _scale_range(sf) -> str:
    """The scale values, as powers of two where they are (E8M0: 2^-127..2^127)."""
    scale = sf.scale
    if scale == scaled_module.E8M0:
        return "2^-127..2^127"
    return f"{scale.min_subnormal:.3g}..{scale.max:.3g}"


def _bits_per_value(sf) -> str:
    """Element bits plus the scale's bits shared by a block (1-D or 2-D); per-tensor: '+'."""
    if isinstance(sf.block, str):
        return f"{sf.element.bits}+"
    size = math.prod(sf.block) if isinstance(sf.block, tuple) else sf.block
    return f"{sf.element.bits + sf.scale.bits / size:.4g}"


def _scaled_row(sf):
    return (str(sf), str(sf.element), "e8m0" if sf.scale == scaled_module.E8M0 else str(sf.scale),
            _block_text(sf.block), sf.rule, str(sf.tensor_scale) if sf.tensor_scale is not None else "-",
            _bits_per_value(sf), f"{sf.element.max:.6g}", _scale_range(sf))


def _print_tables(floats, integers, scaled_formats):
    tables = []
    if floats:
        tables.append(render_table(_HEADER, [_row(fmt) for fmt in floats], right=_NUMBER_COLUMNS))
    if integers:
        tables.append(render_table(_INTEGER_HEADER, [_integer_row(fmt) for fmt in integers],
                                   right=_INTEGER_NUMBER_COLUMNS))
    if scaled_formats:
        tables.append(render_table(_SCALED_HEADER, [_scaled_row(sf) for sf in scaled_formats],
                                   right=_SCALED_NUMBER_COLUMNS))
    print("\n\n".join(tables))


def run(args) -> int:
    if args.name is None:
        if args.values:
            raise ValueError(f"--values needs a format NAME of at most {VALUES_MAX_BITS} bits, "
                             "e.g. fmtlab formats e4m3fn --values")
        chosen = [formats_module.format(name) for name in formats_module.preset_names()]
        integers = [integers_module.integer_format_from_name(*_split_integer(name)) for name in INTEGER_EXAMPLES]
        scaled_formats = [scaled_module.scaled_format(name) for name in scaled_module.preset_names()]
    else:
        fmt = parse_cli_format(args.name, "format", scaled=True)
        if isinstance(fmt, scaled_module.ScaledFormat):
            if args.values:
                raise ValueError(f"--values lists an element format's values; {args.name} is a scaled format: "
                                 f"list its element's, e.g. fmtlab formats {fmt.element} --values")
            _print_tables([], [], [fmt])
            return 0
        chosen = [fmt]
        if args.values and fmt.bits > VALUES_MAX_BITS:
            raise ValueError(f"--values lists every value of formats of at most {VALUES_MAX_BITS} bits; "
                             f"{args.name} has {fmt.bits} bits")
        integers = [fmt] if isinstance(fmt, integers_module.IntFormat) else []
        chosen = [] if integers else chosen
        scaled_formats = []

    _print_tables(chosen, integers, scaled_formats)
    chosen = chosen or integers
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
        print("integers: any intN (2..24 bits) or uintN (1..24), options symmetric=true, step_exponent=S; "
              "P3109: p3109_KpP[_unsigned][_finite]; scaled: any element with block=, scale=, rule=, "
              "tensor_scale=, e.g. fmtlab formats \"e4m3fn:block=64,scale=e8m0\"")
    return 0


def _split_integer(name):
    base, _, options = name.partition(":")
    parsed = {}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        parsed[key] = int(value) if value.lstrip("-").isdigit() else value
    return base, parsed
