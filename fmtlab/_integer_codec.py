"""The codec of integer formats, on top of the float codec (fmtlab.integers states the rules).

An integer format rounds exactly as its ``rounding_format`` (a one-exponent-bit float format of
the same grid) and then, for the two's complement range, clamps to [min, max].  Codes are the
two's complement patterns of the integers k; the float codec's sign-magnitude codes are
converted.  The counts follow the float codec's definitions for the integer range: an element
the clamp changes is an overflow and inexact (its result differs from the input, even where the
rounding format held the input exactly); denormal is always 0 (integers have no subnormals).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from . import codec
from .integers import IntFormat

__all__ = ["encode", "quantize", "decode"]


def _sign_magnitude_integers(codes: np.ndarray, grid) -> np.ndarray:
    """The integers k of the rounding format's sign-magnitude codes (its values are k 2^s)."""
    k = codes.astype(np.int64)
    if grid.signed:
        width = grid.exp_bits + grid.man_bits
        k = np.where(k >> width, -(k & ((1 << width) - 1)), k)
    return k


def _counts(stats: codec.Stats, clamped: int, clamped_exact: int) -> codec.Stats:
    """The float codec's counts over the rounding format, for the integer range: clamped elements
    are overflows (those the rounding format already saturated among them) and inexact (those it
    left exact are added); integers have no subnormals."""
    return dataclasses.replace(stats, overflow=int(clamped), inexact=stats.inexact + int(clamped_exact),
                               denormal=0)


def quantize(x, fmt: IntFormat, rounding, saturate, seed, sr_bits, sr_rule, want_stats, index_offset=0):
    grid = fmt.rounding_format
    out, stats = codec.quantize(x, grid, rounding, saturate=saturate, seed=seed, sr_bits=sr_bits, sr_rule=sr_rule,
                                stats=True, index_offset=index_offset)
    scalar = np.ndim(out) == 0
    values = np.atleast_1d(np.asarray(out))
    if fmt.signed:
        np.add(values, 0.0, out=values)  # the rounding format's -0 is the integer 0: +0
    if not fmt.clamps:
        result = values[0] if scalar else values
        return (result, dataclasses.replace(stats, denormal=0)) if want_stats else result
    high, low = values > fmt.max, values < fmt.min
    if want_stats:
        # a NaN gives +max without being an overflow (invalid, as in the float codec)
        source = np.broadcast_to(np.asarray(x, dtype=np.float64), values.shape)
        clamped = (high | low) & ~np.isnan(source)
        # exact on the rounding format but clamped: the input itself was outside [min, max]
        clamped_exact = np.count_nonzero(clamped & (values.astype(np.float64) == source))
        clamped_count = np.count_nonzero(clamped)
    values[high] = fmt.max
    values[low] = fmt.min
    result = values[0] if scalar else values
    return (result, _counts(stats, clamped_count, clamped_exact)) if want_stats else result


def encode(x, fmt: IntFormat, rounding, saturate, seed, sr_bits, sr_rule, want_stats, index_offset=0):
    grid = fmt.rounding_format
    grid_codes, stats = codec.encode(x, grid, rounding, saturate=saturate, seed=seed, sr_bits=sr_bits,
                                     sr_rule=sr_rule, stats=True, index_offset=index_offset)
    scalar = np.ndim(grid_codes) == 0
    k = _sign_magnitude_integers(np.atleast_1d(np.asarray(grid_codes)), grid)
    clamped_count = clamped_exact = 0
    if fmt.clamps:
        high, low = k > fmt.max_integer, k < fmt.min_integer
        if want_stats:
            source = np.broadcast_to(np.asarray(x, dtype=np.float64), k.shape)
            clamped = (high | low) & ~np.isnan(source)
            clamped_exact = np.count_nonzero(clamped & (np.ldexp(k.astype(np.float64), fmt.step_exponent) == source))
            clamped_count = np.count_nonzero(clamped)
        k = np.clip(k, fmt.min_integer, fmt.max_integer)
    codes = fmt.codes_of_integers(k)
    result = codes[0] if scalar else codes
    if not want_stats:
        return result
    stats = _counts(stats, clamped_count, clamped_exact) if fmt.clamps else dataclasses.replace(stats, denormal=0)
    return result, stats


def decode(codes: np.ndarray, fmt: IntFormat) -> np.ndarray:
    """Values k 2^s of checked codes, in the format's decode dtype (exact)."""
    return np.ldexp(fmt.integers_of_codes(codes).astype(np.float64), fmt.step_exponent).astype(fmt.decode_dtype)
