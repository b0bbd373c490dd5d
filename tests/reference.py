"""A slow, obviously-correct reference for fmtlab's codec, in exact rationals.

Everything here is computed with Python integers and ``fractions.Fraction`` straight
from docs/formats.md (the spec) and the rules in fmtlab/codec.py's docstring.  Nothing
here calls fmtlab's codec, nor ``Format.exact_value`` (which this module cross-checks);
a :class:`fmtlab.formats.Format` is only read for its six parameters.

Conventions
-----------
* A *magnitude code* is a code with the sign bit cleared.  Magnitude codes are read in
  the format "with the exponent range unbounded above": the code ``max_code + 1`` is
  the next value an unbounded format would have (e4m3fn: 480, fp16: 65536), which is
  what decides overflow (formats.md section 3).
* Ties for ``nearest_even`` and the choice made by ``odd`` use the parity of the
  *code* (for man_bits >= 1 this is the parity of the mantissa; for man_bits = 0 it is
  the parity of the exponent field).  The sign bit is the top bit, so the parity of a
  full code is the parity of its magnitude code.
"""
from __future__ import annotations

import bisect
import functools
import math
from fractions import Fraction

DETERMINISTIC_MODES = ("nearest_even", "nearest_away", "toward_zero", "up", "down", "odd")

NAN = "nan"
INF = "inf"
NEG_INF = "-inf"


def _pow2(k: int) -> Fraction:
    return Fraction(1 << k) if k >= 0 else Fraction(1, 1 << -k)


class _Layout:
    """The parameters of a format and the facts derived from them, straight from formats.md."""

    def __init__(self, fmt):
        self.e = fmt.exp_bits
        self.m = fmt.man_bits
        self.bias = fmt.bias
        self.signed = bool(fmt.signed)
        self.specials = fmt.specials
        self.subnormals = fmt.subnormals
        self.bits = int(self.signed) + self.e + self.m
        self.sign_bit = (1 << (self.e + self.m)) if self.signed else 0
        self.magnitude_mask = (1 << (self.e + self.m)) - 1
        self.exponent_all_ones = (1 << self.e) - 1
        self.mantissa_all_ones = (1 << self.m) - 1
        # Largest finite magnitude code (formats.md section 1, the specials table).
        if self.specials == "ieee":
            # exponent field all ones - 1, mantissa all ones
            self.max_code = ((self.exponent_all_ones - 1) << self.m) | self.mantissa_all_ones
        elif self.specials == "fn":
            # everything all ones is the NaN; the code below it is max
            self.max_code = self.magnitude_mask - 1
        else:  # fnuz, finite: the all-ones magnitude is an ordinary number
            self.max_code = self.magnitude_mask
        # Smallest positive normal: exponent field 1.
        self.min_normal = _pow2(1 - self.bias)
        self.has_negative_zero = self.signed and self.specials != "fnuz"

    # -- values ---------------------------------------------------------------
    def magnitude(self, mag: int) -> Fraction:
        """Value of a magnitude code, reading the exponent range as unbounded above."""
        exponent_field = mag >> self.m
        mantissa = mag & self.mantissa_all_ones
        scale = 1 << self.m
        if exponent_field == 0:
            if self.subnormals == "none":
                return Fraction(0)
            if self.subnormals == "tesla":
                return Fraction(mantissa, scale) * _pow2(-self.bias)
            return Fraction(mantissa, scale) * _pow2(1 - self.bias)
        return Fraction(scale + mantissa, scale) * _pow2(exponent_field - self.bias)

    def classify(self, code: int) -> str:
        """"nan", "inf" or "finite" for a full code."""
        mag = code & self.magnitude_mask
        exponent_field = mag >> self.m
        mantissa = mag & self.mantissa_all_ones
        if self.specials == "ieee" and exponent_field == self.exponent_all_ones:
            return NAN if mantissa else INF
        if self.specials == "fn" and mag == self.magnitude_mask:
            return NAN
        if self.specials == "fnuz" and code == self.sign_bit:
            return NAN
        return "finite"

    # -- particular codes ---------------------------------------------------------
    def zero(self, negative: bool) -> int:
        return self.sign_bit if (negative and self.has_negative_zero) else 0

    def signed_code(self, mag: int, negative: bool) -> int:
        if mag == 0:
            return self.zero(negative)
        return (self.sign_bit if negative else 0) | mag

    def canonical_nan(self, negative: bool) -> int:
        """The NaN code fmtlab writes for a NaN input (sign kept where a NaN can carry one)."""
        if self.specials == "ieee":
            sign = self.sign_bit if negative else 0
            top_mantissa_bit = 1 << (self.m - 1)
            return sign | (self.exponent_all_ones << self.m) | top_mantissa_bit
        if self.specials == "fn":
            return (self.sign_bit if negative else 0) | self.magnitude_mask
        if self.specials == "fnuz":
            return self.sign_bit
        raise ValueError("a 'finite' format has no NaN code")

    def infinity(self, negative: bool) -> int:
        assert self.specials == "ieee"
        return (self.sign_bit if negative else 0) | (self.exponent_all_ones << self.m)


@functools.lru_cache(maxsize=None)
def layout(fmt) -> _Layout:
    return _Layout(fmt)


def _finite_value_fraction(lay: _Layout, code: int) -> Fraction:
    negative = bool(code & lay.sign_bit)
    value = lay.magnitude(code & lay.magnitude_mask)
    return -value if negative else value


def reference_value(fmt, code: int):
    """Value of ``code``: a Fraction, or the strings "inf", "-inf", "nan" (like Format.exact_value)."""
    lay = layout(fmt)
    if not 0 <= code < (1 << lay.bits):
        raise ValueError(f"code {code} is outside the {lay.bits}-bit codes")
    kind = lay.classify(code)
    if kind == NAN:
        return NAN
    if kind == INF:
        return NEG_INF if code & lay.sign_bit else INF
    return _finite_value_fraction(lay, code)


def reference_float(fmt, code: int) -> float:
    """Value of ``code`` as a Python float, with the sign of zero.

    Computed from the fields with integers and math.ldexp (exact: every value of a format
    fits float64), independently of the Fraction path; the tests check both agree.
    """
    lay = layout(fmt)
    kind = lay.classify(code)
    negative = bool(code & lay.sign_bit)
    if kind == NAN:
        return math.nan
    if kind == INF:
        return -math.inf if negative else math.inf
    mag = code & lay.magnitude_mask
    exponent_field, mantissa = mag >> lay.m, mag & lay.mantissa_all_ones
    if exponent_field == 0:
        if lay.subnormals == "none":
            result = 0.0
        else:
            scale = -lay.bias if lay.subnormals == "tesla" else 1 - lay.bias
            result = math.ldexp(mantissa, scale - lay.m)
    else:
        result = math.ldexp((1 << lay.m) + mantissa, exponent_field - lay.bias - lay.m)
    return -result if negative else result


def reference_is_nan(fmt, code: int) -> bool:
    return layout(fmt).classify(int(code)) == NAN


@functools.lru_cache(maxsize=64)
def reference_decode_table(fmt) -> tuple:
    """reference_float of every code, indexed by code (formats of 16 bits or fewer)."""
    lay = layout(fmt)
    assert lay.bits <= 16
    return tuple(reference_float(fmt, code) for code in range(1 << lay.bits))


def max_code(fmt) -> int:
    """Magnitude code of the largest finite value."""
    return layout(fmt).max_code


def max_value(fmt) -> Fraction:
    lay = layout(fmt)
    return lay.magnitude(lay.max_code)


def next_above_max(fmt) -> Fraction:
    """The value an unbounded format would have just above max."""
    lay = layout(fmt)
    return lay.magnitude(lay.max_code + 1)


# ---- the sorted magnitudes, for bisection ---------------------------------------------

class _LazyMagnitudes:
    """Magnitudes of codes 0..max_code+1 as a sorted sequence (computed on demand)."""

    def __init__(self, lay):
        self.lay = lay

    def __len__(self):
        return self.lay.max_code + 2

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self.lay.magnitude(index)


@functools.lru_cache(maxsize=64)
def _magnitudes(fmt):
    lay = layout(fmt)
    if lay.bits <= 16:
        values = [lay.magnitude(mag) for mag in range(lay.max_code + 2)]
        assert all(a <= b for a, b in zip(values, values[1:])), "magnitudes must be non-decreasing"
        return values
    return _LazyMagnitudes(lay)


def sorted_magnitudes(fmt):
    """Magnitudes of the magnitude codes 0..max_code+1, non-decreasing (index = magnitude code)."""
    return _magnitudes(fmt)


@functools.lru_cache(maxsize=64)
def _magnitudes_as_floats(fmt):
    """The same list as floats (each exact: every value fits float64) for a fast first bisection."""
    values = _magnitudes(fmt)
    if isinstance(values, _LazyMagnitudes):
        return None
    floats = [float(value) for value in values]
    assert all(Fraction(f) == v for f, v in zip(floats, values))
    return floats


def _neighbours(fmt, a: Fraction):
    """Magnitude codes (lo, hi) with value(lo) <= a <= value(hi), lo == hi when a is a value.

    When a exceeds the value of max_code + 1, both are max_code + 1 (every mode then
    overflows or gives max, whatever the exact neighbours are).
    """
    values = _magnitudes(fmt)
    floats = _magnitudes_as_floats(fmt)
    if floats is not None and float(a) == a:
        # a float input compared with exact floats: the comparisons are exact
        lo = bisect.bisect_right(floats, float(a)) - 1
    else:
        lo = bisect.bisect_right(values, a) - 1
    top = len(values) - 1
    # the defining property, checked in exact rationals
    assert values[lo] <= a and (lo == top or a < values[lo + 1])
    if lo >= top:
        return top, top
    if values[lo] == a:
        return lo, lo
    return lo, lo + 1


# ---- deterministic rounding ----------------------------------------------------------

def _split_input(x):
    """(kind, negative, |x| as Fraction) for a float32/float64/Python float."""
    value = float(x)  # exact for numpy float32/float64 scalars
    negative = math.copysign(1.0, value) < 0
    if math.isnan(value):
        return NAN, negative, None
    if math.isinf(value):
        return INF, negative, None
    return "finite", negative, abs(Fraction(value))


def _special_input(lay, kind, negative, saturate, a=None):
    """Code for a NaN/Inf input or an input handled before rounding; None when rounding is needed."""
    if kind == NAN:
        if lay.specials == "finite":
            return lay.max_code  # +max: the sign of a NaN carries no meaning
        return lay.canonical_nan(negative and lay.signed)
    if not lay.signed and negative and not (kind == "finite" and a == 0):
        # unsigned: a negative nonzero input (including -Inf) is invalid -> NaN; -0 gives +0
        return lay.canonical_nan(False)
    if kind == INF:
        if lay.specials == "ieee":
            return lay.infinity(negative)
        if lay.specials in ("fn", "fnuz") and not saturate:
            return lay.canonical_nan(negative)
        return lay.signed_code(lay.max_code, negative)
    return None


def _overflow_code(lay, negative, saturate):
    """Code when rounding chose a magnitude above max in an outward direction."""
    if saturate or lay.specials == "finite":
        return lay.signed_code(lay.max_code, negative)
    if lay.specials == "ieee":
        return lay.infinity(negative)
    return lay.canonical_nan(negative)


def _choose(mode, negative, lo, hi, below, above):
    """Pick lo or hi (magnitude codes, lo != hi) for mode; below = a - value(lo), above = value(hi) - a."""
    if mode == "toward_zero":
        return lo
    if mode == "up":
        return lo if negative else hi
    if mode == "down":
        return hi if negative else lo
    if mode == "odd":
        return lo if lo % 2 == 1 else hi
    if below < above:
        return lo
    if above < below:
        return hi
    if mode == "nearest_away":
        return hi
    if mode == "nearest_even":
        return lo if lo % 2 == 0 else hi
    raise ValueError(f"unknown mode {mode!r}")


def _outward(mode, negative):
    """Whether a directed/nearest mode rounds away from zero when it leaves max behind."""
    if mode in ("toward_zero", "odd"):
        return False
    if mode == "up":
        return not negative
    if mode == "down":
        return negative
    return True  # nearest modes: overflow when the chosen value is above max


def _round_known(lay, fmt, kind, negative, a, modes, saturate):
    results = {}
    special = _special_input(lay, kind, negative, saturate, a)
    if special is None and a == 0:
        special = lay.zero(negative)
    if special is None and lay.subnormals == "none" and a < lay.min_normal:
        special = lay.zero(negative)  # flushed before rounding, whatever the mode
    if special is not None:
        return {mode: special for mode in modes}
    lo, hi = _neighbours(fmt, a)
    values = _magnitudes(fmt)
    below, above = a - values[lo], values[hi] - a
    above_max = a > values[lay.max_code]
    for mode in modes:
        if mode == "odd" and above_max:
            results[mode] = lay.signed_code(lay.max_code, negative)  # odd never overflows
            continue
        chosen = lo if lo == hi else _choose(mode, negative, lo, hi, below, above)
        if chosen > lay.max_code:
            if _outward(mode, negative):
                results[mode] = _overflow_code(lay, negative, saturate)
            else:
                results[mode] = lay.signed_code(lay.max_code, negative)
        else:
            results[mode] = lay.signed_code(chosen, negative)
    return results


def reference_round(x, fmt, mode="nearest_even", saturate=False) -> int:
    """The code fmtlab must produce for input x (a float32 or float64 value) in a deterministic mode."""
    if mode not in DETERMINISTIC_MODES:
        raise ValueError(f"mode {mode!r}: use reference_stochastic_probability for stochastic rounding")
    lay = layout(fmt)
    kind, negative, a = _split_input(x)
    return _round_known(lay, fmt, kind, negative, a, (mode,), saturate)[mode]


def reference_round_all(x, fmt, saturate=False) -> dict:
    """{mode: code} for every deterministic mode (one neighbour search)."""
    lay = layout(fmt)
    kind, negative, a = _split_input(x)
    return _round_known(lay, fmt, kind, negative, a, DETERMINISTIC_MODES, saturate)


# ---- stochastic rounding ---------------------------------------------------------------

def _in_tesla_gap(lay, lo, hi):
    """Whether (lo, hi) straddle the gap subnormals='tesla' leaves below min_normal."""
    return lay.subnormals == "tesla" and lay.m > 0 and lo == lay.mantissa_all_ones and hi == lo + 1


def reference_stochastic_probability(x, fmt, sr_bits=None, saturate=False):
    """(toward_code, away_code, probability of away) for stochastic rounding of x.

    nu = (|x| - |t|) / (|a| - |t|) is the fraction of the ulp that rounding toward zero
    discards.  With sr_bits = N the P3109 rule rounds away iff floor(nu * 2^N) + R >= 2^N,
    R uniform in [0, 2^N), so P(away) = floor(nu * 2^N) / 2^N.  sr_bits=None is exact
    (P = nu), except in the subnormals="tesla" gap where fmtlab documents 32 bits.

    Away candidates above max follow the overflow rule (Inf / NaN / max); the toward
    candidate of an input beyond max is +-max.  When x is exact, both codes are x's code
    and the probability is 0.  NaN/Inf/flushed/unsigned-negative inputs: both codes equal.
    """
    lay = layout(fmt)
    kind, negative, a = _split_input(x)
    special = _special_input(lay, kind, negative, saturate, a)
    if special is not None:
        return special, special, Fraction(0)
    if a == 0 or (lay.subnormals == "none" and a < lay.min_normal):
        zero = lay.zero(negative)
        return zero, zero, Fraction(0)
    lo, hi = _neighbours(fmt, a)
    top = lay.max_code + 1
    if lo == hi and lo < top:
        code = lay.signed_code(lo, negative)
        return code, code, Fraction(0)
    if lo >= top:
        # |x| >= the first value beyond max: compute the unbounded neighbours arithmetically.
        lo, hi = _unbounded_neighbours(lay, a)
    lo_value, hi_value = lay.magnitude(lo), lay.magnitude(hi)
    nu = (a - lo_value) / (hi_value - lo_value) if hi != lo else Fraction(0)
    bits = sr_bits
    if bits is None and _in_tesla_gap(lay, lo, hi):
        bits = 32
    probability = nu if bits is None else Fraction(math.floor(nu * (1 << bits)), 1 << bits)

    def finish(mag, outward):
        if mag > lay.max_code:
            if outward:
                return _overflow_code(lay, negative, saturate)
            return lay.signed_code(lay.max_code, negative)
        return lay.signed_code(mag, negative)

    toward = finish(lo, outward=False)
    away = finish(hi, outward=True)
    if hi == lo:
        probability = Fraction(0)
    return toward, away, probability


def _unbounded_neighbours(lay, a):
    """Magnitude codes (lo, hi) around a in the format with an unbounded exponent range."""
    mag_lo = lay.max_code + 1
    # grow an upper bound, then bisect
    step = 1
    while lay.magnitude(mag_lo + step) <= a:
        step *= 2
    low, high = mag_lo, mag_lo + step  # value(low) <= a < value(high)
    while high - low > 1:
        middle = (low + high) // 2
        if lay.magnitude(middle) <= a:
            low = middle
        else:
            high = middle
    if lay.magnitude(low) == a:
        return low, low
    return low, high


# ---- helpers for tests ------------------------------------------------------------------

def consecutive_pairs(fmt):
    """(lo, hi) magnitude-code pairs of consecutive distinct non-negative values, including (max, next)."""
    values = _magnitudes(fmt)
    lay = layout(fmt)
    pairs = []
    previous = 0
    for mag in range(1, lay.max_code + 2):
        if values[mag] != values[previous]:
            pairs.append((previous, mag))
            previous = mag
    return pairs


def magnitude_value(fmt, mag: int) -> Fraction:
    """Value of a magnitude code (unbounded above)."""
    return layout(fmt).magnitude(mag)


# ---- the formats the codec tests walk ----------------------------------------------------

def _formats():
    import fmtlab as fl

    presets = [fl.format(name) for name in fl.preset_names()]
    small_presets = [fmt for fmt in presets if fmt.bits <= 16]
    tesla = []
    for name, default_bias in (("cfloat8_1_4_3", 7), ("cfloat8_1_5_2", 15)):
        for bias in (0, 1, default_bias, 10, 31, 63):
            for subnormals in ("ieee", "tesla"):
                fmt = fl.format(name, bias=bias, subnormals=subnormals)
                if fmt not in small_presets:
                    tesla.append(fmt)
    tesla += [fl.format("shp", bias=0, subnormals="tesla"), fl.format("shp", bias=63)]
    custom = [
        fl.Format(3, 0, 3, specials="fn"),                       # e3m0 fn: man_bits = 0, parity = exponent
        fl.Format(2, 0, 1, specials="finite"),                   # e2m0 finite
        fl.Format(4, 0, 7, specials="fnuz"),                     # e4m0 fnuz
        fl.Format(1, 2, 0, specials="finite"),                   # a single exponent bit
        fl.Format(6, 9, 31, signed=False, subnormals="none"),    # UHP-like, 15 bits
        fl.Format(6, 9, 31, signed=True, subnormals="none"),     # signed, flush to zero, 16 bits
        fl.Format(4, 3, 7, signed=False),                        # unsigned e4m3, ieee specials
        fl.Format(3, 2, 3, specials="fn"),                       # small fn
        fl.Format(7, 8, 63),                                     # 16-bit ieee with a wide exponent
        fl.Format(4, 3, 1, specials="finite", subnormals="tesla"),  # tesla gap away from the presets
    ]
    return presets, small_presets, tesla, custom


PRESETS, SMALL_PRESETS, TESLA_VARIANTS, CUSTOM_FORMATS = _formats()
#: every format of 16 bits or fewer the exhaustive tests walk
EXHAUSTIVE_FORMATS = SMALL_PRESETS + TESLA_VARIANTS + CUSTOM_FORMATS
#: formats wider than 16 bits: sampled, never walked
WIDE_FORMATS = [fmt for fmt in PRESETS if fmt.bits > 16]


def format_id(fmt) -> str:
    """A short test id for a format."""
    if fmt.name is not None:
        return repr(fmt).replace("'", "").replace(" ", "")
    sign = "s" if fmt.signed else "u"
    return f"{sign}e{fmt.exp_bits}m{fmt.man_bits}b{fmt.bias}{fmt.specials}-{fmt.subnormals}"


def assert_codes_equal(fmt, inputs, got, want, what=""):
    """Codes must be equal, except that any NaN code matches any NaN code; report a few mismatches."""
    import numpy as np

    got = np.asarray(got).ravel().astype(np.int64)
    want = np.asarray(want).ravel().astype(np.int64)
    inputs = np.asarray(inputs).ravel()
    assert got.shape == want.shape
    bad = np.flatnonzero(got != want)
    mismatches = []
    for index in bad:
        if reference_is_nan(fmt, int(got[index])) and reference_is_nan(fmt, int(want[index])):
            continue
        mismatches.append(index)
    if mismatches:
        lines = [f"{len(mismatches)} of {got.size} codes differ for {fmt} {what}:"]
        for index in mismatches[:8]:
            value = inputs[index]
            lines.append(f"  x={value!r} ({value.dtype}, {float(value).hex()}): "
                         f"got {int(got[index]):#x}, expected {int(want[index]):#x}")
        raise AssertionError("\n".join(lines))
