"""Exact integer binade histograms: how many values of a tensor lie in each [2^e, 2^(e+1)).

Bin e holds the finite nonzero x with 2^e <= |x| < 2^(e+1), i.e. e = floor(log2|x|),
computed exactly from the bits (the exponent field of a normal value; the bit width of the
significand of a subnormal one), in C (``csrc/scan.c``), in the same read that finds the amaxes.  Zeros and
non-finite values are counted apart.  The counts are integers, so the histogram of a tensor
is the bin-by-bin sum of the histograms of any split of it into pieces
(:func:`merge_histograms`): the sweep gathers it in its scan pass (``fmtlab.sweep``), piece by
piece, and the result does not depend on the chunk, the jobs or the executor.

A histogram is ``{"low": e_min, "counts": [c_emin, ..., c_emax], "zeros": z, "nonfinite": k,
"n": n}`` (``low`` None and ``counts`` empty when no value is finite and nonzero; ``counts``
trimmed to the used binades).
"""
from __future__ import annotations

import math

import numpy as np

from . import _c

__all__ = ["log2_histogram", "merge_histograms", "scan"]


def scan(values) -> dict:
    """One read of ``values`` (the sweep's scan pass, ``csrc/scan.c``): ``{"amax": max |x| over
    the finite x (NaN when none is finite), "tensor_amax": max |x| over every x (NaN when one is
    NaN, +Inf when one is infinite, 0 for no values), "histogram": :func:`log2_histogram`}``.

    The binade of a normal float32/float64 value is its exponent field minus the bias and that
    of a subnormal one the bit width of its significand less one, less 149 (float32) or 1074
    (float64): read off the bits, never a logarithm.  Other dtypes are widened to float64 first
    (exactly: every float16/bfloat16/integer value of up to 53 bits is a float64 value).
    """
    x = np.asarray(values).reshape(-1)
    if x.dtype == np.float32:
        entry, c_type = _c.lib.fl_scan_f32, "float"
    else:
        x = x.astype(np.float64, copy=False)
        entry, c_type = _c.lib.fl_scan_f64, "double"
    x = np.ascontiguousarray(x)
    stats = _c.ffi.new("fl_scan_stats *")
    stats.finite_amax = -1.0
    _c.check_status(entry(_c.pointer(x, c_type), x.size, stats), "scan")
    counts = np.frombuffer(_c.ffi.buffer(stats.binades), dtype=np.int64)
    used = np.flatnonzero(counts)
    histogram = {"low": None, "counts": [], "zeros": int(stats.zeros), "nonfinite": int(stats.nan + stats.inf),
                 "n": int(stats.n)}
    if used.size:
        histogram["low"] = int(used[0]) + _c.lib.FL_SCAN_LOWEST_BINADE
        histogram["counts"] = [int(count) for count in counts[used[0]:used[-1] + 1]]
    amax = float(stats.finite_amax) if stats.finite_amax >= 0 else math.nan
    if stats.nan:
        tensor_amax = math.nan
    elif stats.inf:
        tensor_amax = math.inf
    else:
        tensor_amax = amax if x.size else 0.0
    return {"amax": amax, "tensor_amax": tensor_amax, "histogram": histogram}


def log2_histogram(values) -> dict:
    """The histogram of floor(log2|x|) over the finite nonzero values of ``values`` (see the
    module docstring for the layout), from :func:`scan`."""
    return scan(values)["histogram"]


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
