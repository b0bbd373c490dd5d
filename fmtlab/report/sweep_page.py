"""The report page of a sweep: overview, heatmap, CFloat8 bias across depth, per-tensor detail, table.

What is computed here (the pictures are matplotlib's; the page's script only shows them and
sorts the table):

* **Order.** Tensors are grouped by layer kind (``fmtlab._records.LAYER_KINDS`` order) and
  ordered by depth within a kind, then by name with numbers compared as numbers
  (``layers.2`` before ``layers.10``).  The depth of a tensor is the first all-digit part of
  its dot-separated name (``model.layers.12.mlp.up_proj.weight`` -> 12), None when there is none.
* **Columns.** One heatmap column per (format, rounding), the widest formats first (bits per
  value, descending), then in the order the CSV lists them.
* **Cells.** The SQNR at the tensor's best bias, coloured on one viridis scale from the lowest
  to the highest finite SQNR of the sweep (+inf exact: white; NaN: grey); marked ▲ when any
  value overflows (overflow_frac > 0) and ▼ when at least 1% of the values underflow to zero
  (:data:`UNDERFLOW_MARK`).
* **Overview.** Formats are compared within a storage width (floor of bits per value: 8-bit
  with 8-bit): the winner of a width, overall or in a layer kind, is the format with the
  highest mean SQNR over those tensors, weighted by their values
  (sum n_t SQNR_t / sum n_t, at each tensor's best bias: ``SweepResult.layer_summary``'s
  mean), for the first rounding of the sweep; a tensor with no finite nonzero value weighs 0
  (its SQNR would make every mean over it +inf or NaN).  For a configurable format (CFloat8)
  the sentence gives the best bias most tensors have and the range of best biases.
* **Details.** One per tensor (fmtlab.report.detail), in the page's tensor order, packed.
"""
from __future__ import annotations

import collections
import functools
import json
import math
import pathlib
import re

from .._cli_sweep import RUN_FILE
from .._pool import INLINE_WORK
from .._records import LAYER_KINDS, SweepResult, layer_kind, read_records_csv
from .histograms import HISTOGRAM_FILE, read_histograms
from .detail import detail_batch, key_svg
from .page import finite_or_text, json_script, provenance_view, render_page, sqnr_colour, svg_markup
from .partial import partial_view
from .provenance import read_provenance

__all__ = ["sweep_page", "sweep_context", "layer_depth", "tensor_order", "UNDERFLOW_MARK", "STANDOUTS"]

UNDERFLOW_MARK = 0.01  # underflow fraction from which a heatmap cell is marked ▼


@functools.lru_cache(maxsize=1 << 16)
def _kind(name: str) -> str:
    return layer_kind(name)


def layer_depth(name: str):
    """The first all-digit part of the dot-separated ``name`` as an int, or None."""
    for part in name.replace("/", ".").split("."):
        if part.isdigit():
            return int(part)
    return None


def _natural(name: str):
    return [(0, int(piece), "") if piece.isdigit() else (1, 0, piece) for piece in re.split(r"(\d+)", name) if piece]


def tensor_order(names) -> list:
    """``names`` grouped by layer kind, then by depth (None first), then naturally by name."""
    kind_index = {kind: index for index, kind in enumerate(LAYER_KINDS)}

    def key(name):
        depth = layer_depth(name)
        return (kind_index[_kind(name)], -1 if depth is None else depth, _natural(name))

    return sorted(names, key=key)


def _format_range(spec: str, bias: int):
    """[log2 min_subnormal, log2 min_normal, log2 max] of an element format at ``bias``, or None
    for formats without a fixed range (scaled formats, integers)."""
    from ..formats import format_from_spec
    from ..integers import is_integer_name

    if is_integer_name(spec.partition(":")[0]) or "block=" in spec:
        return None
    try:
        fmt = format_from_spec(spec, bias)
        values = (fmt.min_subnormal, fmt.min_normal, fmt.max)
    except (ValueError, TypeError, AttributeError):
        return None
    if not all(isinstance(value, float) or isinstance(value, int) for value in values) or min(values) <= 0:
        return None
    return [round(math.log2(value), 4) for value in values]


def _percent(fraction) -> str:
    return "nan" if math.isnan(fraction) else f"{100 * fraction:.3g}"


def _counts_row(row) -> list:
    """The detail's counts table row of a summary ``row`` (as text)."""
    configurable = row["configurable"]
    return [row["format"], row["rounding"], f"{row['bits_per_value']:g}",
            row["best_bias"] if configurable else "-", _decibels_short(row["best_sqnr_db"]),
            row["rule_bias"] if configurable else "-", _decibels_short(row["rule_sqnr_db"]) if configurable else "-",
            _percent(row["overflow_frac"]), _percent(row["underflow_frac"]), _percent(row["nonfinite_frac"])]


def _decibels_short(value: float) -> str:
    return "∞" if value == math.inf else "nan" if math.isnan(value) else f"{value:.2f}"


def _columns(summary) -> list:
    seen = {}
    for row in summary:
        seen.setdefault((row["format"], row["rounding"]), row["bits_per_value"])
    order = list(seen)
    return sorted(order, key=lambda column: (-seen[column] if math.isfinite(seen[column]) else 0,
                                             order.index(column)))


def _weighted_mean(pairs) -> float:
    """sum n x / sum n over the (x, n) pairs with n > 0; NaN if any of their x is NaN (or there
    is none), +inf if any is +inf."""
    pairs = [(value, n) for value, n in pairs if n > 0]
    values = [value for value, _n in pairs]
    if any(math.isnan(value) for value in values):
        return math.nan
    if any(value == math.inf for value in values):
        return math.inf
    total = sum(n for _value, n in pairs)
    return math.fsum(value * n for value, n in pairs) / total if total else math.nan


def _ranking_key(value: float) -> float:
    return -math.inf if math.isnan(value) else value


def _winners(rows, n_of) -> list:
    """For the summary ``rows`` of one set of tensors (one rounding): per storage width, the
    formats ranked by value-weighted mean SQNR.  Returns [{width, ranking: [(format, mean,
    bias_mode, bias_low, bias_high, configurable)]}], widest first."""
    by_format = collections.defaultdict(list)
    for row in rows:
        by_format[row["format"]].append(row)
    widths = collections.defaultdict(list)
    for spec, members in by_format.items():
        mean = _weighted_mean([(row["best_sqnr_db"], n_of[row["tensor"]]) for row in members])
        bits = members[0]["bits_per_value"]
        width = int(math.floor(bits)) if math.isfinite(bits) else 0
        configurable = members[0]["configurable"]
        biases = [row["best_bias"] for row in members]
        mode = collections.Counter(biases).most_common(1)[0][0]
        widths[width].append({"format": spec, "mean": mean, "configurable": configurable, "bias_mode": mode,
                              "bias_low": min(biases), "bias_high": max(biases), "tensors": len(members)})
    return [{"width": width, "ranking": sorted(entries, key=lambda entry: -_ranking_key(entry["mean"]))}
            for width, entries in sorted(widths.items(), reverse=True)]


def _short(value: float) -> str:
    return "∞" if value == math.inf else "nan" if math.isnan(value) else f"{value:.1f}"


def _decibels(value: float) -> str:
    return "exact (∞ dB)" if value == math.inf else "NaN" if math.isnan(value) else f"{value:.2f} dB"


def _phrase(entry) -> str:
    text = f"{entry['format']} ({_decibels(entry['mean'])}"
    if entry["configurable"]:
        spread = (f"bias {entry['bias_mode']} on most tensors, {entry['bias_low']}–{entry['bias_high']}"
                  if entry["bias_low"] != entry["bias_high"] else f"bias {entry['bias_mode']} on every tensor")
        text += f", {spread}"
    return text + ")"


def _overview(summary, n_of, weight_of, rounding) -> dict:
    rows = [row for row in summary if row["rounding"] == rounding]
    overall = _winners(rows, weight_of)
    sentences = []
    for width in overall:
        ranking = width["ranking"]
        runner_up = ""
        if len(ranking) > 1:
            level = _decibels(ranking[0]["mean"]) == _decibels(ranking[1]["mean"])  # equal to 0.01 dB
            runner_up = f"; {'level with it' if level else 'next'}: {_phrase(ranking[1])}"
        sentences.append(f"among {width['width']}-bit formats, {_phrase(ranking[0])}{runner_up}")
    kinds = []
    present = {_kind(row["tensor"]) for row in rows}
    for kind in (kind for kind in LAYER_KINDS if kind in present):
        kind_rows = [row for row in rows if _kind(row["tensor"]) == kind]
        winners = _winners(kind_rows, weight_of)
        kinds.append({"kind": kind, "tensors": len({row["tensor"] for row in kind_rows}),
                      "winners": [{"width": width["width"], "text": _phrase(width["ranking"][0])}
                                  for width in winners]})
    empty = [name for name, weight in weight_of.items() if weight == 0]
    left_out = (f"; {len(empty)} tensor{'s' if len(empty) > 1 else ''} with no finite nonzero value left out of the "
                "means" if empty else "")
    sentence = (f"Over all {len(n_of)} tensors ({sum(n_of.values()):,} values; mean SQNR weighted by values, "
                f"at each tensor's best bias, {rounding} rounding{left_out}), " + "; ".join(sentences) + ".")
    return {"sentence": sentence, "kinds": kinds, "widths": overall, "standouts": _standouts(summary, rounding)}


STANDOUTS = 8  # underflow and overflow sentences at most, each, in the overview


def _standouts(summary, rounding) -> list:
    """Sentences on the values lost, for the ``rounding``: the (tensor, format) pairs that lose
    at least UNDERFLOW_MARK of the values to underflow while a format of the same width loses
    less than half as many (the largest losses first; the peer named is the one of those with
    the highest SQNR), then those that overflow (saturate or become Inf/NaN), at most STANDOUTS
    of each; a format with more than STANDOUTS such tensors is said once (how many, the worst)."""
    rows = [row for row in summary if row["rounding"] == rounding]
    by_tensor = collections.defaultdict(list)
    for row in rows:
        by_tensor[row["tensor"]].append(row)

    def width(row):
        return int(math.floor(row["bits_per_value"])) if math.isfinite(row["bits_per_value"]) else 0

    def at(row):
        return f"{row['format']} at bias {row['best_bias']}" if row["configurable"] else row["format"]

    underflows, overflows = [], []
    for tensor, members in by_tensor.items():
        for row in members:
            peers = [other for other in members if other is not row and width(other) == width(row)]
            keeping = [other for other in peers if other["underflow_frac"] < row["underflow_frac"] / 2]
            if row["underflow_frac"] >= UNDERFLOW_MARK and keeping:
                # the peer that keeps the values with the best SQNR (ties: the least underflow)
                best = max(keeping, key=lambda other: (_ranking_key(other["best_sqnr_db"]), -other["underflow_frac"]))
                underflows.append((row["underflow_frac"], tensor, row["format"],
                                   f"{tensor}: {at(row)} loses {100 * row['underflow_frac']:.3g}% of its values "
                                   f"to underflow (rounded to 0), {at(best)} "
                                   f"{100 * best['underflow_frac']:.3g}% ({_decibels(row['best_sqnr_db'])} "
                                   f"against {_decibels(best['best_sqnr_db'])})"))
            if row["overflow_frac"] > 0:
                overflows.append((row["overflow_frac"], tensor, row["format"], f"{tensor}: {at(row)} overflows "
                                                        f"{100 * row['overflow_frac']:.3g}% of its values"))
    place = {name: index for index, name in enumerate(tensor_order(by_tensor))}
    return (_summarised(underflows, place, "loses at least 1% of its values to underflow, beside a format of its "
                                           "width that keeps them,")
            + _summarised(overflows, place, "overflows"))


def _summarised(found, place, verb) -> list:
    """The sentences of ``found`` ((fraction, tensor, format label, text) tuples), the largest
    fractions first (ties in the page's tensor order), at most STANDOUTS; a format with more
    than STANDOUTS of them gets one sentence instead: on how many tensors, and the worst."""
    found = sorted(found, key=lambda item: (-item[0], place[item[1]]))
    per_format = collections.Counter(label for _fraction, _tensor, label, _text in found)
    lines, summarised = [], set()
    for fraction, tensor, label, text in found:
        if per_format[label] > STANDOUTS:
            if label not in summarised:
                summarised.add(label)
                lines.append(f"{label} {verb} on {per_format[label]} tensors; the worst: {text}")
        else:
            lines.append(text)
    return lines[:STANDOUTS]


def _overview_figure(summary, weight_of, rounding, kinds):
    """Grouped bars: mean SQNR per layer kind (and all tensors), one bar per format; the
    winner of each width in each group is outlined in black."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [row for row in summary if row["rounding"] == rounding]
    formats = list(dict.fromkeys(row["format"] for row in rows))
    groups = [("all tensors", rows)]
    if len(kinds) > 1:  # one kind: its bars would repeat those of all tensors
        groups += [(kind, [row for row in rows if _kind(row["tensor"]) == kind]) for kind in kinds]
    figure = Figure(figsize=(max(7.0, min(14.0, 2.0 + 1.1 * len(groups) * max(1, len(formats)) / 3)), 3.6))
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.07, 0.3, 0.9, 0.62))
    width = 0.8 / max(1, len(formats))
    colours = [f"C{index % 10}" for index in range(len(formats))]
    finite_means, labelled = [], set()
    for group_index, (_label, group_rows) in enumerate(groups):
        winners = {entry["ranking"][0]["format"] for entry in _winners(group_rows, weight_of)}
        for format_index, spec in enumerate(formats):
            members = [(row["best_sqnr_db"], weight_of[row["tensor"]]) for row in group_rows if row["format"] == spec]
            if not members:
                continue
            mean = _weighted_mean(members)
            if not math.isfinite(mean):
                continue
            finite_means.append(mean)
            axes.bar(group_index + (format_index - (len(formats) - 1) / 2) * width, mean, width * 0.92,
                     color=colours[format_index], edgecolor="black" if spec in winners else "none",
                     linewidth=1.6, label=None if spec in labelled else spec)
            labelled.add(spec)  # the first bar drawn of a format names it (a group's mean may be NaN)
    axes.set_xticks(range(len(groups)), [label for label, _rows in groups], rotation=20, ha="right")
    axes.set_ylabel("mean SQNR (dB)")
    axes.grid(axis="y", alpha=0.3)
    axes.set_title(f"mean SQNR per layer kind ({rounding}); black outline: the winner of its width", fontsize=10)
    if not finite_means:  # every SQNR exact (or NaN): nothing to draw as a bar
        axes.text(0.5, 0.5, "no finite mean SQNR (every result exact, ∞ dB, or NaN)", ha="center",
                  transform=axes.transAxes)
        return svg_markup(figure)
    axes.set_ylim(0, max(finite_means) * 1.08)
    axes.legend(fontsize=8, ncol=min(6, len(formats)), loc="upper center", bbox_to_anchor=(0.5, -0.3),
                frameon=False)
    return svg_markup(figure)


def _depth_figure(summary, rounding):
    """Best bias (filled) and amax-rule bias (ring) of each configurable format against depth
    (the layer number where names have one, else the tensor's position in the page's order)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [row for row in summary if row["rounding"] == rounding and row["configurable"]]
    if not rows:
        return None
    formats = list(dict.fromkeys(row["format"] for row in rows))
    order = tensor_order({row["tensor"] for row in rows})
    use_depth = any(layer_depth(name) is not None for name in order)
    position = {name: (layer_depth(name) if use_depth and layer_depth(name) is not None else index)
                for index, name in enumerate(order)}
    figure = Figure(figsize=(10, 1.2 + 2.4 * len(formats)))
    FigureCanvasAgg(figure)
    kinds = [kind for kind in LAYER_KINDS if any(_kind(row["tensor"]) == kind for row in rows)]
    for panel_index, spec in enumerate(formats):
        axes = figure.add_subplot(len(formats), 1, panel_index + 1)
        for kind_index, kind in enumerate(kinds):
            members = [row for row in rows if row["format"] == spec and _kind(row["tensor"]) == kind]
            xs = [position[row["tensor"]] for row in members]
            axes.scatter(xs, [row["best_bias"] for row in members], s=14, color=f"C{kind_index % 10}",
                         label=f"{kind}: best bias")
            axes.scatter(xs, [row["rule_bias"] for row in members], s=80, facecolors="none",
                         edgecolors=f"C{kind_index % 10}", linewidths=1.2, label=f"{kind}: amax-rule bias")
        axes.set_ylabel("bias")
        axes.set_title(spec, fontsize=10)
        axes.grid(alpha=0.3)
        if not use_depth and len(order) <= 40:
            axes.set_xticks(range(len(order)), order, rotation=60, ha="right", fontsize=7)
        else:
            axes.set_xlabel("layer number" if use_depth else "tensor (page order)")
    figure.axes[0].legend(fontsize=7, ncol=4, loc="lower left", bbox_to_anchor=(0, 1.18), frameon=False)
    figure.tight_layout()
    return svg_markup(figure)


def _packed_details(items, jobs) -> list:
    """The packed detail fragment of each of ``items`` (see fmtlab.report.detail), drawn in
    batches on ``jobs`` worker processes (None: the CPUs available, inline for a few tensors;
    1: inline); the fragments do not depend on the batches."""
    from .._pool import plan, run_tasks

    if not items:
        return []
    bands = max(sum(1 for group in item["groups"] if group["range"] and group["rounding"] == item["groups"][0]["rounding"])
                for item in items if item["groups"])
    inline, workers = plan(None, jobs, len(items) * DETAIL_WORK)
    count = 1 if inline else min(len(items), 4 * workers)  # a few batches per worker: they finish together
    size = -(-len(items) // count)
    batches = [items[start:start + size] for start in range(0, len(items), size)]
    results = run_tasks(detail_batch, [(batch, bands) for batch in batches], None, inline, workers,
                        labels=[f"details of tensors {start + 1}-{min(len(items), start + size)}"
                                for start in range(0, len(items), size)], preload=("fmtlab", "matplotlib"))
    return [fragment for batch in results for fragment in batch]


# What one tensor's detail counts as in fmtlab._pool.plan's work units: with jobs=None, fewer
# than 40 tensors are drawn inline (starting the workers, which import matplotlib, costs more).
DETAIL_WORK = INLINE_WORK // 40


def sweep_context(result: SweepResult, histograms=None, provenance=None, run=None, *, jobs=1) -> dict:
    """Everything the sweep template draws (see the module docstring); the per-tensor details
    are drawn on ``jobs`` worker processes (None: as many as the CPUs, inline when few)."""
    histograms = histograms or {}
    summary = result.summary()
    n_of, amax_of = {}, {}
    for record in result:
        n_of.setdefault(record.tensor, record.n)
        amax_of.setdefault(record.tensor, record.amax)
    # a tensor with no finite nonzero value (amax 0, or none finite) has nothing to lose: its SQNR
    # (exact, or 0/0) would make every mean over it +inf or NaN; it weighs 0 in the means
    weight_of = {name: n_of[name] if amax_of[name] > 0 else 0 for name in n_of}
    curves = collections.defaultdict(list)
    for record in result:
        curves[(record.tensor, record.format, record.rounding)].append((record.bias, record.sqnr_db))
    columns = _columns(summary)
    column_index = {column: index for index, column in enumerate(columns)}
    # the detail's colour of a format (its roundings differ by line style)
    format_colour = {spec: index for index, spec in enumerate(dict.fromkeys(spec for spec, _rounding in columns))}
    roundings = list(dict.fromkeys(row["rounding"] for row in summary))
    rounding = "nearest_even" if "nearest_even" in roundings else roundings[0]
    finite = [row["best_sqnr_db"] for row in summary if math.isfinite(row["best_sqnr_db"])]
    low, high = (math.floor(min(finite)), math.ceil(max(finite))) if finite else (0, 1)
    by_tensor = collections.defaultdict(dict)
    for row in summary:
        by_tensor[row["tensor"]][(row["format"], row["rounding"])] = row
    order = tensor_order(by_tensor)
    groups, tensors, items = [], [], []
    for name in order:
        kind = _kind(name)
        if not groups or groups[-1]["kind"] != kind:
            groups.append({"kind": kind, "rows": []})
        cells, details, rows, figure_groups = [], [], [], []
        for column in columns:
            row = by_tensor[name].get(column)
            if row is None:
                cells.append(None)
                continue
            sqnr = row["best_sqnr_db"]
            marks = ("▲" if row["overflow_frac"] > 0 else "") + ("▼" if row["underflow_frac"] >= UNDERFLOW_MARK else "")
            cells.append({"c": column_index[column], "colour": sqnr_colour(sqnr, low, high),
                          "text": _short(sqnr),
                          "dark": math.isfinite(sqnr) and (sqnr - low) / max(1e-9, high - low) < 0.55,
                          "marks": marks})
            details.append({"c": column_index[column], "format": column[0], "rounding": column[1],
                            "configurable": row["configurable"], "bits": finite_or_text(row["bits_per_value"]),
                            "best_bias": row["best_bias"], "best_sqnr": finite_or_text(sqnr),
                            "rule_bias": row["rule_bias"], "rule_sqnr": finite_or_text(row["rule_sqnr_db"]),
                            "gap": finite_or_text(row["sqnr_gap_db"]),
                            "overflow": finite_or_text(row["overflow_frac"]),
                            "underflow": finite_or_text(row["underflow_frac"]),
                            "nonfinite": finite_or_text(row["nonfinite_frac"])})
            figure_groups.append(dict(details[-1], colour=format_colour[column[0]], curve=sorted(curves[(name, column[0], column[1])]),
                                      range=(None if row["scaled"] else _format_range(row["format"], row["best_bias"]))))
            rows.append(_counts_row(row))
        groups[-1]["rows"].append({"tensor": name, "index": len(tensors), "cells": cells})
        tensor = {"name": name, "kind": kind, "depth": layer_depth(name), "n": n_of[name],
                  "amax": finite_or_text(amax_of[name]), "groups": details}
        tensors.append(tensor)
        items.append({"tensor": tensor, "histogram": histograms.get(name), "groups": figure_groups, "rows": rows})
    for group in groups:  # the kind's row: each column's mean SQNR over the kind, weighted by values
        names = [row["tensor"] for row in group["rows"]]
        group["means"] = []
        for column in columns:
            pairs = [(by_tensor[name][column]["best_sqnr_db"], weight_of[name]) for name in names
                     if column in by_tensor[name]]
            mean = _weighted_mean(pairs) if pairs else math.nan
            group["means"].append({"colour": sqnr_colour(mean, low, high), "text": _short(mean),
                                   "dark": math.isfinite(mean) and (mean - low) / max(1e-9, high - low) < 0.55})
    overview = _overview(summary, n_of, weight_of, rounding)
    kinds = [entry["kind"] for entry in overview["kinds"]]
    notes = []
    missing = [name for name in order if name not in histograms]
    if missing:
        notes.append(f"{len(missing)} of {len(order)} tensors have no log2|x| histogram (the run wrote none "
                     f"for them: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})")
    legend_stops = [sqnr_colour(low + (high - low) * step / 10, low, high) for step in range(11)]
    return {"title": f"fmtlab sweep: {len(order)} tensors × {len(columns)} (format, rounding)",
            "provenance": _provenance_view(provenance, run),
            "overview": overview, "overview_svg": _overview_figure(summary, weight_of, rounding, kinds),
            "depth_svg": _depth_figure(summary, rounding),
            "columns": [{"format": spec, "rounding": rounding_name} for spec, rounding_name in columns],
            "groups": groups, "open_groups": len(order) <= 120, "scale": {"low": low, "high": high,
                                                                           "stops": legend_stops},
            "underflow_mark": UNDERFLOW_MARK, "notes": notes,
            "data": json_script({"tensors": tensors,
                                 "columns": [{"format": spec, "rounding": name} for spec, name in columns]}),
            "details": json_script(_packed_details(items, jobs)),
            "key_svg": key_svg(columns, format_colour, {row["format"]: row["configurable"] for row in summary}),
            "tensor_count": len(order)}


def _provenance_view(provenance, run) -> dict:
    """The provenance block: provenance.json where the run wrote one, completed with the sweep's
    arguments and inputs (sweep.run.json)."""
    arguments = (run or {}).get("arguments", {})
    settings = {key: arguments[key] for key in ("formats", "bias", "rounding", "block", "rule", "seed", "dist",
                                                "size", "include", "exclude") if arguments.get(key) not in (None, [], "")}
    synthetic = None
    if arguments.get("dist"):
        synthetic = (f"synthetic {', '.join(arguments['dist'])}: {arguments['size']:,} values each, scale "
                     f"{arguments['scale']}, seed {arguments['seed']}")
    return provenance_view(provenance, inputs=arguments.get("inputs"), settings=settings, synthetic=synthetic)


def sweep_page(directory, jobs=1) -> str:
    """The HTML of the report of the sweep in ``directory`` (sweep.csv, and where present
    sweep.run.json, provenance.json, histograms.json, partial.json); ``jobs`` as in
    :func:`sweep_context`."""
    directory = pathlib.Path(directory)
    records, _valid, _dropped = read_records_csv(directory / "sweep.csv")
    if not records:
        raise ValueError(f"{str(directory / 'sweep.csv')!r} holds no results to report on")
    run = None
    if (directory / RUN_FILE).is_file():
        try:
            run = json.loads((directory / RUN_FILE).read_text())
        except (OSError, ValueError):
            run = None
    context = sweep_context(SweepResult(records), read_histograms(directory / HISTOGRAM_FILE),
                            read_provenance(directory), run, jobs=jobs)
    return render_page("sweep.html.j2", partial=partial_view(directory), **context)
