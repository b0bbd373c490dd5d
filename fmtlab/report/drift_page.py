"""The report page of ``fmtlab drift``: loss and drift against FP32 with the seed spread, the
summary with its counters explained, and what stands out.

Curves (from drift.csv, the evaluation loss at the evaluated steps):

* loss: for each configuration, the mean over its seeds at each step, and a band from the
  lowest to the highest seed;
* drift: for each configuration and seed, eval_loss(config, seed, step) - eval_loss(fp32,
  seed, step) (the same weights and batches per seed, so the difference is the format's
  doing), the mean over seeds and the band from the lowest to the highest.

What stands out (:func:`findings`), each a sentence:

* every run that diverged (its loss or weights became non-finite): configuration, seed, and
  the last step it recorded;
* every configuration that skipped steps (non-finite gradients under loss scaling): how
  many steps, in how many runs;
* every configuration whose mean share of cancelled updates is at least
  :data:`CANCELLED_NOTE` (10%): the share (weights with a nonzero gradient whose stored
  value did not change);
* every configuration with saturated values (mean share > 0);
* the configuration with the largest |delta vs fp32|, with the paired spread over seeds.
"""
from __future__ import annotations

import collections
import csv
import math
import pathlib

from .page import provenance_view, render_page, svg_markup
from .partial import partial_view
from .provenance import read_provenance

__all__ = ["drift_page", "drift_context", "read_runs", "read_summary", "findings", "CANCELLED_NOTE"]

CANCELLED_NOTE = 0.10


def _value(text):
    if text == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        return text


def read_runs(path) -> dict:
    """drift.csv as ``{(config, seed): [row, ...]}`` (rows as dicts of floats; blank = NaN), in file order."""
    runs = collections.OrderedDict()
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            parsed = {key: (value if key == "config" else _value(value)) for key, value in row.items()}
            runs.setdefault((row["config"], int(row["seed"])), []).append(parsed)
    return runs


def read_summary(path) -> list:
    """summary.csv as a list of dicts (numbers as floats; blank = NaN); [] if the file is absent."""
    try:
        with open(path, newline="") as handle:
            return [{key: (value if key in ("config", "note") else _value(value)) for key, value in row.items()}
                    for row in csv.DictReader(handle)]
    except FileNotFoundError:
        return []


def _evaluations(rows) -> dict:
    return {int(row["step"]): row["eval_loss"] for row in rows if isinstance(row["eval_loss"], float)
            and not math.isnan(row["eval_loss"])}


def _curves(runs):
    """{config: {"loss": {step: [per seed]}, "drift": {step: [per seed]}}}."""
    curves = collections.OrderedDict()
    baseline = {seed: _evaluations(rows) for (config, seed), rows in runs.items() if config == "fp32"}
    for (config, seed), rows in runs.items():
        entry = curves.setdefault(config, {"loss": collections.defaultdict(list),
                                           "drift": collections.defaultdict(list)})
        for step, loss in _evaluations(rows).items():
            entry["loss"][step].append(loss)
            reference = baseline.get(seed, {}).get(step)
            if reference is not None and math.isfinite(loss):
                entry["drift"][step].append(loss - reference)
    return curves


def _figure(curves):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(13, 4.6))
    FigureCanvasAgg(figure)
    loss_axes = figure.add_subplot(1, 2, 1)
    drift_axes = figure.add_subplot(1, 2, 2)
    for index, (config, entry) in enumerate(curves.items()):
        colour = "black" if config == "fp32" else f"C{index % 10}"
        for axes, key in ((loss_axes, "loss"), (drift_axes, "drift")):
            points = sorted((step, values) for step, values in entry[key].items()
                            if values and all(math.isfinite(value) for value in values))
            if not points:
                continue
            steps = [step for step, _values in points]
            means = [math.fsum(values) / len(values) for _step, values in points]
            axes.plot(steps, means, color=colour, linewidth=1.5, label=config)
            axes.fill_between(steps, [min(values) for _step, values in points],
                              [max(values) for _step, values in points], color=colour, alpha=0.15, linewidth=0)
    loss_axes.set_title("evaluation loss (line: mean over seeds; band: lowest to highest seed)", fontsize=9)
    drift_axes.set_title("drift: loss − FP32's loss, same seed (mean; band: seed spread)", fontsize=9)
    drift_axes.axhline(0, color="0.5", linewidth=0.8)
    for axes in (loss_axes, drift_axes):
        axes.set_xlabel("step")
        axes.grid(alpha=0.3)
    loss_axes.set_ylabel("loss")
    drift_axes.set_ylabel("Δ loss")
    loss_axes.legend(fontsize=8)
    figure.tight_layout()
    return svg_markup(figure)


def findings(runs, summary) -> list:
    """The sentences of "what stands out" (see the module docstring)."""
    lines = []
    for row in summary:
        diverged = int(row["diverged"]) if isinstance(row["diverged"], float) else 0
        if diverged:
            last_steps = []
            for (config, seed), rows in runs.items():
                if config == row["config"]:
                    last_steps.append((seed, int(rows[-1]["step"])))
            longest = max((step for _seed, step in last_steps), default=0)
            stopped = [f"seed {seed} at step {step}" for seed, step in last_steps if step < longest] or \
                      [f"{diverged} seed(s)"]
            lines.append(f"{row['config']} diverged ({diverged} of {int(row['seeds'])} seeds): "
                         + ", ".join(stopped) + "; left out of its loss statistics.")
    for config in dict.fromkeys(config for config, _seed in runs):
        members = [rows for (name, _seed), rows in runs.items() if name == config]
        skipped = [int(sum(row["skipped"] for row in rows if isinstance(row["skipped"], float)
                           and math.isfinite(row["skipped"]))) for rows in members]
        if sum(skipped):
            lines.append(f"{config} skipped {sum(skipped)} steps (non-finite gradients under loss scaling, the "
                         f"loss scale then halved) in {sum(1 for count in skipped if count)} of {len(members)} runs.")
    for row in summary:
        cancelled = row.get("update_cancelled_mean")
        if isinstance(cancelled, float) and cancelled >= CANCELLED_NOTE:
            lines.append(f"{row['config']}: {100 * cancelled:.1f}% of the weight updates were cancelled (the stored "
                         "weight did not change although its gradient was nonzero), mean over steps.")
        saturated = row.get("saturated_mean")
        if isinstance(saturated, float) and saturated > 0:
            lines.append(f"{row['config']}: {100 * saturated:.4f}% of the rounded values saturated (|x| above the "
                         "format's max), mean over steps.")
    drifting = [row for row in summary if row["config"] != "fp32" and isinstance(row["delta_vs_fp32"], float)
                and math.isfinite(row["delta_vs_fp32"])]
    if drifting:
        worst = max(drifting, key=lambda row: abs(row["delta_vs_fp32"]))
        spread = worst["delta_vs_fp32_std"]
        spread_text = f" (paired spread over seeds {spread:.3g})" if isinstance(spread, float) and math.isfinite(
            spread) else ""
        # .3g, not a fixed number of decimals: a drift of 2e-5 must not read as 0.0000
        lines.append(f"The largest drift is {worst['config']}'s: its final loss is {worst['delta_vs_fp32']:+.3g} "
                     f"from FP32's{spread_text}.")
    return lines


def _percent(value, digits=3) -> str:
    return "-" if not isinstance(value, float) or math.isnan(value) else f"{100 * value:.{digits}g}%"


def _number(value, spec) -> str:
    return "-" if not isinstance(value, float) or math.isnan(value) else format(value, spec)


def drift_context(runs, summary, provenance=None) -> dict:
    """What the drift template draws."""
    from ..drift.summary import TABLE_LEGEND

    table = [{"config": row["config"], "seeds": _number(row["seeds"], ".0f"),
              "final_loss": _number(row["final_loss_mean"], ".4f"), "std": _number(row["final_loss_std"], ".4f"),
              "delta": _number(row["delta_vs_fp32"], "+.4f"), "delta_std": _number(row["delta_vs_fp32_std"], ".4f"),
              "diverged": f"{_number(row['diverged'], '.0f')}/{_number(row['seeds'], '.0f')}",
              "grad_underflow": _percent(row["grad_underflow_mean"]), "saturated": _percent(row["saturated_mean"]),
              "cancelled": _percent(row["update_cancelled_mean"]), "loss_scale": _number(row["loss_scale_mean"], ".4g"),
              "nonfinite": _number(row["nonfinite_steps_mean"], ".1f"), "note": row.get("note") or ""}
             for row in summary]
    seeds = sorted({seed for _config, seed in runs})
    return {"title": f"fmtlab drift: {len({config for config, _seed in runs})} configurations × {len(seeds)} seeds",
            "provenance": provenance_view(provenance), "figure": _figure(_curves(runs)),
            "findings": findings(runs, summary), "table": table, "legend": TABLE_LEGEND}


def drift_page(directory) -> str:
    """The HTML of the report of the drift run in ``directory`` (drift.csv, summary.csv, provenance.json)."""
    directory = pathlib.Path(directory)
    runs = read_runs(directory / "drift.csv")
    if not runs:
        raise ValueError(f"{str(directory / 'drift.csv')!r} holds no runs to report on")
    return render_page("drift.html.j2", partial=partial_view(directory),
                       **drift_context(runs, read_summary(directory / "summary.csv"), read_provenance(directory)))
