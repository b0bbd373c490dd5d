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
==================  =================================================================================

Every ``*_frac`` is a fraction of all n elements.  The sums use numpy's pairwise summation
in float64 (deterministic: no threads, no BLAS); when the largest |x| or |q| in V is outside 2^-500 .. 2^500, x and q are first
scaled by the same power of two (exact) so that the squares neither overflow nor underflow.
"""
from __future__ import annotations

import math

import numpy as np

METRIC_NAMES = ("sqnr_db", "rmse", "max_abs_err", "max_rel_err", "mean_err", "overflow_frac",
                "underflow_frac", "subnormal_frac", "nan_frac", "inf_frac")

_SAFE_EXPONENT = 500  # |values| within 2^-500..2^500 square without overflow or underflow


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


def error_metrics(x, q, fmt) -> dict:
    """The metrics of the module docstring for inputs ``x`` quantized to ``q`` in ``fmt``.

    ``x`` is an array or a :class:`PreparedInput`; ``q`` has the same number of elements;
    ``fmt`` supplies ``max`` and ``min_normal``.  Returns a dict keyed by ``METRIC_NAMES``.
    """
    prepared = x if isinstance(x, PreparedInput) else PreparedInput(x)
    q = np.asarray(q).reshape(-1).astype(np.float64, copy=False)
    if q.size != prepared.n:
        raise ValueError(f"q has {q.size} elements but x has {prepared.n}")
    n = prepared.n
    x64 = prepared.x
    q_finite = np.isfinite(q)
    all_valid = prepared.all_finite and bool(q_finite.all())
    valid = None if all_valid else (prepared.finite & q_finite)
    count_valid = n if all_valid else int(np.count_nonzero(valid))

    q_nan = np.isnan(q) if not all_valid else None
    abs_q = np.abs(q)
    result = {
        "overflow_frac": _fraction(np.count_nonzero(prepared.abs_x > fmt.max), n),
        "underflow_frac": _fraction(np.count_nonzero(prepared.nonzero & prepared.finite & (q == 0)), n),
        "subnormal_frac": _fraction(np.count_nonzero((abs_q < fmt.min_normal) & (abs_q > 0)), n),
        "nan_frac": 0.0 if all_valid else _fraction(np.count_nonzero(q_nan), n),
        "inf_frac": 0.0 if all_valid else _fraction(np.count_nonzero(~q_finite & ~q_nan), n),
    }
    if count_valid == 0:
        result.update(sqnr_db=math.nan, rmse=math.nan, max_abs_err=math.nan, max_rel_err=math.nan,
                      mean_err=math.nan)
        return {name: result[name] for name in METRIC_NAMES}

    if all_valid:
        xv, qv, abs_xv = x64, q, prepared.abs_x
    else:
        xv, qv, abs_xv = x64[valid], q[valid], prepared.abs_x[valid]
    error = qv - xv
    abs_error = np.abs(error)
    max_abs_error = float(abs_error.max())
    mean_error = float(error.sum()) / count_valid

    largest = max(float(np.abs(xv).max()), float(np.abs(qv).max()))
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

    if error_energy == 0:
        sqnr = math.inf
    elif signal_energy == 0:
        sqnr = -math.inf
    else:
        sqnr = 10.0 * math.log10(signal_energy / error_energy)
    relative = np.divide(abs_error, abs_xv, out=np.zeros_like(abs_error), where=abs_xv != 0)
    result.update(sqnr_db=sqnr, rmse=rmse, max_abs_err=max_abs_error,
                  max_rel_err=float(relative.max()), mean_err=mean_error)
    return {name: result[name] for name in METRIC_NAMES}


def _fraction(count, n) -> float:
    return float(count) / n if n else math.nan
