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
import warnings

import numpy as np

from ._parse import block_text, parse_biases, parse_blocks, parse_formats, parse_roundings, parse_rules
from ._choices import is_flag
from ._pool import Interrupted, WorkerDied, check_run_arguments, plan, run_tasks
from ._records import SweepRecord, SweepResult, format_family
from .codec import decode, encode, quantize, set_threads
from .formats import TESLA_BIAS_RANGE, amax_bias, format_spec, is_configurable
from .metrics import PreparedInput, error_metrics
from .scaled import ScaledFormat

__all__ = ["sweep", "evaluate", "rule_bias", "best_bias", "biases_to_evaluate", "scaled_variants",
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


def sweep(tensors, formats=None, biases=None, roundings=("nearest_even",), seed=0, executor=None, *,
          jobs=None, progress=None, blocks=None, rules=None, on_note=None) -> SweepResult:
    """Quantize tensors to every (format, bias, rounding) and measure the error.

    Parameters
    ----------
    tensors : an array, a dict name -> array, or a path to a .npy/.npz/.pt/.pth/.safetensors
        file (every floating-point tensor in it).
    formats : a format name, a Format, a ScaledFormat, a list of them, or a comma-separated
        string (None: fp32, fp16, bf16, cfloat8_1_4_3, cfloat8_1_5_2).  Scaled names such as
        "mxfp8_e4m3", "nvfp4", "e4m3fn:block=64,scale=e8m0" give scaled formats.
    biases : None, "all", "auto", or a list of biases for the configurable formats (see the
        module docstring); scaled formats are evaluated at their element's bias.
    roundings : rounding modes (names from ``fl.ROUNDINGS``).
    seed : the stochastic-rounding seed (an int >= 0).
    executor : a ``concurrent.futures.Executor`` to run the tasks on; None uses ``jobs``.
    jobs : worker processes when no executor is given (None: the CPUs available,
        ``fmtlab._pool.available_cpus()``, inline for small sweeps; 1: inline).
    progress : a callable ``progress(done, total)`` called at the start (done = 0) and as
        tasks finish (total = the number of tasks).
    blocks : None, or block sizes to evaluate every scaled format at: ints (1-D blocks),
        (rows, columns) pairs or "RxC" strings (tiles), "channel", "tensor", or a string
        "16,32,16x16" (see :func:`scaled_variants` for which format takes which).
    rules : None, or scale rules to evaluate every scaled format at ("floor", "ceil", "even",
        "rceil", "amax"; a list or a string "floor,rceil").
    on_note : a callable ``on_note(line)`` for each combination the sweep skips (a block or
        rule a format does not take, a tensor a format cannot block); None: each is a
        ``UserWarning``.  The notes are also in the result's ``notes``.

    Returns a :class:`SweepResult` (a list of :class:`SweepRecord`).  Raises
    ``fmtlab._pool.Interrupted`` on Ctrl-C and ``fmtlab._pool.WorkerDied`` when a worker
    process dies, each with ``.partial``: the SweepResult of the groups that had finished.
    """
    from ._inputs import tensor_dict

    tensors = tensor_dict(tensors)
    fmts = parse_formats(formats)
    bias_choice = parse_biases(biases)
    modes = parse_roundings(roundings)
    fmts, notes = scaled_variants(fmts, parse_blocks(blocks), parse_rules(rules))
    check_run_arguments(seed, jobs, executor)
    if on_note is not None and not callable(on_note):
        raise TypeError(f"on_note={on_note!r} is not allowed: a callable on_note(line), or None for warnings")

    # Groups: one per (tensor, format spec, rounding), each with the biases to evaluate.
    amaxes = {name: _finite_amax(array) for name, array in tensors.items()}
    groups = {}
    unblockable = {}  # scaled format spec -> {problem: [tensor names]}
    for name, array in tensors.items():
        for fmt in fmts:
            spec = record_format(fmt)
            if isinstance(fmt, ScaledFormat):
                problem = _shape_problem(fmt, array.shape)
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
    for note in notes:
        if on_note is None:
            warnings.warn(note, UserWarning, stacklevel=2)
        else:
            on_note(note)

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
        stopped.partial = _records(groups, pieces, stopped.results, tensors, amaxes, int(seed), notes)
        stopped.planned = total
        raise
    return _records(groups, pieces, results, tensors, amaxes, int(seed), notes)


def _records(groups, pieces, results, tensors, amaxes, seed, notes=()) -> SweepResult:
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
        # 0 when both are the same bias (even with a NaN SQNR) or both +inf
        gap = 0.0 if best == group["rule"] or best_sqnr == rule_sqnr else best_sqnr - rule_sqnr
        fmt = group["format"]
        scaled = isinstance(fmt, ScaledFormat)
        for bias, metrics in rows:
            records.append(SweepRecord(
                tensor=name, format=spec, bias=bias, rounding=rounding, seed=seed,
                n=int(tensors[name].size), amax=amaxes[name], **metrics, rule_bias=group["rule"],
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
