"""Tensor-core matmul sweeps: the error of ``fl.matmul`` under MMA models as K grows.

See :func:`sweep_mma` for the definitions and docs/sweep.md for the command line.
"""
from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from ._parse import parse_mma_model, split_model_list
from ._pool import Interrupted, WorkerDied, check_run_arguments, plan, run_tasks
from ._records import RecordList
from ._table import render_table
from .codec import quantize, set_threads
from .metrics import sqnr_db

__all__ = ["sweep_mma", "evaluate_mma", "MMARecord", "MMASweepResult", "MMA_COLUMNS", "DEFAULT_KS",
           "DEFAULT_MMA_MODELS", "DEFAULT_MMA_DISTRIBUTIONS"]

DEFAULT_KS = (16, 64, 256, 1024, 4096, 16384, 65536)
DEFAULT_MMA_MODELS = ("h100:fp16", "h100:bf16", "h100:e4m3fn", "h100:e4m3fn:promote=128", "fp32_fma")
DEFAULT_MMA_DISTRIBUTIONS = ("normal", "lognormal")
MMA_METRIC_NAMES = ("sqnr_db", "relative_error", "max_scaled_error", "mean_scaled_error", "nonfinite_frac")


@dataclasses.dataclass(frozen=True)
class MMARecord:
    """The error of ``fl.matmul`` under one model, for one input distribution and inner dimension K.

    See :func:`sweep_mma` for the definitions.
    """
    model: str
    distribution: str
    k: int
    m: int
    n: int
    scale: float
    seed: int
    sqnr_db: float
    relative_error: float
    max_scaled_error: float
    mean_scaled_error: float
    nonfinite_frac: float

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


MMA_COLUMNS = tuple(field.name for field in dataclasses.fields(MMARecord))


class MMASweepResult(RecordList):
    """A list of :class:`MMARecord` (model, distribution, K order) with CSV/JSON writers."""

    columns = MMA_COLUMNS

    def summary_table(self) -> str:
        """Relative error (Frobenius) per model and distribution (rows) and K (columns)."""
        ks = sorted({record.k for record in self})
        rows = {}
        for record in self:
            rows.setdefault((record.model, record.distribution), {})[record.k] = record.relative_error
        header = ["model", "distribution"] + [f"K={k}" for k in ks]
        lines = [[model, distribution] + [f"{by_k[k]:.2e}" if k in by_k else "-" for k in ks]
                 for (model, distribution), by_k in rows.items()]
        return ("relative error ||D - AB||_F / ||AB||_F against a float64 reference\n"
                + render_table(header, lines, right=range(2, len(header))))


def _model_label(spec, model) -> str:
    return spec if isinstance(spec, str) else str(model)


def evaluate_mma(model, distribution: str, k: int, max_k: int, m: int, n: int, scale: float, seed: int,
                 threads=None) -> dict:
    """The metrics of ``fl.matmul(A, B, model=model)`` for one K (the unit of work of sweep_mma).

    A is the first K columns of an m x max_k matrix and B the first K rows of a max_k x n one,
    drawn from ``distribution`` (seeds 2 seed and 2 seed + 1), so the data for each K extends
    the data for the smaller ones; both are rounded to the model's input formats first.
    """
    from . import mma
    from ._inputs import synthetic

    if threads is not None:
        set_threads(threads)
    a_full = synthetic(distribution, m * max_k, scale, 2 * seed).reshape(m, max_k)
    b_full = synthetic(distribution, max_k * n, scale, 2 * seed + 1).reshape(max_k, n)
    a_format, b_format = _input_formats(model)
    a = np.ascontiguousarray(quantize(a_full[:, :k], a_format))
    b = np.ascontiguousarray(quantize(b_full[:k, :], b_format))
    d = np.asarray(mma.matmul(a, b, model=model), dtype=np.float64)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    # No BLAS: einsum's own loops are deterministic. Products of inputs of <= 24 bits are exact in
    # float64; the float64 sum of K of them is off by at most about K * 2^-53 relative to |A||B|.
    reference = np.einsum("ik,kj->ij", a64, b64)
    magnitude = np.einsum("ik,kj->ij", np.abs(a64), np.abs(b64))
    finite = np.isfinite(d)
    error = np.where(finite, d - reference, 0.0)
    signal = float(np.square(reference[finite]).sum())
    noise = float(np.square(error).sum())
    scaled = np.divide(error, magnitude, out=np.zeros_like(error), where=finite & (magnitude > 0))
    count = int(np.count_nonzero(finite))
    return {"sqnr_db": sqnr_db(signal, noise),
            "relative_error": math.sqrt(noise / signal) if signal > 0 else (0.0 if noise == 0 else math.inf),
            "max_scaled_error": float(np.abs(scaled).max()) if count else math.nan,
            "mean_scaled_error": float(scaled.sum()) / count if count else math.nan,
            "nonfinite_frac": 1.0 - count / d.size}


def _input_formats(model):
    """The formats of A and B that the model reads."""
    for a_name, b_name in (("a_format", "b_format"), ("input_format", "input_format")):
        if hasattr(model, a_name) and hasattr(model, b_name):
            return getattr(model, a_name), getattr(model, b_name)
    raise TypeError(f"model={model!r} does not say its input formats (a_format, b_format)")


def sweep_mma(models=None, ks=None, distributions=None, *, m=16, n=16, scale=1.0, seed=0, executor=None,
              jobs=None, progress=None) -> MMASweepResult:
    """Error of emulated tensor-core matmuls against a float64 reference as K grows.

    For each model, distribution and K: A (m x K) and B (K x n) drawn from the distribution,
    rounded to the model's input formats (nearest-even), D = fl.matmul(A, B, model=model)
    (C = 0), and R = A B computed in float64.  With E = D - R over the finite entries of D:

    * ``sqnr_db`` = 10 log10(sum R^2 / sum E^2);
    * ``relative_error`` = ||E||_F / ||R||_F;
    * ``max_scaled_error`` = max_ij |E_ij| / (|A| |B|)_ij, the componentwise error that the
      classical bound limits to about K u for recursive summation: it grows with K when
      additions are swamped;
    * ``mean_scaled_error`` = mean_ij E_ij / (|A| |B|)_ij, signed: truncating (round toward
      zero) accumulators drift toward zero;
    * ``nonfinite_frac``: the fraction of entries of D that are Inf or NaN.

    models: model objects or spec strings (see :func:`parse_mma_model`); ks: inner
    dimensions (default 16, 64, ..., 65536); distributions: names from
    ``fmtlab._inputs.DISTRIBUTIONS`` (default normal, lognormal).  executor/jobs/progress as
    for :func:`fmtlab.sweep`; one task per (model, distribution, K).

    Raises ``fmtlab._pool.Interrupted`` on Ctrl-C and ``fmtlab._pool.WorkerDied`` when a
    worker process dies, each with ``.partial``: the MMASweepResult of the finished records.
    """
    from ._inputs import check_distribution

    specs = list(DEFAULT_MMA_MODELS if models is None else ([models] if isinstance(models, str) else models))
    if specs and all(isinstance(spec, str) for spec in specs):
        specs = [part for spec in specs for part in split_model_list(spec)]
    if not specs:
        raise ValueError("models is empty: give at least one, e.g. h100:e4m3fn")
    resolved = [(_model_label(spec, model), model) for spec in specs for model in [parse_mma_model(spec)]]
    ks = list(DEFAULT_KS if ks is None else ks)
    if not ks:
        raise ValueError("ks is empty: give inner dimensions such as 16, 256, 4096")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= 1 << 22:
            raise ValueError(f"ks has {k!r}: each K must be an int from 1 to {1 << 22}")
    ks = sorted({int(k) for k in ks})
    distributions = list(DEFAULT_MMA_DISTRIBUTIONS if distributions is None else
                         ([distributions] if isinstance(distributions, str) else distributions))
    for name in distributions:
        check_distribution(name)
    for argument, value in (("m", m), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= 4096:
            raise ValueError(f"{argument}={value!r} is not allowed: an int from 1 to 4096")
    check_run_arguments(seed, jobs, executor)

    keys, arguments = [], []
    for label, model in resolved:
        for distribution in distributions:
            for k in ks:
                keys.append((label, distribution, k))
                arguments.append((model, distribution, k, ks[-1], int(m), int(n), float(scale), int(seed)))
    work = sum(int(m) * int(n) * k for _label, _distribution, k in keys) * 8  # a MAC costs ~ 8 quantizations
    inline, workers = plan(executor, jobs, work)
    labels = [f"{label} on {distribution} data, K={k}" for label, distribution, k in keys]

    def records(results):
        return MMASweepResult(MMARecord(model=label, distribution=distribution, k=k, m=int(m), n=int(n),
                                        scale=float(scale), seed=int(seed), **metrics)
                              for (label, distribution, k), metrics in zip(keys, results) if metrics is not None)

    try:
        results = run_tasks(evaluate_mma, arguments, executor, inline, workers, progress, labels=labels,
                            preload=("fmtlab",))
    except (Interrupted, WorkerDied) as stopped:
        stopped.partial, stopped.planned = records(stopped.results), len(keys)
        raise
    return records(results)
