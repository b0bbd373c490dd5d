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
* ``saturate`` is False (or None), True, or one of IEEE P3109's saturation modes
  "sat_finite", "sat_propagate", "sat_none".  The P3109 modes follow the interim report
  v4.0: omega-RoundToPrecision (section 4.7.4: round with the exponent range unbounded
  above), then omega-Saturate (section 4.7.5), transcribed rule by rule in
  :func:`p3109_saturate`, then omega-Encode; a format's Domain is Extended iff it has Inf.
* A format without zero (``subnormals="normal"``, E8M0): a zero input has no code (NaN,
  or code 0 in a format without NaN) and a nonzero input below the smallest value gives
  the smallest magnitude (code 0, with its sign), in every mode (formats.md's decisions).
"""
from __future__ import annotations

import bisect
import functools
import math
from fractions import Fraction

DETERMINISTIC_MODES = ("nearest_even", "nearest_away", "toward_zero", "up", "down", "odd")
#: every value ``saturate=`` takes (None means False)
SATURATION_MODES = (False, True, "sat_finite", "sat_propagate", "sat_none")
P3109_SATURATIONS = ("sat_finite", "sat_propagate", "sat_none")

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
        elif self.specials == "p3109":
            # P3109 section 4.7.2: signed, 2^(K-1) - 1 is +Inf; unsigned, 2^K - 1 NaN and 2^K - 2 +Inf
            self.max_code = self.magnitude_mask - (1 if self.signed else 2)
        else:  # fnuz, finite: the all-ones magnitude is an ordinary number
            self.max_code = self.magnitude_mask
        # subnormals="normal": exponent field 0 is a normal binade, there is no zero
        self.has_zero = self.subnormals != "normal"
        # Smallest positive normal: exponent field 1 (0 without zero).
        self.min_normal = _pow2((1 if self.has_zero else 0) - self.bias)
        self.has_negative_zero = self.signed and self.has_zero and self.specials not in ("fnuz", "p3109")
        self.has_inf = self.specials in ("ieee", "p3109")
        self.has_nan = self.specials != "finite"

    # -- values ---------------------------------------------------------------
    def magnitude(self, mag: int) -> Fraction:
        """Value of a magnitude code, reading the exponent range as unbounded above."""
        exponent_field = mag >> self.m
        mantissa = mag & self.mantissa_all_ones
        scale = 1 << self.m
        if exponent_field == 0 and self.has_zero:
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
        if self.specials == "p3109":
            if self.signed:
                if code == self.sign_bit:
                    return NAN
                if mag == self.magnitude_mask:
                    return INF
            else:
                if code == self.magnitude_mask:
                    return NAN
                if code == self.magnitude_mask - 1:
                    return INF
        return "finite"

    # -- particular codes ---------------------------------------------------------
    def zero(self, negative: bool) -> int:
        assert self.has_zero
        return self.sign_bit if (negative and self.has_negative_zero) else 0

    def signed_code(self, mag: int, negative: bool) -> int:
        if mag == 0 and self.has_zero:
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
        if self.specials == "p3109":
            return self.sign_bit if self.signed else self.magnitude_mask
        raise ValueError("a 'finite' format has no NaN code")

    def infinity(self, negative: bool) -> int:
        if self.specials == "p3109":
            return (self.sign_bit | self.magnitude_mask) if negative else self.max_code + 1
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
    if exponent_field == 0 and lay.has_zero:
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


def _normalise_saturate(saturate):
    if saturate is None:
        return False
    if saturate in (False, True):
        return bool(saturate)
    if saturate not in P3109_SATURATIONS:
        raise ValueError(f"saturate={saturate!r}: one of {SATURATION_MODES}")
    return saturate


def _special_input(lay, kind, negative, saturate, a=None):
    """Code for a NaN/Inf/zero input or an input handled before rounding; None when rounding is needed.

    saturate is False/True here (the P3109 modes handle Inf and unsigned negatives themselves,
    see _p3109_special_input).
    """
    if kind == NAN:
        if lay.specials == "finite":
            return lay.max_code  # +max: the sign of a NaN carries no meaning
        return lay.canonical_nan(negative and lay.signed)
    if kind == "finite" and a == 0 and not lay.has_zero:
        return lay.canonical_nan(False) if lay.has_nan else 0  # no zero code, in every mode
    if not lay.signed and negative and not (kind == "finite" and a == 0):
        # unsigned: a negative nonzero input (including -Inf) is invalid -> NaN; -0 gives +0
        return 0 if lay.specials == "finite" else lay.canonical_nan(False)
    if kind == INF:
        if lay.has_inf:
            return lay.infinity(negative)
        if lay.specials in ("fn", "fnuz") and not saturate:
            return lay.canonical_nan(negative)
        return lay.signed_code(lay.max_code, negative)
    return None


def _overflow_code(lay, negative, saturate):
    """Code when rounding chose a magnitude above max in an outward direction."""
    if saturate or lay.specials == "finite":
        return lay.signed_code(lay.max_code, negative)
    if lay.has_inf:
        return lay.infinity(negative)
    return lay.canonical_nan(negative)


# ---- IEEE P3109 saturation (interim report v4.0, section 4.7.5) ------------------------------

#: fmtlab's mode names for the report's rounding modes that omega-Saturate names
_P3109_ROUNDING_NAMES = {"toward_zero": "TowardZero", "down": "TowardNegative", "up": "TowardPositive",
                         "odd": "ToOdd", "nearest_even": "NearestTiesToEven", "nearest_away": "NearestTiesToAway",
                         "stochastic": "Stochastic"}
POS_INF, NEG_INF_VALUE = "+inf", "-inf"


def p3109_saturate(sat, rounding, x, signed, extended, m_lo, m_hi):
    """omega-Saturate_{M lo, M hi}(Sat, Round, X, Sigma, Delta), the report's rules in their order.

    x is a Fraction, "+inf", "-inf" or "nan"; the result is one of those too.  The first rule
    that matches decides.
    """
    rnd = _P3109_ROUNDING_NAMES[rounding]
    if x == NAN:
        return NAN                                                     # (*, *, NaN, *, *) -> NaN
    if x not in (POS_INF, NEG_INF_VALUE) and m_lo <= x <= m_hi:
        return x                                                       # in range -> X
    above = x == POS_INF or (x != NEG_INF_VALUE and x > m_hi)
    if sat == "sat_finite":
        if x == POS_INF:
            return m_hi
        if x == NEG_INF_VALUE:
            return m_lo
        return m_lo if not above else m_hi
    if sat == "sat_propagate":
        if x == POS_INF:
            return POS_INF if extended else m_hi
        if x == NEG_INF_VALUE:
            return NEG_INF_VALUE if (signed and extended) else m_lo
        return m_hi if above else m_lo
    assert sat == "sat_none"
    if x == POS_INF:
        return POS_INF if extended else m_hi
    if x == NEG_INF_VALUE:
        if signed and extended:
            return NEG_INF_VALUE
        if not signed:
            return NAN
        return m_lo
    if above and rnd == "ToOdd" and not signed and extended:
        return m_hi
    if above and rnd in ("TowardZero", "TowardNegative"):
        return m_hi
    if not above and rnd in ("TowardZero", "TowardPositive"):
        return m_lo
    if not above and signed and extended:
        return NEG_INF_VALUE
    if not above and not signed:
        return NAN
    if not above:
        return m_lo
    if extended:
        return POS_INF
    return m_hi


def _p3109_encode(lay, result, rounded_code, negative):
    """omega-Encode of a saturated result; rounded_code is the rounded value's code (when in range).

    A NaN result in a format without NaN (only a negative input to an unsigned finite format)
    gives code 0, as fmtlab's other unsigned rules do.
    """
    if result == NAN:
        return lay.canonical_nan(False) if lay.has_nan else 0
    if result == POS_INF:
        return lay.infinity(False)
    if result == NEG_INF_VALUE:
        return lay.infinity(True)
    m_hi = lay.magnitude(lay.max_code)
    if result == m_hi and rounded_code is None:
        return lay.max_code
    if lay.signed and result == -m_hi and rounded_code is None:
        return lay.sign_bit | lay.max_code
    if not lay.signed and rounded_code is None:
        assert result == lay.magnitude(0)
        return 0
    return rounded_code


def _p3109_project(lay, sat, rounding, negative, chosen):
    """Saturate and encode the rounded value sign * value(chosen magnitude code), chosen possibly
    above max_code (then R > M hi whatever its exact value)."""
    m_hi = lay.magnitude(lay.max_code)
    m_lo = -m_hi if lay.signed else lay.magnitude(0)
    extended = lay.has_inf
    if chosen > lay.max_code:
        rounded = (m_hi + 1) if not negative else -(m_hi + 1)  # any value beyond the range decides alike
    else:
        rounded = -lay.magnitude(chosen) if negative else lay.magnitude(chosen)
    if not lay.signed and negative and chosen == 0 and lay.has_zero:
        rounded = Fraction(0)  # the rounded value is zero: no negative zero in the closed extended reals
    result = p3109_saturate(sat, rounding, rounded, lay.signed, extended, m_lo, m_hi)
    in_range = result == rounded and chosen <= lay.max_code
    return _p3109_encode(lay, result, lay.signed_code(chosen, negative) if in_range else None, negative)


def _p3109_special_input(lay, kind, negative, sat):
    """Code of a NaN, +-Inf or zero input under a P3109 saturation mode; None when rounding is needed."""
    if kind == NAN:
        if lay.specials == "finite":
            return lay.max_code
        return lay.canonical_nan(negative and lay.signed)
    if kind == INF:
        m_hi = lay.magnitude(lay.max_code)
        m_lo = -m_hi if lay.signed else lay.magnitude(0)
        x = NEG_INF_VALUE if negative else POS_INF
        if not lay.signed and negative:
            x = NEG_INF_VALUE
        result = p3109_saturate(sat, "nearest_even", x, lay.signed, lay.has_inf, m_lo, m_hi)
        return _p3109_encode(lay, result, None, negative)
    return None


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
    saturate = _normalise_saturate(saturate)
    p3109 = saturate in P3109_SATURATIONS
    if kind == "finite" and a == 0:
        if not lay.has_zero:
            special = lay.canonical_nan(False) if lay.has_nan else 0
        else:
            special = lay.zero(negative)
        return {mode: special for mode in modes}
    special = (_p3109_special_input(lay, kind, negative, saturate) if p3109
               else _special_input(lay, kind, negative, saturate, a))
    if special is not None:
        return {mode: special for mode in modes}
    if lay.subnormals == "none" and a < lay.min_normal:
        # flushed before rounding, whatever the mode: the rounded value is zero
        if p3109 and not lay.signed and negative:
            return {mode: 0 for mode in modes}
        return {mode: lay.zero(negative) for mode in modes}
    values = _magnitudes(fmt)
    if not lay.has_zero and a < values[0]:
        # below the smallest value of a format without zero: code 0 in every mode
        if p3109 and not lay.signed and negative:
            return {mode: _p3109_project(lay, saturate, mode, negative, 0) for mode in modes}
        return {mode: lay.signed_code(0, negative) for mode in modes}
    lo, hi = _neighbours(fmt, a)
    below, above = a - values[lo], values[hi] - a
    above_max = a > values[lay.max_code]
    results = {}
    for mode in modes:
        chosen = lo if lo == hi else _choose(mode, negative, lo, hi, below, above)
        if p3109:
            results[mode] = _p3109_project(lay, saturate, mode, negative, chosen)
            continue
        if mode == "odd" and above_max:
            results[mode] = lay.signed_code(lay.max_code, negative)  # odd never overflows
            continue
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
    candidate of an input beyond max is +-max.  Under a P3109 saturation mode each candidate
    goes through omega-Saturate (rounding mode Stochastic).  When x is exact, both codes are
    x's code and the probability is 0.  NaN/Inf/zero/flushed/unsigned-negative inputs: both
    codes equal.
    """
    lay = layout(fmt)
    saturate = _normalise_saturate(saturate)
    p3109 = saturate in P3109_SATURATIONS
    kind, negative, a = _split_input(x)
    if kind == "finite" and (a == 0 or (not lay.has_zero and a < _magnitudes(fmt)[0])
                             or (lay.subnormals == "none" and a < lay.min_normal)):
        code = _round_known(lay, fmt, kind, negative, a, ("toward_zero",), saturate)["toward_zero"]
        return code, code, Fraction(0)
    special = (_p3109_special_input(lay, kind, negative, saturate) if p3109
               else _special_input(lay, kind, negative, saturate, a))
    if special is not None:
        return special, special, Fraction(0)
    lo, hi = _neighbours(fmt, a)
    top = lay.max_code + 1
    if lo == hi and lo < top:
        code = _p3109_project(lay, saturate, "stochastic", negative, lo) if p3109 else lay.signed_code(lo, negative)
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
        if p3109:
            return _p3109_project(lay, saturate, "stochastic", negative, mag)
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
        # formats without zero (subnormals="normal"), beside the e8m0 preset
        fl.Format(3, 2, 2, specials="ieee", subnormals="normal"),                 # signed, with Inf and -min
        fl.Format(3, 1, 2, signed=False, specials="finite", subnormals="normal"),  # no NaN either
        fl.Format(4, 2, 5, signed=False, specials="p3109", subnormals="normal"),   # P3109 specials, no zero
        fl.Format(2, 2, 1, specials="fn", subnormals="normal"),                    # signed fn without zero
    ]
    # P3109 formats beyond the binary8 presets: every variant of a few K, P (built by name)
    custom += [fl.format(name) for name in (
        "p3109_3p1", "p3109_3p2", "p3109_3p2_finite", "p3109_3p1_unsigned", "p3109_3p3_unsigned",
        "p3109_3p3_unsigned_finite", "p3109_4p3", "p3109_4p1_unsigned_finite", "p3109_5p2", "p3109_5p4_finite",
        "p3109_6p1", "p3109_6p5", "p3109_6p6_unsigned", "p3109_7p2_unsigned", "p3109_8p2", "p3109_8p5_finite",
        "p3109_8p6_unsigned", "p3109_10p4", "p3109_12p12_unsigned_finite", "p3109_16p11")]
    # (P3109 formats whose values do not all fit float32, such as p3109_12p1, are tested in
    # tests/test_p3109.py: the exhaustive tests here feed every value as float32 too.)
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
