"""The statistics of one piece at many biases of one element format in one C call (docs/sweep.md,
"The bias axis in one pass"; csrc/bias_axis.c holds the derivation and does the work).

Changing the bias of a format shifts its exponent window and nothing else, so an element whose
binade is interior under several biases (at least one above the lowest normal binade, at least
one below the top one) rounds to the same value under each of them, in every rounding mode
(stochastic rounding too: its draw is keyed by the element's global index and compared with the
discarded fraction, which does not depend on the bias).  The C core sorts the elements by binade
once, evaluates each interior binade once, derives the saturated binades (q = +-max) and the
binades known to round to zero from exact per-binade integer sums, and evaluates only the rest
(each bias's edge) element by element; the statistics of disjoint sets merge exactly, so every
bias's statistics equal one fused pass at that bias, bit for bit.
"""
import dataclasses
import functools

import numpy as np

from . import _c
from .formats import Format

__all__ = ["bias_axis_statistics", "values_dtype"]


def _fields_but_bias(fmt) -> tuple:
    return tuple(getattr(fmt, field.name) for field in dataclasses.fields(fmt) if field.name != "bias")


@functools.lru_cache(maxsize=4096)
def values_dtype(fmt):
    """``fmt.decode_dtype`` (float32 when every value of the format is exact in float32), cached: a
    sweep asks it for every bias of every piece."""
    return fmt.decode_dtype


@functools.lru_cache(maxsize=4096)
def _constants(fmt) -> tuple:
    """(fl_format *, max, min_normal, fields but the bias) of a format: computed once (max and
    min_normal come from exact rationals), reused by every piece of a sweep."""
    return _c.c_format(fmt), float(fmt.max), float(fmt.min_normal), _fields_but_bias(fmt)


def bias_axis_statistics(source, formats, request, index_offset: int, signal: int) -> list:
    """``[statistics of source quantized to fmt for fmt in formats]``: for each format the dict of
    :func:`fmtlab.metrics.exact_statistics` (counts, maxima, exact sums; ``signal`` is the
    piece's exact sum of x^2 over its finite inputs), equal to what the fused kernel
    (``fl_sweep_evaluate_f32`` / ``_f64``) gives for ``(source, fmt, request, index_offset)``.

    ``source``: the piece's values, float32 or float64 (the fused kernel's input for these
    formats); ``formats``: :class:`fmtlab.formats.Format` s differing in their bias only;
    ``request``: a checked :class:`fmtlab._c.RoundingRequest` (any mode, stochastic variants
    included); ``index_offset``: the global index of ``source[0]`` (the stochastic key)."""
    source = np.ascontiguousarray(source).reshape(-1)
    if source.dtype not in (np.float32, np.float64):
        raise TypeError(f"source has dtype {source.dtype}: float32 or float64 values")
    formats = list(formats)
    if not formats:
        return []
    for fmt in formats:
        if type(fmt) is not Format:
            raise TypeError(f"formats holds {fmt!r} ({type(fmt).__name__}): element formats (fmtlab.formats.Format)")
    constants = [_constants(fmt) for fmt in formats]
    for fmt, (_struct, _max, _min_normal, fields) in zip(formats, constants):
        if fields != constants[0][3]:
            raise ValueError(f"formats holds {fmt} and {formats[0]}: formats that differ in their bias only")
    count = len(formats)
    structs = _c.ffi.new("fl_format[]", count)
    for index, (struct, _max, _min_normal, _fields) in enumerate(constants):
        structs[index] = struct[0]  # a copy into the array
    maxima = _c.ffi.new("double[]", [entry[1] for entry in constants])
    min_normals = _c.ffi.new("double[]", [entry[2] for entry in constants])
    stats = _c.ffi.new("fl_sweep_stats[]", count)
    function, value_type = _c.float_entry("sweep_evaluate_biases", source.dtype)
    _c.check_status(function(_c.pointer(source, value_type), source.size, structs, count, _c.c_rounding(request),
                             int(index_offset), maxima, min_normals, stats), "bias-axis evaluation")
    return [_c.sweep_statistics(stats[index], signal) for index in range(count)]
