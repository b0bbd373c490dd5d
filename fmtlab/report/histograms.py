"""Histograms of log2|x| per tensor, for the report's per-tensor detail.

Bins are the integer binades: bin e holds the finite nonzero x with 2^e <= |x| < 2^(e+1),
i.e. e = floor(log2|x|), computed exactly from the binary exponent (the exponent field of a
normal value; ``np.frexp`` for a subnormal: |x| = m * 2^k with 0.5 <= m < 1, so
floor(log2|x|) = k - 1).  Zeros and
non-finite values are counted apart.  A tensor is read a piece of whole rows at a time (at
most ``chunk`` values), so memory follows the chunk, not the tensor; the counts are sums, so
they do not depend on the chunk.

``histograms.json`` (:data:`HISTOGRAM_FILE`) holds ``{"tensors": {name: histogram}}`` with
each histogram ``{"low": e_min, "counts": [c_emin, ..., c_emax], "zeros": z, "nonfinite": k,
"n": n}`` (``low`` None and ``counts`` empty when no value is finite and nonzero).
"""
from __future__ import annotations

import json
import math

import numpy as np

from .._files import write_text

__all__ = ["HISTOGRAM_FILE", "log2_histogram", "merge_histograms", "piece_histogram", "tensor_histograms", "write_histograms",
           "read_histograms"]

HISTOGRAM_FILE = "histograms.json"


# (unsigned view, mantissa bits, exponent-field mask, exponent bias) of the IEEE binary formats
_LAYOUTS = {np.dtype(np.float32): (np.uint32, 23, 0xFF, 127), np.dtype(np.float64): (np.uint64, 52, 0x7FF, 1023)}


def log2_histogram(values) -> dict:
    """The histogram of floor(log2|x|) over the finite nonzero values of ``values`` (see the
    module docstring for the layout).

    For a normal float32/float64 value floor(log2|x|) is its exponent field minus the bias, so
    the normal values are counted with one bincount of the fields (no logarithm, no frexp); the
    field's all-zeros value holds the zeros and the subnormals, which are few and go through
    ``np.frexp``, and its all-ones value the Inf and NaN.  Other dtypes are widened to float64.
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


def piece_histogram(piece, threads=None) -> dict:
    """The histogram of one ``fmtlab._inputs.TensorPiece`` (a task of :func:`tensor_histograms`;
    ``threads`` is the pool's argument, unused: numpy only)."""
    return log2_histogram(piece.read())


def tensor_histograms(sources, chunk: int, progress=None, *, jobs=1, executor=None) -> dict:
    """``{name: histogram}`` for each ``fmtlab._inputs.TensorSource``, read ``chunk`` values (whole
    rows, at least one) at a time, the pieces histogrammed on ``jobs`` worker processes (or
    ``executor``) by fmtlab's one pool and added up in order; ``progress(done, total)`` counts
    values.  The counts are sums, so they do not depend on ``chunk``, ``jobs`` or the executor."""
    from .._pool import plan, run_tasks

    pieces, owners = [], []
    for source in sources:
        rows_per_piece = max(1, chunk // max(1, source.row_size))
        for start in range(0, source.rows, rows_per_piece):
            pieces.append(source.piece(start, min(source.rows, start + rows_per_piece)))
            owners.append(source.name)
    inline, workers = plan(executor, jobs, sum(source.size for source in sources))
    results = run_tasks(piece_histogram, [(piece,) for piece in pieces], executor, inline, workers, progress,
                        labels=[f"histogram of {owner}" for owner in owners],
                        units=[max(1, math.prod(piece.shape)) for piece in pieces])
    histograms = {source.name: log2_histogram(np.zeros(0)) for source in sources}
    for owner, histogram in zip(owners, results):
        histograms[owner] = merge_histograms(histograms[owner], histogram)
    return histograms


def write_histograms(path, histograms: dict):
    """Write ``histograms`` as ``{"tensors": histograms}`` JSON, atomically; return the path."""
    return write_text(path, json.dumps({"tensors": histograms}, separators=(",", ":")) + "\n")


def read_histograms(path) -> dict:
    """The ``{name: histogram}`` of a histograms.json; {} when the file does not exist."""
    try:
        with open(path) as handle:
            return json.load(handle)["tensors"]
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{str(path)!r} is not a histograms file of fmtlab ({error})") from None
