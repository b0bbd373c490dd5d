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
amax = 0 gives 63; amax > max(0) gives 0; a tensor with no finite element keeps the
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
each a pure function of its arguments, so results never depend on how it is run:

* ``executor``: any ``concurrent.futures.Executor`` (a Dask ``Client.get_executor()``,
  a Ray executor, a ``ProcessPoolExecutor`` of your own);
* otherwise ``jobs`` worker processes (default ``os.cpu_count()``), a
  ``ProcessPoolExecutor`` on the "forkserver" start method (fork is unsafe once OpenMP
  threads exist);
* ``jobs=1`` (or a small sweep with ``jobs=None``: under 2^22 element evaluations) runs
  inline in this process.

Every task runs the C loops on one thread (``fl.set_threads(1)`` in the process that runs
it; restored afterwards when inline): the parallelism comes from tasks side by side.

Worker processes re-import the main module; scripts must guard their entry point with
``if __name__ == "__main__":`` (or pass ``jobs=1``).
"""
from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import csv
import dataclasses
import io
import json
import math
import multiprocessing
import numbers
import os
import re

import numpy as np

from . import formats as _formats
from ._native_loader import lib
from .codec import quantize, set_threads
from .formats import Format, ROUNDINGS, TESLA_BIAS_RANGE
from .metrics import PreparedInput, error_metrics

DEFAULT_FORMATS = ("fp32", "fp16", "bf16", "cfloat8_1_4_3", "cfloat8_1_5_2")
BIAS_CHOICES = ("all", "auto")
_INLINE_WORK = 1 << 22  # element evaluations below which jobs=None runs inline


# ---- records -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SweepRecord:
    """The metrics of one tensor quantized to one (format, bias, rounding).

    ``format`` is the format's spec without its bias (``"cfloat8_1_4_3"``,
    ``"cfloat8_1_4_3:subnormals=tesla"``), so ``fl.format(record.format, bias=record.bias)``
    rebuilds it for presets.  ``rule_bias``, ``best_bias`` and ``sqnr_gap_db`` describe the
    record's (tensor, format, rounding) group and repeat on each of its rows.
    """
    tensor: str
    format: str
    bias: int
    rounding: str
    seed: int
    n: int
    amax: float
    sqnr_db: float
    rmse: float
    max_abs_err: float
    max_rel_err: float
    mean_err: float
    overflow_frac: float
    underflow_frac: float
    subnormal_frac: float
    nan_frac: float
    inf_frac: float
    rule_bias: int
    best_bias: int
    is_rule_bias: bool
    is_best_bias: bool
    sqnr_gap_db: float

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


COLUMNS = tuple(field.name for field in dataclasses.fields(SweepRecord))


class _RecordList(list):
    """A list of records (dataclasses with ``as_dict()``) that writes itself as CSV or JSON."""

    columns: tuple = ()

    def to_csv(self, path=None) -> str:
        """CSV with one row per record and the columns of ``self.columns``; written to ``path`` if given.
        Floats are written in full precision (Python's repr), infinities as ``inf``."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        for record in self:
            writer.writerow(record.as_dict())
        text = buffer.getvalue()
        if path is not None:
            with open(path, "w", newline="") as handle:
                handle.write(text)
        return text

    def to_json(self, path=None) -> str:
        """JSON list of records; non-finite floats as the strings "inf", "-inf", "nan"."""
        rows = [{key: _json_value(value) for key, value in record.as_dict().items()} for record in self]
        text = json.dumps(rows, indent=1)
        if path is not None:
            with open(path, "w") as handle:
                handle.write(text + "\n")
        return text


class SweepResult(_RecordList):
    """A list of :class:`SweepRecord`, sorted by tensor, format, rounding and bias, with
    writers (CSV, JSON) and a per-group summary."""

    columns = COLUMNS

    def summary(self) -> list[dict]:
        """One dict per (tensor, format, rounding): best and rule bias, their SQNR, the gap, and
        at the best bias the underflow fraction and the fraction of Inf/NaN results."""
        groups = {}
        for record in self:
            groups.setdefault((record.tensor, record.format, record.rounding), []).append(record)
        rows = []
        for (tensor, format_spec, rounding), records in groups.items():
            best = next(record for record in records if record.is_best_bias)
            rule = next(record for record in records if record.is_rule_bias)
            rows.append({"tensor": tensor, "format": format_spec, "rounding": rounding,
                         "configurable": _formats.is_configurable(format_from_spec(format_spec, best.bias)),
                         "biases_evaluated": len(records), "best_bias": best.bias,
                         "best_sqnr_db": best.sqnr_db, "rule_bias": rule.bias, "rule_sqnr_db": rule.sqnr_db,
                         "sqnr_gap_db": best.sqnr_gap_db, "overflow_frac": best.overflow_frac,
                         "underflow_frac": best.underflow_frac,
                         "nonfinite_frac": best.nan_frac + best.inf_frac})
        return rows

    def summary_table(self) -> str:
        """The summary as an aligned text table."""
        header = ("tensor", "format", "rounding", "biases", "best bias", "SQNR dB", "rule bias",
                  "rule SQNR dB", "gap dB", "underflow %", "Inf/NaN %")
        lines = [header]
        for row in self.summary():
            fixed = not row["configurable"]
            lines.append((row["tensor"], row["format"], row["rounding"], str(row["biases_evaluated"]),
                          str(row["best_bias"]), _decibels(row["best_sqnr_db"]),
                          "-" if fixed else str(row["rule_bias"]),
                          "-" if fixed else _decibels(row["rule_sqnr_db"]),
                          "-" if fixed else _decibels(row["sqnr_gap_db"]),
                          f"{100 * row['underflow_frac']:.3g}", f"{100 * row['nonfinite_frac']:.3g}"))
        widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
        numeric = set(range(3, len(header)))
        out = []
        for index, line in enumerate(lines):
            cells = [cell.rjust(width) if column in numeric else cell.ljust(width)
                     for column, (cell, width) in enumerate(zip(line, widths))]
            out.append("  ".join(cells).rstrip())
            if index == 0:
                out.append("  ".join("-" * width for width in widths))
        return "\n".join(out)


def _decibels(value) -> str:
    return "inf" if value == math.inf else "nan" if math.isnan(value) else f"{value:.2f}"


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


# ---- arguments ---------------------------------------------------------------------------------
def parse_formats(formats) -> list[Format]:
    """Formats from a Format, a name, a list of those, or a comma-separated string.

    In a string, an item with "=" but no ":" continues the previous format's options, so
    ``"fp16,cfloat8_1_4_3:bias=10,subnormals=tesla,bf16"`` is three formats.
    """
    if formats is None:
        formats = DEFAULT_FORMATS
    if isinstance(formats, (str, Format)):
        formats = [formats]
    if not isinstance(formats, (list, tuple)):
        raise TypeError(f"formats={formats!r} is not allowed: a format name, a Format, or a list of them")
    items = []
    for item in formats:
        if isinstance(item, str):
            for part in (piece.strip() for piece in item.split(",")):
                if not part:
                    continue
                if "=" in part and ":" not in part and items and isinstance(items[-1], str):
                    items[-1] += "," + part
                else:
                    items.append(part)
        elif isinstance(item, Format):
            items.append(item)
        else:
            raise TypeError(f"formats has {item!r} ({type(item).__name__}): each must be a format name "
                            "or a fmtlab.Format")
    if not items:
        raise ValueError(f"formats={formats!r} is empty; give at least one of {', '.join(_formats.preset_names())}")
    return [_formats.format(item) for item in items]


def parse_biases(biases):
    """None, "all", "auto", or a sorted tuple of distinct ints in 0..63.

    Accepts those, an int, an iterable of ints, or a string of comma-separated ints and
    ranges ("0,5,8-12").
    """
    allowed = (f'None, "all", "auto", or biases in {TESLA_BIAS_RANGE.start}..{TESLA_BIAS_RANGE.stop - 1} '
               'as a list or a string such as "0,5,8-12"')
    if biases is None:
        return None
    if isinstance(biases, str):
        text = biases.strip().lower()
        if text in BIAS_CHOICES:
            return text
        values = []
        for part in (piece.strip() for piece in text.split(",")):
            match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
            if not match:
                raise ValueError(f"biases={biases!r} is not allowed (bad item {part!r}); allowed: {allowed}")
            low = int(match.group(1))
            high = int(match.group(2)) if match.group(2) is not None else low
            if high < low:
                raise ValueError(f"biases={biases!r} has the empty range {part!r}; allowed: {allowed}")
            values.extend(range(low, high + 1))
        biases = values
    elif isinstance(biases, numbers.Integral) and not isinstance(biases, bool):
        biases = [biases]
    try:
        values = list(biases)
    except TypeError:
        raise TypeError(f"biases={biases!r} is not allowed; allowed: {allowed}") from None
    if not values:
        raise ValueError(f"biases={biases!r} is empty; allowed: {allowed}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value not in TESLA_BIAS_RANGE:
            raise ValueError(f"biases has the value {value!r}; allowed: {allowed}")
    return tuple(sorted({int(value) for value in values}))


def parse_roundings(roundings) -> tuple:
    """A tuple of rounding-mode names from a name, a list, or a comma-separated string."""
    if isinstance(roundings, str):
        roundings = [part.strip() for part in roundings.split(",") if part.strip()]
    try:
        values = list(roundings)
    except TypeError:
        raise TypeError(f"roundings={roundings!r} is not allowed: a list of {', '.join(ROUNDINGS)}") from None
    if not values:
        raise ValueError(f"roundings={roundings!r} is empty; choose from {', '.join(ROUNDINGS)}")
    for value in values:
        if value not in ROUNDINGS:
            raise ValueError(f"roundings has {value!r}, which is not a rounding mode; "
                             f"choose from {', '.join(ROUNDINGS)}")
    return tuple(dict.fromkeys(values))


def format_spec(fmt: Format) -> str:
    """The format's name without its bias, with its subnormal policy if not the preset's.

    Custom formats (no preset name) give their ``repr`` with ``bias`` left out.
    """
    if fmt.name is None:
        return (f"Format(exp_bits={fmt.exp_bits}, man_bits={fmt.man_bits}, signed={fmt.signed}, "
                f"specials={fmt.specials!r}, subnormals={fmt.subnormals!r})")
    preset = _formats.format(fmt.name)
    return fmt.name if fmt.subnormals == preset.subnormals else f"{fmt.name}:subnormals={fmt.subnormals}"


def format_from_spec(spec: str, bias: int) -> Format:
    """The inverse of :func:`format_spec`: the format of a record's ``format`` and ``bias``."""
    match = re.fullmatch(r"Format\(exp_bits=(\d+), man_bits=(\d+), signed=(True|False), "
                         r"specials='(\w+)', subnormals='(\w+)'\)", spec)
    if match:
        return Format(int(match.group(1)), int(match.group(2)), int(bias), match.group(3) == "True",
                      match.group(4), match.group(5))
    fmt = _formats.format(spec)
    return fmt if fmt.bias == bias else fmt.replace(bias=int(bias))


def amax_rule_bias(fmt: Format, amax: float) -> int:
    """The bias a runtime picks from the tensor's absolute maximum (see the module docstring).

    For a configurable format: the largest b in 0..63 with ``amax <= max(b)``, clamped to
    0 when even b = 0 saturates; 63 for amax = 0; ``fmt.bias`` when amax is NaN.  Other
    formats: their fixed bias.
    """
    if not _formats.is_configurable(fmt) or math.isnan(amax):
        return fmt.bias
    for bias in reversed(TESLA_BIAS_RANGE):
        if amax <= fmt.replace(bias=bias).max:
            return bias
    return TESLA_BIAS_RANGE.start


def biases_to_evaluate(fmt: Format, biases, amax: float) -> tuple:
    """The biases a sweep evaluates for ``fmt`` (``biases`` as returned by parse_biases)."""
    if not _formats.is_configurable(fmt):
        return (fmt.bias,)
    rule = amax_rule_bias(fmt, amax)
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
    jobs : worker processes when no executor is given (None: ``os.cpu_count()``, inline for
        small sweeps; 1: inline).
    progress : a callable ``progress(done, total)`` called as tasks finish.

    Returns a :class:`SweepResult` (a list of :class:`SweepRecord`).
    """
    from ._inputs import tensor_dict

    tensors = tensor_dict(tensors)
    fmts = parse_formats(formats)
    bias_choice = parse_biases(biases)
    modes = parse_roundings(roundings)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed={seed!r} is not allowed: a non-negative int")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, numbers.Integral) or jobs < 1):
        raise ValueError(f"jobs={jobs!r} is not allowed: a positive int, or None for os.cpu_count()")
    if executor is not None and not isinstance(executor, concurrent.futures.Executor):
        raise TypeError(f"executor={executor!r} is not allowed: a concurrent.futures.Executor or None")

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
                               "rule": amax_rule_bias(fmt, amaxes[name])}

    # Tasks: each tensor's evaluations cut into pieces of at most `chunk`, so that a tensor
    # travels to a worker as few times as possible while every worker gets several tasks.
    evaluations = {name: [(key, bias) for key, group in groups.items() if key[0] == name
                          for bias in sorted(group["biases"])] for name in tensors}
    total = sum(len(items) for items in evaluations.values())
    work = sum(len(items) * tensors[name].size for name, items in evaluations.items())
    inline, workers = _plan(executor, jobs, work)
    # Inline: about 32 tasks, for a progress bar that moves; else about 4 per worker.
    chunk = max(1, math.ceil(total / (32 if inline else 4 * workers)))
    pieces, arguments = [], []
    for name, items in evaluations.items():
        for start in range(0, len(items), chunk):
            piece = items[start:start + chunk]
            pieces.append(piece)
            arguments.append((tensors[name], [(groups[key]["format"], key[2], bias) for key, bias in piece],
                              int(seed)))
    outcomes = {key: [] for key in groups}
    for piece, results in zip(pieces, run_tasks(evaluate, arguments, executor, inline, workers, progress)):
        for (key, bias), metrics in zip(piece, results):
            outcomes[key].append((bias, metrics))

    records = []
    for key, group in groups.items():
        name, spec, rounding = key
        rows = sorted(outcomes[key], key=lambda item: item[0])
        best = best_bias(rows, group["rule"])
        sqnr_by_bias = {bias: metrics["sqnr_db"] for bias, metrics in rows}
        best_sqnr, rule_sqnr = sqnr_by_bias[best], sqnr_by_bias[group["rule"]]
        gap = 0.0 if best_sqnr == rule_sqnr else best_sqnr - rule_sqnr
        for bias, metrics in rows:
            records.append(SweepRecord(
                tensor=name, format=spec, bias=bias, rounding=rounding, seed=int(seed),
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


def _plan(executor, jobs, work):
    """(inline, workers) for a sweep of ``work`` element evaluations."""
    workers = (os.cpu_count() or 1) if jobs is None else int(jobs)
    inline = executor is None and (workers == 1 or (jobs is None and work < _INLINE_WORK))
    return inline, workers


def run_tasks(function, arguments, executor=None, inline=False, workers=1, progress=None) -> list:
    """``[function(*args, threads=1) for args in arguments]``, in order, run inline (this
    process's thread setting is restored afterwards), on ``executor``, or on a process pool
    of ``workers`` made here.  ``threads=1``: each task runs the C loops on one thread, the
    parallelism comes from running tasks side by side (OpenMP teams inside every worker
    would oversubscribe the cores).

    ``progress(done, total)`` is called as tasks finish.  The results never depend on how
    the tasks ran, since each is a pure function of its arguments.
    """
    total = len(arguments)
    results = [None] * total
    if progress is not None:
        progress(0, total)
    if inline:
        previous = lib.fl_max_threads()
        try:
            for index, args in enumerate(arguments):
                results[index] = function(*args, threads=1)
                if progress is not None:
                    progress(index + 1, total)
        finally:
            set_threads(previous)
        return results
    own_pool = executor is None
    if own_pool:
        executor = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=_process_context())
    futures = {}
    try:
        for index, args in enumerate(arguments):
            futures[executor.submit(function, *args, threads=1)] = index
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            results[futures[future]] = future.result()
            if progress is not None:
                progress(done, total)
    except concurrent.futures.process.BrokenProcessPool as error:
        for future in futures:
            future.cancel()
        raise RuntimeError(
            "the sweep's worker processes died before finishing; if this runs from a script, guard its "
            "entry point with `if __name__ == \"__main__\":` (workers re-import the main module), "
            "or pass jobs=1 to run in this process") from error
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    finally:
        if own_pool:
            executor.shutdown(wait=True, cancel_futures=True)
    return results


def _process_context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


# ---- tensor-core matmul sweeps ---------------------------------------------------------------------
DEFAULT_KS = (16, 64, 256, 1024, 4096, 16384, 65536)
DEFAULT_MMA_MODELS = ("h100:fp16", "h100:bf16", "h100:e4m3", "h100:e4m3:promote=128", "fp32_fma")
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


class MMASweepResult(_RecordList):
    """A list of :class:`MMARecord` (model, distribution, K order) with CSV/JSON writers."""

    columns = MMA_COLUMNS

    def summary_table(self) -> str:
        """Relative error (Frobenius) per model and distribution (rows) and K (columns)."""
        ks = sorted({record.k for record in self})
        rows = {}
        for record in self:
            rows.setdefault((record.model, record.distribution), {})[record.k] = record.relative_error
        header = ["model", "distribution"] + [f"K={k}" for k in ks]
        lines = [header]
        for (model, distribution), by_k in rows.items():
            lines.append([model, distribution] + [f"{by_k[k]:.2e}" if k in by_k else "-" for k in ks])
        widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
        out = []
        for index, line in enumerate(lines):
            out.append("  ".join(cell.ljust(width) if column < 2 else cell.rjust(width)
                                 for column, (cell, width) in enumerate(zip(line, widths))).rstrip())
            if index == 0:
                out.append("  ".join("-" * width for width in widths))
        return "relative error ||D - AB||_F / ||AB||_F against a float64 reference\n" + "\n".join(out)


def parse_mma_model(spec):
    """An MMA model from an ``MMAModel`` or a spec string.

    Specs: ``"GPU:INPUT"`` or ``"GPU:INPUT:OUT"`` (``fl.mma_model(GPU, INPUT, OUT)``, e.g.
    ``"h100:e4m3"``), a reference model (``"fp32_fma"``, ``"fp32_pairwise"``, ``"exact"``,
    optionally ``":INPUT"``), or a preset name (``"h100-e4m3-fp32"``); each optionally
    followed by ``:promote=N``, the FP8 promotion interval (0: none).
    """
    from . import mma

    if isinstance(spec, mma.MMAModel):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"models has {spec!r} ({type(spec).__name__}): each must be an MMAModel or a spec "
                        "string such as 'h100:e4m3'")
    parts = [part.strip() for part in spec.split(":") if part.strip()]
    options = {}
    while parts and "=" in parts[-1]:
        key, _, value = parts.pop().partition("=")
        options[key.strip()] = value.strip()
    if not parts or len(parts) > 3:
        raise ValueError(f"model {spec!r} is not allowed: write GPU:INPUT (e.g. h100:e4m3), GPU:INPUT:OUT, "
                         "a reference model (fp32_fma, fp32_pairwise, exact), optionally followed by :promote=N")
    model = mma.mma_model(*parts)
    for key, value in options.items():
        if key != "promote":
            raise ValueError(f"model option {key!r} in {spec!r} is unknown; allowed: promote")
        if not re.fullmatch(r"\d+", value):
            raise ValueError(f"promote={value!r} in {spec!r} is not allowed: a non-negative int (0: none)")
        model = model.replace(promote_every=int(value) or None, name=spec)
    return model


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
    return {"sqnr_db": _sqnr_db(signal, noise),
            "relative_error": math.sqrt(noise / signal) if signal > 0 else (0.0 if noise == 0 else math.inf),
            "max_scaled_error": float(np.abs(scaled).max()) if count else math.nan,
            "mean_scaled_error": float(scaled.sum()) / count if count else math.nan,
            "nonfinite_frac": 1.0 - count / d.size}


def _sqnr_db(signal, noise):
    if noise == 0:
        return math.inf
    return 10.0 * math.log10(signal / noise) if signal > 0 else -math.inf


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
    for :func:`sweep`.
    """
    from ._inputs import DISTRIBUTIONS

    specs = list(DEFAULT_MMA_MODELS if models is None else ([models] if isinstance(models, str) else models))
    if specs and all(isinstance(spec, str) for spec in specs):
        specs = [part for spec in specs for part in _split_model_list(spec)]
    if not specs:
        raise ValueError("models is empty: give at least one, e.g. h100:e4m3")
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
        if name not in DISTRIBUTIONS:
            raise ValueError(f"distribution={name!r} is unknown; choose one of {', '.join(DISTRIBUTIONS)}")
    for argument, value in (("m", m), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= 4096:
            raise ValueError(f"{argument}={value!r} is not allowed: an int from 1 to 4096")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed={seed!r} is not allowed: a non-negative int")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, numbers.Integral) or jobs < 1):
        raise ValueError(f"jobs={jobs!r} is not allowed: a positive int, or None for os.cpu_count()")
    if executor is not None and not isinstance(executor, concurrent.futures.Executor):
        raise TypeError(f"executor={executor!r} is not allowed: a concurrent.futures.Executor or None")

    keys, arguments = [], []
    for label, model in resolved:
        for distribution in distributions:
            for k in ks:
                keys.append((label, distribution, k))
                arguments.append((model, distribution, k, ks[-1], int(m), int(n), float(scale), int(seed)))
    work = sum(int(m) * int(n) * k for _label, _distribution, k in keys) * 8  # a MAC costs ~ 8 quantizations
    inline, workers = _plan(executor, jobs, work)
    results = run_tasks(evaluate_mma, arguments, executor, inline, workers, progress)
    return MMASweepResult(MMARecord(model=label, distribution=distribution, k=k, m=int(m), n=int(n),
                                    scale=float(scale), seed=int(seed), **metrics)
                          for (label, distribution, k), metrics in zip(keys, results))


def _split_model_list(text):
    """Split "h100:e4m3,h100:e4m3:promote=128,fp32_fma" into model specs."""
    items = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        if "=" in part and ":" not in part and items:
            items[-1] += ":" + part
        else:
            items.append(part)
    return items

