"""Exact integer binade histograms: how many values of a tensor lie in each [2^e, 2^(e+1)).

Bin e holds the finite nonzero x with 2^e <= |x| < 2^(e+1), i.e. e = floor(log2|x|),
computed exactly from the binary exponent (the exponent field of a normal value; ``np.frexp``
for a subnormal: |x| = m * 2^k with 0.5 <= m < 1, so floor(log2|x|) = k - 1).  Zeros and
non-finite values are counted apart.  The counts are integers, so the histogram of a tensor
is the bin-by-bin sum of the histograms of any split of it into pieces
(:func:`merge_histograms`): the sweep gathers it in its scan pass (``fmtlab.sweep``), piece by
piece, and the result does not depend on the chunk, the jobs or the executor.

A histogram is ``{"low": e_min, "counts": [c_emin, ..., c_emax], "zeros": z, "nonfinite": k,
"n": n}`` (``low`` None and ``counts`` empty when no value is finite and nonzero; ``counts``
trimmed to the used binades).
"""
from __future__ import annotations

import numpy as np

__all__ = ["log2_histogram", "merge_histograms"]

# (unsigned view, mantissa bits, exponent-field mask, exponent bias) of the IEEE binary formats
_LAYOUTS = {np.dtype(np.float32): (np.uint32, 23, 0xFF, 127), np.dtype(np.float64): (np.uint64, 52, 0x7FF, 1023)}


def log2_histogram(values) -> dict:
    """The histogram of floor(log2|x|) over the finite nonzero values of ``values`` (see the
    module docstring for the layout).

    For a normal float32/float64 value floor(log2|x|) is its exponent field minus the bias, so
    the normal values are counted with one bincount of the fields (no logarithm, no frexp); the
    field's all-zeros value holds the zeros and the subnormals, which are few and go through
    ``np.frexp``, and its all-ones value the Inf and NaN.  Other dtypes are widened to float64
    (exactly: every float16/bfloat16 value is a float64 value).
    """
    x = np.asarray(values).reshape(-1)
    if x.dtype not in _LAYOUTS:
        x = x.astype(np.float64)
    unsigned, mantissa_bits, mask, bias = _LAYOUTS[x.dtype]
    fields = (np.ascontiguousarray(x).view(unsigned) >> unsigned(mantissa_bits)) & unsigned(mask)
    by_field = np.bincount(fields.astype(np.intp, copy=False), minlength=mask + 1)
    # binade e of a normal value = field - bias, for fields 1 .. mask - 1
    counts = np.zeros(mask + 1 + mantissa_bits, dtype=np.int64)  # index = e + bias + mantissa_bits
    counts[mantissa_bits + 1:mantissa_bits + mask] = by_field[1:mask]
    low_field = x[fields == 0]
    subnormal = low_field[low_field != 0]
    if subnormal.size:
        _mantissa, exponent = np.frexp(subnormal)
        counts += np.bincount(exponent.astype(np.intp) - 1 + bias + mantissa_bits, minlength=counts.size)
    used = np.flatnonzero(counts)
    histogram = {"low": None, "counts": [], "zeros": int(low_field.size - subnormal.size),
                 "nonfinite": int(by_field[mask]), "n": int(x.size)}
    if used.size:
        histogram["low"] = int(used[0]) - bias - mantissa_bits
        histogram["counts"] = [int(count) for count in counts[used[0]:used[-1] + 1]]
    return histogram


def merge_histograms(first: dict, second: dict) -> dict:
    """The histogram of two pieces' values together (counts added bin by bin)."""
    merged = {key: first[key] + second[key] for key in ("zeros", "nonfinite", "n")}
    parts = [histogram for histogram in (first, second) if histogram["counts"]]
    if not parts:
        return dict(merged, low=None, counts=[])
    low = min(histogram["low"] for histogram in parts)
    high = max(histogram["low"] + len(histogram["counts"]) for histogram in parts)
    counts = [0] * (high - low)
    for histogram in parts:
        for index, count in enumerate(histogram["counts"]):
            counts[histogram["low"] - low + index] += count
    return dict(merged, low=low, counts=counts)
