"""The exact arithmetic of block scaling: scale exponents from the bits, quotients without double rounding.

Everything here works on float64 numpy arrays and is exact: exponents come from ``np.frexp``
(exact for every float64, subnormals included), never from a floating ``log2`` (which rounds:
log2 of a value one ulp below 2^k is k in float64 and in float32, so a floor of it picks a
scale one binade too large).  With amax = m * 2^E, m in [1/2, 1) as frexp returns it
(so floor(log2 amax) = E - 1), and emax the exponent of the element format's largest binade:

======  ==========================================================================================
floor   e = floor(log2 amax) - emax                                (OCP MX v1.0, section 6.3)
ceil    e = ceil(log2 amax) - emax                                 (torchao ScaleCalculationMode.CEIL)
even    e = floor(log2(amax rounded to the element's man_bits fraction bits, ties away)) - emax
        (torchao EVEN: it adds half an element ulp to the float32 bits of amax and truncates)
rceil   e = ceil(log2(amax / element.max)): the smallest e with amax <= element.max * 2^e
        (NVIDIA's round-up conversion of amax / max to UE8M0, torchao RCEIL, and
        fmtlab.formats.amax_bias's rule: the same smallest power of two)
======  ==========================================================================================

For float32 amax, rceil equals the hardware rule applied to the float32 quotient
RN32(amax / max) (cuDNN/cuBLAS compute that quotient in float32): if amax > max * 2^k then
amax is at least the next float32 after max * 2^k, so amax / max >= 2^k (1 + 2^-23 / m_max)
with m_max = max / 2^floor(log2 max) < 2, which is above the midpoint 2^k (1 + 2^-24) and
so RN32 never rounds it down onto 2^k.

:func:`quotient_proxy` gives, for a / b with b > 0, a float64 y that every deterministic rounding
mode rounds exactly as it would round the exact a / b: the correctly rounded float64 quotient
already does, when the format's precision and b's bits leave room (its docstring proves it).
"""
from __future__ import annotations

import numpy as np

__all__ = ["RULES", "POWER_OF_TWO_RULES", "floor_log2", "is_power_of_two", "significant_bits",
           "rule_exponent", "quotient_proxy", "e8m0_nearest_even_exponent", "SMALLEST_NORMAL"]

#: every scale rule, and those that give a power of two
RULES = ("floor", "ceil", "even", "rceil", "amax")
POWER_OF_TWO_RULES = ("floor", "ceil", "even", "rceil")

#: float64's smallest normal: quotients below it (or from a numerator below it) may have lost
#: bits to gradual underflow; quotient_proxy replaces them by +-2^-1074.
SMALLEST_NORMAL = 2.0 ** -1022


def floor_log2(values: np.ndarray) -> np.ndarray:
    """floor(log2 v) as int64 for positive finite float64 values, exactly (from frexp)."""
    _, exponent = np.frexp(values)
    return exponent.astype(np.int64) - 1


def is_power_of_two(values: np.ndarray) -> np.ndarray:
    """Whether each positive finite float64 value is a power of two."""
    mantissa, _ = np.frexp(values)
    return mantissa == 0.5


def significant_bits(value: float) -> int:
    """Number of significant bits of a positive finite float (1 for a power of two)."""
    mantissa, _ = np.frexp(float(value))
    integer = int(np.ldexp(mantissa, 53))
    return 53 - ((integer & -integer).bit_length() - 1)


def rule_exponent(rule: str, amax: np.ndarray, element_emax: int, element_man_bits: int,
                  element_max: float) -> np.ndarray:
    """The unclamped scale exponent e (int64) of a power-of-two rule for positive finite amax.

    The formulas are those of the module docstring; each is a comparison of frexp mantissas,
    exact for every float64 amax.
    """
    mantissa, exponent = np.frexp(amax)          # amax = mantissa * 2^exponent, mantissa in [1/2, 1)
    exponent = exponent.astype(np.int64)
    floor = exponent - 1
    if rule == "floor":
        return floor - element_emax
    if rule == "ceil":
        return floor + (mantissa != 0.5) - element_emax
    if rule == "even":
        # 2 * mantissa rounded to man_bits fraction bits (ties away) reaches 2 exactly when
        # 2 * mantissa >= 2 - 2^-(man_bits + 1)
        carry = mantissa >= 1.0 - 2.0 ** -(element_man_bits + 2)
        return floor + carry - element_emax
    if rule == "rceil":
        max_mantissa, max_exponent = np.frexp(float(element_max))
        # element_max * 2^j >= amax  <=>  j >= exponent - max_exponent + log2(mantissa / max_mantissa),
        # and mantissa / max_mantissa lies in (1/2, 2)
        return exponent - int(max_exponent) + (mantissa > max_mantissa)
    raise ValueError(f"rule={rule!r} has no exponent formula; allowed: {', '.join(POWER_OF_TWO_RULES)}")


def quotient_proxy(numerator: np.ndarray, denominator: np.ndarray, denominator_is_power_of_two: bool = False,
                   smallest_numerator: float = 0.0) -> np.ndarray:
    """A float64 y that every deterministic rounding mode rounds as it rounds numerator / denominator.

    ``numerator``: float64 array (finite or +-Inf; no NaN); ``denominator``: positive finite
    float64, broadcastable.  y = RN64(numerator / denominator), one IEEE division, except that a
    nonzero numerator whose quotient is a float64 subnormal (or, for a denominator that is not
    a power of two, a subnormal numerator) gives y = +-2^-1074.

    Why y rounds like the exact quotient q (the caller guarantees the two conditions that
    ScaledFormat checks): a deterministic mode's result changes only at the target format's
    values and the midpoints between consecutive ones; each such point m has at most p + 1
    significant bits (p the target's precision).  If p + 1 + bits(denominator) <= 53, then
    m * denominator is a float64; if the numerator x differs from it, they differ by at least
    one float64 ulp of m * denominator (half of one when it is a power of two), so
    |q - m| > ulp(m) / 2 and RN64(q) != m.  RN64 is monotone and never crosses a float64, so y
    and q lie on the same side of every such m, and every deterministic mode rounds both alike.
    This needs x and m * denominator to be normal float64s: ScaledFormat requires every
    element * scale product to be at least 2^-1021, so a quotient below 2^-1022 (or a
    subnormal numerator) lies below half the element's smallest value, where only its sign
    and that it is not zero matter -- which +-2^-1074 keeps.

    ``smallest_numerator``: a lower bound on the nonzero |numerator| (2^-149 for float32 data);
    when it rules both cases out, the checks are skipped (they are two passes over the array).

    For a power-of-two denominator the division is exact (unless its result is subnormal).
    Stochastic rounding of y uses y's own discarded fraction: within half a float64 ulp of the
    exact quotient, i.e. within 2^(p - 53) of the exact fraction of the element's ulp.
    """
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        quotient = np.asarray(np.divide(numerator, denominator), dtype=np.float64)
    if smallest_numerator >= SMALLEST_NORMAL and quotient.size and \
            smallest_numerator / np.max(denominator) >= SMALLEST_NORMAL:
        return quotient
    numerator_full = np.broadcast_to(numerator, quotient.shape)
    tiny = np.abs(quotient) < SMALLEST_NORMAL
    if not denominator_is_power_of_two:
        tiny |= np.abs(numerator_full) < SMALLEST_NORMAL
    tiny &= numerator_full != 0
    if tiny.any():
        quotient[tiny] = np.copysign(np.float64(5e-324), numerator_full[tiny])
    return quotient


def e8m0_nearest_even_exponent(values: np.ndarray, lowest: int = -127, highest: int = 127) -> np.ndarray:
    """Exponent of the E8M0 value nearest to each positive value (a quotient proxy), ties to the
    even code, clamped to [lowest, highest]; 0 gives lowest and +Inf highest (E8M0 has no zero).

    Between 2^k and 2^(k+1) the midpoint is 1.5 * 2^k; the codes are k + 127 and k + 128, so a
    tie goes to k + 1 exactly when k + 127 is odd.
    """
    values = np.asarray(values, dtype=np.float64)
    result = np.full(values.shape, lowest, dtype=np.int64)
    positive = (values > 0) & np.isfinite(values)
    mantissa, exponent = np.frexp(values[positive])
    k = exponent.astype(np.int64) - 1
    significand = 2.0 * mantissa
    up = (significand > 1.5) | ((significand == 1.5) & ((k + 127) % 2 == 1))
    result[positive] = k + up
    result[np.isposinf(values)] = highest
    return np.clip(result, lowest, highest)
