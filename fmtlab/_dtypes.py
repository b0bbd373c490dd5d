"""Which numpy dtypes hold floating-point values that fmtlab reads, and how they widen.

fmtlab's C core reads float32 and float64.  float16 and every ml_dtypes float (bfloat16,
the FP8/FP6/FP4 types, float8_e8m0fnu) widen to float32 exactly, so they are accepted and
widened first.  This module is the one place that recognises them, and the one coercion of
float inputs (:func:`as_float_input`) that encode, quantize and matmul share.
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["is_ml_dtypes_float", "is_narrow_float", "widen_narrow_float", "native_byte_order",
           "as_float_input", "exact_in_float32"]


def is_ml_dtypes_float(dtype) -> bool:
    """Whether ``dtype`` is one of ml_dtypes' floating-point types.

    ml_dtypes' types report ``dtype.kind`` "V" (most) or "f" (float8_e5m2), so they are
    recognised by their scalar type's module and their name (its integer types, int4 and
    uint4, and its complex types are not floats).
    """
    dtype = np.dtype(dtype)
    module = getattr(dtype.type, "__module__", "") or ""
    return module.startswith("ml_dtypes") and dtype.name.startswith(("float", "bfloat"))


def is_narrow_float(dtype) -> bool:
    """float16 (of either byte order) or an ml_dtypes float: a float narrower than float32 that
    widens to it exactly (``astype(np.float32)`` reads a big-endian one by value)."""
    dtype = np.dtype(dtype)
    return (dtype.kind == "f" and dtype.newbyteorder("=") == np.float16) or is_ml_dtypes_float(dtype)


def widen_narrow_float(array: np.ndarray) -> np.ndarray:
    """``array`` as float32 when it is a narrow float (exact), otherwise unchanged."""
    return array.astype(np.float32) if is_narrow_float(array.dtype) else array


def native_byte_order(array: np.ndarray) -> np.ndarray:
    """``array`` in the machine's byte order (a copy only when it is not): the C core reads
    native floats, so a big-endian ``>f4`` array read as is would give wrong values."""
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_)) or (isinstance(value, np.ndarray) and value.dtype.kind == "b")


def as_float_input(x, argument: str = "x", *, operation: str = "fmtlab"):
    """The one coercion of float inputs: ``(array, was_scalar)``, the array float32 or float64 in
    the machine's byte order (not necessarily contiguous), was_scalar True for a Python or
    numpy scalar (not a 0-d array).

    * float32 and float64 arrays of either byte order are taken as they are (their values);
    * float16 and ml_dtypes floats, of either byte order, widen exactly to float32;
    * an int scalar (Python int of any size, numpy integer) is taken as float64 when its value
      is exactly a float64, else ValueError naming ``argument`` and the value;
    * bools (Python, numpy, bool arrays) are TypeError: True is not a number here, and the
      same answer is given by every function;
    * anything else (integer arrays, complex, object, strings, long double) is TypeError.
    """
    if _is_bool(x) or (isinstance(x, np.generic) and np.dtype(type(x)).kind == "b"):
        raise TypeError(f"{argument}={x!r} is a bool: {operation} takes float values (float32, float64, "
                        "float16 or ml_dtypes floats, or a Python float/int); convert it explicitly")
    if isinstance(x, numbers.Integral) and not isinstance(x, np.ndarray):
        value = int(x)
        try:
            widened = float(value)
        except OverflowError:
            widened = None
        if widened is None or int(widened) != value:
            raise ValueError(f"{argument}={value!r} is not exactly representable as float64")
        return np.array(widened, dtype=np.float64), True
    scalar = np.ndim(x) == 0 and not isinstance(x, np.ndarray)
    array = np.asarray(x)
    if array.dtype.kind == "b":
        raise TypeError(f"{argument} has dtype bool: {operation} takes float values; convert it explicitly")
    if array.dtype.kind == "f" or is_ml_dtypes_float(array.dtype):
        array = native_byte_order(array)
    if is_narrow_float(array.dtype):
        array = widen_narrow_float(array)  # float16 and ml_dtypes floats widen exactly to float32
    elif array.dtype.kind != "f" or array.dtype.itemsize not in (4, 8):
        raise TypeError(f"{argument} has dtype {array.dtype}: {operation} takes float arrays (float32, "
                        "float64, or float16/ml_dtypes floats which widen exactly); convert integers "
                        "explicitly")
    return array, scalar


def exact_in_float32(fmt) -> bool:
    """Whether every finite value of ``fmt`` is exactly a float32.

    A value of a binade with exponent e and m fraction bits is k * 2^(e - m), k < 2^(m+1), and
    float32 holds every k * 2^q with k < 2^24 and q >= -149 up to FLT_MAX.  So: m <= 23,
    emax <= 127, and the smallest step of the format, min(smallest positive value, 2^(emin - m)),
    at least 2^-149.  (The step 2^(emin - m) of the lowest normal binade matters on its own for
    formats without subnormals: subnormals="none" has min normal 2^emin but steps of 2^(emin - m).)
    """
    smallest_step = min(fmt.min_subnormal_exponent, fmt.emin - fmt.man_bits)
    return fmt.man_bits <= 23 and fmt.emax <= 127 and smallest_step >= -149
