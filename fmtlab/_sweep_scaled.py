"""Scaled formats in a sweep, on row-range pieces of a tensor (fmtlab.sweep's scaled branch).

A scaled format's value of an element depends on its block (the block's amax) and, for some,
on the whole tensor: NVFP4's FP32 tensor scale T (from the tensor's amax), the one scale of
``block="tensor"`` (fp8_tensor) and the one bias of rule ``"bias"`` (``cfloat8_1_4_3:bias=auto``).
So a piece of a tensor gives exactly the values the whole tensor's encode gives its elements when

* the piece holds whole blocks: its rows (of the tensor's first axis) are a multiple of
  :func:`row_quantum` (1 for blocks along the last axis of a tensor of 2 or more dimensions; R for
  R x C tiles on a matrix; the block size for blocks along the first axis, as on a 1-D tensor);
* what depends on the whole tensor is given, from the sweep's first pass over it (the scan):
  ``tensor_amax`` = max |x| with NaN and Inf counted (:func:`tensor_amax`, NaN when the tensor
  holds a NaN: then NVFP4's T and fp8_tensor's scale are NaN, as for the whole tensor) and the
  finite amax (rule "bias");
* stochastic rounding draws at the elements' global indices (the piece's offset):
  ``fmtlab.scaled.encode_piece`` passes both to the C core (``fl_scaled_encode_piece_*``).

The piece's metrics are then the mergeable statistics of element formats
(``fmtlab.sweep.piece_statistics``) of its exact values q = decode(encode(x)), with the two
counts that are relative to each block's scale S (fmtlab.sweep.scaled_metrics): overflow =
#{i : |element_i| = element.max and |x_i| > |q_i|} (the elements above element.max * S) and
subnormal = #{i : q_i finite, 0 < |element_i| < element.min_normal}.  Merged over the pieces they
give, bit for bit, the metrics of the tensor evaluated as one piece, whatever the cut.
"""
from __future__ import annotations

import math

import numpy as np

from . import _c
from .codec import decode
from .scaled import BIAS_RULE, ScaledFormat, encode_piece, piece_arguments

__all__ = ["row_quantum", "row_ranges", "tensor_amax", "merge_tensor_amax", "scaled_storage", "sub_pieces",
           "quantize_piece", "scaled_counts", "rounding_note", "fused_scaled_statistics", "bias_rule_format"]


def row_quantum(fmt: ScaledFormat, shape) -> int:
    """The rows (of the first axis) that every piece of a tensor of ``shape`` must be a multiple
    of, so that it holds whole blocks of ``fmt`` (the last piece may be shorter: the tensor ends).

    1 when a block never spans two indices of the first axis: blocks along another axis,
    tiles over the last two axes of a tensor of 3 or more dimensions, one scale per tensor or
    rule "bias" (their one scale comes from the tensor's amax, given).  Otherwise the block's
    extent along the first axis: R for R x C tiles on a matrix, the block size K for 1-D blocks
    along the first axis (a 1-D tensor), all rows for ``block="channel"`` there."""
    if fmt.rule == BIAS_RULE or fmt.block == "tensor" or len(shape) == 0:
        return 1
    if isinstance(fmt.block, tuple):
        return fmt.block[0] if len(shape) == 2 else 1
    if fmt.axis % len(shape) != 0:
        return 1
    return max(1, shape[0]) if fmt.block == "channel" else fmt.block


def row_ranges(rows: int, row_size: int, chunk: int, quantum: int = 1, align: int = 1) -> list:
    """The (start, stop) row ranges of a tensor of ``rows`` rows of ``row_size`` elements: at most
    ``chunk`` elements each, in whole multiples of ``quantum`` rows (rounded up to ``quantum``
    rows when a chunk holds fewer), and in multiples of ``align`` rows too where the chunk allows
    (the sweep's sum blocks; the results are the same either way)."""
    per_task = max(1, chunk // max(1, row_size))
    step = quantum * align // math.gcd(quantum, align)
    if per_task >= step:
        per_task -= per_task % step
    elif per_task >= quantum:
        per_task -= per_task % quantum
    else:
        per_task = quantum
    return [(start, min(rows, start + per_task)) for start in range(0, rows, per_task)]


def rounding_note(spec: str, quantum: int, chunk: int, names) -> str:
    """The note of a chunk smaller than one row of blocks (``quantum`` rows) of the tensors
    ``names``: their pieces are rounded up to it."""
    names = list(names)
    shown = ", ".join(repr(name) for name in names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    return (f"{spec}: chunk={chunk} elements is less than one row of its blocks ({quantum} rows) of "
            f"{len(names)} tensor(s) {shown}; their pieces are rounded up to whole blocks (the results do not "
            "depend on it)")


def tensor_amax(x: np.ndarray) -> float:
    """max |x| counting every element: NaN when one is NaN, +Inf when one is infinite (and none is
    NaN), 0 for an empty x: the amax the whole tensor's own scaled encode finds."""
    if x.size == 0:
        return 0.0
    with np.errstate(invalid="ignore"):
        return float(np.max(np.abs(x)))


def merge_tensor_amax(first: float, second: float) -> float:
    """:func:`tensor_amax` of two pieces together: NaN wins, then the larger."""
    if math.isnan(first) or math.isnan(second):
        return math.nan
    return max(first, second)


def scaled_storage(fmt: ScaledFormat, shape) -> dict:
    """``scales`` (scale codes stored for a tensor of ``shape``) and ``bits_per_value`` =
    element bits + (scales x scale bits + tensor-scale bits) / n (NaN for an empty tensor)."""
    n = math.prod(shape)
    scales = math.prod(fmt.scales_shape(tuple(shape)))
    scale_bits = scales * fmt.scale.bits + (fmt.tensor_scale.bits if fmt.tensor_scale is not None else 0)
    return {"scales": int(scales), "bits_per_value": fmt.element.bits + scale_bits / n if n else math.nan}


def sub_pieces(shape, quantum: int, elements: int) -> list:
    """Row ranges of a piece of ``shape`` evaluated one at a time, so that the float64
    temporaries stay near ``elements`` values: whole multiples of ``quantum`` rows (at least one)."""
    rows = shape[0] if shape else 1
    row_size = math.prod(shape[1:]) if shape else 1
    per = max(quantum, (max(1, elements // max(1, row_size)) // quantum) * quantum)
    return [(start, min(rows, start + per)) for start in range(0, rows, per)]


def quantize_piece(x: np.ndarray, shape, fmt: ScaledFormat, rounding: str, seed: int, offset: int,
                   amaxes) -> tuple:
    """``(q, element_magnitudes)`` of the piece ``x`` (flat, C order, float32 or float64) of shape
    ``shape``, whose first element is element ``offset`` of its tensor: q = decode(encode(x)) in
    float64 (exact) as the whole tensor's encode gives these elements, and |element value| of
    each (``fmt.element`` at its own bias).  ``amaxes`` = (tensor_amax, finite amax) of the tensor
    (the scan's; a NaN finite amax -- no finite element -- counts as 0)."""
    if x.size == 0:
        return np.zeros(0), np.zeros(0)
    whole_amax, finite = amaxes
    request = _c.rounding_request(rounding, True, seed, None, "truncate")
    codes = encode_piece(np.ascontiguousarray(x).reshape(shape), fmt, request, int(offset), whole_amax,
                         0.0 if math.isnan(finite) else finite)
    quantized = decode(codes).reshape(-1)
    magnitudes = np.abs(decode(codes.codes, fmt.element).reshape(-1))
    return quantized, magnitudes


def scaled_counts(abs_x: np.ndarray, quantized: np.ndarray, magnitudes: np.ndarray, fmt: ScaledFormat) -> tuple:
    """``(overflow, subnormal)`` of a piece: #{i : |element_i| = element.max and |x_i| > |q_i|}
    (the elements above element.max * S, Inf inputs included, none of a NaN block) and
    #{i : q_i finite, 0 < |element_i| < element.min_normal}."""
    element = fmt.element
    with np.errstate(invalid="ignore"):
        saturated = (magnitudes == element.max) & (abs_x > np.abs(quantized))
        subnormal = (magnitudes > 0) & (magnitudes < element.min_normal) & np.isfinite(quantized)
    return int(np.count_nonzero(saturated)), int(np.count_nonzero(subnormal))


def fused_scaled_statistics(x: np.ndarray, shape, fmt: ScaledFormat, rounding: str, seed: int, offset: int,
                            whole_amax: float, signal: int) -> dict:
    """The mergeable statistics (fmtlab.metrics.exact_statistics' dict) of the piece ``x`` (flat, C
    order, float32 or float64, of ``shape``, its first element element ``offset`` of the tensor)
    quantized to ``fmt`` (not of rule "bias": :func:`bias_rule_format`), equal to those of
    :func:`quantize_piece`'s q with overflow and below_normal relative to each block's scale
    (:func:`scaled_counts`: below_normal = zeros_out + subnormal element codes), in one C pass
    without an array of q or of codes (csrc/sweep_scaled.c, fl_sweep_scaled_evaluate_f32 / _f64).
    ``whole_amax``: the tensor's :func:`tensor_amax`; ``signal``: the piece's exact sum of x^2
    over its finite elements (fmtlab.metrics.exact_signal)."""
    array = np.ascontiguousarray(x).reshape(shape)
    layout, c_format, piece = piece_arguments(array, fmt, offset, whole_amax)
    request = _c.rounding_request(rounding, True, seed, None, "truncate")
    stats = _c.ffi.new("fl_sweep_stats *")
    function, value_type = _c.float_entry("sweep_scaled_evaluate", array.dtype)
    _c.check_status(function(_c.pointer(array, value_type), layout, c_format, _c.c_rounding(request), piece,
                             float(fmt.element.max), float(fmt.element.min_normal), stats), "scaled sweep evaluation")
    return _c.sweep_statistics(stats, signal)


def bias_rule_format(fmt: ScaledFormat, finite_amax: float):
    """The element format a scaled format of rule "bias" (``cfloat8_1_4_3:bias=auto``) encodes a
    tensor with: its element at the amax rule's bias of the tensor's finite amax (NaN, no finite
    element: 0).  Its statistics are those of that element format, saturating (encode_piece), and
    its two scale-relative counts are the element format's own: the saturated elements are those
    above the biased max (|x| > max, Inf included, NaN not) and the subnormal element codes those
    with 0 < |q| < the biased min_normal."""
    from .formats import amax_bias

    return fmt.element.replace(bias=amax_bias(fmt.element, 0.0 if math.isnan(finite_amax) else finite_amax))
