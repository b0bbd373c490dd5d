"""Precision sweeps: what a format, a bias and a rounding mode cost on real tensors.

``fl.sweep(tensors, formats, biases, roundings, seed, executor)`` quantizes every tensor to
every (format, bias, rounding) with :func:`fmtlab.quantize` and measures the error with
:mod:`fmtlab.metrics` (float64, from the exact quantized values).  One
:class:`SweepRecord` per (tensor, format, bias, rounding); see docs/sweep.md.

Biases.  For the configurable formats (``formats.is_configurable``: CFloat8_1_4_3,
CFloat8_1_5_2, SHP; bias 0..63) ``biases`` chooses what is evaluated:

* ``None``: the bias of each format as given (``"cfloat8_1_4_3:bias=10"`` gives 10, the
  preset gives its default);
* ``"all"``: every bias 0..63;
* ``"auto"``: only the *amax rule* bias below;
* a list of ints (or a string ``"0,5,8-12"``): those biases.

Other formats have one fixed bias, evaluated whatever ``biases`` says.  The amax rule bias
is always evaluated too, so that its distance from the best bias is known.

The amax rule (what a runtime does with per-tensor scaling, from the tensor's absolute
maximum alone): with amax = max |x| over the finite elements and max(b) the format's
largest finite value at bias b (max(b) = max(0) * 2^-b),

    rule_bias = the largest b in 0..63 with amax <= max(b),

that is floor(log2(max(0) / amax)) clamped to 0..63: the bias that gives the most
resolution to small values while the largest element still fits without saturating.
amax = 0 (nothing to fit) keeps the format's own bias; amax > max(0) gives 0; a tensor with no finite element keeps the
format's own bias.

Best bias: among the biases evaluated for a (tensor, format, rounding), the one with the
highest ``sqnr_db`` (NaN counts as -inf); among equal SQNRs (common: biases that neither
saturate nor underflow any element give bit-identical results) the one nearest the rule
bias wins, then the smaller.  ``sqnr_gap_db = sqnr_db(best) - sqnr_db(rule)`` >= 0 (0 when both
are +inf).

Stochastic rounding uses ``quantize(..., seed=seed)`` with the same ``seed`` for every
tensor, format and bias (common random numbers: biases are compared on the same draws),
so ``fl.quantize(x, fmt, "stochastic", seed=seed)`` reproduces any record's values.

Parallelism.  The work is cut into tasks (one tensor and a list of (format, rounding, bias)),
each a pure function of its arguments, so results never depend on how it is run
(:mod:`fmtlab._pool`, shared with ``fl.sweep_mma`` and the drift experiment):

* ``executor``: any ``concurrent.futures.Executor`` (a Dask ``Client.get_executor()``,
  a Ray executor, a ``ProcessPoolExecutor`` of your own);
* otherwise ``jobs`` worker processes (default: the CPUs this process may use), started
  with "forkserver" (fork is unsafe once OpenMP threads exist);
* ``jobs=1`` (or a small sweep with ``jobs=None``: under 2^22 element evaluations) runs
  inline in this process.

Every task runs the C loops on one thread (``fl.set_threads(1)`` in the process that runs
it; restored afterwards when inline): the parallelism comes from tasks side by side.

Ctrl-C raises ``fmtlab._pool.Interrupted`` (a KeyboardInterrupt) and a dead worker
``fmtlab._pool.WorkerDied`` (a RuntimeError); both carry ``.partial``, a
:class:`SweepResult` of the (tensor, format, rounding) groups that had finished, and
``.planned``, the number of records the whole sweep would have had.

Worker processes re-import the main module; scripts must guard their entry point with
``if __name__ == "__main__":`` (or pass ``jobs=1``).
"""
from __future__ import annotations

import math

import numpy as np

from ._parse import parse_biases, parse_formats, parse_roundings
from ._pool import Interrupted, WorkerDied, check_run_arguments, plan, run_tasks
from ._records import SweepRecord, SweepResult
from .codec import quantize, set_threads
from .formats import Format, TESLA_BIAS_RANGE, amax_bias, format_spec, is_configurable
from .metrics import PreparedInput, error_metrics

__all__ = ["sweep", "evaluate", "rule_bias", "best_bias", "biases_to_evaluate"]


def rule_bias(fmt: Format, amax: float) -> int:
    """The bias a sweep reports as the amax rule's: :func:`fmtlab.formats.amax_bias` for the
    configurable formats (``is_configurable``), the fixed bias of any other format."""
    return amax_bias(fmt, amax) if is_configurable(fmt) else fmt.bias


def biases_to_evaluate(fmt: Format, biases, amax: float) -> tuple:
    """The biases a sweep evaluates for ``fmt`` (``biases`` as returned by parse_biases)."""
    if not is_configurable(fmt):
        return (fmt.bias,)
    rule = rule_bias(fmt, amax)
    if biases is None:
        chosen = {fmt.bias}
    elif biases == "all":
        chosen = set(TESLA_BIAS_RANGE)
    elif biases == "auto":
        chosen = set()
    else:
        chosen = set(biases)
    return tuple(sorted(chosen | {rule}))


# ---- the work ------------------------------------------------------------------------------------
def evaluate(x, items, seed: int, threads=None) -> list:
    """Metrics of ``x`` quantized to each (fmt, rounding, bias) of ``items``, in order.

    The unit of work a sweep sends to its executor (a module-level function, so it pickles);
    the tensor is read into float64 once per call.  ``threads`` sets the C loops' thread
    count first (1 for sweeps).
    """
    if threads is not None:
        set_threads(threads)
    prepared = PreparedInput(x)
    results = []
    for fmt, rounding, bias in items:
        biased = fmt.replace(bias=bias) if bias != fmt.bias else fmt
        # A format not exact in float32 gets float64 input, so its values are not re-rounded.
        source = prepared.original if biased.decode_dtype == prepared.original.dtype else prepared.x
        quantized = quantize(source, biased, rounding, seed=seed)
        results.append(error_metrics(prepared, quantized, biased))
    return results


def sweep(tensors, formats=None, biases=None, roundings=("nearest_even",), seed=0, executor=None, *,
          jobs=None, progress=None) -> SweepResult:
    """Quantize tensors to every (format, bias, rounding) and measure the error.

    Parameters
    ----------
    tensors : an array, a dict name -> array, or a path to a .npy/.npz/.pt/.pth/.safetensors
        file (every floating-point tensor in it).
    formats : a format name, a Format, a list of them, or a comma-separated string
        (None: fp32, fp16, bf16, cfloat8_1_4_3, cfloat8_1_5_2).
    biases : None, "all", "auto", or a list of biases for the configurable formats (see the
        module docstring).
    roundings : rounding modes (names from ``fl.ROUNDINGS``).
    seed : the stochastic-rounding seed (an int >= 0).
    executor : a ``concurrent.futures.Executor`` to run the tasks on; None uses ``jobs``.
    jobs : worker processes when no executor is given (None: the CPUs available,
        ``fmtlab._pool.available_cpus()``, inline for small sweeps; 1: inline).
    progress : a callable ``progress(done, total)`` called at the start (done = 0) and as
        tasks finish (total = the number of tasks).

    Returns a :class:`SweepResult` (a list of :class:`SweepRecord`).  Raises
    ``fmtlab._pool.Interrupted`` on Ctrl-C and ``fmtlab._pool.WorkerDied`` when a worker
    process dies, each with ``.partial``: the SweepResult of the groups that had finished.
    """
    from ._inputs import tensor_dict

    tensors = tensor_dict(tensors)
    fmts = parse_formats(formats)
    bias_choice = parse_biases(biases)
    modes = parse_roundings(roundings)
    check_run_arguments(seed, jobs, executor)

    # Groups: one per (tensor, format spec, rounding), each with the biases to evaluate.
    amaxes = {name: _finite_amax(array) for name, array in tensors.items()}
    groups = {}
    for name, array in tensors.items():
        for fmt in fmts:
            spec = format_spec(fmt)
            for rounding in modes:
                key = (name, spec, rounding)
                if key in groups:
                    groups[key]["biases"].update(biases_to_evaluate(fmt, bias_choice, amaxes[name]))
                    continue
                groups[key] = {"format": fmt, "biases": set(biases_to_evaluate(fmt, bias_choice, amaxes[name])),
                               "rule": rule_bias(fmt, amaxes[name])}

    # Tasks: each tensor's evaluations cut into pieces of at most `chunk`, so that a tensor
    # travels to a worker as few times as possible while every worker gets several tasks.
    evaluations = {name: [(key, bias) for key, group in groups.items() if key[0] == name
                          for bias in sorted(group["biases"])] for name in tensors}
    total = sum(len(items) for items in evaluations.values())
    work = sum(len(items) * tensors[name].size for name, items in evaluations.items())
    inline, workers = plan(executor, jobs, work)
    # Inline: about 32 tasks, for a progress bar that moves; else about 4 per worker.
    chunk = max(1, math.ceil(total / (32 if inline else 4 * workers)))
    pieces, arguments, labels = [], [], []
    for name, items in evaluations.items():
        for start in range(0, len(items), chunk):
            piece = items[start:start + chunk]
            pieces.append(piece)
            arguments.append((tensors[name], [(groups[key]["format"], key[2], bias) for key, bias in piece],
                              int(seed)))
            labels.append(f"tensor {name!r} (evaluations {start + 1}-{start + len(piece)} of {len(items)})")
    try:
        results = run_tasks(evaluate, arguments, executor, inline, workers, progress, labels=labels,
                            preload=("fmtlab",))
    except (Interrupted, WorkerDied) as stopped:
        stopped.partial = _records(groups, pieces, stopped.results, tensors, amaxes, int(seed))
        stopped.planned = total
        raise
    return _records(groups, pieces, results, tensors, amaxes, int(seed))


def _records(groups, pieces, results, tensors, amaxes, seed) -> SweepResult:
    """The records of every group all of whose evaluations are in ``results`` (None: a task
    that did not finish)."""
    outcomes = {key: [] for key in groups}
    for piece, metrics_list in zip(pieces, results):
        if metrics_list is None:
            continue
        for (key, bias), metrics in zip(piece, metrics_list):
            outcomes[key].append((bias, metrics))
    records = []
    for key, group in groups.items():
        if len(outcomes[key]) != len(group["biases"]):
            continue  # part of the group did not run
        name, spec, rounding = key
        rows = sorted(outcomes[key], key=lambda item: item[0])
        best = best_bias(rows, group["rule"])
        sqnr_by_bias = {bias: metrics["sqnr_db"] for bias, metrics in rows}
        best_sqnr, rule_sqnr = sqnr_by_bias[best], sqnr_by_bias[group["rule"]]
        gap = 0.0 if best_sqnr == rule_sqnr else best_sqnr - rule_sqnr
        for bias, metrics in rows:
            records.append(SweepRecord(
                tensor=name, format=spec, bias=bias, rounding=rounding, seed=seed,
                n=int(tensors[name].size), amax=amaxes[name], **metrics, rule_bias=group["rule"],
                best_bias=best, is_rule_bias=bias == group["rule"], is_best_bias=bias == best,
                sqnr_gap_db=gap))
    return SweepResult(records)


def _finite_amax(array) -> float:
    magnitudes = np.abs(array)
    finite = magnitudes[np.isfinite(magnitudes)] if not np.isfinite(magnitudes).all() else magnitudes
    return float(finite.max()) if finite.size else math.nan


def best_bias(rows, rule_bias: int) -> int:
    """The bias with the highest SQNR among ``rows`` = [(bias, metrics), ...].

    NaN counts as -inf; among equal SQNRs the bias nearest ``rule_bias`` wins, then the
    smaller one.
    """
    def key(row):
        bias, metrics = row
        sqnr = -math.inf if math.isnan(metrics["sqnr_db"]) else metrics["sqnr_db"]
        return (-sqnr, abs(bias - rule_bias), bias)

    return min(rows, key=key)[0]
