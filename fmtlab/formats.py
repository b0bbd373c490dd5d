"""Number formats: one parametric model for every binary floating-point format.

A format is ``Format(exp_bits, man_bits, bias, signed, specials, subnormals)``.
For a code with exponent field E and mantissa field M (m = man_bits):

* normal (1 <= E <= emax_field): value = 2^(E - bias) * (1 + M / 2^m)
* E = 0, M = 0: zero (signed when the format has a -0 code)
* E = 0, M != 0, by the ``subnormals`` policy:
    - ``"ieee"``:  2^(1 - bias) * M / 2^m   (gradual underflow)
    - ``"tesla"``: 2^(-bias) * M / 2^m      (the whitepaper's formula; leaves a gap)
    - ``"none"``:  zero (denormal operands are flushed)
* ``subnormals="normal"``: E = 0 is a normal binade too, 2^(-bias) * (1 + M / 2^m), for
  every M: the format has no zero and no subnormals (OCP MX's E8M0 scale)

``specials`` decides which codes are not finite numbers:

* ``"ieee"``: E all ones is Inf (M = 0) or NaN (M != 0); emax_field = all ones - 1
* ``"fn"``: no Inf; the code with every field all ones is NaN
* ``"fnuz"``: no Inf and no -0; the negative-zero code is the only NaN
* ``"finite"``: every code is a finite number
* ``"p3109"``: IEEE P3109's extended domain, no -0: signed, the negative-zero code is the
  only NaN and the two codes with every magnitude bit set are +-Inf; unsigned, the code with
  every bit set is the NaN and the one below it +Inf.  (P3109's finite domain is ``"fnuz"``
  for signed formats and ``"fn"`` for unsigned ones.)

IEEE P3109 formats ``Binary{K}p{P}{s,u}{e,f}`` are built by name: ``format("p3109_8p3")``
(signed, extended), ``"p3109_8p3_finite"``, ``"p3109_8p4_unsigned"``,
``"p3109_8p4_unsigned_finite"``, for every bitwidth K >= 3 and precision P (1 <= P < K signed,
1 <= P <= K unsigned) whose values fit fmtlab's model; see :func:`p3109_format`.

See docs/formats.md for the presets and their sources.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re
from fractions import Fraction

import numpy as np

__all__ = ["Format", "format", "as_format", "preset_names", "is_configurable", "format_spec", "format_from_spec",
           "p3109_format", "p3109_name", "P3109_DOMAINS", "bias_range", "amax_bias", "ml_dtypes_presets", "ROUNDINGS", "SATURATIONS", "SPECIALS",
           "SUBNORMALS", "TESLA_BIAS_RANGE", "FP32", "TF32", "FP16", "BF16", "CFLOAT8_1_4_3", "CFLOAT8_1_5_2", "SHP",
           "UHP", "E4M3FN", "E5M2", "E4M3FNUZ", "E5M2FNUZ", "E4M3B11FNUZ", "E4M3", "E3M4", "E2M3FN", "E3M2FN",
           "E2M1FN", "E8M0", "P3109_8P1", "P3109_8P1_UNSIGNED", "P3109_8P3", "P3109_8P3_FINITE", "P3109_8P3_UNSIGNED",
           "P3109_8P3_UNSIGNED_FINITE", "P3109_8P4", "P3109_8P4_FINITE", "P3109_8P4_UNSIGNED",
           "P3109_8P4_UNSIGNED_FINITE", "P3109_8P7_FINITE", "P3109_8P8_UNSIGNED_FINITE"]

SPECIALS = ("ieee", "fn", "fnuz", "finite", "p3109")
SUBNORMALS = ("ieee", "tesla", "none", "normal")
ROUNDINGS = ("nearest_even", "nearest_away", "toward_zero", "up", "down", "odd", "stochastic")
# The saturation modes of the IEEE P3109 interim report v4.0 (section 4.7.5: SatFinite,
# SatPropagate, SatNone), accepted by ``saturate=`` besides None, False and True.
SATURATIONS = ("sat_finite", "sat_propagate", "sat_none")

# The Tesla whitepaper stores the CFloat bias as an unsigned 6-bit integer.
TESLA_BIAS_RANGE = range(0, 64)


@dataclasses.dataclass(frozen=True)
class Format:
    """A binary floating-point format (frozen, hashable).

    Parameters
    ----------
    exp_bits, man_bits : widths of the exponent and stored-mantissa fields.
    bias : exponent bias; a normal value is 2^(E - bias) * 1.M.
    signed : whether the code has a sign bit (its most significant bit).
    specials : "ieee", "fn", "fnuz", "finite" or "p3109" (see the module docstring).
    subnormals : "ieee", "tesla", "none" or "normal" (no zero: E = 0 is a normal binade).
    name : the preset name, used only for printing.
    """

    exp_bits: int
    man_bits: int
    bias: int
    signed: bool = True
    specials: str = "ieee"
    subnormals: str = "ieee"
    name: str | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self):
        for field in ("exp_bits", "man_bits", "bias"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{field} must be an int, got {value!r} ({type(value).__name__})")
            object.__setattr__(self, field, int(value))
        if not isinstance(self.signed, (bool, np.bool_)):
            raise TypeError(f"signed must be a bool, got {self.signed!r}")
        object.__setattr__(self, "signed", bool(self.signed))
        if self.exp_bits < 1:
            raise ValueError(f"exp_bits={self.exp_bits} is not allowed: it must be at least 1")
        if self.man_bits < 0:
            raise ValueError(f"man_bits={self.man_bits} is not allowed: it must be at least 0")
        if self.bits > 32:
            raise ValueError(
                f"a format of {self.bits} bits (exp_bits={self.exp_bits}, man_bits={self.man_bits}, "
                f"signed={self.signed}) is not allowed: at most 32 bits in total")
        if self.specials not in SPECIALS:
            raise ValueError(f"specials={self.specials!r} is not allowed; choose one of {SPECIALS}")
        if self.subnormals not in SUBNORMALS:
            raise ValueError(f"subnormals={self.subnormals!r} is not allowed; choose one of {SUBNORMALS}")
        if self.specials == "ieee" and self.man_bits == 0:
            raise ValueError("specials='ieee' needs man_bits >= 1 to have a NaN code; "
                             "use specials='fn', 'fnuz' or 'finite' with man_bits=0")
        if self.specials == "ieee" and self.exp_bits == 1:
            raise ValueError("specials='ieee' needs exp_bits >= 2 to have a normal binade")
        if self.specials == "fnuz" and not self.signed:
            raise ValueError("specials='fnuz' needs signed=True: its NaN is the negative-zero code")
        if self.specials == "p3109" and self.exp_bits + self.man_bits < 2:
            raise ValueError(f"specials='p3109' needs exp_bits + man_bits >= 2 (a zero, a finite value and an "
                             f"Inf below the NaN); exp_bits={self.exp_bits}, man_bits={self.man_bits} has "
                             f"{self.exp_bits + self.man_bits}")
        if self.subnormals == "normal" and (self.specials == "fnuz" or (self.specials == "p3109" and self.signed)):
            raise ValueError(f"subnormals='normal' (no zero) is not allowed with specials={self.specials!r}"
                             f"{' and signed=True' if self.specials == 'p3109' else ''}: its NaN is the "
                             "negative-zero code, which a format without zero does not have")
        # Every finite value must be exact in float64: that is what the C core computes in.  The
        # smallest step is that of the lowest binade, 2^(emin - man_bits), where there are no
        # subnormals below it (subnormals "none" or "normal").
        lowest_step = min(self.min_subnormal_exponent, self.emin - self.man_bits)
        if self.emax > 1023 or lowest_step < -1074:
            raise ValueError(
                f"exp_bits={self.exp_bits} with bias={self.bias} spans 2^{lowest_step}"
                f"..2^{self.emax} (its smallest step .. its largest binade); fmtlab needs every value to be "
                "exact in float64 (exponents -1074..1023)")

    # ---- sizes -------------------------------------------------------------
    @property
    def bits(self) -> int:
        """Total width of a code: sign + exponent + mantissa."""
        return int(self.signed) + self.exp_bits + self.man_bits

    @property
    def code_dtype(self) -> np.dtype:
        """The unsigned integer dtype that holds one code."""
        return np.dtype(np.uint8 if self.bits <= 8 else np.uint16 if self.bits <= 16 else np.uint32)

    # ---- exponent range ------------------------------------------------------
    @property
    def emax_field(self) -> int:
        """Largest exponent field of a finite number: that of :attr:`max_magnitude_code`."""
        return self.max_magnitude_code >> self.man_bits

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal: 1 - bias (-bias for ``subnormals="normal"``, whose
        exponent field 0 is a normal binade)."""
        return (0 if self.subnormals == "normal" else 1) - self.bias

    @property
    def emax(self) -> int:
        """Exponent of the largest finite binade."""
        return self.emax_field - self.bias

    @property
    def min_subnormal_exponent(self) -> int:
        """log2 of the smallest positive value."""
        if self.subnormals in ("none", "normal") or self.man_bits == 0:
            return self.emin
        if self.subnormals == "tesla":
            return -self.bias - self.man_bits
        return self.emin - self.man_bits

    # ---- codes ---------------------------------------------------------------
    @property
    def max_magnitude_code(self) -> int:
        """Code (sign bit clear) of the largest finite value."""
        all_ones = (1 << (self.exp_bits + self.man_bits)) - 1
        if self.specials == "ieee":
            return (((1 << self.exp_bits) - 1) << self.man_bits) - 1
        if self.specials == "fn":
            return all_ones - 1
        if self.specials == "p3109":  # signed: below the Inf; unsigned: below the Inf and the NaN
            return all_ones - (1 if self.signed else 2)
        return all_ones

    @property
    def inf_magnitude_code(self) -> int | None:
        """Code of +Inf (the sign bit added gives -Inf), or None without Inf."""
        if self.specials == "ieee":
            return ((1 << self.exp_bits) - 1) << self.man_bits
        if self.specials == "p3109":
            return self.max_magnitude_code + 1
        return None

    def exact_value(self, code: int):
        """Value of one code as a Fraction, or the strings "inf", "-inf", "nan"."""
        m = self.man_bits
        width = self.exp_bits + m
        sign_bit = 1 << width if self.signed else 0
        negative = bool(code & sign_bit)
        magnitude = code & ((1 << width) - 1)
        exponent_field, mantissa = magnitude >> m, magnitude & ((1 << m) - 1)
        all_ones = (1 << self.exp_bits) - 1
        if self.specials == "ieee" and exponent_field == all_ones:
            if mantissa:
                return "nan"
            return "-inf" if negative else "inf"
        if self.specials == "fn" and magnitude == (1 << width) - 1:
            return "nan"
        if self.specials == "fnuz" and negative and magnitude == 0:
            return "nan"
        if self.specials == "p3109":
            if (self.signed and negative and magnitude == 0) or (not self.signed and magnitude == (1 << width) - 1):
                return "nan"
            if magnitude == self.inf_magnitude_code:
                return "-inf" if negative else "inf"
        if exponent_field == 0 and self.subnormals != "normal":
            if self.subnormals == "none":
                value = Fraction(0)
            elif self.subnormals == "tesla":
                value = Fraction(mantissa, 1 << m) * Fraction(2) ** (-self.bias)
            else:
                value = Fraction(mantissa, 1 << m) * Fraction(2) ** (1 - self.bias)
        else:
            value = (1 + Fraction(mantissa, 1 << m)) * Fraction(2) ** (exponent_field - self.bias)
        return -value if negative else value

    # ---- derived limits --------------------------------------------------------
    @property
    def max(self) -> float:
        """Largest finite value."""
        return float(self.exact_value(self.max_magnitude_code))

    @property
    def min_normal(self) -> float:
        """Smallest positive normal: 2^(1 - bias)."""
        return math.ldexp(1.0, self.emin)

    @property
    def min_subnormal(self) -> float:
        """Smallest positive value (min_normal when there are no subnormals)."""
        return math.ldexp(1.0, self.min_subnormal_exponent)

    @property
    def eps(self) -> float:
        """Distance from 1 to the next larger value of an unbounded format: 2^-man_bits."""
        return math.ldexp(1.0, -self.man_bits)

    @property
    def has_inf(self) -> bool:
        return self.specials in ("ieee", "p3109")

    @property
    def has_nan(self) -> bool:
        return self.specials != "finite"

    @property
    def has_zero(self) -> bool:
        """False for ``subnormals="normal"`` (E8M0): code 0 is the smallest value, 2^-bias."""
        return self.subnormals != "normal"

    @property
    def has_negative_zero(self) -> bool:
        return self.signed and self.has_zero and self.specials not in ("fnuz", "p3109")

    @property
    def num_finite(self) -> int:
        """Number of codes that are finite numbers (each zero code counts)."""
        per_sign = self.max_magnitude_code + 1
        if not self.signed:
            return per_sign
        return 2 * per_sign - (1 if self.specials in ("fnuz", "p3109") else 0)

    @property
    def dynamic_range_binades(self) -> float:
        """log2(max / min_subnormal)."""
        return math.log2(self.max) - self.min_subnormal_exponent

    @property
    def decode_dtype(self) -> np.dtype:
        """float32 when every value is exact in float32 (fmtlab._dtypes.exact_in_float32), else float64."""
        from ._dtypes import exact_in_float32
        return np.dtype(np.float32 if exact_in_float32(self) else np.float64)

    def values(self) -> np.ndarray:
        """Every code's value as float64, indexed by code (formats of 16 bits or fewer).

        Computed here from the fields with the formulas of the module docstring (exact in
        float64: every fmtlab format is); NaN codes give NaN, Inf codes +-Inf.
        """
        if self.bits > 16:
            raise ValueError(f"values() lists every code; {self} has {self.bits} bits, at most 16 are allowed")
        m, width = self.man_bits, self.exp_bits + self.man_bits
        codes = np.arange(1 << self.bits, dtype=np.int64)
        negative = ((codes >> width) & 1).astype(bool) if self.signed else np.zeros(codes.size, bool)
        magnitude = codes & ((1 << width) - 1)
        exponent_field, mantissa = magnitude >> m, magnitude & ((1 << m) - 1)
        normal = np.ldexp(1.0 + mantissa / float(1 << m), exponent_field - self.bias)
        if self.subnormals == "normal":
            subnormal = normal  # E = 0 is a normal binade
        elif self.subnormals == "none":
            subnormal = np.zeros(codes.size)
        else:
            subnormal_exponent = (-self.bias if self.subnormals == "tesla" else 1 - self.bias) - m
            subnormal = np.ldexp(mantissa.astype(np.float64), subnormal_exponent)
        values = np.where(exponent_field == 0, subnormal, normal)
        values = np.where(negative, -values, values)
        all_ones = (1 << self.exp_bits) - 1
        if self.specials == "ieee":
            top = exponent_field == all_ones
            values = np.where(top & (mantissa == 0), np.where(negative, -np.inf, np.inf), values)
            values = np.where(top & (mantissa != 0), np.nan, values)
        elif self.specials == "fn":
            values = np.where(magnitude == (1 << width) - 1, np.nan, values)
        elif self.specials == "fnuz":
            values = np.where(negative & (magnitude == 0), np.nan, values)
        elif self.specials == "p3109":
            values = np.where(magnitude == self.inf_magnitude_code, np.where(negative, -np.inf, np.inf), values)
            nan = (negative & (magnitude == 0)) if self.signed else (magnitude == (1 << width) - 1)
            values = np.where(nan, np.nan, values)
        return values

    # ---- numpy.finfo names, for users coming from numpy and ml_dtypes -----------------
    @property
    def smallest_normal(self) -> float:
        """numpy's name for :attr:`min_normal`."""
        return self.min_normal

    @property
    def smallest_subnormal(self) -> float:
        """numpy's name for :attr:`min_subnormal`."""
        return self.min_subnormal

    @property
    def tiny(self) -> float:
        """numpy's older name for :attr:`min_normal`."""
        return self.min_normal

    @property
    def nmant(self) -> int:
        """numpy's name for :attr:`man_bits`: stored fraction bits."""
        return self.man_bits

    @property
    def nexp(self) -> int:
        """numpy's name for :attr:`exp_bits`."""
        return self.exp_bits

    @property
    def minexp(self) -> int:
        """numpy's name for :attr:`emin`: the exponent of the smallest normal, 1 - bias."""
        return self.emin

    @property
    def maxexp(self) -> int:
        """numpy's maxexp: the smallest power of two that overflows, emax + 1."""
        return self.emax + 1

    @property
    def ml_dtype(self):
        """The matching ml_dtypes / numpy dtype, or None."""
        return _ml_dtypes().get(self._key())

    def _key(self):
        return (self.exp_bits, self.man_bits, self.bias, self.signed, self.specials, self.subnormals)

    def __repr__(self) -> str:
        if self.name is None:
            return (f"Format(exp_bits={self.exp_bits}, man_bits={self.man_bits}, bias={self.bias}, "
                    f"signed={self.signed}, specials={self.specials!r}, subnormals={self.subnormals!r})")
        preset = _named_format(self.name)
        changed = [f"{field}={getattr(self, field)!r}" for field in ("bias", "subnormals")
                   if getattr(self, field) != getattr(preset, field)]
        return f"{self.name}({', '.join(changed)})" if changed else self.name

    __str__ = __repr__

    def replace(self, **changes) -> "Format":
        return dataclasses.replace(self, **changes)


def _preset(name, exp_bits, man_bits, bias, signed=True, specials="ieee", subnormals="ieee"):
    return Format(exp_bits, man_bits, bias, signed, specials, subnormals, name=name)


_PRESETS = {f.name: f for f in [
    _preset("fp32", 8, 23, 127),
    _preset("tf32", 8, 10, 127),
    _preset("fp16", 5, 10, 15),
    _preset("bf16", 8, 7, 127),
    _preset("cfloat8_1_4_3", 4, 3, 7, specials="finite"),
    _preset("cfloat8_1_5_2", 5, 2, 15, specials="finite"),
    _preset("shp", 5, 10, 15, specials="finite"),
    _preset("uhp", 6, 10, 31, signed=False, subnormals="none"),
    _preset("e4m3fn", 4, 3, 7, specials="fn"),
    _preset("e5m2", 5, 2, 15),
    _preset("e4m3fnuz", 4, 3, 8, specials="fnuz"),
    _preset("e5m2fnuz", 5, 2, 16, specials="fnuz"),
    _preset("e4m3b11fnuz", 4, 3, 11, specials="fnuz"),
    _preset("e4m3", 4, 3, 7),
    _preset("e3m4", 3, 4, 3),
    _preset("e2m3fn", 2, 3, 1, specials="finite"),
    _preset("e3m2fn", 3, 2, 3, specials="finite"),
    _preset("e2m1fn", 2, 1, 1, specials="finite"),
    # OCP MX v1.0's scale: 8 exponent bits, no sign, no mantissa, no zero, 0xFF the NaN
    _preset("e8m0", 8, 0, 127, signed=False, specials="fn", subnormals="normal"),
]}


# ---- IEEE P3109 formats --------------------------------------------------------------------------
P3109_DOMAINS = ("extended", "finite")
# fmtlab's names: p3109_{K}p{P}, then _unsigned, then _finite (signed and extended are the default)
_P3109_NAME = re.compile(r"p3109_(\d+)p(\d+)((?:_[a-z]+)*)")
_P3109_SUFFIXES = ("", "_finite", "_unsigned", "_unsigned_finite")
# the report's short names Binary{K}p{P}{s,u}{e,f} (section 3.2) and gfloat's p3109_k{K}p{P}{s,u}{e,f}
_P3109_SHORT_NAME = re.compile(r"(?:binary|p3109_k)(\d+)p(\d+)([su])([ef])")


def p3109_name(k: int, precision: int, signed: bool = True, domain: str = "extended") -> str:
    """fmtlab's name of P3109's Binary{K}p{P}{s,u}{e,f}: ``p3109_8p3``, ``p3109_8p4_unsigned_finite``."""
    return f"p3109_{k}p{precision}{'' if signed else '_unsigned'}{'_finite' if domain == 'finite' else ''}"


def p3109_format(k: int, precision: int, signed: bool = True, domain: str = "extended") -> Format:
    """The IEEE P3109 format Binary{K}p{P}{s,u}{e,f} (interim report v4.0, sections 3 and 4.7).

    K bits, precision P (P - 1 stored fraction bits), Signed or Unsigned, Extended (with
    +-Inf) or Finite domain.  Signed: exp_bits = K - P, bias 2^(K - P - 1); unsigned: exp_bits
    = K - P + 1, bias 2^(K - P).  Every format has subnormals, one zero and one NaN: signed,
    the NaN is the negative-zero code 2^(K-1); unsigned, the top code 2^K - 1.  In the
    extended domain +Inf is 2^(K-1) - 1 (signed, -Inf 2^K - 1) or 2^K - 2 (unsigned).  As a
    Format: specials ``"p3109"`` (extended), ``"fnuz"`` (signed finite) or ``"fn"`` (unsigned
    finite), subnormals ``"ieee"``.  P3109 requires K > 2 and 0 < P < K (signed) or 0 < P <= K
    (unsigned); fmtlab also needs at most 32 bits and values exact in float64.
    """
    for argument, value in (("k", k), ("precision", precision)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{argument} must be an int, got {value!r} ({type(value).__name__})")
    k, precision = int(k), int(precision)
    if not isinstance(signed, (bool, np.bool_)):
        raise TypeError(f"signed must be a bool, got {signed!r}")
    if domain not in P3109_DOMAINS:
        from ._choices import not_allowed
        raise ValueError(not_allowed("domain", domain, ", ".join(P3109_DOMAINS), P3109_DOMAINS))
    name = p3109_name(k, precision, bool(signed), domain)
    if k < 3:
        raise ValueError(f"{name}: k={k} is not allowed: P3109 formats have K > 2 bits (interim report v4.0, "
                         "section 3.1)")
    if signed and not 1 <= precision < k:
        extra = (" (gfloat's format_info_p3109 accepts P = K, a format with no exponent field, which P3109 "
                 "does not define and fmtlab's Format cannot hold: use the unsigned format)" if precision == k else "")
        raise ValueError(f"{name}: precision={precision} is not allowed: signed P3109 formats have "
                         f"1 <= P < K = {k} (interim report v4.0, section 3.1){extra}")
    if not signed and not 1 <= precision <= k:
        raise ValueError(f"{name}: precision={precision} is not allowed: unsigned P3109 formats have "
                         f"1 <= P <= K = {k} (interim report v4.0, section 3.1)")
    if signed:
        exp_bits, bias, specials = k - precision, 1 << (k - precision - 1), "fnuz"
    else:
        exp_bits, bias, specials = k - precision + 1, 1 << (k - precision), "fn"
    if domain == "extended":
        specials = "p3109"
    try:
        return Format(exp_bits, precision - 1, bias, bool(signed), specials, "ieee", name=name)
    except ValueError as error:
        raise ValueError(f"{name} is outside fmtlab's model: {error}") from None


@functools.lru_cache(maxsize=1024)
def _p3109_by_parameters(k: int, precision: int, signed: bool, domain: str) -> Format:
    """p3109_format, one object per format: a preset's own object, else a cached one (so that
    every spelling of a name gives the same Format object, as the presets do)."""
    preset = _PRESETS.get(p3109_name(k, precision, signed, domain))
    return preset if preset is not None else p3109_format(k, precision, signed, domain)


def _p3109_from_name(text: str):
    """The P3109 format a name spells (fmtlab's, the report's or gfloat's), None if it spells none.

    A name that starts like fmtlab's but has an unknown suffix is a ValueError with the four
    suffixes allowed (and the nearest one).
    """
    match = _P3109_SHORT_NAME.fullmatch(text)
    if match:
        return _p3109_by_parameters(int(match.group(1)), int(match.group(2)), match.group(3) == "s",
                                    "extended" if match.group(4) == "e" else "finite")
    match = _P3109_NAME.fullmatch(text)
    if not match:
        return None
    k, precision, suffix = int(match.group(1)), int(match.group(2)), match.group(3)
    if suffix not in _P3109_SUFFIXES:
        from ._choices import did_you_mean
        stem = f"p3109_{k}p{precision}"
        choices = [stem + option for option in _P3109_SUFFIXES]
        raise ValueError(f"format name {text!r} is unknown{did_you_mean(text, choices)}; P3109 formats are "
                         f"named {', '.join(choices)}")
    return _p3109_by_parameters(k, precision, "_unsigned" not in suffix,
                                "finite" if suffix.endswith("_finite") else "extended")


# The P3109 formats listed by preset_names() (and ``fmtlab formats``): the binary8 selection of
# the working group's reference code, gfloat's ``p3109_binary8_formats``.  Every other K and P is
# built by name.
_P3109_PRESETS = [(8, 1, True, "extended"), (8, 1, False, "extended")] + [
    (8, precision, signed, domain) for precision in (3, 4) for signed in (True, False) for domain in P3109_DOMAINS
] + [(8, 7, True, "finite"), (8, 8, False, "finite")]
_PRESETS.update({fmt.name: fmt for fmt in (p3109_format(*parameters) for parameters in _P3109_PRESETS)})


@functools.lru_cache(maxsize=256)
def _named_format(name: str) -> Format:
    """The format a preset or P3109 name stands for, as :func:`format` builds it without options."""
    if name in _PRESETS:
        return _PRESETS[name]
    fmt = _p3109_from_name(name)
    if fmt is None:
        raise KeyError(name)
    return fmt

# Formats whose bias the user may change, and the range allowed (Tesla: 6-bit unsigned).
_CONFIGURABLE_BIAS = {"cfloat8_1_4_3": TESLA_BIAS_RANGE, "cfloat8_1_5_2": TESLA_BIAS_RANGE,
                      "shp": TESLA_BIAS_RANGE}
# Formats whose subnormal reading the user may change.
_CONFIGURABLE_SUBNORMALS = {"cfloat8_1_4_3": ("ieee", "tesla"), "cfloat8_1_5_2": ("ieee", "tesla"),
                            "shp": ("ieee", "tesla")}

_ALIASES = {"float32": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16",
            "cfloat8_143": "cfloat8_1_4_3", "cfloat8_152": "cfloat8_1_5_2",
            "float8_e4m3fn": "e4m3fn", "float8_e5m2": "e5m2", "float8_e4m3fnuz": "e4m3fnuz",
            "float8_e5m2fnuz": "e5m2fnuz", "float8_e4m3b11fnuz": "e4m3b11fnuz",
            "float8_e4m3": "e4m3", "float8_e3m4": "e3m4", "float6_e2m3fn": "e2m3fn",
            "float6_e3m2fn": "e3m2fn", "float4_e2m1fn": "e2m1fn", "float8_e8m0fnu": "e8m0", "e8m0fnu": "e8m0"}


def preset_names() -> tuple[str, ...]:
    """The presets :func:`format` accepts by name (every P3109 format is also accepted by its
    pattern name, see :func:`p3109_format`; the twelve binary8 ones of gfloat's selection are listed)."""
    return tuple(_PRESETS)


def is_configurable(fmt: Format) -> bool:
    """Whether the format's bias may be chosen by the user (Tesla CFloat8 and SHP)."""
    return fmt.name in _CONFIGURABLE_BIAS


def format(name, **overrides) -> Format:  # noqa: A001 - the public name the design asks for
    """Build a preset by name, optionally with a different bias or subnormal policy.

    ``name`` is a preset name (see :func:`preset_names`), an IEEE P3109 name for any K and P
    (``"p3109_5p2"``, ``"p3109_8p4_unsigned_finite"``, the report's ``"Binary8p4uf"`` or
    gfloat's ``"p3109_k8p4uf"``; see :func:`p3109_format`), a string such as
    ``"cfloat8_1_4_3:bias=10,subnormals=tesla"``, or a :class:`Format` (returned as is,
    with the overrides applied).

    >>> format("cfloat8_1_4_3", bias=10)
    cfloat8_1_4_3(bias=10)
    """
    if isinstance(name, Format):
        return name.replace(**overrides) if overrides else name
    if not isinstance(name, str):
        raise TypeError(f"format name must be a str or a Format, got {name!r} ({type(name).__name__})")
    text = name.strip()
    if ":" in text:
        text, _, options = text.partition(":")
        for item in filter(None, (part.strip() for part in options.split(","))):
            key, equals, value = item.partition("=")
            if not equals:
                raise ValueError(f"format option {item!r} in {name!r} must look like key=value")
            key, value = key.strip(), value.strip()
            if key in overrides:
                raise ValueError(f"format option {key!r} given twice in {name!r}")
            overrides[key] = int(value) if re.fullmatch(r"[+-]?\d+", value) else value
    key = _ALIASES.get(text.lower(), text.lower())
    from . import integers  # integer formats build on Format
    if integers.is_integer_name(key):
        return integers.integer_format_from_name(key, overrides)
    preset = _PRESETS.get(key) or _p3109_from_name(key)
    if preset is None:
        from ._choices import did_you_mean
        raise ValueError(f"format name {name!r} is unknown{did_you_mean(text, list(_PRESETS) + list(_ALIASES))}; "
                         f"choose one of {', '.join(_PRESETS)}, p3109_KpP[_unsigned][_finite] for any P3109 "
                         "format, intN or uintN for an integer format, or build a custom fl.Format(exp_bits, man_bits, bias, ...)")
    key = preset.name
    for option, value in overrides.items():
        if option == "bias":
            allowed = _CONFIGURABLE_BIAS.get(key)
            if allowed is None:
                if value != preset.bias:
                    raise ValueError(f"bias={value!r} is not allowed for {key}: its bias is fixed at "
                                     f"{preset.bias}; configurable formats are {', '.join(_CONFIGURABLE_BIAS)}")
            elif isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value not in allowed:
                raise ValueError(f"bias={value!r} is not allowed for {key}: it is an unsigned 6-bit "
                                 f"integer, {allowed.start}..{allowed.stop - 1}")
        elif option == "subnormals":
            allowed = _CONFIGURABLE_SUBNORMALS.get(key, (preset.subnormals,))
            if value not in allowed:
                raise ValueError(f"subnormals={value!r} is not allowed for {key}; allowed: {allowed}")
        else:
            raise ValueError(f"format option {option!r} is unknown; allowed: bias, subnormals")
    return dataclasses.replace(preset, **overrides) if overrides else preset


def as_format(value, argument: str = "fmt") -> Format:
    """``value`` as a Format: a Format is returned as it is, a str goes through :func:`format`.

    The one coercion every module uses; a TypeError names ``argument`` otherwise.
    """
    if isinstance(value, Format):
        return value
    if isinstance(value, str):
        return format(value)
    raise TypeError(f"{argument} must be a Format or a format name, got {value!r} ({type(value).__name__})")


def _is_integer(fmt) -> bool:
    from .integers import IntFormat
    return isinstance(fmt, IntFormat)


# ---- spec strings: a format without its bias -------------------------------------------------
_CUSTOM_SPEC = re.compile(r"Format\(exp_bits=(\d+), man_bits=(\d+), signed=(True|False), "
                          r"specials='(\w+)', subnormals='(\w+)'\)")


def format_spec(fmt: Format) -> str:
    """The format's name without its bias, with its subnormal policy if not the preset's.

    Custom formats (no preset name) give their ``repr`` with ``bias`` left out.  Sweep
    records carry this string and the bias separately; :func:`format_from_spec` inverts it.
    """
    if _is_integer(fmt):
        return fmt.name  # its name carries every option; the bias follows from them
    if fmt.name is None:
        return (f"Format(exp_bits={fmt.exp_bits}, man_bits={fmt.man_bits}, signed={fmt.signed}, "
                f"specials={fmt.specials!r}, subnormals={fmt.subnormals!r})")
    preset = _named_format(fmt.name)
    return fmt.name if fmt.subnormals == preset.subnormals else f"{fmt.name}:subnormals={fmt.subnormals}"


def format_from_spec(spec: str, bias: int) -> Format:
    """The inverse of :func:`format_spec`: the format of a spec string and a bias."""
    match = _CUSTOM_SPEC.fullmatch(spec)
    if match:
        return Format(int(match.group(1)), int(match.group(2)), int(bias), match.group(3) == "True",
                      match.group(4), match.group(5))
    fmt = format(spec)
    return fmt if fmt.bias == bias else fmt.replace(bias=int(bias))


# ---- the amax bias rule ------------------------------------------------------------------------
def bias_range(fmt: Format) -> range:
    """The biases ``fmt`` may take: 0..63 for Tesla's configurable formats (a 6-bit unsigned
    field), otherwise every bias that keeps all of the format's values exact in float64."""
    if is_configurable(fmt):
        return TESLA_BIAS_RANGE
    # bias b shifts every exponent by fmt.bias - b: emax(b) <= 1023, smallest step(b) >= -1074 (the
    # step of the lowest binade, 2^(emin - man_bits), is the smaller one without subnormals)
    lowest_step = min(fmt.min_subnormal_exponent, fmt.emin - fmt.man_bits)
    return range(fmt.emax_field - 1023, fmt.bias + lowest_step + 1074 + 1)


def amax_bias(fmt: Format, amax: float) -> int:
    """The bias that puts a tensor's absolute maximum ``amax`` into the format's top binade.

    With max(b) = fmt.max * 2^(fmt.bias - b) the largest finite value at bias b, the rule is

        amax_bias = the largest b in bias_range(fmt) with amax <= max(b),

    i.e. the most resolution for small values while the largest element still fits without
    saturating; the smallest allowed bias when even that saturates.  This is the one rule of
    fmtlab's per-tensor scaling: a sweep's "rule bias", ``--bias auto`` and
    ``fmtlab.torch``'s ``scaling="auto"`` all use it.  ``amax`` zero, NaN or infinite (a
    tensor with nothing to fit): the format's own bias, since every bias then gives the same
    result (zero) or none does.
    """
    amax = float(amax)
    allowed = bias_range(fmt)
    if not math.isfinite(amax) or amax <= 0:
        return fmt.bias
    top = fmt.max
    # the smallest j with top * 2^j >= amax; the bias is then fmt.bias - j
    j = math.ceil(math.log2(amax) - math.log2(top))
    while math.ldexp(top, j) < amax:
        j += 1
    while math.ldexp(top, j - 1) >= amax:
        j -= 1
    return min(allowed.stop - 1, max(allowed.start, fmt.bias - j))


# The one table of equivalent numpy / ml_dtypes types: preset name -> attribute of numpy or ml_dtypes.
_ML_DTYPE_NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "e4m3fn": "float8_e4m3fn",
                   "e5m2": "float8_e5m2", "e4m3fnuz": "float8_e4m3fnuz", "e5m2fnuz": "float8_e5m2fnuz",
                   "e4m3b11fnuz": "float8_e4m3b11fnuz", "e4m3": "float8_e4m3", "e3m4": "float8_e3m4",
                   "e2m3fn": "float6_e2m3fn", "e3m2fn": "float6_e3m2fn", "e2m1fn": "float4_e2m1fn",
                   "e8m0": "float8_e8m0fnu"}


def _ml_dtype_table():
    import ml_dtypes

    table = {}
    for preset_name, attribute in _ML_DTYPE_NAMES.items():
        module = np if attribute in ("float32", "float16") else ml_dtypes
        if hasattr(module, attribute):  # an older ml_dtypes may lack the newest types
            table[_PRESETS[preset_name]._key()] = np.dtype(getattr(module, attribute))
    return table


def ml_dtypes_presets() -> tuple[str, ...]:
    """Names of the presets that have a numpy or ml_dtypes equivalent (``Format.ml_dtype``)."""
    return tuple(name for name in _ML_DTYPE_NAMES if _PRESETS[name]._key() in _ml_dtypes())


_ML_DTYPES = None  # key -> dtype, built on first use


def _ml_dtypes() -> dict:
    """The table of equivalent dtypes, built on first use: importing ml_dtypes costs about 0.8 s
    (measured with numpy 2.4 and ml_dtypes 0.7: it registers its ufunc loops one by one), which
    every ``import fmtlab`` (the CLI, each worker process) paid whether it needed the table or not."""
    global _ML_DTYPES
    if _ML_DTYPES is None:
        _ML_DTYPES = _ml_dtype_table()
    return _ML_DTYPES

# Named module-level constants: fl.FP32, fl.BF16, fl.CFLOAT8_1_4_3, ...
globals().update({name.upper(): fmt for name, fmt in _PRESETS.items()})
FP32: Format
TF32: Format
FP16: Format
BF16: Format
CFLOAT8_1_4_3: Format
CFLOAT8_1_5_2: Format
SHP: Format
UHP: Format
E4M3FN: Format
E5M2: Format
E4M3FNUZ: Format
E5M2FNUZ: Format
E4M3B11FNUZ: Format
E4M3: Format
E3M4: Format
E2M3FN: Format
E3M2FN: Format
E2M1FN: Format
E8M0: Format
P3109_8P1: Format
P3109_8P1_UNSIGNED: Format
P3109_8P3: Format
P3109_8P3_FINITE: Format
P3109_8P3_UNSIGNED: Format
P3109_8P3_UNSIGNED_FINITE: Format
P3109_8P4: Format
P3109_8P4_FINITE: Format
P3109_8P4_UNSIGNED: Format
P3109_8P4_UNSIGNED_FINITE: Format
P3109_8P7_FINITE: Format
P3109_8P8_UNSIGNED_FINITE: Format
