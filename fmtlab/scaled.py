"""Block-scaled formats: an element format plus a scale per block (OCP MX, NVFP4, block and per-tensor FP8).

A :class:`ScaledFormat` stores each block of elements as one scale code (in its ``scale``
format) and one element code per element (in its ``element`` format); an element's value is

    value = element_value(code) * scale_value(block's scale code) [* tensor scale]

The scale of a block comes from its absolute maximum amax by the ``rule`` (emax: the exponent
of the element format's largest binade):

* ``floor``: 2^(floor(log2 amax) - emax) -- OCP MX v1.0, section 6.3;
* ``ceil``: 2^(ceil(log2 amax) - emax) -- torchao's CEIL;
* ``even``: 2^(floor(log2 RNA(amax)) - emax), RNA rounding amax to the element's mantissa width
  with ties away -- torchao's EVEN;
* ``rceil``: 2^ceil(log2(amax / element.max)), the smallest power of two with
  amax / scale <= element.max -- NVIDIA's round-up conversion to UE8M0, torchao's RCEIL;
* ``amax``: amax / element.max rounded to nearest-even into the scale format, saturating and
  raised to its smallest positive value -- NVFP4, DeepSeek-V3's block FP8, per-tensor FP8;
* ``bias``: per tensor, the bias fmtlab.formats.amax_bias picks for a configurable element
  (Tesla CFloat8, SHP), kept as the scale code -- ``"cfloat8_1_4_3:bias=auto"``.

The exponents are computed exactly from the bits (fmtlab._scale_rules) and clamped to the powers of two
the scale format has (E8M0: 2^-127 .. 2^127).  With a ``tensor_scale`` (NVFP4's second level)
the tensor first gets T = amax_tensor / (element.max * scale.max) rounded to nearest-even into
``tensor_scale`` (torchao's per_tensor_amax_to_scale), and each block's scale is
amax_block / (element.max * T) rounded into ``scale``; the block's effective scale is s * T.

Each element is x / S (S the block's effective scale) rounded in the requested mode, always
saturating (the MX spec and every peer clamp to +-max).  For a power-of-two S the quotient is
exact.  Otherwise every deterministic mode rounds the exact rational x / S: the quotient is one
float64 division, which provably rounds like the exact one (fmtlab._scale_rules.quotient_proxy);
stochastic rounding uses that float64 quotient's discarded fraction, within 2^(p - 53) of the
exact one.

Special blocks: amax 0 -> the smallest positive scale (every element is then 0); a NaN in a
block -> the scale's NaN code, and every element of the block decodes to NaN (its element codes
are those of x / Inf: +-0, NaN for NaN and Inf inputs); an Inf in a block -> the largest scale,
the Inf elements become +-max and the others x / largest scale.  Scales outside the scale
format's range are clamped and counted (``stats=True``).

Implementation: the C core (csrc/scaled.c, through :func:`encode_array` / :func:`quantize_array`)
does every non-empty array -- block amax, scale and element rounding in one pass per block row,
threaded, bit for bit what the numpy implementation below (``_encode_numpy``, ``_quantize_numpy``:
numpy around the element codec) gives; that one remains the path of empty arrays and the
reference tests/test_scaled_c.py holds the C path to.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import re

import numpy as np

from . import _c, _scale_rules as rules
from . import codec
from ._c import ffi, lib
from ._choices import did_you_mean, not_allowed
from .formats import E8M0 as _E8M0_FORMAT, Format, as_format, format as format_by_name
from .integers import IntFormat

__all__ = ["ScaledFormat", "ScaledCodes", "ScaledStats", "scaled_format", "any_format", "as_scaled_format", "preset_names",
           "is_scaled_name", "encode_array", "encode_piece", "piece_arguments", "quantize_array", "decode_codes", "check_saturate",
           "RULES",
           "BLOCK_WORDS", "E8M0"]

#: the scale rules: those of fmtlab._scale_rules (computed in C), and "bias" (below)
RULES = rules.RULES + ("bias",)
#: rule "bias": the per-tensor bias of a configurable element (Tesla CFloat8, SHP) as its scale,
#: chosen by fmtlab.formats.amax_bias, the sweep's amax rule; the scale code is the bias, a 6-bit
#: unsigned integer as Tesla stores it (written ``cfloat8_1_4_3:bias=auto``)
BIAS_RULE = "bias"
BIAS_SCALE = IntFormat(6, signed=False)
#: the block sizes given by a word
BLOCK_WORDS = ("tensor", "channel")


# ---- E8M0 ---------------------------------------------------------------------------------------
# The MX scale format (fmtlab.formats.E8M0): unsigned, 8 exponent bits, bias 127, 0xFF NaN, no zero;
# this module computes E8M0 codes and values from the exponents itself (exact and vectorised).
E8M0 = _E8M0_FORMAT
_E8M0_LOWEST, _E8M0_HIGHEST, _E8M0_NAN = -127, 127, 0xFF


def _is_e8m0(fmt) -> bool:
    return fmt == E8M0


def _scale_by_name(value, argument):
    """A scale, element or tensor-scale format from a Format or a name ("e8m0" included)."""
    if isinstance(value, str) and value.strip().lower() in ("e8m0", "float8_e8m0fnu", "ue8m0"):
        return E8M0
    if isinstance(value, str) and value.strip().lower() == "uint6":
        return BIAS_SCALE
    if isinstance(value, ScaledFormat):
        raise TypeError(f"{argument} must be an element Format, got the scaled format {value}")
    return as_format(value, argument)


def _format_name(fmt: Format) -> str | None:
    """The name that ``format()``/the option strings accept for ``fmt``, or None if it has none."""
    if _is_e8m0(fmt):
        return "e8m0"
    if fmt.name is None:
        return None
    if isinstance(fmt, IntFormat):
        return fmt.name  # it carries its options
    preset = format_by_name(fmt.name)
    changes = [f"{field}={getattr(fmt, field)}" for field in ("bias", "subnormals")
               if getattr(fmt, field) != getattr(preset, field)]
    return fmt.name + (":" + ",".join(changes) if changes else "")


# ---- the scale format's arithmetic ------------------------------------------------------------
def _precision(fmt: Format) -> int:
    """p = man_bits + 1: significant bits of a normal value."""
    return fmt.man_bits + 1


def _power_of_two_range(fmt: Format) -> tuple[int, int]:
    """(lowest, highest) exponents e with 2^e a value of ``fmt``."""
    if _is_e8m0(fmt):
        return _E8M0_LOWEST, _E8M0_HIGHEST
    return fmt.min_subnormal_exponent, int(rules.floor_log2(np.array([fmt.max]))[0])


def _smallest_positive(fmt: Format) -> float:
    return math.ldexp(1.0, _power_of_two_range(fmt)[0])


def _largest(fmt: Format) -> float:
    return math.ldexp(1.0, _E8M0_HIGHEST) if _is_e8m0(fmt) else fmt.max


def _power_of_two_codes(fmt: Format, exponents: np.ndarray) -> np.ndarray:
    """Codes of 2^e (each e in the format's power-of-two range)."""
    if _is_e8m0(fmt):
        return (exponents + 127).astype(np.uint8)
    return codec.encode(np.ldexp(1.0, exponents), fmt)


def _nan_code(fmt: Format) -> int:
    if _is_e8m0(fmt):
        return _E8M0_NAN
    return int(codec.encode(np.array([np.nan]), fmt)[0])


def _code_dtype(fmt: Format):
    return np.dtype(np.uint8) if _is_e8m0(fmt) else fmt.code_dtype


def _decode_scale(fmt: Format, codes: np.ndarray) -> np.ndarray:
    """float64 values of scale codes (NaN for NaN codes)."""
    codes = np.asarray(codes)
    if _is_e8m0(fmt):
        if codes.size and (codes.min() < 0 or codes.max() > 0xFF):
            bad = int(codes.max()) if codes.max() > 0xFF else int(codes.min())
            raise ValueError(f"scales has the code {bad}, outside the 8-bit codes of e8m0 (0..255)")
        as_int = codes.astype(np.int64)
        values = np.ldexp(1.0, as_int - 127)
        return np.where(as_int == _E8M0_NAN, np.nan, values)
    return codec.decode(codes, fmt).astype(np.float64)


def _round_scale(fmt: Format, proxies: np.ndarray) -> np.ndarray:
    """Codes of positive quotient proxies (or +Inf) rounded to nearest-even into ``fmt``,
    saturating at its largest value; a result of zero becomes the smallest positive value."""
    if _is_e8m0(fmt):
        return (rules.e8m0_nearest_even_exponent(proxies) + 127).astype(np.uint8)
    # +Inf (an Inf amax) saturates too: the codec keeps Inf in formats that have one
    proxies = np.where(np.isposinf(proxies), np.finfo(np.float64).max, proxies)
    codes = codec.encode(proxies, fmt, "nearest_even", saturate=True)
    zero = codes == 0
    if zero.any():
        codes[zero] = _power_of_two_codes(fmt, np.array([_power_of_two_range(fmt)[0]]))[0]
    return codes


# ---- counts -------------------------------------------------------------------------------------
@dataclasses.dataclass
class ScaledStats:
    """Counts of one scaled encode/quantize.

    ``elements``: the element codec's :class:`fmtlab.codec.Stats` over every element quotient
    x / S (``overflow`` counts the elements that saturated).  Block counts: ``blocks``;
    ``zero_blocks`` (amax 0: smallest scale); ``nan_blocks`` (a NaN in the block: NaN scale);
    ``scale_underflow`` (blocks whose wanted scale -- 2^e of the rule, or amax / divisor for
    ``"amax"`` -- was below the smallest positive scale and was raised to it);
    ``scale_overflow`` (wanted scale above the largest, Inf blocks included: lowered to it).
    ``tensor_scale_clamped``: 1 when the tensor scale was clamped, else 0.
    """
    elements: codec.Stats
    blocks: int = 0
    zero_blocks: int = 0
    nan_blocks: int = 0
    scale_underflow: int = 0
    scale_overflow: int = 0
    tensor_scale_clamped: int = 0

    @property
    def scale_clamped(self) -> int:
        """Blocks whose scale was clamped either way."""
        return self.scale_underflow + self.scale_overflow

    def as_dict(self):
        result = dataclasses.asdict(self)
        result["elements"] = self.elements.as_dict()
        result["scale_clamped"] = self.scale_clamped
        return result


# ---- the format -----------------------------------------------------------------------------------
def _check_block(block):
    if isinstance(block, str):
        word = block.strip().lower()
        if word not in BLOCK_WORDS:
            raise ValueError(not_allowed("block", block, "a positive int, a pair (rows, columns), 'tensor' "
                                                         "or 'channel'", BLOCK_WORDS))
        return word
    if isinstance(block, (tuple, list)):
        if len(block) != 2 or not all(isinstance(b, numbers.Integral) and not isinstance(b, bool) and b >= 1
                                      for b in block):
            raise ValueError(f"block={block!r} is not allowed: a 2-D tile is a pair of positive ints "
                             "(rows, columns), e.g. (16, 16)")
        return (int(block[0]), int(block[1]))
    if isinstance(block, bool) or not isinstance(block, numbers.Integral) or block < 1:
        raise ValueError(f"block={block!r} is not allowed: a positive int, a pair (rows, columns), "
                         "'tensor' or 'channel'")
    return int(block)


@dataclasses.dataclass(frozen=True)
class ScaledFormat:
    """A block-scaled format (frozen, hashable): see the module docstring for the rules.

    Parameters
    ----------
    element : the element Format (or its name).
    scale : the scale's Format (``E8M0``, ``fl.E4M3FN``, ``fl.FP32``, ``fl.BF16``, ... or a name).
    block : an int k (1-D blocks of k elements along ``axis``; the last block may be partial),
        a pair (r, c) (r x c tiles over the last two axes), ``"tensor"`` (one scale) or
        ``"channel"`` (one block per slice along ``axis``: a whole row of a (out, in) weight
        for axis=-1, i.e. one scale per output channel).
    rule : ``"floor"``, ``"ceil"``, ``"even"``, ``"rceil"``, ``"amax"``, or ``"bias"`` (the per-tensor
        bias of a configurable element, scale ``uint6``: ``"cfloat8_1_4_3:bias=auto"``, see
        :func:`tensor_bias`).
    axis : the axis 1-D blocks and channels run along (default the last).
    tensor_scale : None, or the Format of NVFP4's second-level per-tensor scale (``"amax"`` only).
    name : the preset name, used only for printing.
    """

    element: Format
    scale: Format
    block: object = 32
    rule: str = "floor"
    axis: int = -1
    tensor_scale: Format | None = None
    name: str | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self):
        element = _scale_by_name(self.element, "element")
        if _is_e8m0(element):
            raise ValueError("element=e8m0 is not allowed: E8M0 is a scale format (it has no zero)")
        scale = _scale_by_name(self.scale, "scale")
        tensor_scale = None if self.tensor_scale is None or (
            isinstance(self.tensor_scale, str) and self.tensor_scale.strip().lower() == "none") \
            else _scale_by_name(self.tensor_scale, "tensor_scale")
        if not isinstance(self.rule, str) or self.rule not in RULES:
            raise ValueError(not_allowed("rule", self.rule, ", ".join(RULES), RULES))
        for argument, value in (("scale", scale), ("tensor_scale", tensor_scale)):
            if isinstance(value, IntFormat) and not (self.rule == BIAS_RULE and argument == "scale"):
                raise ValueError(f"{argument}={value} is not allowed: a scale format needs a NaN code (for NaN "
                                 "blocks) and a float's range; use e8m0, e4m3fn, bf16, fp32, ...")
        object.__setattr__(self, "element", element)
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "tensor_scale", tensor_scale)
        object.__setattr__(self, "block", _check_block(self.block))
        if self.rule == BIAS_RULE:
            self._check_bias_rule()
            return
        if isinstance(self.axis, bool) or not isinstance(self.axis, numbers.Integral):
            raise TypeError(f"axis must be an int, got {self.axis!r} ({type(self.axis).__name__})")
        object.__setattr__(self, "axis", int(self.axis))
        if self.axis != -1 and not (isinstance(self.block, int) or self.block == "channel"):
            raise ValueError(f"axis={self.axis} is not allowed with block={self.block!r}: axis applies to 1-D "
                             "blocks and 'channel'; tiles use the last two axes, 'tensor' every axis")
        for argument, fmt in (("scale", scale), ("tensor_scale", tensor_scale)):
            if fmt is not None and not (_is_e8m0(fmt) or fmt.has_nan):
                raise ValueError(f"{argument}={fmt} is not allowed: a scale format needs a NaN code "
                                 "(a block or tensor containing NaN gets it)")
        if self.rule in rules.POWER_OF_TWO_RULES and scale.subnormals == "tesla" and not _is_e8m0(scale):
            raise ValueError(f"scale={scale} is not allowed with rule={self.rule!r}: its powers of two are not "
                             "contiguous (the Tesla subnormal gap); use subnormals='ieee'")
        if tensor_scale is not None:
            if self.rule != "amax":
                raise ValueError(f"tensor_scale={tensor_scale} needs rule='amax' (NVFP4's two-level scaling), "
                                 f"not rule={self.rule!r}")
            if self.block == "tensor":
                raise ValueError("tensor_scale is not allowed with block='tensor': the block scale already is one")
        self._check_float64_room()

    def _check_bias_rule(self):
        """Rule "bias": one bias per tensor for an element whose bias is configurable, kept in
        :data:`BIAS_SCALE` (the bias register), no tensor scale, no axis."""
        from .formats import bias_range, is_configurable

        if not is_configurable(self.element):
            raise ValueError(f"rule='bias' is not allowed for element={self.element}: its bias is fixed; the "
                             "formats with a configurable bias are cfloat8_1_4_3, cfloat8_1_5_2, shp")
        if self.block != "tensor":
            raise ValueError(f"rule='bias' is not allowed with block={self.block!r}: the bias is one per tensor "
                             "(block='tensor')")
        allowed = bias_range(self.element)
        if self.scale != BIAS_SCALE or allowed.stop - 1 > BIAS_SCALE.max_integer:
            raise ValueError(f"rule='bias' keeps the bias as its scale code: scale must be uint6, not "
                             f"{self.scale}")
        if self.tensor_scale is not None or self.axis != -1:
            raise ValueError("rule='bias' takes no tensor_scale and no axis")

    def _check_float64_room(self):
        """Every value element * scale [* tensor scale] must be a normal float64, and each rounded
        quotient must leave quotient_proxy its p + 1 + bits(divisor) <= 53 (fmtlab._scale_rules)."""
        element, scale, tensor = self.element, self.scale, self.tensor_scale
        lowest = element.min_subnormal_exponent + _power_of_two_range(scale)[0]
        highest = math.log2(element.max) + math.log2(_largest(scale))
        if tensor is not None:
            lowest += _power_of_two_range(tensor)[0]
            highest += math.log2(_largest(tensor))
        if lowest < -1021 or highest >= 1024:
            raise ValueError(
                f"ScaledFormat(element={element}, scale={scale}, tensor_scale={tensor}) spans 2^{lowest}.."
                f"2^{highest:.1f}; every product of an element and its scales must be a normal float64 "
                "(2^-1021 .. 2^1024): use a scale format with a narrower exponent range")
        if self.rule != "amax":
            return
        p_tensor = 0 if tensor is None else _precision(tensor)
        checks = [("scale", _precision(scale) + 1 + rules.significant_bits(element.max) + p_tensor),
                  ("element", _precision(element) + 1 + _precision(scale) + p_tensor)]
        if tensor is not None:
            checks.append(("tensor_scale", p_tensor + 1 + rules.significant_bits(element.max * _largest(scale))))
        for argument, bits in checks:
            if bits > 53:
                raise ValueError(
                    f"{argument}: ScaledFormat(element={element}, scale={scale}, tensor_scale={tensor}) needs "
                    f"{bits} bits to round its quotients exactly; at most 53 (float64) are allowed: "
                    "use a narrower element, scale or tensor_scale")

    # ---- derived ---------------------------------------------------------------------------------
    @property
    def is_power_of_two(self) -> bool:
        """Whether every block scale is a power of two (an exact shift of the elements)."""
        return (self.rule in rules.POWER_OF_TWO_RULES or self.rule == BIAS_RULE
                or (_is_e8m0(self.scale) and self.tensor_scale is None))

    def scales_shape(self, shape) -> tuple:
        """Shape of the scales of an array of ``shape``: for 1-D blocks of k along axis a,
        ``shape`` with shape[a] replaced by ceil(shape[a] / k); for tiles (r, c) the last two
        dimensions become ceil(R / r), ceil(C / c); 'channel' puts 1 at the axis; 'tensor' ()."""
        return _Grid(tuple(shape), self).scales_shape

    def replace(self, **changes) -> "ScaledFormat":
        changes.setdefault("name", self.name)
        return dataclasses.replace(self, **changes)

    def _options(self) -> dict:
        options = {"block": _block_text(self.block), "scale": _format_name(self.scale), "rule": self.rule}
        if self.axis != -1:
            options["axis"] = str(self.axis)
        if self.tensor_scale is not None:
            options["tensor_scale"] = _format_name(self.tensor_scale)
        return options

    def __str__(self) -> str:
        if self.rule == BIAS_RULE:
            element_name = _format_name(self.element)
            return element_name + ("," if ":" in element_name else ":") + "bias=auto"
        options = self._options()
        if self.name is not None and self.name in _PRESETS:
            preset_options = _PRESETS[self.name]._options()
            if self.element == _PRESETS[self.name].element:
                changed = [f"{key}={value}" for key, value in options.items() if preset_options.get(key) != value]
                if self.tensor_scale is None and _PRESETS[self.name].tensor_scale is not None:
                    changed.append("tensor_scale=none")
                if None not in options.values():
                    return self.name + (":" + ",".join(changed) if changed else "")
        element_name = _format_name(self.element)
        if element_name is not None and None not in options.values():
            joiner = "," if ":" in element_name else ":"
            return element_name + joiner + ",".join(f"{key}={value}" for key, value in options.items())
        return (f"ScaledFormat(element={self.element!r}, scale={self.scale!r}, block={self.block!r}, "
                f"rule={self.rule!r}, axis={self.axis}, tensor_scale={self.tensor_scale!r})")

    __repr__ = __str__


def _block_text(block) -> str:
    return f"{block[0]}x{block[1]}" if isinstance(block, tuple) else str(block)


# ---- presets --------------------------------------------------------------------------------------
def _preset(name, element, scale, block, rule, tensor_scale=None):
    return ScaledFormat(format_by_name(element), _scale_by_name(scale, "scale"), block, rule,
                        tensor_scale=None if tensor_scale is None else format_by_name(tensor_scale), name=name)


_PRESETS = {f.name: f for f in [
    _preset("mxfp8_e4m3", "e4m3fn", "e8m0", 32, "floor"),
    _preset("mxfp8_e5m2", "e5m2", "e8m0", 32, "floor"),
    _preset("mxfp6_e2m3", "e2m3fn", "e8m0", 32, "floor"),
    _preset("mxfp6_e3m2", "e3m2fn", "e8m0", 32, "floor"),
    _preset("mxfp4", "e2m1fn", "e8m0", 32, "floor"),
    _preset("nvfp4", "e2m1fn", "e4m3fn", 16, "amax", tensor_scale="fp32"),
    _preset("nvfp4_2d", "e2m1fn", "e4m3fn", (16, 16), "amax", tensor_scale="fp32"),
    _preset("fp8_block128", "e4m3fn", "fp32", 128, "amax"),
    _preset("fp8_block128x128", "e4m3fn", "fp32", (128, 128), "amax"),
    _preset("fp8_tensor", "e4m3fn", "fp32", "tensor", "amax"),
    # OCP MX v1.0 section 5.3.3: int8 elements with an implicit 2^-6 (values -2 .. 1 63/64)
    _preset("mxint8", "int8:step_exponent=-6", "e8m0", 32, "floor"),
]}
_ALIASES = {"mxfp8": "mxfp8_e4m3", "mxfp6": "mxfp6_e2m3", "mxfp4_e2m1": "mxfp4"}
#: option keys that make a string a scaled format ...
_SCALED_KEYS = ("block", "scale", "rule", "axis", "tensor_scale")
#: ... and the element's own (float formats: bias, subnormals; integers: symmetric, step_exponent)
_ELEMENT_KEYS = ("bias", "subnormals", "symmetric", "step_exponent")


def preset_names() -> tuple[str, ...]:
    """Names of the scaled presets :func:`scaled_format` accepts."""
    return tuple(_PRESETS)


def _split(text: str):
    base, _, options = text.strip().partition(":")
    parsed = []
    for item in filter(None, (part.strip() for part in options.split(","))):
        key, equals, value = item.partition("=")
        if not equals:
            raise ValueError(f"format option {item!r} in {text!r} must look like key=value")
        parsed.append((key.strip(), value.strip()))
    return base.strip(), parsed


def is_scaled_name(text: str) -> bool:
    """Whether the string names a scaled format: a scaled preset, or options that scale an element."""
    if not isinstance(text, str):
        return False
    try:
        base, options = _split(text)
    except ValueError:
        return False
    key = base.lower()
    return key in _PRESETS or key in _ALIASES or any(option in _SCALED_KEYS or (option == "bias" and
                                                                                value.strip().lower() == "auto")
                                                     for option, value in options)


def _parse_block(value: str, text: str):
    word = value.lower()
    if word in BLOCK_WORDS:
        return word
    match = re.fullmatch(r"(\d+)\s*[x*]\s*(\d+)", word)
    if match:
        return (int(match.group(1)), int(match.group(2)))
    if re.fullmatch(r"\d+", word):
        return int(word)
    raise ValueError(f"format option block={value!r} in {text!r} is not allowed: an int (32), a tile (16x16), "
                     "'tensor' or 'channel'")


def scaled_format(name, **overrides) -> ScaledFormat:
    """A scaled preset by name, or an element format with scaling options, with overrides.

    ``name``: a preset (see :func:`preset_names`), optionally with options --
    ``"mxfp4:rule=ceil"``, ``"nvfp4:tensor_scale=none"`` -- or an element format with at least
    one scaling option -- ``"e4m3fn:block=64,scale=e8m0"`` (defaults: block 32, scale e8m0,
    rule floor) -- or a ScaledFormat.  Options: block (32, 16x16, tensor, channel), scale,
    rule, axis, tensor_scale (a format or none); an element's bias= and subnormals= go to
    the element.  Keyword ``overrides`` take the same names with Python values.
    """
    if isinstance(name, ScaledFormat):
        return name.replace(**overrides) if overrides else name
    if not isinstance(name, str):
        raise TypeError(f"scaled format name must be a str or a ScaledFormat, got {name!r} ({type(name).__name__})")
    base, options = _split(name)
    fields, element_options = {}, {}
    for key, value in options:
        if key in fields or key in element_options:
            raise ValueError(f"format option {key!r} given twice in {name!r}")
        if key == "block":
            fields["block"] = _parse_block(value, name)
        elif key == "axis":
            if not re.fullmatch(r"[+-]?\d+", value):
                raise ValueError(f"format option axis={value!r} in {name!r} is not allowed: an int such as -1 or 0")
            fields["axis"] = int(value)
        elif key in ("scale", "rule", "tensor_scale"):
            fields[key] = value
        elif key in _ELEMENT_KEYS:
            element_options[key] = value
        else:
            allowed = list(_SCALED_KEYS) + list(_ELEMENT_KEYS)
            raise ValueError(f"format option {key!r} in {name!r} is unknown{did_you_mean(key, allowed)}; "
                             f"allowed: {', '.join(allowed)}")
    for key, value in overrides.items():
        if key in _ELEMENT_KEYS:
            element_options[key] = value
        elif key in _SCALED_KEYS or key == "element":
            fields[key] = value
        else:
            raise ValueError(f"scaled format override {key!r} is unknown; allowed: element, "
                             f"{', '.join(_SCALED_KEYS)}, {', '.join(_ELEMENT_KEYS)}")
    if isinstance(element_options.get("bias"), str) and element_options["bias"].strip().lower() == "auto":
        # the per-tensor bias as the scale: rule "bias" (fmtlab.formats.amax_bias)
        del element_options["bias"]
        for key, wanted in (("block", "tensor"), ("rule", BIAS_RULE)):
            if key in fields and fields[key] != wanted:
                raise ValueError(f"format {name!r}: bias=auto is one bias per tensor (block=tensor, rule=bias); "
                                 f"{key}={fields[key]} is not allowed with it")
            fields[key] = wanted
        fields.setdefault("scale", BIAS_SCALE)
    key = _ALIASES.get(base.lower(), base.lower())
    if key in _PRESETS:
        preset = _PRESETS[key]
        if element_options:
            joiner = "," if ":" in preset.element.name else ":"
            spec = preset.element.name + joiner + ",".join(f"{k}={v}" for k, v in element_options.items())
            fields.setdefault("element", format_by_name(spec))
        return dataclasses.replace(preset, **fields) if fields else preset
    if not fields:
        raise ValueError(f"format name {name!r} is not a scaled format{did_you_mean(base, list(_PRESETS))}: "
                         f"scaled presets are {', '.join(_PRESETS)}, or give an element format with scaling "
                         "options such as 'e4m3fn:block=32,scale=e8m0'")
    element = fields.pop("element", None)
    if element is None:
        spec = base + (":" + ",".join(f"{k}={v}" for k, v in element_options.items()) if element_options else "")
        element = format_by_name(spec)
    fields.setdefault("scale", E8M0)
    return ScaledFormat(element, **fields)


def any_format(name, **overrides):
    """``fl.format``: an element :class:`~fmtlab.formats.Format` or a :class:`ScaledFormat` by name.

    Scaled names (the presets of :func:`preset_names`, or an element with a scaling option
    such as ``"e4m3fn:block=64,scale=e8m0"``) and ScaledFormats go to :func:`scaled_format`;
    everything else to :func:`fmtlab.formats.format`, whose errors list both kinds.
    """
    if isinstance(name, ScaledFormat) or (isinstance(name, str) and is_scaled_name(name)):
        return scaled_format(name, **overrides)
    if isinstance(name, Format) and overrides and set(overrides) & set(_SCALED_KEYS):
        return ScaledFormat(name, **overrides)
    try:
        return format_by_name(name, **overrides)
    except ValueError as error:
        if isinstance(name, str) and "is unknown" in str(error) and ":" not in name:
            hint = did_you_mean(name.strip(), list(_PRESETS))
            if hint:  # the nearer name is a scaled preset
                raise ValueError(f"format name {name!r} is unknown{hint}; scaled presets are "
                                 f"{', '.join(_PRESETS)}") from None
        raise


def as_scaled_format(value):
    """``value`` as a ScaledFormat when it is one or names one (a str), else None."""
    if isinstance(value, ScaledFormat):
        return value
    if isinstance(value, str) and is_scaled_name(value):
        return scaled_format(value)
    return None


# ---- blocks ---------------------------------------------------------------------------------------
def _contiguous(array: np.ndarray) -> np.ndarray:
    """``array`` C-contiguous, keeping its shape (np.ascontiguousarray makes 0-d arrays 1-d)."""
    return array if array.flags.c_contiguous else array.copy(order="C")


class _Grid:
    """How an array of ``shape`` is cut into blocks: a padded, reshaped view with the block axes.

    kind "axis": the block axis moved last, padded with zeros to nb * k, viewed as (..., nb, k);
    kind "tile": the last two axes padded to whole tiles, viewed as (..., R/r, r, C/c, c);
    kind "tensor": one block.  Zero padding never changes an amax; padded quotients are dropped.
    """

    def __init__(self, shape, sf: ScaledFormat):
        self.shape = shape
        block = sf.block
        if block == "tensor":
            self.kind = "tensor"
            self.scales_shape = ()
            return
        if len(shape) == 0:
            raise ValueError(f"x is 0-dimensional; {sf} has block={_block_text(block)!r}, which needs at least one "
                             "axis (use block='tensor' for a scalar)")
        if isinstance(block, tuple):
            if len(shape) < 2:
                raise ValueError(f"x has shape {shape}; {sf} has {block[0]}x{block[1]} tiles over the last two axes, "
                                 "so x needs at least 2 dimensions")
            self.kind = "tile"
            self.rows, self.columns = shape[-2], shape[-1]
            self.r, self.c = block
            self.row_blocks = -(-self.rows // self.r)
            self.column_blocks = -(-self.columns // self.c)
            self.scales_shape = shape[:-2] + (self.row_blocks, self.column_blocks)
            return
        axis = sf.axis
        if not -len(shape) <= axis < len(shape):
            raise ValueError(f"axis={axis} is out of range for x of shape {shape} ({len(shape)} dimensions)")
        self.kind = "axis"
        self.axis = axis % len(shape)
        self.n = shape[self.axis]
        self.k = max(self.n, 1) if block == "channel" else block
        self.blocks = -(-self.n // self.k)
        scales = list(shape)
        scales[self.axis] = self.blocks
        self.scales_shape = tuple(scales)
        self.moved_lead = shape[:self.axis] + shape[self.axis + 1:]

    # -- array <-> view ----------------------------------------------------------------------------
    def view(self, array: np.ndarray) -> np.ndarray:
        if self.kind == "tensor":
            return array.reshape(-1)
        if self.kind == "tile":
            pad_r, pad_c = self.row_blocks * self.r - self.rows, self.column_blocks * self.c - self.columns
            if pad_r or pad_c:
                array = np.pad(array, [(0, 0)] * (array.ndim - 2) + [(0, pad_r), (0, pad_c)])
            return array.reshape(self.shape[:-2] + (self.row_blocks, self.r, self.column_blocks, self.c))
        moved = np.moveaxis(array, self.axis, -1)
        pad = self.blocks * self.k - self.n
        if pad:
            moved = np.pad(moved, [(0, 0)] * (moved.ndim - 1) + [(0, pad)])
        return moved.reshape(self.moved_lead + (self.blocks, self.k))

    def unview(self, view: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`view`: a C-contiguous array of x's shape."""
        if self.kind == "tensor":
            return _contiguous(view.reshape(self.shape))
        if self.kind == "tile":
            full = view.reshape(self.shape[:-2] + (self.row_blocks * self.r, self.column_blocks * self.c))
            return _contiguous(full[..., :self.rows, :self.columns])
        full = view.reshape(self.moved_lead + (self.blocks * self.k,))[..., :self.n]
        return _contiguous(np.moveaxis(full, -1, self.axis))

    @property
    def reduce_axes(self):
        return {"tensor": None, "tile": (-3, -1), "axis": -1}[self.kind]

    def per_block(self, grid_values: np.ndarray) -> np.ndarray:
        """Block values (grid shape, in view order) broadcastable against the view."""
        if self.kind == "tensor":
            return grid_values
        if self.kind == "tile":
            return grid_values[..., :, None, :, None]
        return grid_values[..., None]

    def amax(self, view: np.ndarray) -> np.ndarray:
        """max |x| per block (NaN when the block holds a NaN), in view order, float64."""
        return np.asarray(np.max(np.abs(view), axis=self.reduce_axes, initial=0), dtype=np.float64)

    def to_scales_layout(self, grid: np.ndarray) -> np.ndarray:
        """Block results from view order to the public scales layout."""
        if self.kind == "axis":
            return _contiguous(np.moveaxis(grid, -1, self.axis))
        return _contiguous(np.asarray(grid))

    def from_scales_layout(self, scales: np.ndarray) -> np.ndarray:
        if self.kind == "axis":
            return np.moveaxis(scales, self.axis, -1)
        return scales


# ---- scales ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Scales:
    codes: np.ndarray            # view-order grid, the scale format's code dtype
    values: np.ndarray           # block scale values, float64 (NaN for NaN blocks)
    effective: np.ndarray        # values * tensor scale value
    nan: np.ndarray              # bool grid
    has_inf: bool                # whether some block holds an Inf
    tensor_code: int | None
    tensor_value: float
    counts: dict


def _tensor_scale(sf: ScaledFormat, amax_tensor: float):
    """(code, value, clamped) of the second-level scale T = amax / (element.max * scale.max)."""
    fmt = sf.tensor_scale
    if math.isnan(amax_tensor):
        return _nan_code(fmt), math.nan, 0
    divisor = sf.element.max * _largest(sf.scale)
    proxy = rules.quotient_proxy(np.array([amax_tensor]), np.float64(divisor))
    code = int(_round_scale(fmt, proxy)[0])
    clamped = int(proxy[0] > fmt.max or (0 < proxy[0] < fmt.min_subnormal) or amax_tensor == math.inf)
    return code, float(_decode_scale(fmt, np.array([code]))[0]), clamped


def _compute_scales(sf: ScaledFormat, amax: np.ndarray) -> _Scales:
    """Every block's scale from its amax (float64 grid), by the rule (see the module docstring)."""
    nan = np.isnan(amax)
    zero = amax == 0
    inf = np.isinf(amax)
    normal = ~(nan | zero | inf)
    fmt = sf.scale
    counts = {"blocks": int(amax.size), "zero_blocks": int(zero.sum()), "nan_blocks": int(nan.sum())}
    tensor_code, tensor_value, tensor_clamped = None, 1.0, 0
    if sf.rule in rules.POWER_OF_TWO_RULES:
        lowest, highest = _power_of_two_range(fmt)
        exponents = np.full(amax.shape, lowest, dtype=np.int64)
        element = sf.element
        exponents[normal] = rules.rule_exponent(sf.rule, amax[normal], element.emax, element.man_bits, element.max)
        counts["scale_underflow"] = int((normal & (exponents < lowest)).sum())
        counts["scale_overflow"] = int((normal & (exponents > highest)).sum() + inf.sum())
        exponents[inf] = highest
        exponents = np.clip(exponents, lowest, highest)
        codes = _power_of_two_codes(fmt, exponents).astype(_code_dtype(fmt), copy=False)
        values = np.ldexp(1.0, exponents)
    else:
        if sf.tensor_scale is not None:
            tensor_code, tensor_value, tensor_clamped = _tensor_scale(sf, float(np.max(amax, initial=0)))
        divisor = sf.element.max * tensor_value
        proxies = np.zeros(amax.shape)
        if not math.isnan(tensor_value):
            proxies[normal] = rules.quotient_proxy(amax[normal], np.float64(divisor))
            proxies[inf] = np.inf
        codes = _round_scale(fmt, proxies).astype(_code_dtype(fmt), copy=False)
        values = _decode_scale(fmt, codes)
        counts["scale_underflow"] = int((normal & (proxies < _smallest_positive(fmt))).sum())
        counts["scale_overflow"] = int((normal & (proxies > _largest(fmt))).sum() + inf.sum())
        if math.isnan(tensor_value):
            nan = np.ones(amax.shape, bool)
    codes = np.array(codes)      # a copy, and 0-d arithmetic above may have given numpy scalars
    if nan.any():
        codes[nan] = _nan_code(fmt)
        values = np.where(nan, np.nan, values)
    counts["tensor_scale_clamped"] = tensor_clamped
    values = np.asarray(values, dtype=np.float64)
    effective = values * tensor_value if sf.tensor_scale is not None else values
    return _Scales(codes, values, effective, nan, bool(inf.any()), tensor_code, tensor_value, counts)


# ---- element quotients --------------------------------------------------------------------------
def _fast_float32_quotients(array, sf, grid, view, scales):
    """x / 2^e in float32, or None when it would not be exact (then float64 is used).

    Exact when every 2^-e is a float32 (e in [-127, 149]) and no quotient falls below float32's
    normal range: for e <= 0 the quotient is x shifted left; for e > 0 (scales above 1) only
    elements with |x| < 2^(e - 126) could lose bits, and those are looked for.
    """
    if array.dtype != np.float32 or not sf.is_power_of_two or sf.tensor_scale is not None:
        return None
    lowest, highest = _power_of_two_range(sf.scale)
    if lowest < -127 or highest > 149 or sf.element.decode_dtype != np.float32 \
            or sf.element.min_subnormal_exponent + lowest < -149:
        return None
    if scales.has_inf and sf.element.has_inf:
        # an Inf element saturates as the quotient +-DBL_MAX (_saturate_infinities in float64);
        # float32's max would be a different quotient, which rounds toward zero to max without
        # an overflow in elements as wide as float32 (bf16)
        return None
    exponents = rules.floor_log2(np.where(scales.nan, 1.0, scales.values))
    inverse = np.where(scales.nan, 0.0, np.ldexp(1.0, -exponents)).astype(np.float32)
    with np.errstate(invalid="ignore"):   # Inf * 0 in NaN blocks: NaN, as wanted
        quotients = _saturate_infinities(view * grid.per_block(inverse), sf, scales)
    if (exponents > 0).any():
        with np.errstate(invalid="ignore"):
            lost = (np.abs(quotients) < np.float32(2.0 ** -126)) & (view != 0)
        if lost.any():
            return None
    return quotients


def _float64_quotients(array, sf, grid, scales):
    view = grid.view(array.astype(np.float64, copy=False))
    effective = np.where(scales.nan, 1.0, scales.effective)
    power_of_two = sf.is_power_of_two
    smallest = float(np.finfo(array.dtype).smallest_subnormal)
    quotients = rules.quotient_proxy(view, grid.per_block(effective), denominator_is_power_of_two=power_of_two,
                                     smallest_numerator=smallest)
    if scales.nan.any():
        # a NaN block's elements are x / Inf: +-0, and NaN for NaN and Inf inputs
        with np.errstate(invalid="ignore"):
            quotients = np.where(grid.per_block(scales.nan), view * 0.0, quotients)
    return view, _saturate_infinities(quotients, sf, scales)


def _saturate_infinities(quotients, sf, scales):
    """An Inf element becomes +-max: the element codec keeps Inf in formats that have one
    (e5m2) even when saturating, but a scaled element saturates like every other overflow
    (gfloat's round_float with sat=True, torchao's clamp before the cast)."""
    if not (scales.has_inf and sf.element.has_inf):
        return quotients
    infinite = np.isinf(quotients)
    return np.where(infinite, np.copysign(np.finfo(quotients.dtype).max, quotients), quotients)


# ---- public entry points (called by fmtlab.codec) ---------------------------------------------
def check_saturate(saturate) -> bool:
    """Scaled elements always saturate: ``saturate`` must be None, True or ``"sat_finite"`` (P3109's
    name for what scaled elements do: overflow and +-Inf give +-max)."""
    if saturate is None or saturate is True or saturate == "sat_finite" or \
            (isinstance(saturate, np.bool_) and bool(saturate)):
        return True
    if saturate is False or isinstance(saturate, (np.bool_, str)):
        raise ValueError(f"saturate={saturate!r} is not allowed for a scaled format: its elements always saturate "
                         "to +-max (OCP MX v1.0 and every implementation clamp after scaling); allowed: None, True "
                         "or 'sat_finite'")
    raise TypeError(f"saturate must be None, True or 'sat_finite' for a scaled format, got {saturate!r}")


@dataclasses.dataclass(frozen=True, eq=False)
class ScaledCodes:
    """The result of ``fl.encode(x, scaled_format)``.

    ``codes``: element codes, x's shape (``format.element.code_dtype``); ``scales``: scale codes,
    ``format.scales_shape(x.shape)`` (uint8 for E8M0); ``tensor_scale``: the tensor-scale code
    (an int) or None; ``format``: the ScaledFormat.  ``fl.decode(result)`` gives the values.
    """
    codes: np.ndarray
    scales: np.ndarray
    tensor_scale: int | None
    format: ScaledFormat

    @property
    def shape(self):
        return self.codes.shape


def _prepare(array, sf):
    grid = _Grid(array.shape, sf)
    return grid


def _element_request(request):
    return dict(rounding=request.mode, saturate=True, seed=request.seed, sr_bits=request.sr_bits,
                sr_rule=request.sr_rule)


def _stats(element_stats, scales):
    return ScaledStats(element_stats, **scales.counts)


def encode_array(array: np.ndarray, sf: ScaledFormat, request, stats: bool = False):
    """Encode a C-contiguous float32/float64 array (see the module docstring); ``request`` is a
    checked fmtlab._c.RoundingRequest (its saturate flag is ignored: elements always saturate).

    The C core (csrc/scaled.c) does every array with at least one element; the numpy
    implementation below (:func:`_encode_numpy`) does the empty ones, and the tests hold the
    two to the same bits."""
    if sf.rule == BIAS_RULE:
        return _bias_rule(array, sf, request, stats, quantize=False)
    if _c_covers(array):
        return _run_c(array, sf, request, stats, quantize=False)
    return _encode_numpy(array, sf, request, stats)


def quantize_array(array: np.ndarray, sf: ScaledFormat, request, stats: bool = False):
    """Fake-quantize a C-contiguous float32/float64 array: decode(encode(x)) in x's dtype
    (through the C core as :func:`encode_array`; the numpy :func:`_quantize_numpy` otherwise)."""
    if sf.rule == BIAS_RULE:
        return _bias_rule(array, sf, request, stats, quantize=True)
    if _c_covers(array):
        return _run_c(array, sf, request, stats, quantize=True)
    return _quantize_numpy(array, sf, request, stats)


def encode_piece(array: np.ndarray, sf: ScaledFormat, request, index_offset: int, tensor_amax: float,
                 finite_amax: float) -> ScaledCodes:
    """:func:`encode_array` of rows of a larger tensor, as the whole tensor's encode gives them
    (the sweep's row-range pieces, fmtlab/_sweep_scaled.py; ``fl.encode`` itself never takes a piece).

    ``array``: C-contiguous float32/float64 (non-empty) holding whole blocks of the tensor, its
    first element being element ``index_offset`` (C order) of the tensor: stochastic rounding is
    keyed by index_offset + i, as inside the whole tensor.  What depends on the whole tensor is
    given, from the sweep's first pass:

    * ``tensor_amax`` = max |x| over the tensor (NaN when it holds a NaN, +Inf when an Inf):
      the amax of NVFP4's tensor scale T and of the one block of ``block="tensor"`` (fp8_tensor);
    * ``finite_amax`` = max |x| over its finite elements (0 when there is none): rule
      ``"bias"``'s bias, fmtlab.formats.amax_bias(element, finite_amax) (:func:`tensor_bias`).

    Returns the piece's :class:`ScaledCodes` (the scales of its own blocks; for rule "bias" and
    block "tensor" the tensor's one scale)."""
    if sf.rule == BIAS_RULE:
        from .formats import amax_bias
        bias = amax_bias(sf.element, finite_amax)
        codes = codec.encode(array, sf.element.replace(bias=bias), index_offset=index_offset,
                             **_element_request(request))
        return ScaledCodes(codes, np.array(bias, dtype=BIAS_SCALE.code_dtype), None, sf)
    if array.size == 0:
        raise ValueError("encode_piece needs a non-empty piece")
    piece = ffi.new("fl_scaled_piece *")
    piece.index_offset = int(index_offset)
    if sf.tensor_scale is not None or sf.block == "tensor":
        piece.has_tensor_amax = 1
        piece.tensor_amax = float(tensor_amax)
        piece.tensor_amax_is_block = int(sf.block == "tensor")
    return _run_c(array, sf, request, False, quantize=False, piece=piece)


def piece_arguments(array: np.ndarray, sf: ScaledFormat, index_offset: int, tensor_amax: float) -> tuple:
    """``(layout, format, piece)``: the C structs :func:`encode_piece` passes for ``array`` (a piece
    of a tensor, not of rule "bias"), for other entry points on pieces (the sweep's fused
    statistics, csrc/sweep_scaled.c)."""
    piece = ffi.new("fl_scaled_piece *")
    piece.index_offset = int(index_offset)
    if sf.tensor_scale is not None or sf.block == "tensor":
        piece.has_tensor_amax = 1
        piece.tensor_amax = float(tensor_amax)
        piece.tensor_amax_is_block = int(sf.block == "tensor")
    return _c.c_block_layout(*_c_layout(_Grid(array.shape, sf))), _c.c_scaled_format(sf), piece


# ---- rule "bias": the per-tensor bias of a configurable element ------------------------------------
def tensor_bias(array: np.ndarray, sf: ScaledFormat) -> tuple[int, ScaledStats]:
    """The bias rule "bias" gives ``array`` and its block counts (no element counts yet).

    bias = fmtlab.formats.amax_bias(element, amax), amax = max |x| over the finite elements (0
    when there are none): the sweep's amax rule, so ``cfloat8_1_4_3:bias=auto`` is the sweep's
    "rule bias".  NaN and Inf elements do not make the scale NaN (a bias has none): they round as
    the element format rounds them (CFloat8: +-max, NaN +max).  scale_underflow: the bias was
    lowered to the top of its range, a larger one would fit amax too; scale_overflow: amax
    exceeds the largest value at the smallest bias (it saturates).
    """
    from .formats import amax_bias, bias_range

    element = sf.element
    with np.errstate(invalid="ignore"):
        magnitudes = np.abs(array)
    amax = float(np.max(magnitudes, where=np.isfinite(magnitudes), initial=0.0))
    bias = amax_bias(element, amax)
    allowed = bias_range(element)
    underflow = int(amax > 0 and bias == allowed.stop - 1 and amax <= element.replace(bias=bias).max / 2)
    overflow = int(amax > element.replace(bias=allowed.start).max)
    counts = ScaledStats(codec.Stats(), blocks=1, zero_blocks=int(amax == 0), scale_underflow=underflow,
                         scale_overflow=overflow)
    return bias, counts


def _bias_rule(array, sf, request, stats, quantize):
    bias, counts = tensor_bias(array, sf)
    element = sf.element.replace(bias=bias)
    function = codec.quantize if quantize else codec.encode
    result, element_stats = function(array, element, stats=True, **_element_request(request))
    if not quantize:
        result = ScaledCodes(result, np.array(bias, dtype=BIAS_SCALE.code_dtype), None, sf)
    return (result, dataclasses.replace(counts, elements=element_stats)) if stats else result


# ---- the C path ---------------------------------------------------------------------------------
def _c_covers(array: np.ndarray) -> bool:
    """Whether csrc/scaled.c takes ``array``: every non-empty one.  An empty array (which still
    has blocks of no element for block="tensor", and shapes of zero blocks otherwise) stays on
    the numpy path: nothing there is worth a C loop."""
    return array.size > 0


def _c_layout(grid: "_Grid"):
    """The fl_block_layout of a grid: (outer, rows, columns, block_rows, block_columns) such that x,
    C-contiguous, is outer x rows x columns cut into block_rows x block_columns tiles whose C-order
    scales are the public scales layout (csrc/fmtlab.h)."""
    shape = grid.shape
    if grid.kind == "tensor":
        columns = shape[-1] if shape else 1
        rows = math.prod(shape[:-1]) if shape else 1
        return 1, rows, columns, rows, columns
    if grid.kind == "tile":
        return math.prod(shape[:-2]), grid.rows, grid.columns, grid.r, grid.c
    lead, trail = math.prod(shape[:grid.axis]), math.prod(shape[grid.axis + 1:])
    if trail == 1:   # blocks along the last (non-unit) axis: 1 x k tiles of (lead, 1, n)
        return lead, 1, grid.n, 1, grid.k
    return lead, grid.n, trail, grid.k, 1


def _run_c(array: np.ndarray, sf: ScaledFormat, request, stats: bool, quantize: bool, piece=None):
    """One call of fl_scaled_encode/quantize_f32/f64 (csrc/scaled.c); with ``piece`` (an
    fl_scaled_piece, encode only) fl_scaled_encode_piece_f32/f64."""
    grid = _Grid(array.shape, sf)
    value_type = "float" if array.dtype == np.float32 else "double"
    suffix = "f32" if value_type == "float" else "f64"
    scale_dtype = _code_dtype(sf.scale)
    scales = np.empty(grid.scales_shape, dtype=scale_dtype)
    tensor_code = ffi.new("uint32_t *")
    c_stats = ffi.new("fl_scaled_stats *") if stats else ffi.NULL   # no counts asked: the kernels skip them
    arguments = (_c.pointer(array, value_type), _c.c_block_layout(*_c_layout(grid)), _c.c_scaled_format(sf),
                 _c.c_rounding(request))
    if quantize:
        out = np.empty(array.shape, dtype=array.dtype)
        status = getattr(lib, f"fl_scaled_quantize_{suffix}")(
            *arguments, _c.pointer(out, value_type), _c.pointer(scales, "void"), scales.itemsize, tensor_code, c_stats)
    else:
        codes = np.empty(array.shape, dtype=sf.element.code_dtype)
        entry, extra = (f"fl_scaled_encode_{suffix}", ()) if piece is None else (f"fl_scaled_encode_piece_{suffix}",
                                                                                 (piece,))
        status = getattr(lib, entry)(*arguments, *extra, _c.pointer(codes, "void"), codes.itemsize,
                                     _c.pointer(scales, "void"), scales.itemsize, tensor_code, c_stats)
    _c.check_status(status, "a scaled quantize" if quantize else "a scaled encode")
    if quantize:
        result = out
    else:
        tensor_scale = int(tensor_code[0]) if sf.tensor_scale is not None else None
        result = ScaledCodes(codes, scales, tensor_scale, sf)
    if not stats:
        return result
    e = c_stats.elements
    # an integer element has no subnormals: the float format it rounds on counts them
    denormal = 0 if isinstance(sf.element, IntFormat) else int(e.denormal)
    element_stats = codec.Stats(int(e.invalid), int(e.overflow), int(e.underflow), denormal, int(e.inexact),
                                int(array.size))
    counts = {name: int(getattr(c_stats, name)) for name in
              ("blocks", "zero_blocks", "nan_blocks", "scale_underflow", "scale_overflow", "tensor_scale_clamped")}
    return result, ScaledStats(element_stats, **counts)


# ---- the numpy path -------------------------------------------------------------------------------
def _encode_numpy(array: np.ndarray, sf: ScaledFormat, request, stats: bool = False):
    """encode_array in numpy around the element codec: the definition the C path is tested against,
    and the path of empty arrays."""
    grid = _prepare(array, sf)
    view = grid.view(array)
    scales = _compute_scales(sf, grid.amax(view))
    quotients = _fast_float32_quotients(array, sf, grid, view, scales)
    if quotients is None:
        _, quotients = _float64_quotients(array, sf, grid, scales)
    codes, element_stats = codec.encode(grid.unview(quotients), sf.element, stats=True, **_element_request(request))
    result = ScaledCodes(codes, grid.to_scales_layout(scales.codes), scales.tensor_code, sf)
    return (result, _stats(element_stats, scales)) if stats else result


def _quantize_numpy(array: np.ndarray, sf: ScaledFormat, request, stats: bool = False):
    """quantize_array in numpy (see :func:`_encode_numpy`)."""
    grid = _prepare(array, sf)
    view = grid.view(array)
    scales = _compute_scales(sf, grid.amax(view))
    quotients = _fast_float32_quotients(array, sf, grid, view, scales)
    if quotients is not None:
        elements, element_stats = codec.quantize(grid.unview(quotients), sf.element, stats=True,
                                                 **_element_request(request))
        multiplier = np.where(scales.nan, np.nan, scales.effective).astype(np.float32)
        blocked = grid.view(elements)
        with np.errstate(over="ignore", invalid="ignore"):
            # in place when the view is elements itself (whole blocks along the last axis)
            out = np.multiply(blocked, grid.per_block(multiplier), out=blocked if blocked.base is elements else None)
        out = grid.unview(out)
    else:
        _, quotients = _float64_quotients(array, sf, grid, scales)
        elements, element_stats = codec.quantize(grid.unview(quotients), sf.element, stats=True,
                                                 **_element_request(request))
        with np.errstate(over="ignore", invalid="ignore"):
            values = grid.unview(grid.view(elements) * grid.per_block(scales.effective))
            out = values.astype(array.dtype, copy=False)
    return (out, _stats(element_stats, scales)) if stats else out


def decode_codes(result: ScaledCodes, fmt=None) -> np.ndarray:
    """Values of a :class:`ScaledCodes` as float64: element value * scale value [* tensor scale],
    exact (every product of an element, a scale and a tensor scale fits float64)."""
    if not isinstance(result, ScaledCodes):
        raise TypeError(f"codes must be the ScaledCodes that fl.encode returns for a scaled format, got "
                        f"{type(result).__name__}")
    sf = result.format
    if fmt is not None:
        wanted = as_scaled_format(fmt)
        if wanted is None or wanted != sf:
            raise ValueError(f"fmt={fmt} does not match the format these codes were encoded with ({sf})")
    codes = np.asarray(result.codes)
    if sf.rule == BIAS_RULE:
        bias = np.asarray(result.scales)
        if bias.shape != () or not int(bias) in range(0, BIAS_SCALE.max_integer + 1):
            raise ValueError(f"scales must be the one bias of the tensor (0-d, 0..63) for {sf}, got {result.scales!r}")
        return codec.decode(codes, sf.element.replace(bias=int(bias))).astype(np.float64)
    grid = _Grid(codes.shape, sf)
    scales = np.asarray(result.scales)
    if scales.shape != grid.scales_shape:
        raise ValueError(f"scales has shape {scales.shape}; codes of shape {codes.shape} in {sf} need "
                         f"{grid.scales_shape}")
    if scales.dtype.kind not in "ui":
        raise TypeError(f"scales has dtype {scales.dtype}: scale codes are unsigned integers")
    scale_values = _decode_scale(sf.scale, scales)
    if sf.tensor_scale is not None:
        if result.tensor_scale is None:
            raise ValueError(f"{sf} has a tensor scale ({_format_name(sf.tensor_scale)}); tensor_scale is None")
        tensor = float(_decode_scale(sf.tensor_scale, np.array([result.tensor_scale]))[0])
        scale_values = scale_values * tensor
    elif result.tensor_scale is not None:
        raise ValueError(f"{sf} has no tensor scale, but tensor_scale={result.tensor_scale!r}")
    elements = codec.decode(codes, sf.element).astype(np.float64)
    if elements.ndim == 0:
        return elements * scale_values
    per_block = grid.per_block(grid.from_scales_layout(scale_values))
    with np.errstate(over="ignore", invalid="ignore"):
        return grid.unview(grid.view(elements) * per_block)
