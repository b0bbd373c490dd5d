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

Scaled formats (``fl.ScaledFormat``: ``"mxfp8_e4m3"``, ``"nvfp4"``, ``"fp8_block128"``, ...) are sweep
formats too.  Each is evaluated once per (tensor, rounding): the ``bias`` column holds its
element's own bias (the block scales take the bias's role; ``biases`` does not apply), and
the records' ``block``, ``rule``, ``scales`` and ``bits_per_value`` columns say how it was
scaled and what the scales cost in storage.  ``blocks`` and ``rules`` make the block size and
the scale rule sweep axes (:func:`scaled_variants`): every scaled format is evaluated at each
given block and rule it takes, and what is skipped is said (``on_note``).  The metrics are
those of element formats, computed on the exact values decode(encode(x)); for a scaled
format two of them are relative to each block's scale S (scale x tensor scale):
overflow_frac = #{i : |x_i| > element.max * S} / n (the elements that saturate; Inf inputs
count, and no element of a block with a NaN, whose scale is NaN) and subnormal_frac =
#{i : q_i finite, 0 < |element value| < element.min_normal} / n.

Stochastic rounding uses ``quantize(..., seed=seed)`` with the same ``seed`` for every
tensor, format and bias (common random numbers: biases are compared on the same draws),
so ``fl.quantize(x, fmt, "stochastic", seed=seed)`` reproduces any record's values.

Parallelism.  The work is cut into tasks (a row range of one tensor and whole (format, rounding)
groups on it, sized by cost: fmtlab._sweep_tasks), each a pure function of its arguments, so
results never depend on how it is run
(:mod:`fmtlab._pool`, shared with ``fl.sweep_mma`` and the drift experiment):

* ``executor``: any ``concurrent.futures.Executor`` (a Dask ``Client.get_executor()``,
  ``fmtlab.ray_executor.RayExecutor()``, a ``ProcessPoolExecutor`` of your own);
* otherwise ``jobs`` workers (default: the CPUs this process may use): threads of this process
  (``pool="threads"``, the default: the tasks' time is in the C loops, which release the GIL,
  and threads share the tensors and start at once) or fmtlab's worker processes
  (``pool="processes"``, started with "forkserver": fork is unsafe once OpenMP threads exist);
* ``jobs=1``, or ``jobs=None`` when the estimated cost says workers would not finish sooner
  (:func:`parallel_pays`: on threads, a sweep of less than a few milliseconds; on processes,
  one whose fused evaluations take less than about WORKER_START_SECONDS x workers /
  (workers - 1), 0.6 s on two CPUs), runs inline in this process.

Every task runs the C loops on one thread (``fl.set_threads(1)`` in the process that runs
it; restored afterwards when inline or on threads): the parallelism comes from tasks side by side.

Ctrl-C raises ``fmtlab._pool.Interrupted`` (a KeyboardInterrupt) and a dead worker
``fmtlab._pool.WorkerDied`` (a RuntimeError); both carry ``.partial``, a
:class:`SweepResult` of the (tensor, format, rounding) groups that had finished, and
``.planned``, the number of records the whole sweep would have had.

Worker processes (``pool="processes"``) re-import the main module; scripts that use them must
guard their entry point with ``if __name__ == "__main__":``.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import warnings

import numpy as np

from ._parse import block_text, parse_biases, parse_blocks, parse_formats, parse_roundings, parse_rules
from ._bias_axis import bias_axis_statistics, values_dtype
from ._binades import merge_histograms, scan
from ._choices import is_flag
from ._pool import Interrupted, check_pool, WorkerDied, check_run_arguments, plan, run_tasks
from ._records import SweepRecord, SweepResult, format_family
from ._sweep_tasks import (SECONDS_PER_EVALUATION, WORKER_START_SECONDS, group_cost, parallel_pays,
                           plan_tasks)
from ._sweep_scaled import (bias_rule_format, fused_scaled_statistics, merge_tensor_amax, rounding_note,
                            row_quantum, scaled_storage, tensor_amax)
from .codec import decode, encode, quantize, set_threads
from .formats import TESLA_BIAS_RANGE, amax_bias, format_spec, is_configurable
from . import _c
from .integers import IntFormat
from .metrics import (PreparedInput, error_metrics, exact_signal, exact_statistics, merge_statistics,
                      metrics_from_statistics)
from .scaled import BIAS_RULE, ScaledFormat

__all__ = ["sweep", "evaluate", "evaluate_piece", "scan_piece", "piece_statistics", "fused_statistics", "PieceInput", "final_metrics",
           "tensor_scale_exponent", "fused_statistics_biases",
           "DEFAULT_CHUNK", "parallel_pays", "SECONDS_PER_EVALUATION", "WORKER_START_SECONDS", "rule_bias", "best_bias", "biases_to_evaluate", "scaled_variants",
           "record_format", "scaled_metrics"]


def record_format(fmt) -> str:
    """The ``format`` column of a record: :func:`fmtlab.formats.format_spec` for an element
    format (its name without its bias), ``str(fmt)`` for a ScaledFormat (which ``fl.format``
    reads back: ``"mxfp8_e4m3:block=16,rule=rceil"``)."""
    return str(fmt) if isinstance(fmt, ScaledFormat) else format_spec(fmt)


def rule_bias(fmt, amax: float) -> int:
    """The bias a sweep reports as the amax rule's: :func:`fmtlab.formats.amax_bias` for the
    configurable formats (``is_configurable``), the fixed bias of any other format, and for a
    ScaledFormat its element's bias (the block scale does the amax rule's work)."""
    if isinstance(fmt, ScaledFormat):
        return fmt.element.bias
    return amax_bias(fmt, amax) if is_configurable(fmt) else fmt.bias


def biases_to_evaluate(fmt, biases, amax: float) -> tuple:
    """The biases a sweep evaluates for ``fmt`` (``biases`` as returned by parse_biases); one,
    the element's, for a ScaledFormat."""
    if isinstance(fmt, ScaledFormat):
        return (fmt.element.bias,)
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
    count first (1 for sweeps).  Each result is a dict: the metrics of
    :func:`fmtlab.metrics.error_metrics` (for a ScaledFormat those of :func:`scaled_metrics`)
    plus ``scales`` (scale codes stored: 0 for an element format) and ``bits_per_value``.
    """
    if threads is not None:
        set_threads(threads)
    prepared = PreparedInput(x)
    results = []
    for fmt, rounding, bias in items:
        if isinstance(fmt, ScaledFormat):
            results.append(scaled_metrics(x, fmt, rounding, seed, prepared))
            continue
        biased = fmt.replace(bias=bias) if bias != fmt.bias else fmt
        # A format not exact in float32 gets float64 input, so its values are not re-rounded.
        source = prepared.original if biased.decode_dtype == prepared.original.dtype else prepared.x
        quantized = quantize(source, biased, rounding, seed=seed)
        metrics = error_metrics(prepared, quantized, biased)
        metrics.update(scales=0, bits_per_value=float(biased.bits))
        results.append(metrics)
    return results


def scaled_metrics(x, fmt: ScaledFormat, rounding: str, seed: int, prepared=None) -> dict:
    """The metrics of ``x`` (in its own shape: blocks run along its axes) in the scaled ``fmt``.

    q = decode(encode(x)): the exact values, float64 (``fl.quantize(x.astype(np.float64), ...)``;
    ``fl.quantize`` of float32 x returns the same values rounded to float32, which changes
    those of NVFP4 and FP32-scaled formats, whose products have more than 24 bits).  The
    metrics are :func:`fmtlab.metrics.error_metrics`'s, except two, which are relative to each
    block's effective scale S (block scale x tensor scale):

    * ``overflow_frac`` = #{i : |x_i| > element.max * S} / n: the elements that saturate.
      Computed as #{i : |element value_i| = element.max and |x_i| > |q_i|}, the same set,
      since a scaled element always saturates to +-max * S (and q_i = +-max * S is below
      |x_i| exactly when |x_i| is above it).  Inf inputs count; elements of a block holding a
      NaN (scale NaN, q NaN) do not.
    * ``subnormal_frac`` = #{i : q_i finite, 0 < |element value_i| < element.min_normal} / n:
      elements stored as subnormal element codes.

    Also ``scales`` (the number of scale codes) and ``bits_per_value`` = element bits +
    (scales x scale bits + tensor-scale bits) / n.
    """
    prepared = prepared if prepared is not None else PreparedInput(x)
    codes = encode(np.asarray(x), fmt, rounding, seed=seed)
    quantized = decode(codes).reshape(-1)
    element = fmt.element
    magnitudes = np.abs(decode(codes.codes, element).reshape(-1))
    metrics = error_metrics(prepared, quantized, element)
    n = prepared.n
    with np.errstate(invalid="ignore"):
        saturated = (magnitudes == element.max) & (prepared.abs_x > np.abs(quantized))
        subnormal = (magnitudes > 0) & (magnitudes < element.min_normal) & np.isfinite(quantized)
    metrics["overflow_frac"] = float(np.count_nonzero(saturated)) / n if n else math.nan
    metrics["subnormal_frac"] = float(np.count_nonzero(subnormal)) / n if n else math.nan
    scale_bits = codes.scales.size * fmt.scale.bits + (fmt.tensor_scale.bits if fmt.tensor_scale is not None else 0)
    metrics.update(scales=int(codes.scales.size),
                   bits_per_value=element.bits + scale_bits / n if n else math.nan)
    return metrics


# ---- scaled formats: the block and rule axes -----------------------------------------------------
def _family(block) -> str:
    """Which blocks a block of a sweep's ``blocks`` replaces: tiles replace tiles, every other
    block (K, channel, tensor) the blocks along an axis or per tensor."""
    return "tile" if isinstance(block, tuple) else "axis"


def _describe_block(block) -> str:
    if isinstance(block, tuple):
        return f"{block_text(block)} tiles"
    if block == "tensor":
        return "one scale per tensor"
    if block == "channel":
        return "one scale per channel"
    return f"1-D blocks of {block}"


def _block_mismatch(fmt: ScaledFormat) -> str:
    """Why a block of the other family does not replace ``fmt``'s."""
    if _family(fmt.block) == "tile":
        return f"it has {_describe_block(fmt.block)}, and only tiles (RxC) replace tiles"
    return f"it has {_describe_block(fmt.block)}, and tiles (RxC) replace only tiles"


def _rule_refusal(fmt: ScaledFormat, rule: str) -> str | None:
    """Why ``fmt`` does not take ``rule`` (at its own block), or None."""
    if rule == fmt.rule:
        return None
    if fmt.tensor_scale is not None and rule != "amax":
        family = format_family(str(fmt))
        return (f"its tensor scale (NVFP4's second level) needs rule amax "
                f"({family}:tensor_scale=none takes every rule)")
    try:
        fmt.replace(rule=rule)
    except ValueError as error:
        return str(error)
    return None


def _shown(argument, values) -> str:
    """Values as the argument spells them: "--block 16,32" or "blocks=[16, 32]"."""
    if is_flag(argument):
        return f"{argument} {','.join(value if isinstance(value, str) else block_text(value) for value in values)}"
    return f"{argument}={list(values)!r}"


def scaled_variants(formats, blocks=None, rules=None, *, block_argument="blocks", rule_argument="rules"):
    """The formats a sweep evaluates when block size and scale rule are axes, and the notes on
    what it skips: ``(formats, notes)``.

    ``formats`` as ``parse_formats`` returns them; ``blocks``, ``rules`` as ``parse_blocks`` and
    ``parse_rules`` do (None: each format's own).  Element formats pass through.  Each
    ScaledFormat F is replaced by F at every (block, rule) of blocks x rules that it takes, in
    the order rule, then block:

    * a block replaces F's block when both are tiles (R x C) or both are not (K, ``"channel"``,
      ``"tensor"``): the geometry stays, the size changes;
    * a rule, and a (block, rule) pair, when ``fl.ScaledFormat`` accepts the result: every rule
      for a single-level scale (E8M0, E4M3, FP32, ...), only ``"amax"`` with a tensor scale
      (NVFP4's second level needs it; ``nvfp4:tensor_scale=none`` takes them all).

    A format that takes none of the given blocks (rules) keeps its own.  Each skipped
    combination is said once in ``notes`` (one-line strings); a block or rule that no format
    takes at all is a ValueError (it would do nothing).  Duplicates are dropped, first kept.
    ``block_argument`` and ``rule_argument`` name the arguments in messages (flags such as
    "--block": command-line terms).
    """
    notes = []
    expanded = []
    used_blocks, used_rules = set(), set()
    block_reasons = {block: [] for block in blocks or ()}
    rule_reasons = {rule: [] for rule in rules or ()}
    for fmt in formats:
        if not isinstance(fmt, ScaledFormat):
            expanded.append(fmt)
            for reasons in list(block_reasons.values()) + list(rule_reasons.values()):
                reasons.append(f"{record_format(fmt)} is not a scaled format")
            continue
        spec = str(fmt)
        if fmt.rule == BIAS_RULE and (blocks or rules):
            # the per-tensor bias (cfloat8_1_4_3:bias=auto) takes no other block or rule: one note
            why = "its bias is one per tensor (block tensor, rule bias)"
            for reasons in list(block_reasons.values()) + list(rule_reasons.values()):
                reasons.append(f"{spec}: {why}")
            given = [(block_argument, blocks), (rule_argument, rules)]
            shown = " and ".join(_shown(argument, values) for argument, values in given if values)
            notes.append(f"{shown} skipped for {spec}: {why}")
            used_blocks.add(fmt.block)
            used_rules.add(fmt.rule)
            expanded.append(fmt)
            continue
        block_choices = [fmt.block]
        if blocks:
            taken = [block for block in blocks if _family(block) == _family(fmt.block)]
            left = [block for block in blocks if block not in taken]
            if left:
                why = _block_mismatch(fmt)
                for block in left:
                    block_reasons[block].append(f"{spec}: {why}")
                notes.append(f"{_shown(block_argument, left)} skipped for {spec}: {why}"
                             + ("" if taken else f"; it keeps its own block {block_text(fmt.block)}"))
            block_choices = taken or block_choices
        rule_choices = [fmt.rule]
        if rules:
            refused = {}
            for rule in rules:
                reason = _rule_refusal(fmt, rule)
                if reason is not None:
                    refused.setdefault(reason, []).append(rule)
                    rule_reasons[rule].append(f"{spec}: {reason}")
            taken = [rule for rule in rules if all(rule not in group for group in refused.values())]
            for reason, group in refused.items():
                notes.append(f"{_shown(rule_argument, group)} skipped for {spec}: {reason}"
                             + ("" if taken else f"; it keeps its own rule {fmt.rule}"))
            rule_choices = taken or rule_choices
        made = []
        for rule in rule_choices:
            for block in block_choices:
                try:
                    made.append((block, rule, fmt.replace(block=block, rule=rule)))
                except ValueError as error:  # a pair refused although each part alone is fine
                    notes.append(f"{spec} at block {block_text(block)} and rule {rule} skipped: {error}")
                    for reasons, key in ((block_reasons, block), (rule_reasons, rule)):
                        if key in reasons:
                            reasons[key].append(f"{spec} at block {block_text(block)} and rule {rule}: {error}")
        if not made:
            notes.append(f"{spec} is evaluated as given: no combination of the blocks and rules asked for "
                         "applies to it")
            made = [(fmt.block, fmt.rule, fmt)]
        for block, rule, variant in made:
            used_blocks.add(block)
            used_rules.add(rule)
            expanded.append(variant)
    for argument, reasons_of, used in ((block_argument, block_reasons, used_blocks),
                                       (rule_argument, rule_reasons, used_rules)):
        for value, reasons in reasons_of.items():
            if value not in used:
                raise ValueError(f"{_shown(argument, [value])} applies to none of the formats: "
                                 + "; ".join(dict.fromkeys(reasons)))
    unique = {}
    for fmt in expanded:
        unique.setdefault(record_format(fmt), fmt)
    return list(unique.values()), notes


def _shape_problem(fmt: ScaledFormat, shape) -> str | None:
    """Why ``fmt`` cannot block a tensor of ``shape`` (tiles on a 1-D tensor, ...), or None;
    the same reason for every such tensor, so that one note can name them all."""
    try:
        fmt.scales_shape(shape)
    except ValueError as error:
        if isinstance(fmt.block, tuple) and len(shape) < 2:
            return f"its {block_text(fmt.block)} tiles need tensors of at least 2 dimensions"
        if len(shape) == 0:
            return "its blocks need a tensor of at least 1 dimension"
        return str(error)
    return None


DEFAULT_CHUNK = 1 << 22  # elements per task of a large tensor (4M: 8 MB of BF16, 16 MB as float32)


def sweep(tensors, formats=None, biases=None, roundings=("nearest_even",), seed=0, executor=None, *,
          jobs=None, progress=None, blocks=None, rules=None, on_note=None, chunk=DEFAULT_CHUNK, include=None,
          exclude=None, on_records=None, done=None, pool="threads") -> SweepResult:
    """Quantize tensors to every (format, bias, rounding) and measure the error.

    Parameters
    ----------
    tensors : an array, a dict name -> array, or a path (or a list of paths) to a
        .npy/.npz/.pt/.pth/.safetensors file, a directory of them, or a sharded checkpoint's
        ``*.index.json`` (every floating-point tensor in them; see
        :func:`fmtlab._inputs.tensor_sources`).  Files are read lazily, a task's rows at a time.
    formats : a format name, a Format, a ScaledFormat, a list of them, or a comma-separated
        string (None: fp32, fp16, bf16, cfloat8_1_4_3, cfloat8_1_5_2).  Scaled names such as
        "mxfp8_e4m3", "nvfp4", "e4m3fn:block=64,scale=e8m0" give scaled formats.
    biases : None, "all", "auto", or a list of biases for the configurable formats (see the
        module docstring); scaled formats are evaluated at their element's bias.
    roundings : rounding modes (names from ``fl.ROUNDINGS``).
    seed : the stochastic-rounding seed (an int >= 0).
    executor : a ``concurrent.futures.Executor`` or a ``distributed.Client`` to run the tasks
        on; None uses ``jobs``.
    jobs : workers when no executor is given (None: the CPUs available,
        ``fmtlab._pool.available_cpus()``, inline when the estimated cost says workers would not
        finish sooner; 1: inline).
    pool : what the ``jobs`` workers are: "threads" (default) of this process, which share the
        tensors and start at once (the C loops release the GIL), or "processes", fmtlab's worker
        processes (a worker killed, e.g. out of memory, is named and the run keeps what had
        finished; each costs a start and a copy of its rows).  Ignored with an executor.
    progress : a callable ``progress(done, total)`` called at the start (done = 0) and as
        tasks finish (total = the number of tasks).  File inputs first take a reading pass
        (the tensors' amax), reported the same way before the evaluation's own calls.
    blocks : None, or block sizes to evaluate every scaled format at: ints (1-D blocks),
        (rows, columns) pairs or "RxC" strings (tiles), "channel", "tensor", or a string
        "16,32,16x16" (see :func:`scaled_variants` for which format takes which).
    rules : None, or scale rules to evaluate every scaled format at ("floor", "ceil", "even",
        "rceil", "amax"; a list or a string "floor,rceil").
    on_note : a callable ``on_note(line)`` for each combination the sweep skips (a block or
        rule a format does not take, a tensor a format cannot block); None: each is a
        ``UserWarning``.  The notes are also in the result's ``notes``.
    chunk : elements per task of a large tensor (an int >= 1): a tensor is cut into ranges of
        whole rows (its first axis) of at most ``chunk`` elements (one row when a row is
        larger), evaluated apart and merged exactly (see docs/sweep.md): the results do not
        depend on it.  Scaled formats are cut the same way, in whole blocks (a chunk smaller
        than one block row is rounded up to it, with a note), with their per-tensor scales from
        the first pass (fmtlab._sweep_scaled).
    include, exclude : glob patterns on tensor names (a list or a comma-separated string).
    on_records : a callable ``on_records(records)`` called in this process with the records
        of each tensor as soon as all of them are known (a list of :class:`SweepRecord`).
    done : records of an earlier run of the same sweep (e.g. read back from its CSV): each
        (tensor, format, rounding) group whose records are all there is taken from them
        instead of being computed again.

    Returns a :class:`SweepResult` (a list of :class:`SweepRecord`) whose ``histograms`` is
    name -> the tensor's log2|x| histogram (exact binade counts, :mod:`fmtlab._binades`),
    gathered in the amax pass, not by reading the tensors again.  Raises
    ``fmtlab._pool.Interrupted`` on Ctrl-C and ``fmtlab._pool.WorkerDied`` when a worker
    process dies, each with ``.partial``: the SweepResult of the groups that had finished (with
    its ``histograms``), and ``.planned_groups``: the (tensor, format, rounding) of every group
    the sweep was to give.
    """
    from ._inputs import tensor_sources

    fmts = parse_formats(formats)
    bias_choice = parse_biases(biases)
    modes = parse_roundings(roundings)
    fmts, notes = scaled_variants(fmts, parse_blocks(blocks), parse_rules(rules))
    check_run_arguments(seed, jobs, executor)
    check_pool(pool)
    if on_note is not None and not callable(on_note):
        raise TypeError(f"on_note={on_note!r} is not allowed: a callable on_note(line), or None for warnings")
    if on_records is not None and not callable(on_records):
        raise TypeError(f"on_records={on_records!r} is not allowed: a callable on_records(records), or None")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk={chunk!r} is not allowed: a positive int (elements per task)")
    sources = {source.name: source for source in tensor_sources(tensors, include=include, exclude=exclude)}

    # Pass 1: each tensor's amax (in-memory tensors here; files on the workers, a chunk at a time).
    scans = _scan(sources, chunk, executor, jobs, progress, pool)
    amaxes = {name: scan["amax"] for name, scan in scans.items()}
    groups = {}
    unblockable = {}  # scaled format spec -> {problem: [tensor names]}
    for name, source in sources.items():
        for fmt in fmts:
            spec = record_format(fmt)
            if isinstance(fmt, ScaledFormat):
                problem = _shape_problem(fmt, source.shape)
                if problem is not None:
                    unblockable.setdefault(spec, {}).setdefault(problem, []).append(name)
                    continue
            for rounding in modes:
                key = (name, spec, rounding)
                if key in groups:
                    groups[key]["biases"].update(biases_to_evaluate(fmt, bias_choice, amaxes[name]))
                    continue
                groups[key] = {"format": fmt, "biases": set(biases_to_evaluate(fmt, bias_choice, amaxes[name])),
                               "rule": rule_bias(fmt, amaxes[name])}
    for spec, problems in unblockable.items():
        for problem, names in problems.items():
            shown = ", ".join(repr(name) for name in names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6
                                                                   else "")
            notes.append(f"{spec} skipped for {len(names)} tensor(s) {shown}: {problem}")
    if not groups:
        raise ValueError("nothing to evaluate: " + "; ".join(notes))
    reused = _reusable(groups, done)

    # Tasks (fmtlab._sweep_tasks): a row range of one tensor and whole (format, rounding) groups on
    # it -- a bias axis is never split, so the one-pass bias axis sees all its biases -- sized by
    # cost to about four tasks per worker (16 inline), rows cut further only for a group too costly
    # alone.  A scaled format whose blocks span rows (tiles on a matrix, blocks along a 1-D tensor)
    # gets ranges of whole blocks of its own.
    total = sum(len(group["biases"]) for group in groups.values())
    layout, work = [], 0
    rounded = {}  # (scaled spec, quantum) -> tensors whose pieces the chunk's rows could not hold
    for name, source in sources.items():
        tensor_groups = []
        for key, group in groups.items():
            if key[0] != name or key in reused:
                continue
            fmt = group["format"]
            scaled = isinstance(fmt, ScaledFormat)
            quantum = row_quantum(fmt, source.shape) if scaled else 1
            if quantum > 1 and chunk < quantum * source.row_size and source.rows > quantum:
                rounded.setdefault((key[1], quantum), {})[name] = None
            per_element = group_cost(len(group["biases"]), scaled)
            tensor_groups.append((key, sorted(group["biases"]), quantum, per_element))
            work += source.size * per_element
        if tensor_groups:
            layout.append((name, source.rows, source.row_size, tensor_groups))
    inline, workers = plan(executor, jobs, work)
    if executor is None and jobs is None:
        inline = workers == 1 or not parallel_pays(work, workers, pool)
    tasks = plan_tasks(layout, chunk, workers, inline)
    arguments = [(sources[task.name].piece(task.start, task.stop),
                  [(groups[key]["format"], key[2], bias) for key, bias in task.items], int(seed),
                  tensor_scale_exponent(amaxes[task.name]),
                  (scans[task.name]["tensor_amax"], scans[task.name]["amax"])) for task in tasks]
    labels = [task.label for task in tasks]
    notes += [rounding_note(spec, quantum, chunk, names) for (spec, quantum), names in rounded.items()]
    for note in notes:
        if on_note is None:
            warnings.warn(note, UserWarning, stacklevel=2)
        else:
            on_note(note)

    merged = {}  # (key, bias) -> merged statistics (of element and scaled formats alike)
    pieces_left = {}  # (key, bias) -> tasks of it not merged yet; complete at 0
    remaining = {}  # tensor name -> tasks left
    for task in tasks:
        remaining[task.name] = remaining.get(task.name, 0) + 1
        for item in task.items:
            pieces_left[item] = pieces_left.get(item, 0) + 1

    def finished(index, result):
        name, piece_items = tasks[index].name, tasks[index].items
        for item, statistics in zip(piece_items, result):
            merged[item] = statistics if item not in merged else _merge(merged[item], statistics)
            pieces_left[item] -= 1
        remaining[name] -= 1
        if remaining[name] == 0 and on_records is not None:
            on_records(_records(groups, _complete(merged, pieces_left), sources, amaxes, int(seed), reused,
                                names={name}))

    if on_records is not None:
        for name in sources:
            if name not in remaining:  # every group reused
                on_records(_records(groups, merged, sources, amaxes, int(seed), reused, names={name}))
    try:
        run_tasks(evaluate_piece, arguments, executor, inline, workers, progress, labels=labels,
                  preload=("fmtlab",), on_result=finished, pool=pool)
    except (Interrupted, WorkerDied) as stopped:
        stopped.partial = _records(groups, _complete(merged, pieces_left), sources, amaxes, int(seed), reused, notes)
        stopped.partial.histograms = _histograms(scans)
        stopped.planned = total
        stopped.planned_groups = list(groups)  # (tensor, format, rounding) of every group the run was to give
        raise
    result = _records(groups, merged, sources, amaxes, int(seed), reused, notes)
    result.histograms = _histograms(scans)
    return result


def _histograms(scans) -> dict:
    """name -> the tensor's log2|x| histogram (fmtlab._binades), gathered by the scan pass."""
    return {name: scan["histogram"] for name, scan in scans.items()}


def _complete(merged, pieces_left) -> dict:
    """The merged statistics of the evaluations all of whose pieces have been merged."""
    return {item: statistics for item, statistics in merged.items() if pieces_left[item] == 0}


def _row_ranges(source, chunk: int) -> list:
    """The (start, stop) row ranges a tensor is cut into: whole rows, at most ``chunk`` elements
    each (one row when a row alone is larger)."""
    rows_per_task = max(1, chunk // source.row_size)
    return [(start, min(source.rows, start + rows_per_task)) for start in range(0, source.rows, rows_per_task)]


def _reusable(groups, done) -> dict:
    """key -> {bias: record} of the groups whose every evaluation is among the ``done`` records."""
    if done is None:
        return {}
    found = {}
    for record in done:
        if not isinstance(record, SweepRecord):
            raise TypeError(f"done holds {type(record).__name__}: records of an earlier sweep (SweepRecord)")
        found.setdefault((record.tensor, record.format, record.rounding), {})[record.bias] = record
    return {key: found[key] for key, group in groups.items()
            if key in found and set(found[key]) == group["biases"]
            and all(record.rule_bias == group["rule"] for record in found[key].values())}


def _scan(sources, chunk, executor, jobs, progress, pool="threads") -> dict:
    """name -> {"amax", "tensor_amax", "histogram"}: every tensor's largest finite magnitude (NaN
    without a finite element), its largest magnitude counting NaN and Inf (for the scaled
    formats' per-tensor scales) and its log2|x| histogram (for the report; integer counts, added
    in piece order); in-memory tensors here, file tensors a chunk per task."""
    scans, arguments, owners = {}, [], []
    for name, source in sources.items():
        if source.kind == "array":
            scans[name] = scan_piece(source.piece(0, source.rows))
            continue
        for start, stop in _row_ranges(source, chunk):
            arguments.append((source.piece(start, stop),))
            owners.append(name)
    if arguments:
        inline, workers = plan(executor, jobs, sum(sources[name].size for name in set(owners)))
        results = run_tasks(scan_piece, arguments, executor, inline, workers, progress,
                            labels=[f"reading tensor {name!r}" for name in owners], preload=("fmtlab",),
                            pool=pool)
        for name, result in zip(owners, results):
            scans[name] = result if name not in scans else {
                "amax": _max_amax(scans[name]["amax"], result["amax"]),
                "tensor_amax": merge_tensor_amax(scans[name]["tensor_amax"], result["tensor_amax"]),
                "histogram": merge_histograms(scans[name]["histogram"], result["histogram"])}
    return scans


def _max_amax(first: float, second: float) -> float:
    if math.isnan(first):
        return second
    if math.isnan(second):
        return first
    return max(first, second)


def scan_piece(piece, threads=None) -> dict:
    """The first pass over a tensor's rows: ``{"amax": max |x| over the finite values}`` (NaN
    when there is none) and ``"tensor_amax"``, max |x| over all of them (NaN when one is NaN:
    fmtlab._sweep_scaled.tensor_amax); maxima merge exactly, so the tensor's amaxes are the
    maxima over its pieces.  ``"histogram"``: the piece's exact binade counts
    (:func:`fmtlab._binades.log2_histogram`), which add up to the tensor's; all three from one
    read of the values in C (:func:`fmtlab._binades.scan`)."""
    return scan(piece.read())


# ---- the work on a piece of a tensor -------------------------------------------------------------
def evaluate_piece(piece, items, seed: int, scale_exponent: int = 0, amaxes=None, threads=None) -> list:
    """Statistics of the rows ``piece`` (a :class:`fmtlab._inputs.TensorPiece`) quantized to each
    (fmt, rounding, bias) of ``items``: the unit of work a sweep sends to its executor.

    For an element format the result is the piece's mergeable statistics
    (:func:`fmtlab.metrics.exact_statistics`: counts, maxima, exact sums), computed by the fused
    C kernel (:func:`fused_statistics`: one pass that rounds each element as ``fl.quantize``
    does, stochastic draws at the elements' global indices, and accumulates; the biases of one
    format and rounding together by :func:`fused_statistics_biases`, equal bit for bit), so that
    merging the
    pieces of a tensor gives exactly the statistics of the whole.  A ScaledFormat gets the same
    statistics of its exact values decode(encode(x)) (its piece holds whole blocks), with overflow
    and subnormal counted relative to each block's scale; ``amaxes`` = (the tensor's amax
    counting NaN and Inf, its finite amax), from the scan, gives its per-tensor scales
    (fmtlab._sweep_scaled; None: the piece must be the whole tensor, which gives them).
    ``scale_exponent`` is accepted for callers of the earlier float sums and not needed: the
    sums are exact over the whole float64 range.
    """
    if threads is not None:
        set_threads(threads)
    x = piece.read()
    results = [None] * len(items)
    scaled = []
    base = None
    bias_groups = {}  # (format without its bias, rounding) -> [(index, biased format)]
    for index, (fmt, rounding, bias) in enumerate(items):
        if isinstance(fmt, ScaledFormat):
            scaled.append((index, fmt, rounding))
            continue
        if base is None:
            base = PieceInput(x, piece.offset, piece.total)
        biased = _with_bias(fmt, bias)
        if isinstance(fmt, IntFormat):
            results[index] = fused_statistics(base, biased, rounding, seed)
        else:
            bias_groups.setdefault((_without_bias(fmt), rounding), []).append((index, biased))
    for (_fmt, rounding), members in bias_groups.items():
        if len(members) == 1:
            index, biased = members[0]
            results[index] = fused_statistics(base, biased, rounding, seed)
            continue
        shared = fused_statistics_biases(base, [biased for _index, biased in members], rounding, seed)
        for (index, _biased), statistics in zip(members, shared):
            results[index] = statistics
    if scaled:
        _evaluate_scaled(piece, x, scaled, seed, amaxes, results, base)
    return results


@functools.lru_cache(maxsize=4096)
def _with_bias(fmt, bias):
    """``fmt`` at ``bias`` (``fmt`` itself at its own): cached, since every task of a sweep makes
    the same biased formats and a Format's checks cost about 15 us (4% of the issue-14 job, time
    that holds the GIL while threads could run the C loops)."""
    return fmt.replace(bias=bias) if bias != fmt.bias else fmt


def _without_bias(fmt) -> tuple:
    """The fields of an element format other than its bias: the formats of one bias axis."""
    return (type(fmt),) + tuple(getattr(fmt, field.name) for field in dataclasses.fields(fmt) if field.name != "bias")


def _evaluate_scaled(piece, x, scaled, seed, amaxes, results, base=None) -> None:
    """The statistics of the scaled (index, fmt, rounding) of a piece into ``results``, each in one
    fused C pass over the piece (fmtlab._sweep_scaled.fused_scaled_statistics: encoded as inside
    the whole tensor, no array of q); rule "bias" as its element format at the tensor's bias
    (fmtlab._sweep_scaled.bias_rule_format), saturating.  ``base``: the piece's PieceInput when the
    element formats made one (its exact signal is shared)."""
    if amaxes is None:
        if x.size != piece.total:
            raise ValueError("evaluate_piece needs amaxes (the tensor's) for a scaled format on part of a tensor")
        amaxes = (tensor_amax(x), _finite_amax(x))
    base = base if base is not None else PieceInput(x, piece.offset, piece.total)
    shape = tuple(piece.shape)
    for index, fmt, rounding in scaled:
        if fmt.rule == BIAS_RULE:
            results[index] = fused_statistics(base, bias_rule_format(fmt, amaxes[1]), rounding, seed, saturate=True)
        elif base.n == 0:
            results[index] = piece_statistics(base, np.zeros(0), fmt.element)
        else:
            results[index] = fused_scaled_statistics(base.original, shape, fmt, rounding, seed, piece.offset,
                                                     amaxes[0], base.signal())


def fused_statistics(base, fmt, rounding: str, seed: int, saturate=None, *, sr_bits=None, sr_rule="truncate") -> dict:
    """The statistics of ``base`` (a :class:`PieceInput`) quantized to the element format ``fmt``,
    equal to ``piece_statistics(base, fl.quantize(source, fmt, rounding, seed=seed, sr_bits=sr_bits,
    sr_rule=sr_rule, index_offset=base.offset, saturate=saturate), fmt)`` (source: float32 input when
    the piece and the format's values are float32, else float64, as the sweep quantizes), in one C
    pass without the array q (csrc/sweep_stats.c, fl_sweep_evaluate_f32 / _f64).  Integer formats
    take that path itself."""
    source = _source(base, fmt)
    if isinstance(fmt, IntFormat):
        return piece_statistics(base, quantize(source, fmt, rounding, seed=seed, sr_bits=sr_bits, sr_rule=sr_rule,
                                               index_offset=int(base.offset), saturate=saturate), fmt)
    request = _c.rounding_request(rounding, saturate, seed=seed, sr_bits=sr_bits, sr_rule=sr_rule)
    stats = _c.ffi.new("fl_sweep_stats *")
    function, value_type = _c.float_entry("sweep_evaluate", source.dtype)
    _c.check_status(function(_c.pointer(source, value_type), source.size, _c.c_format(fmt), _c.c_rounding(request),
                             int(base.offset), float(fmt.max), float(fmt.min_normal), stats), "sweep evaluation")
    return _c.sweep_statistics(stats, base.signal())


def _source(base, fmt):
    """What the fused kernel reads for ``fmt``: the piece's own float32 values when the format's
    values are float32 too, else the float64 copy."""
    return base.original if fmt.decode_dtype == base.original.dtype else base.x


def tensor_scale_exponent(amax: float) -> int:
    """0: kept for callers of the float sums, which divided x and q by a power of two when amax
    was outside 2^-480..2^480; the exact sums (csrc/sweep_stats.c) cover the whole float64 range."""
    return 0


class PieceInput:
    """A piece of a tensor read once as float64, with what every format's statistics reuse: its
    exact signal sum (over the finite inputs; each format takes off its elements outside V).
    ``x`` the piece's values (float32 or float64), ``offset`` the global index of its first
    element, ``total`` the tensor's size; ``scale_exponent`` is accepted for callers of the
    earlier float sums and unused (the exact sums need no scaling)."""

    def __init__(self, x, offset, total, scale_exponent=0):
        self.original = np.ascontiguousarray(x).reshape(-1)
        self.offset, self.total = offset, total
        self.n = self.original.size
        self._signal = None
        self._x = None

    @property
    def x(self):
        """The piece as float64, made when first asked for (the fused kernels read ``original``)."""
        if self._x is None:
            self._x = self.original.astype(np.float64)
        return self._x

    def signal(self) -> int:
        """sum of x^2 over the finite inputs, exactly (an int of 2^EXACT_EXPONENT)."""
        if self._signal is None:
            self._signal = exact_signal(self.original if self.original.dtype == np.float32 else self.x)
        return self._signal


_PieceInput = PieceInput  # the earlier name


def piece_statistics(base, q, fmt) -> dict:
    """The mergeable statistics of a piece ``base`` (its inputs) quantized to ``q`` in ``fmt``:
    :func:`fmtlab.metrics.exact_statistics` (counts: n, |V|, zeros in and out, overflow, below
    normal, NaN and Inf in and out; the maxima of |e| and |e| / |x| over V; the exact sums over
    V of x^2, e^2 and e).  :func:`final_metrics` turns the merged statistics of a tensor's pieces
    into its metrics."""
    return exact_statistics(base.x, q, fmt, base.signal())


def _merge(first: dict, second: dict) -> dict:
    """Statistics of two pieces together: counts and exact sums add, maxima take the max."""
    return merge_statistics(first, second)


def final_metrics(statistics: dict) -> dict:
    """The metrics of :mod:`fmtlab.metrics` (``METRIC_NAMES``) from a tensor's merged statistics:
    :func:`fmtlab.metrics.metrics_from_statistics`, rounded once from the exact sums."""
    return metrics_from_statistics(statistics)


def _records(groups, merged, sources, amaxes, seed, reused, notes=(), names=None) -> SweepResult:
    """The records of every group (of the tensors in ``names``; None: all) whose evaluations are
    all in ``merged`` (complete: every piece of the tensor merged) or reused from a resumed run."""
    records = []
    for key, group in groups.items():
        name, spec, rounding = key
        if names is not None and name not in names:
            continue
        if key in reused:
            records.extend(reused[key][bias] for bias in sorted(group["biases"]))
            continue
        if not all((key, bias) in merged for bias in group["biases"]):
            continue  # part of the group did not run
        rows = []
        for bias in sorted(group["biases"]):
            metrics = final_metrics(merged[(key, bias)])
            fmt = group["format"]
            metrics.update(scaled_storage(fmt, sources[name].shape) if isinstance(fmt, ScaledFormat)
                           else dict(scales=0, bits_per_value=float(fmt.bits)))
            rows.append((bias, metrics))
        best = best_bias(rows, group["rule"])
        sqnr_by_bias = {bias: metrics["sqnr_db"] for bias, metrics in rows}
        best_sqnr, rule_sqnr = sqnr_by_bias[best], sqnr_by_bias[group["rule"]]
        # 0 when both are the same bias (even with a NaN SQNR) or both +inf
        gap = 0.0 if best == group["rule"] or best_sqnr == rule_sqnr else best_sqnr - rule_sqnr
        fmt = group["format"]
        scaled = isinstance(fmt, ScaledFormat)
        for bias, metrics in rows:
            records.append(SweepRecord(
                tensor=name, format=spec, bias=bias, rounding=rounding, seed=seed,
                n=int(sources[name].size), amax=amaxes[name], **metrics, rule_bias=group["rule"],
                best_bias=best, is_rule_bias=bias == group["rule"], is_best_bias=bias == best,
                sqnr_gap_db=gap, block=block_text(fmt.block) if scaled else "", rule=fmt.rule if scaled else ""))
    return SweepResult(records, notes=notes)


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


def fused_statistics_biases(base, formats, rounding: str, seed: int, *, sr_bits=None, sr_rule="truncate") -> list:
    """``[fused_statistics(base, fmt, rounding, seed, sr_bits=sr_bits, sr_rule=sr_rule) for fmt in
    formats]`` (element formats differing in their bias only), bit for bit, in one C call per
    source dtype: each interior binade evaluated once, the saturated and the known-zero binades
    from exact integer sums, each bias's edge element by element (csrc/bias_axis.c,
    :func:`fmtlab._bias_axis.bias_axis_statistics`; docs/sweep.md, "The bias axis in one pass")."""
    formats = list(formats)
    request = _c.rounding_request(rounding, seed=seed, sr_bits=sr_bits, sr_rule=sr_rule)
    results = [None] * len(formats)
    by_source = {}  # the fused kernel's input dtype -> [(index, fmt)]: float32 or float64 values
    for index, fmt in enumerate(formats):
        wide = values_dtype(fmt) != base.original.dtype  # _source's rule, the dtype cached per format
        by_source.setdefault(wide, []).append((index, fmt))
    for wide, members in by_source.items():
        source = base.x if wide else base.original
        shared = bias_axis_statistics(source, [fmt for _index, fmt in members], request, base.offset, base.signal())
        for (index, _fmt), statistics in zip(members, shared):
            results[index] = statistics
    return results
