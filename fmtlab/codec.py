"""Encode, decode and quantize arrays to any :class:`~fmtlab.formats.Format` (C core).

Rounding takes the exact value x of each input (float32 or float64; float64 is never
routed through float32) to a value of the format.  With lo <= x <= hi its two
neighbours (the exponent range taken as unbounded above when deciding overflow):

==============  =====================================================================
nearest_even    the nearer of lo, hi; a tie goes to the one with the even code
nearest_away    the nearer; a tie goes away from zero
toward_zero     the one of smaller magnitude
up / down       hi / lo
odd             x if representable, else the one of lo, hi with the odd code;
                never overflows (abs(x) > max gives +-max)
stochastic      away from zero with probability (|x| - |t|) / (|a| - |t|), t and a the
                toward-zero and away candidates
==============  =====================================================================

Stochastic rounding with ``sr_bits=N`` (1..32) is limited-precision stochastic
rounding as IEEE P3109's interim report defines it (v4.0, 26 June 2026, section 4.7.4,
"Rounding to precision"): with nu the fraction of an ulp that rounding toward zero
discards and R the top N bits of a uniform 64-bit draw (0 <= R < 2^N), round away iff
k + R >= 2^N, so P(away) = k / 2^N, where ``sr_rule`` says how nu is brought to N bits:

============  ===============================  ========================================
sr_rule       k                                also known as
============  ===============================  ========================================
truncate      floor(nu * 2^N)  (default)       P3109 StochasticA; gfloat StochasticFastest
nearest_away  floor(nu * 2^N + 1/2)            P3109 StochasticB; gfloat StochasticFast
nearest_even  nu * 2^N to nearest, ties even   P3109 StochasticC; gfloat Stochastic
nearest_odd   nu * 2^N to nearest, ties odd    gfloat StochasticOdd
============  ===============================  ========================================

(P3109 writes StochasticB as floor(nu * 2^(N+1)) + 2R + 1 >= 2^(N+1), the same test.)
The nearest rules may give k = 2^N (then it always rounds away).  Every rule is exact (P = nu)
when nu has at most N bits.  Otherwise ``truncate`` never rounds away more often than nu
(bias toward zero: -(2^-N - 2^-D)/2 ulp averaged over nu uniform on a grid of D > N
bits), the nearest rules are within 2^-(N+1) of nu, ``nearest_even`` and
``nearest_odd`` average to no bias on such grids, and ``nearest_away`` to +2^-(D+1)
ulp (its ties all go up).  ``sr_bits=None`` compares nu with a uniform real U drawn 64
bits at a time (more words only when the first ones tie), so the probability is exactly
nu for any float32 or float64 input; no rule applies (a non-default ``sr_rule`` then
raises ValueError).  The draws come from a counter-based generator keyed by (seed,
element index), so the result never depends on the number of threads or on chunking.
In the gap that ``subnormals="tesla"`` leaves below min_normal the ulp is not a power of
two: nu is the exact ratio, and each rule's k is computed exactly from it (ties
included); ``sr_bits=None`` uses 32 bits and truncates there.

Overflow (the rounded magnitude exceeds max): ``ieee`` formats give +-Inf for the
nearest modes, up/down outward and a stochastic round away, +-max for toward_zero,
the inward directed mode, odd and a stochastic round toward zero; ``fn``/``fnuz``
formats give NaN where ``ieee`` gives Inf; ``finite`` formats give +-max;
``saturate=True`` gives +-max for every format.  Inputs +-Inf: Inf in ``ieee``
formats, NaN in ``fn``/``fnuz`` (+-max when saturating), +-max in ``finite``.
NaN input: a NaN code (sign kept where the format has one); +max in ``finite``
formats.  Unsigned formats: a negative nonzero input is invalid and gives NaN;
-0 gives +0.  ``subnormals="none"``: a nonzero input below min_normal in magnitude
gives a zero of its sign (flushed before rounding, whatever the mode).
"""
from __future__ import annotations

import dataclasses
import numbers
import os

import numpy as np

from . import _c
from ._c import ffi, lib
from ._dtypes import as_float_input, is_narrow_float
from .formats import Format, as_format, ml_dtypes_presets
from .integers import IntFormat

__all__ = ["encode", "decode", "quantize", "to_ml_dtypes", "Stats", "set_threads", "get_threads", "MAX_THREADS"]

#: The most threads :func:`set_threads` takes: 64 per CPU, at most the C core's FL_MAX_THREADS (4096).
#: The OpenMP runtime kills the process when it cannot create the threads it is asked for.
MAX_THREADS = min(int(lib.FL_MAX_THREADS), 64 * (os.cpu_count() or 1))


@dataclasses.dataclass
class Stats:
    """Counts matching the Tesla whitepaper's exception flags (see fmtlab.h)."""
    invalid: int = 0
    overflow: int = 0
    underflow: int = 0
    denormal: int = 0
    inexact: int = 0
    total: int = 0

    def as_dict(self):
        return dataclasses.asdict(self)


def set_threads(threads: int | None = None) -> None:
    """Number of threads the C loops use (None: the OpenMP default). Results never depend on it.

    ``threads`` is an int from 1 to :data:`MAX_THREADS` (64 per CPU, at most 4096); anything else
    is a ValueError and changes nothing.
    """
    if threads is None:
        _c.check_status(lib.fl_set_threads(0), "set_threads")
        return
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or not 1 <= threads <= MAX_THREADS:
        raise ValueError(f"threads={threads!r} is not allowed: an int from 1 to {MAX_THREADS} (64 per CPU, "
                         f"at most {int(lib.FL_MAX_THREADS)}), or None for the default")
    _c.check_status(lib.fl_set_threads(int(threads)), "set_threads")


def get_threads() -> int:
    """Number of threads the C loops use now (the OpenMP default unless set_threads was called)."""
    return int(lib.fl_max_threads())


def _as_float_array(x, argument="x"):
    """Return (contiguous float32/float64 array, was_scalar): the shared coercion
    (fmtlab._dtypes.as_float_input: byte order, narrow floats, exact ints, bools refused)."""
    array, scalar = as_float_input(x, argument)
    # ascontiguousarray makes 0-d arrays 1-d; keep the caller's shape.
    return np.ascontiguousarray(array).reshape(array.shape), scalar


def _scaled():
    """fmtlab.scaled, imported on first use: it builds on this module."""
    from . import scaled
    return scaled


def _checked_offset(index_offset) -> int:
    """``index_offset`` checked: an int, 0 <= offset < 2^63."""
    if isinstance(index_offset, bool) or not isinstance(index_offset, numbers.Integral):
        raise TypeError(f"index_offset must be an int, got {index_offset!r} ({type(index_offset).__name__})")
    if not 0 <= index_offset < 1 << 63:
        raise ValueError(f"index_offset={index_offset} is not allowed: 0 <= index_offset < 2^63")
    return int(index_offset)


def _no_offset_for_scaled(index_offset, scaled):
    if index_offset:
        raise ValueError(f"index_offset={index_offset} is not allowed for the scaled format {scaled}: its blocks "
                         "need the whole array (and stochastic rounding keys each element by its index in it)")


def _integer_codec():
    """fmtlab._integer_codec, imported on first use: it builds on this module."""
    from . import _integer_codec
    return _integer_codec


def _scaled_or_none(fmt):
    """The ScaledFormat ``fmt`` is or names, or None for an element format (the common case: a
    Format is recognised without importing fmtlab.scaled)."""
    if isinstance(fmt, Format):
        return None
    return _scaled().as_scaled_format(fmt)


def _scaled_request(rounding, saturate, seed, sr_bits, sr_rule):
    """The checked rounding request of a scaled format's elements: they always saturate."""
    return _c.rounding_request(rounding, _scaled().check_saturate(saturate), seed, sr_bits, sr_rule)


def _stats_from(c_stats, total):
    return Stats(int(c_stats.invalid), int(c_stats.overflow), int(c_stats.underflow),
                 int(c_stats.denormal), int(c_stats.inexact), int(total))


def _checked_out(out, shape, dtype):
    """``out`` checked against the result it is to receive: an ndarray of that shape and dtype
    (exactly: no cast is implied), writeable; any strides.  None stays None."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"out has shape {out.shape}; the result has shape {tuple(shape)}")
    if out.dtype != np.dtype(dtype):
        raise TypeError(f"out has dtype {out.dtype}; the result has dtype {np.dtype(dtype)} (no cast is implied)")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    return out


def _direct(out, source):
    """Whether the C loop may write straight into ``out``: C-contiguous and not overlapping the
    input it reads (the kernels read some inputs again after writing a block's results)."""
    return out.flags.c_contiguous and not np.may_share_memory(out, source)


def _into(out, result, stats):
    """``out`` checked against ``result`` (an array, or (array, stats) where ``stats``), the array
    copied into it, and what the call returns with ``out`` in the array's place: the path of the
    results that are computed first (integer formats, scaled quantize)."""
    values = np.asarray(result[0] if stats else result)
    _checked_out(out, values.shape, values.dtype)[...] = values
    return (out, result[1]) if stats else out


def encode(x, fmt, rounding="nearest_even", *, saturate=None, seed=None, sr_bits=None, sr_rule="truncate",
           stats=False, index_offset=0, out=None):
    """Round x to ``fmt`` and return its codes (uint8, uint16 or uint32 by the format's width).

    ``x``: float32 or float64 array (any shape and strides) or a Python float;
    float16 and ml_dtypes arrays are widened exactly first.  ``stats=True`` also
    returns a :class:`Stats`.  See the module docstring for the rounding rules
    (``sr_bits`` and ``sr_rule``: stochastic rounding with N random bits).
    ``index_offset``: the index of x's first element (C order) in a larger array that x is a
    piece of: stochastic rounding draws from (seed, index), so a piece rounds as it does inside
    the whole (element formats only).
    ``out``: an array of x's shape and the codes' dtype to write the codes into (any strides;
    it is returned, as numpy's ``out=`` is); for an element format and a C-contiguous ``out``
    that does not overlap x no other array is allocated.  Element formats only.

    ``fmt`` may be a scaled format (a :class:`fmtlab.scaled.ScaledFormat` or its name, e.g.
    ``"mxfp8_e4m3"``): the result is then a :class:`fmtlab.scaled.ScaledCodes` (element codes,
    scale codes, tensor scale), ``stats=True`` adds a :class:`fmtlab.scaled.ScaledStats`, and
    ``saturate`` must be None or True (scaled elements always saturate).
    """
    index_offset = _checked_offset(index_offset)
    scaled = _scaled_or_none(fmt)
    if scaled is not None:
        if out is not None:
            raise TypeError(f"out= is not supported for the scaled format {scaled}: its result is a ScaledCodes "
                            "(element codes, scale codes, tensor scale), not one array")
        _no_offset_for_scaled(index_offset, scaled)
        array, _ = _as_float_array(x)
        request = _scaled_request(rounding, saturate, seed, sr_bits, sr_rule)
        return _scaled().encode_array(array, scaled, request, stats)
    fmt = as_format(fmt)
    if isinstance(fmt, IntFormat):
        result = _integer_codec().encode(x, fmt, rounding, saturate, seed, sr_bits, sr_rule, stats, index_offset)
        return result if out is None else _into(out, result, stats)
    c_rounding = _c.c_rounding(_c.rounding_request(rounding, saturate, seed, sr_bits, sr_rule))
    array, scalar = _as_float_array(x)
    out = _checked_out(out, array.shape, fmt.code_dtype)
    direct = out is not None and _direct(out, array)
    codes = out if direct else np.empty(array.shape, dtype=fmt.code_dtype)
    c_stats = ffi.new("fl_stats *")
    function, value_type = _c.float_entry("encode", array.dtype)
    _c.check_status(function(_c.pointer(array, value_type), array.size, _c.c_format(fmt), c_rounding,
                             _c.pointer(codes, "void"), codes.itemsize, index_offset, c_stats), "encode")
    if out is not None:
        if not direct:
            out[...] = codes
        return (out, _stats_from(c_stats, array.size)) if stats else out
    result = codes[()] if scalar else codes
    return (result, _stats_from(c_stats, array.size)) if stats else result


def _as_code_array(codes, fmt):
    """(array, was_scalar) of decode's codes: integers of either byte order; a Python int of any
    size is checked against the format's codes first (beyond int64 numpy would make it an object);
    bools are TypeError, as in encode and quantize."""
    if isinstance(codes, (bool, np.bool_)) or (isinstance(codes, np.ndarray) and codes.dtype.kind == "b"):
        raise TypeError(f"codes={codes!r} is a bool: codes are unsigned integers ({fmt.code_dtype} for {fmt})")
    if isinstance(codes, numbers.Integral) and not isinstance(codes, np.generic):
        if not 0 <= int(codes) < 1 << fmt.bits:
            raise ValueError(f"codes has the value {int(codes)}, outside the {fmt.bits}-bit codes of {fmt} "
                             f"(0..{(1 << fmt.bits) - 1})")
        return np.array(int(codes), dtype=fmt.code_dtype), True
    return np.asarray(codes), np.ndim(codes) == 0 and not isinstance(codes, np.ndarray)


def decode(codes, fmt=None):
    """Values of ``codes`` in ``fmt``: float32 when every value of the format is exact in float32
    (its largest value and its smallest step, 2^-149 or above: fmtlab._dtypes.exact_in_float32),
    else float64.  Codes wider than the format raise ValueError.  A NaN code of a format with
    NaN codes of both signs (ieee, fn) gives a NaN of the code's sign, else +NaN.

    For a scaled format, ``codes`` is the :class:`fmtlab.scaled.ScaledCodes` that :func:`encode`
    returned (``fmt`` may then be left out); the values are float64, exact.
    """
    scaled_module = _scaled()
    if isinstance(codes, scaled_module.ScaledCodes):
        return scaled_module.decode_codes(codes, fmt)
    if fmt is None:
        raise TypeError("decode() needs fmt, the format of the codes (only a ScaledCodes carries its own)")
    if _scaled_or_none(fmt) is not None:
        raise TypeError(f"fmt={fmt} is a scaled format: decode the ScaledCodes that fl.encode returned for it "
                        "(it carries the scales), not bare element codes")
    fmt = as_format(fmt)
    array, scalar = _as_code_array(codes, fmt)
    if array.dtype.kind not in "ui":
        raise TypeError(f"codes has dtype {array.dtype}: codes are unsigned integers "
                        f"({fmt.code_dtype} for {fmt})")
    if array.size and (array.min() < 0 or int(array.max()) >> fmt.bits):
        bad = int(array.max()) if array.max() >> fmt.bits else int(array.min())
        raise ValueError(f"codes has the value {bad}, outside the {fmt.bits}-bit codes of {fmt} "
                         f"(0..{(1 << fmt.bits) - 1})")
    array = np.ascontiguousarray(array.astype(fmt.code_dtype, copy=False)).reshape(array.shape)
    if isinstance(fmt, IntFormat):
        out = _integer_codec().decode(array, fmt)
        return out[()] if scalar else out
    out = np.empty(array.shape, dtype=fmt.decode_dtype)
    function, value_type = _c.float_entry("decode", out.dtype)
    _c.check_status(function(_c.pointer(array, "void"), array.itemsize, array.size, _c.c_format(fmt),
                             _c.pointer(out, value_type)), "decode")
    return out[()] if scalar else out


def quantize(x, fmt, rounding="nearest_even", *, saturate=None, seed=None, sr_bits=None, sr_rule="truncate",
             stats=False, index_offset=0, out=None):
    """Round x to ``fmt`` and return the rounded values in x's own dtype (float32 or float64).

    Equivalent to ``decode(encode(x, ...), fmt).astype(x.dtype)`` but fused in C.  For a
    float32 input and a format not exact in float32 (e.g. a 10-bit exponent), the value is
    rounded once more to float32 by the final conversion, like any cast; use float64 input
    to avoid that.

    For a scaled format (see :func:`encode`) the result is decode(encode(x)) in x's dtype, with
    x's shape: fake quantization, block scales included.  ``index_offset``: as for :func:`encode`.

    ``out``: an array of x's shape and the result's dtype to write the result into (any strides;
    ``out=x`` rounds in place); it is returned, as numpy's ``out=`` is.  For an element format,
    float32/float64 x and a C-contiguous ``out`` that does not overlap x, nothing else is allocated:
    a fresh float32 result costs the kernel's zeroing of its pages, about as much as the rounding
    itself on large arrays (docs/performance.md), which ``out`` saves when a buffer is reused.
    """
    index_offset = _checked_offset(index_offset)
    scaled = _scaled_or_none(fmt)
    if scaled is not None:
        _no_offset_for_scaled(index_offset, scaled)
        if out is not None:
            result = quantize(x, scaled, rounding, saturate=saturate, seed=seed, sr_bits=sr_bits, sr_rule=sr_rule,
                              stats=stats)
            return _into(out, result, stats)
        array, scalar = _as_float_array(x)
        request = _scaled_request(rounding, saturate, seed, sr_bits, sr_rule)
        result = _scaled().quantize_array(array, scaled, request, stats)
        out = result[0] if stats else result
        original_dtype = np.asarray(x).dtype
        if original_dtype != out.dtype and is_narrow_float(original_dtype):
            out = out.astype(original_dtype)  # float16/ml_dtypes input: back to its own dtype
        out = out[()] if scalar else out
        return (out, result[1]) if stats else out
    fmt = as_format(fmt)
    if isinstance(fmt, IntFormat):
        result = _integer_codec().quantize(x, fmt, rounding, saturate, seed, sr_bits, sr_rule, stats, index_offset)
        return result if out is None else _into(out, result, stats)
    c_rounding = _c.c_rounding(_c.rounding_request(rounding, saturate, seed, sr_bits, sr_rule))
    array, scalar = _as_float_array(x)
    original_dtype = np.asarray(x).dtype
    if original_dtype.kind == "f":
        original_dtype = original_dtype.newbyteorder("=")
    narrow = original_dtype != array.dtype and is_narrow_float(original_dtype)
    given = _checked_out(out, array.shape, original_dtype if narrow else array.dtype)
    direct = given is not None and not narrow and _direct(given, array)
    values = given if direct else np.empty_like(array)
    c_stats = ffi.new("fl_stats *")
    function, value_type = _c.float_entry("quantize", array.dtype)
    _c.check_status(function(_c.pointer(array, value_type), array.size, _c.c_format(fmt), c_rounding,
                             _c.pointer(values, value_type), index_offset, c_stats), "quantize")
    if narrow:
        values = values.astype(original_dtype)  # float16/ml_dtypes input: back to its own dtype
    if given is not None:
        if not direct:
            given[...] = values
        return (given, _stats_from(c_stats, array.size)) if stats else given
    result = values[()] if scalar else values
    return (result, _stats_from(c_stats, array.size)) if stats else result


def to_ml_dtypes(codes, fmt):
    """View ``codes`` as the matching ml_dtypes (or numpy) array, without copying."""
    fmt = as_format(fmt)
    if fmt.ml_dtype is None:
        raise ValueError(f"fmt={fmt} has no ml_dtypes equivalent; formats that have one: "
                         f"{', '.join(ml_dtypes_presets())}")
    array = np.asarray(codes)
    if array.dtype != fmt.code_dtype:
        raise TypeError(f"codes has dtype {array.dtype}; codes of {fmt} are {fmt.code_dtype}")
    if fmt.ml_dtype.itemsize != array.itemsize:
        raise ValueError(f"{fmt} codes are {array.itemsize} bytes but {fmt.ml_dtype} is {fmt.ml_dtype.itemsize}")
    return array.view(fmt.ml_dtype)
