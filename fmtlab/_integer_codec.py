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


def _twos_complement(codes: np.ndarray, fmt: IntFormat, source, want_counts: bool):
    """The integer codes of the rounding format's sign-magnitude codes, in their own unsigned dtype
    (a few passes, no int64 temporaries): a negative magnitude M becomes 2^N - M; with the two's
    complement range the magnitudes are limited first, 2^(N-1) - 1 up and 2^(N-1) down.  Returns
    (codes, clamped, clamped_exact): the counts of :func:`_counts` (0 unless ``want_counts``)."""
    grid = fmt.rounding_format
    if not grid.signed:
        return codes.astype(fmt.code_dtype), 0, 0
    width = grid.exp_bits + grid.man_bits
    negative = codes >= codes.dtype.type(1 << width)
    magnitude = codes & codes.dtype.type((1 << width) - 1)
    clamped = clamped_exact = 0
    if fmt.clamps:
        limit = negative.view(np.uint8).astype(codes.dtype)
        limit += codes.dtype.type(fmt.max_integer)       # 2^(N-1) - 1 up, 2^(N-1) down
        if want_counts:
            over = (magnitude > limit) & ~np.isnan(source)
            clamped = np.count_nonzero(over)
            k = np.where(negative, -magnitude.astype(np.float64), magnitude.astype(np.float64))
            clamped_exact = np.count_nonzero(over & (np.ldexp(k, fmt.step_exponent) == source))
        np.minimum(magnitude, limit, out=magnitude)
    # -M in two's complement is (M xor all ones) + 1: with s = 1 for a negative element and 0 else,
    # ((M xor -s) + s) mod 2^N -- branch-free ufuncs (np.where is many times slower here); the
    # unsigned arithmetic wraps modulo the dtype's 2^width, a multiple of 2^N
    sign = negative.view(np.uint8).astype(codes.dtype)
    result = (magnitude ^ np.negative(sign)) + sign
    result &= codes.dtype.type((1 << fmt.bits) - 1)
    return result.astype(fmt.code_dtype), clamped, clamped_exact


def _counts(stats: codec.Stats, fmt: IntFormat, clamped: int = 0, clamped_exact: int = 0) -> codec.Stats:
    """The float codec's counts over the rounding format, for the integer range: integers have no
    subnormals; with the two's complement clamp, the clamped elements are the overflows (those
    the rounding format already saturated among them) and inexact (those it left exact added)."""
    if not fmt.clamps:
        return dataclasses.replace(stats, denormal=0)
    return dataclasses.replace(stats, overflow=int(clamped), inexact=stats.inexact + int(clamped_exact),
                               denormal=0)


def quantize(x, fmt: IntFormat, rounding, saturate, seed, sr_bits, sr_rule, want_stats, index_offset=0):
    grid = fmt.rounding_format
    out = codec.quantize(x, grid, rounding, saturate=saturate, seed=seed, sr_bits=sr_bits, sr_rule=sr_rule,
                         stats=want_stats, index_offset=index_offset)
    out, stats = out if want_stats else (out, None)
    scalar = np.ndim(out) == 0
    values = np.atleast_1d(np.asarray(out))
    if fmt.clamps and not want_stats:
        np.clip(values, fmt.min, fmt.max, out=values)  # one pass; the counts need the masks below
    elif fmt.clamps:
        high, low = values > fmt.max, values < fmt.min
        # a NaN gives +max without being an overflow (invalid, as in the float codec)
        source = np.broadcast_to(np.asarray(x, dtype=np.float64), values.shape)
        clamped = (high | low) & ~np.isnan(source)
        # exact on the rounding format but clamped: the input itself was outside [min, max]
        clamped_exact = np.count_nonzero(clamped & (values.astype(np.float64) == source))
        stats = _counts(stats, fmt, np.count_nonzero(clamped), clamped_exact)
        values[high] = fmt.max
        values[low] = fmt.min
    elif want_stats:
        stats = _counts(stats, fmt)
    if fmt.signed:
        np.add(values, 0.0, out=values)  # the rounding format's -0 is the integer 0: +0
    result = values[0] if scalar else values
    return (result, stats) if want_stats else result


def encode(x, fmt: IntFormat, rounding, saturate, seed, sr_bits, sr_rule, want_stats, index_offset=0):
    grid = fmt.rounding_format
    result = codec.encode(x, grid, rounding, saturate=saturate, seed=seed, sr_bits=sr_bits, sr_rule=sr_rule,
                          stats=want_stats, index_offset=index_offset)
    grid_codes, stats = result if want_stats else (result, None)
    scalar = np.ndim(grid_codes) == 0
    grid_codes = np.atleast_1d(np.asarray(grid_codes))
    source = np.broadcast_to(np.asarray(x, dtype=np.float64), grid_codes.shape) if want_stats else None
    codes, clamped, clamped_exact = _twos_complement(grid_codes, fmt, source, want_stats)
    result = codes[0] if scalar else codes
    if not want_stats:
        return result
    return result, _counts(stats, fmt, clamped, clamped_exact)


def decode(codes: np.ndarray, fmt: IntFormat) -> np.ndarray:
    """Values k 2^s of checked codes, in the format's decode dtype (exact)."""
    return np.ldexp(fmt.integers_of_codes(codes).astype(np.float64), fmt.step_exponent).astype(fmt.decode_dtype)
