"""The statistics of one piece at many biases of one element format in one pass (docs/sweep.md,
"The bias axis in one pass").

For a deterministic rounding mode, an input x in the binade e (2^e <= |x| < 2^(e+1)) that is
*interior* under bias b -- the binade is at least one above the format's lowest normal binade
(exponent of min_normal) and at least one below its top binade (exponent of max) -- rounds to a q
with the ulp 2^(e - man_bits) whatever b is: the rounded magnitude lies in [2^e, 2^(e+1)], is
normal and finite, and neither the subnormal band, the underflow, the top binade's specials nor
the overflow rule is reached.  So the statistics of the interior binades (counts, maxima, exact
sums) are computed once per binade and reused by every bias that keeps the binade interior; the
other elements of a bias (its *edge*: zeros, NaN/Inf, the binades at and below the lowest normal
one, at and above the top one, negative inputs of an unsigned format) are evaluated at that bias.
The statistics of disjoint sets merge exactly (counts and exact integer sums add, maxima take the
max), so the result equals one full evaluation per bias, bit for bit.

Two more kinds of binade are shared (see :func:`deep_binades` and :func:`saturated_statistics`):
far below the window in the modes that round tiny inputs to zero, and, where the format
saturates, at least two binades above max's binade (exact sums from per-binade sums).

One stable argsort of the binade keys gives each binade's elements and each bias's edge, their
positions sorted back into the original order (the exact sums' bins are slower on runs of one
binade); per-binade counts (a histogram) tell how much a bias shares, and a bias sharing under
half of the piece takes one pass over it as it is.
"""
import math
from fractions import Fraction

import numpy as np

from .codec import quantize
from .metrics import EXACT_EXPONENT, exact_statistics, merge_statistics

__all__ = ["DETERMINISTIC_ROUNDINGS", "ZERO_BELOW_ROUNDINGS", "binade_keys", "interior_binades", "deep_binades",
           "bias_axis_statistics"]

# The rounding modes whose q does not depend on the element's index (no random draws).
DETERMINISTIC_ROUNDINGS = ("nearest_even", "nearest_away", "toward_zero", "up", "down", "odd")
# Those that round a tiny nonzero input to zero (not up, down, odd: they give +-min_subnormal).
ZERO_BELOW_ROUNDINGS = ("nearest_even", "nearest_away", "toward_zero")

_BELOW = -30000  # key of zeros: below every binade (always edge)
_ABOVE = 30000   # key of NaN, +-Inf and an unsigned format's negative inputs (always edge)


def binade_keys(values, signed: bool) -> np.ndarray:
    """int16 key per element: e = floor(log2 |x|) for a finite nonzero x (exact: frexp), _BELOW for
    zeros, _ABOVE for NaN/Inf and, when ``signed`` is False, for negative inputs."""
    x = np.asarray(values, dtype=np.float64)
    _mantissa, exponent = np.frexp(x)
    keys = (exponent - 1).astype(np.int16)
    keys[x == 0] = _BELOW
    special = ~np.isfinite(x)
    if not signed:
        special |= np.signbit(x) & (x != 0)
    keys[special] = _ABOVE
    return keys


def interior_binades(fmt) -> tuple:
    """(low, high): the binades e with low <= e <= high are interior for ``fmt`` (see the module
    docstring): low = exponent of min_normal + 1, high = exponent of max - 1 (empty if low > high)."""
    lowest = math.frexp(float(fmt.min_normal))[1] - 1
    top = math.frexp(float(fmt.max))[1] - 1
    return lowest + 1, top - 1


def deep_binades(fmt, rounding: str) -> int | None:
    """The highest binade d whose inputs round to zero at ``fmt`` in ``rounding`` (None: none is
    shared): for nearest_even / nearest_away / toward_zero and a format with a zero (subnormals
    other than "normal"), |x| < 2^(d+1) = 2^(s-2) with s = log2 of the smallest positive value,
    a quarter of it, below the half-way point (nearest) and the value itself (toward zero), so q
    = +-0, e = -x at every such bias.  One binade of margin below the exact bound s - 2."""
    if rounding not in ZERO_BELOW_ROUNDINGS or fmt.subnormals == "normal":
        return None
    return fmt.min_subnormal_exponent - 3


def saturates(fmt, rounding: str, dtype) -> bool:
    """Whether ``fmt`` in ``rounding`` gives +-max for inputs of both signs at 2^(T+2) (T the
    binade of max) and at the largest finite value of ``dtype``: the binades from T + 2 up then
    saturate at this bias (checked against one pass per bias by tests/test_sweep_bias_axis.py)."""
    top = math.frexp(float(fmt.max))[1] - 1
    largest = float(np.finfo(dtype).max)
    if math.ldexp(1.0, top + 2) > largest:
        return False
    probe = np.array([math.ldexp(1.0, top + 2), -math.ldexp(1.0, top + 2), largest, -largest], dtype)
    expected = [float(fmt.max), -float(fmt.max)] * 2
    return np.asarray(quantize(probe, fmt, rounding), np.float64).tolist() == expected


def _binade_sums(part, fmt) -> dict:
    """Exact sums of a binade's elements, ints of 2^EXACT_EXPONENT (the C exact sums of x against
    q = 0): sum |x|, sum x^2, sum x, and the counts of each sign; the float64 values for maxima."""
    x = np.asarray(part, np.float64)
    zeros = np.zeros_like(x)
    magnitude = exact_statistics(np.abs(x), zeros, fmt, 0)
    signed = exact_statistics(x, zeros, fmt, 0)
    positive = int(np.count_nonzero(x > 0))
    return {"magnitudes": np.sort(np.abs(x)), "abs_sum": -magnitude["error_sum"],
            "square_sum": magnitude["error_energy"],
            "sum": -signed["error_sum"], "positive": positive, "negative": x.size - positive}


def saturated_statistics(sums, fmt) -> dict:
    """The statistics of overflowing elements (|x| > max) that all round to sign(x) * max = m:
    e = sign(x) m - x, so sum e^2 = c m^2 - 2 m sum |x| + sum x^2 and sum e = m (c+ - c-) - sum x
    exactly (rationals, in units of 2^EXACT_EXPONENT: integers, m and each x being multiples of
    it); the maxima of |e| and |e| / |x| in float64 as the kernel rounds them: a -> fl(a - m) is
    non-decreasing, so max |e| = fl(max |x| - m); for |e| / |x| = fl(fl(a - m) / a), within
    (1 +- u)^2 (u = 2^-53) of rho(a) = 1 - m / a, which increases with a, only the a with
    rho(a) (1 + u)^2 >= rho(a_max) (1 - u)^2 can give the maximum: a >= m / (1 - K) with
    K = rho(a_max) ((1 - u) / (1 + u))^2, evaluated one by one."""
    unit = Fraction(2) ** EXACT_EXPONENT
    m = Fraction(float(fmt.max))
    count = sum(part["positive"] + part["negative"] for part in sums)
    abs_sum = sum(part["abs_sum"] for part in sums)
    energy = count * m * m / unit - 2 * m * abs_sum + sum(part["square_sum"] for part in sums)
    linear = m * sum(part["positive"] - part["negative"] for part in sums) / unit - sum(part["sum"] for part in sums)
    if energy.denominator != 1 or linear.denominator != 1:
        raise AssertionError("saturated sums are not integers of 2^EXACT_EXPONENT")
    max_abs = max_rel = 0.0
    u = Fraction(1, 2 ** 53)
    shrink = ((1 - u) / (1 + u)) ** 2
    for part in sums:
        magnitudes = part["magnitudes"]  # ascending, all > 2 m
        largest = float(magnitudes[-1])
        max_abs = max(max_abs, largest - float(fmt.max))
        bound = (1 - m / Fraction(largest)) * shrink
        threshold = m / (1 - bound)
        start = int(np.searchsorted(magnitudes, math.nextafter(float(threshold), 0.0), side="left"))
        candidates = magnitudes[start:]
        max_rel = max(max_rel, float(((candidates - float(fmt.max)) / candidates).max()))
    return {"n": count, "valid": count, "zeros_in": 0, "nan_in": 0, "inf_in": 0, "overflow": count, "zeros_out": 0,
            "below_normal": 0, "nan_out": 0, "inf_out": 0, "max_abs": max_abs, "max_rel": max_rel, "signal": 0,
            "error_energy": int(energy), "error_sum": int(linear)}


def bias_axis_statistics(values, formats, statistics_of, signal: int, rounding: str = "up") -> list:
    """The statistics of ``values`` (1-D) for each format of ``formats`` (one element format at
    several biases, a deterministic rounding), equal to ``[statistics_of(values, f) for f in
    formats]`` with ``signal`` added to each one's "signal".  ``statistics_of(part, fmt)``
    evaluates the elements ``part`` (a subset: the result depends only on the elements, not on
    their positions) at ``fmt`` with a zero signal (its "signal" is minus the x^2 of its elements
    outside V), so that the parts' signals are never summed again: ``signal`` (the finite
    inputs' sum of x^2 over all of ``values``) is added once per bias.  ``rounding`` (the mode
    ``statistics_of`` rounds in) tells whether the binades far below the window are shared too
    (:func:`deep_binades`)."""
    values = np.ascontiguousarray(values).reshape(-1)
    if not formats:
        return []
    windows = [interior_binades(fmt) for fmt in formats]
    signed = {bool(fmt.signed) for fmt in formats}
    if len(signed) != 1:
        raise ValueError("bias_axis_statistics needs formats of one kind (all signed or all unsigned)")
    keys = binade_keys(values, signed.pop())
    # elements are passed in their original order: the exact sums' bins are slower on runs of
    # one binade (every x^2 in the same bin)
    counts = np.bincount(keys.astype(np.int32) - _BELOW, minlength=_ABOVE - _BELOW + 1)
    cumulative = np.concatenate(([0], np.cumsum(counts)))
    order = []

    def binade(e):
        """The elements of binade e in their original order (a stable argsort, made once)."""
        if not order:
            order.append(np.argsort(keys, kind="stable"))
        return values[order[0][cumulative[e - _BELOW]:cumulative[e + 1 - _BELOW]]]

    cache = {}
    results = []
    deep_cache = {}
    sums_cache = {}
    for fmt, (low, high) in zip(formats, windows):
        if high < low:
            low, high = low, low - 1  # no interior binade
        deep = deep_binades(fmt, rounding)
        deep = _BELOW if deep is None else min(deep, low - 1)  # binades _BELOW + 1 .. deep: zeros out
        # binades high + 3 = T + 2 .. _ABOVE - 1: saturated to +-max at this bias (shared sums)
        saturated = high + 3 if saturates(fmt, rounding, values.dtype) else _ABOVE
        interior = int(cumulative[high + 1 - _BELOW] - cumulative[low - _BELOW])
        shared = (interior + int(cumulative[deep + 1 - _BELOW] - cumulative[1])
                  + int(cumulative[_ABOVE - _BELOW] - cumulative[saturated - _BELOW]))
        if shared == 0 or 2 * shared < values.size:  # sharing would not pay: one pass over the piece as it is
            total = statistics_of(values, fmt)
            results.append(dict(total, signal=total["signal"] + signal))
            continue
        parts = []
        if shared < values.size:
            # the edge binades: key _BELOW, deep + 1 .. low - 1, high + 1 .. saturated - 1, _ABOVE;
            # their positions sorted back into the original order
            if not order:
                order.append(np.argsort(keys, kind="stable"))
            ranges = [(_BELOW, _BELOW), (deep + 1, low - 1), (high + 1, saturated - 1), (_ABOVE, _ABOVE)]
            positions = np.sort(np.concatenate([order[0][cumulative[a - _BELOW]:cumulative[b + 1 - _BELOW]]
                                                for a, b in ranges if a <= b]))
            parts.append(statistics_of(values[positions], fmt))
        for e in range(low, high + 1):
            if counts[e - _BELOW]:
                if e not in cache:  # any bias keeping e interior gives these statistics
                    cache[e] = statistics_of(binade(e), fmt)
                parts.append(cache[e])
        for e in np.flatnonzero(counts[1:deep + 1 - _BELOW]) + _BELOW + 1:
            e = int(e)
            if e not in deep_cache:  # any bias with e deep below its window: q = +-0, e = -x
                deep_cache[e] = statistics_of(binade(e), fmt)
            parts.append(deep_cache[e])
        over = [int(e) for e in np.flatnonzero(counts[saturated - _BELOW:_ABOVE - _BELOW]) + saturated]
        if over:
            for e in over:
                if e not in sums_cache:
                    sums_cache[e] = _binade_sums(binade(e), fmt)
            parts.append(saturated_statistics([sums_cache[e] for e in over], fmt))
        total = parts[0]
        for part in parts[1:]:
            total = merge_statistics(total, part)
        results.append(dict(total, signal=total["signal"] + signal))
    return results
