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

The elements are not sorted: a bias's edge is selected by a mask on the binade keys (original
order), a binade's elements likewise, and per-binade counts (a histogram) tell which biases have
interior elements at all.
"""
import math

import numpy as np

from .metrics import merge_statistics

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
    # elements are selected by masks, in their original order: the exact sums' bins are slower
    # on runs of one binade (every x^2 in the same bin), so the piece is not sorted
    counts = np.bincount(keys.astype(np.int32) - _BELOW, minlength=_ABOVE - _BELOW + 1)
    cumulative = np.concatenate(([0], np.cumsum(counts)))
    cache = {}
    results = []
    deep_cache = {}
    for fmt, (low, high) in zip(formats, windows):
        if high < low:
            low, high = low, low - 1  # no interior binade
        deep = deep_binades(fmt, rounding)
        deep = _BELOW if deep is None else min(deep, low - 1)  # binades _BELOW + 1 .. deep: zeros out
        interior = int(cumulative[high + 1 - _BELOW] - cumulative[low - _BELOW])
        shared = interior + int(cumulative[deep + 1 - _BELOW] - cumulative[1])
        if shared == 0:  # nothing shared: one pass over the piece as it is
            total = statistics_of(values, fmt)
            results.append(dict(total, signal=total["signal"] + signal))
            continue
        parts = []
        if shared < values.size:
            parts.append(statistics_of(values[(keys == _BELOW) | ((keys > deep) & (keys < low)) | (keys > high)], fmt))
        for e in range(low, high + 1):
            if counts[e - _BELOW]:
                if e not in cache:  # any bias keeping e interior gives these statistics
                    cache[e] = statistics_of(values[keys == e], fmt)
                parts.append(cache[e])
        for e in np.flatnonzero(counts[1:deep + 1 - _BELOW]) + _BELOW + 1:
            e = int(e)
            if e not in deep_cache:  # any bias with e deep below its window: q = +-0, e = -x
                deep_cache[e] = statistics_of(values[keys == e], fmt)
            parts.append(deep_cache[e])
        total = parts[0]
        for part in parts[1:]:
            total = merge_statistics(total, part)
        results.append(dict(total, signal=total["signal"] + signal))
    return results
