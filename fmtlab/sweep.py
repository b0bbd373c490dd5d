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

Parallelism.  The work is cut into tasks of (tensor, format, rounding, some biases), each
a pure function of its arguments, so results never depend on how it is run:

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
import sys
import types

import numpy as np

from . import formats as _formats
from ._native_loader import lib
from .codec import quantize, set_threads
from .formats import Format, ROUNDINGS, TESLA_BIAS_RANGE
from .metrics import METRIC_NAMES, PreparedInput, error_metrics

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


class SweepResult(list):
    """A list of :class:`SweepRecord`, sorted by tensor, format, rounding and bias, with
    writers (CSV, JSON) and a per-group summary."""

    def to_csv(self, path=None) -> str:
        """CSV with one row per record and the columns of ``COLUMNS``; written to ``path`` if given.
        Floats are written in full precision (Python's repr), infinities as ``inf``."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
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

    def summary(self) -> list[dict]:
        """One dict per (tensor, format, rounding): best and rule bias, their SQNR and the gap."""
        groups = {}
        for record in self:
            groups.setdefault((record.tensor, record.format, record.rounding), []).append(record)
        rows = []
        for (tensor, format_spec, rounding), records in groups.items():
            best = next(record for record in records if record.is_best_bias)
            rule = next(record for record in records if record.is_rule_bias)
            rows.append({"tensor": tensor, "format": format_spec, "rounding": rounding,
                         "biases_evaluated": len(records), "best_bias": best.bias,
                         "best_sqnr_db": best.sqnr_db, "rule_bias": rule.bias, "rule_sqnr_db": rule.sqnr_db,
                         "sqnr_gap_db": best.sqnr_gap_db, "overflow_frac": best.overflow_frac,
                         "underflow_frac": best.underflow_frac})
        return rows

    def summary_table(self) -> str:
        """The summary as an aligned text table."""
        header = ("tensor", "format", "rounding", "biases", "best bias", "SQNR dB", "rule bias",
                  "rule SQNR dB", "gap dB", "underflow %")
        lines = [header]
        for row in self.summary():
            fixed = row["biases_evaluated"] == 1
            lines.append((row["tensor"], row["format"], row["rounding"], str(row["biases_evaluated"]),
                          str(row["best_bias"]), _decibels(row["best_sqnr_db"]),
                          "-" if fixed else str(row["rule_bias"]),
                          "-" if fixed else _decibels(row["rule_sqnr_db"]),
                          "-" if fixed else _decibels(row["sqnr_gap_db"]),
                          f"{100 * row['underflow_frac']:.3g}"))
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
def evaluate(x, fmt: Format, biases, rounding: str, seed: int, threads=None) -> list:
    """Metrics of ``x`` quantized to ``fmt`` at each bias: a list of (bias, metrics dict).

    The unit of work a sweep sends to its executor (a module-level function, so it pickles).
    ``threads`` sets the C loops' thread count first (1 in worker processes).
    """
    if threads is not None:
        set_threads(threads)
    prepared = PreparedInput(x)
    results = []
    for bias in biases:
        biased = fmt.replace(bias=bias) if bias != fmt.bias else fmt
        # A format not exact in float32 gets float64 input, so its values are not re-rounded.
        source = prepared.original if biased.decode_dtype == prepared.original.dtype else prepared.x
        quantized = quantize(source, biased, rounding, seed=seed)
        results.append((bias, error_metrics(prepared, quantized, biased)))
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

    evaluations = sum(len(group["biases"]) for group in groups.values())
    work = sum(len(group["biases"]) * tensors[key[0]].size for key, group in groups.items())
    inline, workers = _plan(executor, jobs, work)
    chunk = evaluations if inline else max(1, math.ceil(evaluations / (4 * workers)))
    keys, arguments = [], []
    for key, group in groups.items():
        name, _spec, rounding = key
        ordered = sorted(group["biases"])
        for start in range(0, len(ordered), chunk):
            keys.append(key)
            arguments.append((tensors[name], group["format"], tuple(ordered[start:start + chunk]), rounding,
                              int(seed)))
    outcomes = {key: [] for key in groups}
    for key, result in zip(keys, run_tasks(evaluate, arguments, executor, inline, workers, progress)):
        outcomes[key].extend(result)

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


class _CallableModule(types.ModuleType):
    """``fmtlab.sweep`` is both this module and the function: once the submodule is imported,
    Python binds the package attribute ``fmtlab.sweep`` to the module, so calling it must work."""

    def __call__(self, *args, **kwargs):
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
