"""Error metrics of a quantized tensor, computed in float64 from the exact values.

Notation: x_i are the n input values (float32 or float64, read exactly as float64), q_i the
quantized values (exact in float64: every fmtlab format is), e_i = q_i - x_i computed in
float64, and V = {i : x_i finite and q_i finite} the elements that carry a finite error.

==================  =================================================================================
sqnr_db             10 * log10( sum_V x_i^2 / sum_V e_i^2 ); +inf when every e_i in V is 0,
                    NaN when V is empty
rmse                sqrt( sum_V e_i^2 / |V| )
max_abs_err         max_V |e_i|
max_rel_err         max over i in V with x_i != 0 of |e_i| / |x_i|  (0 when there is none)
mean_err            sum_V e_i / |V|  (the bias of the rounding: ~0 for nearest and stochastic)
overflow_frac       #{i : |x_i| > fmt.max} / n       (+-Inf inputs count; NaN inputs do not)
underflow_frac      #{i : x_i finite, x_i != 0, q_i == 0} / n
subnormal_frac      #{i : q_i finite, 0 < |q_i| < fmt.min_normal} / n
nan_frac            #{i : q_i is NaN} / n
inf_frac            #{i : q_i is +-Inf} / n
nan_input_frac      #{i : x_i is NaN} / n
inf_input_frac      #{i : x_i is +-Inf} / n
==================  =================================================================================

Every ``*_frac`` is a fraction of all n elements.  Non-finite inputs are outside V, so they
are left out of sqnr_db, rmse and the error columns whatever the format makes of them (a
format without NaN or Inf codes, such as CFloat8, maps NaN to +max and +-Inf to +-max:
finite results whose "error" means nothing); nan_input_frac and inf_input_frac say how
many there were, and +-Inf inputs also count in overflow_frac.  The sums are float64 sums in a fixed
order (numpy's own loops over fixed blocks: no threads, no BLAS, so deterministic).  When
the largest |x| or |q| in V is outside about 2^-500 .. 2^500, x and q are first scaled by
the same power of two (exact) so that the squares neither overflow nor underflow.
"""
from __future__ import annotations

import math

import numpy as np

METRIC_NAMES = ("sqnr_db", "rmse", "max_abs_err", "max_rel_err", "mean_err", "overflow_frac",
                "underflow_frac", "subnormal_frac", "nan_frac", "inf_frac", "nan_input_frac", "inf_input_frac")

__all__ = ["METRIC_NAMES", "PreparedInput", "error_metrics", "sqnr_db"]

_SAFE_EXPONENT = 500  # |values| within 2^-500..2^500 square without overflow or underflow
_BLOCK = 1 << 14      # elements per block of the all-finite path (128 KiB of float64)


class PreparedInput:
    """An input tensor read once as float64, with what every format's metrics reuse.

    Building it costs a few passes over the data; :func:`error_metrics` then reuses it for
    every (format, bias, rounding) of the same tensor.
    """

    def __init__(self, x):
        x = np.asarray(x)
        if x.dtype not in (np.float32, np.float64):
            raise TypeError(f"x has dtype {x.dtype}: metrics take float32 or float64 inputs")
        self.original = np.ascontiguousarray(x).reshape(-1)
        self.x = self.original.astype(np.float64)
        self.n = self.x.size
        self.abs_x = np.abs(self.x)
        self.finite = np.isfinite(self.x)
        self.all_finite = bool(self.finite.all())
        self.nonzero = self.x != 0
        finite_abs = self.abs_x if self.all_finite else self.abs_x[self.finite]
        self.amax = float(finite_abs.max()) if finite_abs.size else math.nan
        self.zeros = self.n - int(np.count_nonzero(self.nonzero))
        # Counts of the non-finite inputs (the same for every format, so counted once).
        self.nan_inputs = 0 if self.all_finite else int(np.count_nonzero(np.isnan(self.x)))
        self.inf_inputs = self.n - int(np.count_nonzero(self.finite)) - self.nan_inputs
        # For the all-finite fast path: |x| with zeros read as +inf (so |e| / |x| is 0 there, as
        # zero inputs are always exact), and the signal energy when no scaling is needed.
        self.in_safe_range = self.all_finite and (self.amax == 0 or 2.0 ** -480 < self.amax < 2.0 ** 480)
        if self.all_finite:
            self.abs_x_zero_as_inf = np.where(self.nonzero, self.abs_x, np.inf)
            self.signal_energy = float(np.square(self.x).sum()) if self.in_safe_range else None


def error_metrics(x, q, fmt) -> dict:
    """The metrics of the module docstring for inputs ``x`` quantized to ``q`` in ``fmt``.

    ``x`` is an array or a :class:`PreparedInput`; ``q`` has the same number of elements;
    ``fmt`` supplies ``max`` and ``min_normal``.  Returns a dict keyed by ``METRIC_NAMES``.
    """
    prepared = x if isinstance(x, PreparedInput) else PreparedInput(x)
    q = np.asarray(q).reshape(-1)
    if q.size != prepared.n:
        raise ValueError(f"q has {q.size} elements but x has {prepared.n}")
    if q.dtype not in (np.float32, np.float64):
        q = q.astype(np.float64)
    if prepared.in_safe_range and bool(np.isfinite(q).all()):
        return _metrics_all_finite(prepared, q, fmt)
    return _metrics_general(prepared, q, fmt)


def _counts(prepared, q, fmt):
    """The *_frac metrics (q in its own dtype: comparisons with format limits are exact)."""
    n = prepared.n
    zeros_q = int(np.count_nonzero(q == 0))
    # A zero input always gives a zero result, so underflows = zero results - zero inputs.
    below_normal = int(np.count_nonzero(np.abs(q) < fmt.min_normal))
    return {"overflow_frac": _fraction(np.count_nonzero(prepared.abs_x > fmt.max), n),
            "underflow_frac": _fraction(zeros_q - prepared.zeros, n),
            "subnormal_frac": _fraction(below_normal - zeros_q, n),
            "nan_input_frac": _fraction(prepared.nan_inputs, n),
            "inf_input_frac": _fraction(prepared.inf_inputs, n)}


def _metrics_all_finite(prepared, q, fmt):
    """Every x and q finite, amax in 2^-480..2^480: no masks and no scaling needed
    (|q| <= max(2 amax, min_normal), so no square overflows or wholly underflows).

    Runs over blocks of ``_BLOCK`` elements so the float64 temporaries stay in cache; the
    sums are accumulated block by block in a fixed order (deterministic).
    """
    n = prepared.n
    result = _counts(prepared, q, fmt)
    buffer = np.empty(min(n, _BLOCK))
    error_sum = error_energy = max_abs_error = max_relative_error = 0.0
    for start in range(0, n, _BLOCK):
        stop = min(n, start + _BLOCK)
        error = buffer[:stop - start]
        np.subtract(q[start:stop], prepared.x[start:stop], out=error)   # exact widening of q first
        error_sum += float(error.sum())
        error_energy += float(np.einsum("i,i->", error, error))
        np.abs(error, out=error)
        max_abs_error = max(max_abs_error, float(error.max()))
        np.divide(error, prepared.abs_x_zero_as_inf[start:stop], out=error)
        max_relative_error = max(max_relative_error, float(error.max()))
    result.update(sqnr_db=sqnr_db(prepared.signal_energy, error_energy), rmse=math.sqrt(error_energy / n),
                  max_abs_err=max_abs_error, max_rel_err=max_relative_error, mean_err=error_sum / n,
                  nan_frac=0.0, inf_frac=0.0)
    return {name: result[name] for name in METRIC_NAMES}


def _metrics_general(prepared, q, fmt):
    """Any inputs: restrict to V, scale by a power of two when the squares need it."""
    n = prepared.n
    result = _counts(prepared, q, fmt)
    q = q.astype(np.float64, copy=False)
    q_finite = np.isfinite(q)
    q_nan = np.isnan(q)
    valid = prepared.finite & q_finite
    count_valid = int(np.count_nonzero(valid))
    result.update(nan_frac=_fraction(np.count_nonzero(q_nan), n),
                  inf_frac=_fraction(np.count_nonzero(~q_finite & ~q_nan), n))
    if count_valid == 0:
        result.update(sqnr_db=math.nan, rmse=math.nan, max_abs_err=math.nan, max_rel_err=math.nan,
                      mean_err=math.nan)
        return {name: result[name] for name in METRIC_NAMES}
    xv, qv, abs_xv = prepared.x[valid], q[valid], prepared.abs_x[valid]
    error = qv - xv
    abs_error = np.abs(error)
    largest = max(float(abs_xv.max()), float(np.abs(qv).max()))
    exponent = math.frexp(largest)[1] if largest > 0 else 0
    if -_SAFE_EXPONENT < exponent < _SAFE_EXPONENT:
        signal_energy = float(np.square(xv).sum())
        error_energy = float(np.square(error).sum())
        rmse = math.sqrt(error_energy / count_valid)
    else:  # scale by 2^-exponent (exact) so the squares stay in range
        xs, qs = np.ldexp(xv, -exponent), np.ldexp(qv, -exponent)
        scaled_error = qs - xs
        signal_energy = float(np.square(xs).sum())
        error_energy = float(np.square(scaled_error).sum())
        rmse = math.ldexp(math.sqrt(error_energy / count_valid), exponent)
    relative = np.divide(abs_error, abs_xv, out=np.zeros_like(abs_error), where=abs_xv != 0)
    result.update(sqnr_db=sqnr_db(signal_energy, error_energy), rmse=rmse, max_abs_err=float(abs_error.max()),
                  max_rel_err=float(relative.max()), mean_err=float(error.sum()) / count_valid)
    return {name: result[name] for name in METRIC_NAMES}


def sqnr_db(signal_energy: float, error_energy: float) -> float:
    """10 log10(signal / error) in dB: +inf for a zero error, -inf for a zero signal with a
    nonzero error.  The one SQNR of fmtlab (sweeps of tensors and of matmuls)."""
    if error_energy == 0:
        return math.inf
    if signal_energy == 0:
        return -math.inf
    return 10.0 * math.log10(signal_energy / error_energy)


def _fraction(count, n) -> float:
    return float(count) / n if n else math.nan
