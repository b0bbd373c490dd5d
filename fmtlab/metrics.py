"""Error metrics of a quantized tensor, from exact sums.

Notation: x_i are the n input values (float32 or float64, read exactly as float64), q_i the
quantized values (exact in float64: every fmtlab format is), e_i = q_i - x_i taken exactly (a
rational), and V = {i : x_i finite and q_i finite} the elements that carry a finite error.
The sums S = sum_V x_i^2, E = sum_V e_i^2 and D = sum_V e_i are exact (integers times
2^-2176, csrc/sweep_stats.c), and each metric is rounded once from them:

==================  =================================================================================
sqnr_db             10 * log10(rho), rho = S / E correctly rounded to float64 (when rho is outside
                    float64's normal range: 10 * (log10(r) + k log10(2)) with S / E = r 2^k, r in
                    [1/2, 2) correctly rounded); +inf when E = 0 (exact), -inf when S = 0 < E,
                    NaN when V is empty
rmse                sqrt(E / |V|) correctly rounded to float64
max_abs_err         max_V |e_i| correctly rounded to float64 (= max_V |fl(q_i - x_i)|)
max_rel_err         max over i in V with x_i != 0 of fl(|fl(q_i - x_i)| / |x_i|)  (0 when there is none)
mean_err            D / |V| correctly rounded to float64 (the bias of the rounding)
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
many there were, and +-Inf inputs also count in overflow_frac.  The sums being exact, the
metrics do not depend on the order of the elements, nor on how a tensor is cut into pieces
(:func:`exact_statistics` of pieces merge by adding their counts and integers): a sweep
(fmtlab.sweep) gives these same numbers.
"""
from __future__ import annotations

import math

import numpy as np

from . import _c

METRIC_NAMES = ("sqnr_db", "rmse", "max_abs_err", "max_rel_err", "mean_err", "overflow_frac",
                "underflow_frac", "subnormal_frac", "nan_frac", "inf_frac", "nan_input_frac", "inf_input_frac")

__all__ = ["METRIC_NAMES", "PreparedInput", "error_metrics", "sqnr_db", "exact_signal", "exact_statistics",
           "merge_statistics", "metrics_from_statistics", "EXACT_EXPONENT"]

#: the exact sums of :func:`exact_statistics` are ints k standing for k * 2^EXACT_EXPONENT
EXACT_EXPONENT = _c.EXACT_LOWEST_EXPONENT
_LOG10_2 = math.log10(2.0)


class PreparedInput:
    """An input tensor read once as float64, with what every format's metrics reuse
    (the exact signal sum over the finite inputs among them)."""

    def __init__(self, x):
        x = np.asarray(x)
        if x.dtype not in (np.float32, np.float64):
            raise TypeError(f"x has dtype {x.dtype}: metrics take float32 or float64 inputs")
        self.original = np.ascontiguousarray(x).reshape(-1)
        self.x = self.original.astype(np.float64)
        self.n = self.x.size
        self.abs_x = np.abs(self.x)
        finite = np.isfinite(self.x)
        finite_abs = self.abs_x[finite]
        self.amax = float(finite_abs.max()) if finite_abs.size else math.nan
        self.signal = exact_signal(self.x)


def exact_signal(x) -> int:
    """sum of x_i^2 over the finite x_i (float32 or float64, else read as float64), exactly: an
    int k for k * 2^EXACT_EXPONENT."""
    x = np.asarray(x)
    if x.dtype != np.float32:
        x = x.astype(np.float64, copy=False)
    x = np.ascontiguousarray(x).reshape(-1)
    signal = _c.ffi.new("fl_exact_sum *")
    function, value_type = _c.float_entry("exact_signal", x.dtype)
    _c.check_status(function(_c.pointer(x, value_type), x.size, signal), "exact signal sum")
    return _c.exact_int(signal)


def exact_statistics(x, q, fmt, signal=None) -> dict:
    """The mergeable statistics of inputs ``x`` quantized to ``q`` in ``fmt`` (its ``max`` and
    ``min_normal`` decide the counts): a dict of the counts n, valid (|V|), zeros_in, nan_in,
    inf_in, overflow, zeros_out, below_normal (|q| < min_normal, zeros included), nan_out,
    inf_out; the float64 maxima max_abs, max_rel; and the exact sums signal (S), error_energy
    (E), error_sum (D) as ints of 2^EXACT_EXPONENT.  ``signal``: :func:`exact_signal` of x when
    the caller has it (a sweep shares it between formats)."""
    x = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    q = np.ascontiguousarray(q, dtype=np.float64).reshape(-1)
    if q.size != x.size:
        raise ValueError(f"q has {q.size} elements but x has {x.size}")
    stats = _c.ffi.new("fl_sweep_stats *")
    _c.check_status(_c.lib.fl_sweep_statistics_f64(_c.pointer(x, "double"), _c.pointer(q, "double"), x.size,
                                                   float(fmt.max), float(fmt.min_normal), stats), "sweep statistics")
    return _c.sweep_statistics(stats, exact_signal(x) if signal is None else signal)


_MAXIMA = ("max_abs", "max_rel")


def merge_statistics(first: dict, second: dict) -> dict:
    """The statistics of two disjoint sets of elements together: counts and exact sums add,
    maxima take the max (exact: the result does not depend on the order of merging)."""
    return {key: max(value, second[key]) if key in _MAXIMA else value + second[key] for key, value in first.items()}


def error_metrics(x, q, fmt) -> dict:
    """The metrics of the module docstring for inputs ``x`` quantized to ``q`` in ``fmt``.

    ``x`` is an array or a :class:`PreparedInput`; ``q`` has the same number of elements;
    ``fmt`` supplies ``max`` and ``min_normal``.  Returns a dict keyed by ``METRIC_NAMES``.
    """
    prepared = x if isinstance(x, PreparedInput) else PreparedInput(x)
    q = np.asarray(q).reshape(-1)
    if q.size != prepared.n:
        raise ValueError(f"q has {q.size} elements but x has {prepared.n}")
    return metrics_from_statistics(exact_statistics(prepared.x, q, fmt, prepared.signal))


def _float_ratio(numerator: int, denominator: int) -> float:
    """numerator / denominator (ints, denominator > 0) correctly rounded (int true division is);
    +-inf beyond float64's range."""
    try:
        return numerator / denominator
    except OverflowError:
        return math.inf if numerator > 0 else -math.inf


def _sqrt_ratio(numerator: int, denominator: int, exponent: int) -> float:
    """sqrt(numerator / denominator * 2^exponent) correctly rounded (numerator >= 0, exponent even).

    a = isqrt(floor(numerator 2^k / denominator)) with k even and a of at least 56 bits: the
    root lies in [a, a + 1) * 2^((exponent - k) / 2), at a itself only when both steps were
    exact.  No rounding boundary of a float64 lies strictly inside (a, a + 1) at that width, so
    rounding a (exact) or a + 1/2 (not) once gives the correctly rounded root."""
    if numerator == 0:
        return 0.0
    k = max(0, 2 * 60 - (numerator.bit_length() - denominator.bit_length()))
    k += k % 2
    scaled, remainder = divmod(numerator << k, denominator)
    root = math.isqrt(scaled)
    inexact = remainder != 0 or root * root != scaled
    half_exponent = (exponent - k) // 2
    value = 2 * root + int(inexact)  # the root in units of 2^(half_exponent - 1)
    shift = half_exponent - 1
    return _float_ratio(value << shift, 1) if shift >= 0 else _float_ratio(value, 1 << -shift)


def _sqnr_exact(signal: int, error: int) -> float:
    """10 log10(S / E) of the module docstring (S, E ints of the same power of two)."""
    if error == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    ratio = _float_ratio(signal, error)
    if math.isfinite(ratio) and ratio >= 2.0 ** -1022:
        return 10.0 * math.log10(ratio)
    k = signal.bit_length() - error.bit_length()
    reduced = _float_ratio(signal << max(0, -k), error << max(0, k))
    return 10.0 * (math.log10(reduced) + k * _LOG10_2)


def metrics_from_statistics(statistics: dict) -> dict:
    """The metrics (``METRIC_NAMES``) of :func:`exact_statistics` (merged or not), rounded once
    from the exact sums as the module docstring says."""
    n, valid = statistics["n"], statistics["valid"]
    result = {"overflow_frac": _fraction(statistics["overflow"], n),
              "underflow_frac": _fraction(statistics["zeros_out"] - statistics["zeros_in"], n),
              "subnormal_frac": _fraction(statistics["below_normal"] - statistics["zeros_out"], n),
              "nan_frac": _fraction(statistics["nan_out"], n), "inf_frac": _fraction(statistics["inf_out"], n),
              "nan_input_frac": _fraction(statistics["nan_in"], n),
              "inf_input_frac": _fraction(statistics["inf_in"], n)}
    if valid == 0:
        result.update(sqnr_db=math.nan, rmse=math.nan, max_abs_err=math.nan, max_rel_err=math.nan, mean_err=math.nan)
    else:
        scale = 1 << -EXACT_EXPONENT
        result.update(sqnr_db=_sqnr_exact(statistics["signal"], statistics["error_energy"]),
                      rmse=_sqrt_ratio(statistics["error_energy"], valid, EXACT_EXPONENT),
                      max_abs_err=statistics["max_abs"], max_rel_err=statistics["max_rel"],
                      mean_err=_float_ratio(statistics["error_sum"], valid * scale))
    return {name: result[name] for name in METRIC_NAMES}


def sqnr_db(signal_energy: float, error_energy: float) -> float:
    """10 log10(signal / error) in dB: +inf for a zero error, -inf for a zero signal with a
    nonzero error.  The SQNR of float sums (sweeps of matmuls); element sweeps use the exact
    sums' :func:`metrics_from_statistics`, the same rule."""
    if error_energy == 0:
        return math.inf
    if signal_energy == 0:
        return -math.inf
    return 10.0 * math.log10(signal_energy / error_energy)


def _fraction(count, n) -> float:
    return float(count) / n if n else math.nan
