"""Which numpy dtypes hold floating-point values that fmtlab reads, and how they widen.

fmtlab's C core reads float32 and float64.  float16 and every ml_dtypes float (bfloat16,
the FP8/FP6/FP4 types, float8_e8m0fnu) widen to float32 exactly, so they are accepted and
widened first.  This module is the one place that recognises them.
"""
from __future__ import annotations

import numpy as np

__all__ = ["is_ml_dtypes_float", "is_narrow_float", "widen_narrow_float", "native_byte_order"]


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
    """float16 or an ml_dtypes float: a float narrower than float32 that widens to it exactly."""
    dtype = np.dtype(dtype)
    return dtype == np.float16 or is_ml_dtypes_float(dtype)


def widen_narrow_float(array: np.ndarray) -> np.ndarray:
    """``array`` as float32 when it is a narrow float (exact), otherwise unchanged."""
    return array.astype(np.float32) if is_narrow_float(array.dtype) else array


def native_byte_order(array: np.ndarray) -> np.ndarray:
    """``array`` in the machine's byte order (a copy only when it is not): the C core reads
    native floats, so a big-endian ``>f4`` array read as is would give wrong values."""
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))
