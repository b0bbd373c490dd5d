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

Stochastic rounding with ``sr_bits=N`` follows the IEEE P3109 draft: with nu the
fraction of an ulp that rounding toward zero discards and R the top N bits of a
uniform 64-bit draw, round away iff floor(nu * 2^N) + R >= 2^N.  ``sr_bits=None``
compares nu with a uniform real U drawn 64 bits at a time (more words only when the
first ones tie), so the probability is exactly nu for any float32 or float64 input.
The draws come from a counter-based generator keyed by (seed, element index), so
the result never depends on the number of threads or on chunking.  In the gap that
``subnormals="tesla"`` leaves below min_normal, the ulp is not a power of two and
``sr_bits=None`` uses 32 bits there.

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

import numpy as np

from ._native_loader import ffi, lib
from .formats import Format, ROUNDINGS, format as _format_by_name

_MODE_CODES = {name: index for index, name in enumerate(ROUNDINGS)}
_SPECIALS_CODES = {"ieee": 0, "fn": 1, "fnuz": 2, "finite": 3}
_SUBNORMALS_CODES = {"ieee": 0, "tesla": 1, "none": 2}


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
    """Number of threads the C loops use (None: the OpenMP default). Results never depend on it."""
    if threads is None:
        lib.fl_set_threads(0)
        return
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ValueError(f"threads={threads!r} is not allowed: a positive int, or None for the default")
    lib.fl_set_threads(int(threads))


def get_threads() -> int:
    """Number of threads the C loops use now (the OpenMP default unless set_threads was called)."""
    return int(lib.fl_max_threads())


def _as_format(fmt) -> Format:
    if isinstance(fmt, Format):
        return fmt
    if isinstance(fmt, str):
        return _format_by_name(fmt)
    raise TypeError(f"fmt must be a Format or a format name, got {fmt!r} ({type(fmt).__name__})")


def _c_format(fmt: Format):
    c_format = ffi.new("fl_format *")
    c_format.exp_bits = fmt.exp_bits
    c_format.man_bits = fmt.man_bits
    c_format.bias = fmt.bias
    c_format.is_signed = int(fmt.signed)
    c_format.specials = _SPECIALS_CODES[fmt.specials]
    c_format.subnormals = _SUBNORMALS_CODES[fmt.subnormals]
    return c_format


def _c_rounding(rounding, saturate, seed, sr_bits):
    if not isinstance(rounding, str) or rounding not in _MODE_CODES:
        raise ValueError(f"rounding={rounding!r} is not allowed; choose one of {', '.join(ROUNDINGS)}")
    if saturate is not None and not isinstance(saturate, (bool, np.bool_)):
        raise TypeError(f"saturate must be None, True or False, got {saturate!r}")
    if sr_bits is not None:
        if isinstance(sr_bits, bool) or not isinstance(sr_bits, numbers.Integral) or not 1 <= sr_bits <= 32:
            raise ValueError(f"sr_bits={sr_bits!r} is not allowed: an int from 1 to 32, or None for exact")
    if seed is None:
        if rounding == "stochastic":
            # A fresh seed per call, as a user of numpy's global generator expects;
            # pass seed= to make stochastic rounding reproducible.
            seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
        else:
            seed = 0
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int or None, got {seed!r} ({type(seed).__name__})")
    c_rounding = ffi.new("fl_rounding *")
    c_rounding.mode = _MODE_CODES[rounding]
    c_rounding.saturate = int(bool(saturate))
    c_rounding.seed = int(seed) % (1 << 64)
    c_rounding.sr_bits = 0 if sr_bits is None else int(sr_bits)
    return c_rounding


def _as_float_array(x, argument="x"):
    """Return (contiguous float32/float64 array, was_scalar)."""
    scalar = np.ndim(x) == 0 and not isinstance(x, np.ndarray)
    array = np.asarray(x)
    if array.dtype.kind == "V" and _is_ml_dtypes_float(array.dtype):
        array = array.astype(np.float32)  # every ml_dtypes float widens exactly to float32
    elif array.dtype.kind == "V" or array.dtype == object:
        raise TypeError(f"{argument} has dtype {array.dtype}: fmtlab takes float32 or float64 values")
    if array.dtype.kind == "f" and array.dtype not in (np.float32, np.float64):
        # float16 and ml_dtypes floats: widening to float32 is exact.
        if array.dtype.itemsize > 8:
            raise TypeError(f"{argument} has dtype {array.dtype}: fmtlab takes float32 or float64 values")
        array = array.astype(np.float32)
    elif array.dtype.kind != "f":
        if scalar and array.dtype.kind in "iub":
            array = array.astype(np.float64)  # a Python int scalar: exact if it fits float64
            if isinstance(x, numbers.Integral) and int(array) != x:
                raise ValueError(f"{argument}={x!r} is not exactly representable as float64")
        else:
            raise TypeError(f"{argument} has dtype {array.dtype}: fmtlab takes float arrays (float32, "
                            "float64, or float16/ml_dtypes floats which widen exactly); convert integers "
                            "explicitly")
    # ascontiguousarray makes 0-d arrays 1-d; keep the caller's shape.
    return np.ascontiguousarray(array).reshape(array.shape), scalar


def _is_ml_dtypes_float(dtype) -> bool:
    try:
        import ml_dtypes
        ml_dtypes.finfo(dtype)
    except (ImportError, TypeError, ValueError, KeyError):
        return False
    return True


def _check(status, what):
    if status != 0:
        raise RuntimeError(f"fmtlab C core rejected {what} (status {status}); this is a bug, please report it")


def _stats_from(c_stats, total):
    return Stats(int(c_stats.invalid), int(c_stats.overflow), int(c_stats.underflow),
                 int(c_stats.denormal), int(c_stats.inexact), int(total))


def encode(x, fmt, rounding="nearest_even", *, saturate=None, seed=None, sr_bits=None, stats=False):
    """Round x to ``fmt`` and return its codes (uint8, uint16 or uint32 by the format's width).

    ``x``: float32 or float64 array (any shape and strides) or a Python float;
    float16 and ml_dtypes arrays are widened exactly first.  ``stats=True`` also
    returns a :class:`Stats`.  See the module docstring for the rounding rules.
    """
    fmt = _as_format(fmt)
    c_rounding = _c_rounding(rounding, saturate, seed, sr_bits)
    array, scalar = _as_float_array(x)
    codes = np.empty(array.shape, dtype=fmt.code_dtype)
    c_stats = ffi.new("fl_stats *")
    function = lib.fl_encode_f32 if array.dtype == np.float32 else lib.fl_encode_f64
    pointer_type = "float *" if array.dtype == np.float32 else "double *"
    _check(function(ffi.cast(pointer_type, array.ctypes.data), array.size, _c_format(fmt), c_rounding,
                    ffi.cast("void *", codes.ctypes.data), codes.itemsize, 0, c_stats), "encode")
    result = codes[()] if scalar else codes
    return (result, _stats_from(c_stats, array.size)) if stats else result


def decode(codes, fmt):
    """Values of ``codes`` in ``fmt``: float32 when every value of the format is exact in float32
    (``fmt.decode_dtype``), else float64.  Codes wider than the format raise ValueError."""
    fmt = _as_format(fmt)
    scalar = np.ndim(codes) == 0 and not isinstance(codes, np.ndarray)
    array = np.asarray(codes)
    if array.dtype.kind not in "ui":
        raise TypeError(f"codes has dtype {array.dtype}: codes are unsigned integers "
                        f"({fmt.code_dtype} for {fmt})")
    if array.size and (array.min() < 0 or int(array.max()) >> fmt.bits):
        bad = int(array.max()) if array.max() >> fmt.bits else int(array.min())
        raise ValueError(f"codes has the value {bad}, outside the {fmt.bits}-bit codes of {fmt} "
                         f"(0..{(1 << fmt.bits) - 1})")
    array = np.ascontiguousarray(array.astype(fmt.code_dtype, copy=False)).reshape(array.shape)
    out = np.empty(array.shape, dtype=fmt.decode_dtype)
    if out.dtype == np.float32:
        status = lib.fl_decode_f32(ffi.cast("void *", array.ctypes.data), array.itemsize, array.size,
                                   _c_format(fmt), ffi.cast("float *", out.ctypes.data))
    else:
        status = lib.fl_decode_f64(ffi.cast("void *", array.ctypes.data), array.itemsize, array.size,
                                   _c_format(fmt), ffi.cast("double *", out.ctypes.data))
    _check(status, "decode")
    return out[()] if scalar else out


def quantize(x, fmt, rounding="nearest_even", *, saturate=None, seed=None, sr_bits=None, stats=False):
    """Round x to ``fmt`` and return the rounded values in x's own dtype (float32 or float64).

    Equivalent to ``decode(encode(x, ...), fmt).astype(x.dtype)`` but fused in C.  For a
    float32 input and a format not exact in float32 (e.g. a 10-bit exponent), the value is
    rounded once more to float32 by the final conversion, like any cast; use float64 input
    to avoid that.
    """
    fmt = _as_format(fmt)
    c_rounding = _c_rounding(rounding, saturate, seed, sr_bits)
    original_dtype = np.asarray(x).dtype
    array, scalar = _as_float_array(x)
    out = np.empty_like(array)
    c_stats = ffi.new("fl_stats *")
    if array.dtype == np.float32:
        status = lib.fl_quantize_f32(ffi.cast("float *", array.ctypes.data), array.size, _c_format(fmt),
                                     c_rounding, ffi.cast("float *", out.ctypes.data), 0, c_stats)
    else:
        status = lib.fl_quantize_f64(ffi.cast("double *", array.ctypes.data), array.size, _c_format(fmt),
                                     c_rounding, ffi.cast("double *", out.ctypes.data), 0, c_stats)
    _check(status, "quantize")
    if original_dtype != out.dtype and (original_dtype.kind == "f" or _is_ml_dtypes_float(original_dtype)):
        out = out.astype(original_dtype)  # float16/ml_dtypes input: back to its own dtype
    result = out[()] if scalar else out
    return (result, _stats_from(c_stats, array.size)) if stats else result


def to_ml_dtypes(codes, fmt):
    """View ``codes`` as the matching ml_dtypes (or numpy) array, without copying."""
    fmt = _as_format(fmt)
    if fmt.ml_dtype is None:
        raise ValueError(f"fmt={fmt} has no ml_dtypes equivalent; formats that have one: "
                         "fp32, fp16, bf16, e4m3fn, e5m2, e4m3fnuz, e5m2fnuz, e4m3b11fnuz, e4m3, e3m4, "
                         "e2m3fn, e3m2fn, e2m1fn")
    array = np.asarray(codes)
    if array.dtype != fmt.code_dtype:
        raise TypeError(f"codes has dtype {array.dtype}; codes of {fmt} are {fmt.code_dtype}")
    if fmt.ml_dtype.itemsize != array.itemsize:
        raise ValueError(f"{fmt} codes are {array.itemsize} bytes but {fmt.ml_dtype} is {fmt.ml_dtype.itemsize}")
    return array.view(fmt.ml_dtype)
