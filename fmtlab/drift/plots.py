"""Plots of a drift experiment: loss curves, and the drift dL(t) = L_config(t) - L_fp32(t).

Both use the evaluation loss (measured every ``eval_every`` steps on the task's fixed
evaluation batch), the mean over seeds (over the seeds still running: a diverged run's
loss is NaN from its divergence on).

* loss.png (:func:`loss_figure`): left, the whole run on a log axis; right, the final
  stretch (the last 20% of the steps, at least the last two evaluations) on a linear axis
  with its own range, where the configurations separate.  FP32 is the thick black line,
  with its seed spread (+-1 sample standard deviation of L_fp32,s(t)) as a grey band; each
  other configuration has its own colour and line style, kept whatever ``--configs``
  selects.  The legend gives each configuration's final loss: the mean over its
  non-diverged seeds of the evaluation loss at the last step (summary.csv's final_loss_mean).
* delta.png (:func:`delta_figure`): dL(t) paired by seed, the mean over seeds s of
  L_config,s(t) - L_fp32,s(t), with the FP32 seed spread as a grey band around zero: a drift
  inside it is within seed noise.  The lower panel shows the same drift relative to the FP32
  loss, in percent.

:func:`plot` writes both, atomically (see :func:`fmtlab.plots.save_figure`).
"""
from __future__ import annotations

import math
import pathlib
import warnings

import numpy as np

from . import CONFIG_NAMES
from ..plots import PanelGrid, save_figure

__all__ = ["FINAL_STRETCH", "loss_figure", "delta_figure", "plot"]

FINAL_STRETCH = 0.2  # the fraction of the steps shown on its own in loss.png

_COLOURS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9")  # tab10 without its grey (the band's colour)
_LINE_STYLES = ("-", "--", "-.", ":")
_BASELINE = "fp32"
_BAND_COLOUR = "0.82"


def _curves(results, config):
    """steps, and an array seeds x steps of evaluation losses (NaN after a divergence)."""
    runs = [r for r in results if r.config == config]
    if not runs:
        return None, None
    steps = sorted({row["step"] for r in runs for row in r.rows if row["eval_loss"] == row["eval_loss"]})
    table = np.full((len(runs), len(steps)), np.nan)
    position = {step: i for i, step in enumerate(steps)}
    for i, run in enumerate(runs):
        for row in run.rows:
            if row["eval_loss"] == row["eval_loss"] and row["step"] in position:
                table[i, position[row["step"]]] = row["eval_loss"]
    return np.array(steps), table


def _seed_mean(table):
    with warnings.catch_warnings():  # a step where every seed has diverged is NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(table, axis=0)


def _seed_spread(table):
    """The sample standard deviation over seeds (ddof = 1); None with one seed."""
    if table.shape[0] < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanstd(table, axis=0, ddof=1)


def _styles(config_names):
    """name -> (colour, line style, line width): FP32 thick black; the others by their place
    in the known configurations (so a configuration keeps its look across runs)."""
    order = [name for name in CONFIG_NAMES if name != _BASELINE]
    order += [name for name in config_names if name not in order and name != _BASELINE]
    styles = {_BASELINE: ("black", "-", 2.4)}
    for index, name in enumerate(order):
        styles[name] = (_COLOURS[index % len(_COLOURS)], _LINE_STYLES[index % len(_LINE_STYLES)], 1.5)
    return styles


def _final_label(results, name):
    """'name: final 0.0632': the mean over non-diverged seeds of the last evaluation loss, to four
    decimals as in the printed summary table."""
    runs = [r for r in results if r.config == name]
    finals = [r.final_loss for r in runs if not r.diverged and math.isfinite(r.final_loss)]
    diverged = sum(1 for r in runs if r.diverged)
    label = f"{name}: final {np.mean(finals):.4f}" if finals else f"{name}: no final loss"
    if diverged:
        label += f" ({diverged} of {len(runs)} seeds diverged)"
    return label


def _plain_log_labels(panel):
    """Label the log y axis with plain numbers (0.2, 0.5, 1), minor ticks too where the range
    spans under a decade or so (matplotlib's rule), instead of 2 x 10^-1."""
    from matplotlib.ticker import LogFormatter

    class PlainLogFormatter(LogFormatter):
        def _num_to_string(self, x, vmin, vmax):
            return f"{x:g}"

    panel.yaxis.set_major_formatter(PlainLogFormatter())
    panel.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))


def _fit_range(panel, values):
    """Set the y range to the curves' values (plus a margin), not to the FP32 band's: where the
    seed spread is wider than every curve's excursion, the band runs off the panel, and the
    curves keep the height they need to be told apart."""
    if not values:
        return
    low, high = min(values), max(values)
    margin = 0.08 * (high - low) if high > low else 0.05 * abs(high) or 0.05
    panel.set_ylim(low - margin, high + margin)


def _final_stretch_start(steps):
    """The first step of the final stretch: the last FINAL_STRETCH of the steps, and at least
    the last two evaluations."""
    last = steps[-1]
    start = steps[0] + (1 - FINAL_STRETCH) * (last - steps[0])
    return min(start, steps[-2]) if len(steps) > 1 else steps[0]


def loss_figure(results, config_names, task_name=""):
    """The figure of loss.png (see the module docstring): a matplotlib Figure, not saved.

    Lines carry ``gid`` ``"loss|whole|NAME"`` and ``"loss|final|NAME"``, the FP32 bands
    ``"band|whole"`` and ``"band|final"``.
    """
    from matplotlib.patches import Patch

    styles = _styles(config_names)
    curves = {name: _curves(results, name) for name in config_names}
    curves = {name: curve for name, curve in curves.items() if curve[0] is not None}
    if not curves:
        raise ValueError("results has no run of the configurations in config_names: nothing to plot")
    every_step = np.unique(np.concatenate([steps for steps, _table in curves.values()]))
    start = _final_stretch_start(every_step)
    grid = PanelGrid(1, 2, 6.0, 4.4)
    whole, final = grid.axes[0]
    handles, labels, stretch_values = [], [], []
    baseline = curves.get(_BASELINE)
    seeds = baseline[1].shape[0] if baseline else 0
    if baseline is not None and seeds > 1:
        steps, table = baseline
        mean, spread = _seed_mean(table), _seed_spread(table)
        window = steps >= start
        lower = np.maximum(mean - spread, mean * 1e-3)  # the log axis needs a positive band
        whole.fill_between(steps, lower, mean + spread, color=_BAND_COLOUR, linewidth=0, gid="band|whole")
        final.fill_between(steps[window], (mean - spread)[window], (mean + spread)[window], color=_BAND_COLOUR,
                           linewidth=0, gid="band|final")
    for name in config_names:
        if name not in curves:
            continue
        steps, table = curves[name]
        colour, line_style, line_width = styles[name]
        mean = _seed_mean(table)
        window = steps >= start
        # FP32 under the others: thick, it would hide the configurations that track it.
        layer = 2 if name == _BASELINE else 3
        line, = whole.plot(steps, mean, color=colour, linestyle=line_style, linewidth=line_width, zorder=layer,
                           gid=f"loss|whole|{name}")
        final.plot(steps[window], mean[window], color=colour, linestyle=line_style, linewidth=line_width,
                   marker="o", markersize=3, zorder=layer, gid=f"loss|final|{name}")
        stretch_values.extend(value for value in mean[window] if math.isfinite(value))
        handles.append(line)
        labels.append(_final_label(results, name))
    _fit_range(final, stretch_values)
    if baseline is not None and seeds > 1:
        handles.append(Patch(color=_BAND_COLOUR))
        labels.append(f"fp32 seed spread (±1 std over {seeds} seeds)")
    whole.axvspan(start, every_step[-1], color="#fff3c4", zorder=0, linewidth=0)
    whole.set_yscale("log")
    _plain_log_labels(whole)
    whole.set_title("whole run (log scale; shaded: the final stretch)", fontsize=10)
    final.set_title(f"final stretch: steps {start:g}–{every_step[-1]:g} (linear scale, range of the means)",
                    fontsize=10)
    for panel in (whole, final):
        panel.set_xlabel("step")
        panel.set_ylabel("evaluation loss (mean over seeds)")
        panel.grid(alpha=0.3, which="both")
    title = f"fmtlab drift {task_name}: evaluation loss".replace("  ", " ")
    return grid.finish(title, [(handles, labels, "configuration: final = mean over seeds of the loss at the last "
                                                 "step (summary.csv final_loss_mean)")])


def delta_figure(results, config_names, task_name=""):
    """The figure of delta.png (see the module docstring): a matplotlib Figure, not saved.

    Lines carry ``gid`` ``"delta|absolute|NAME"`` and ``"delta|relative|NAME"``.
    """
    from matplotlib.patches import Patch

    styles = _styles(config_names)
    grid = PanelGrid(2, 1, 9.0, 3.4, sharex=True, row_gap=0.55)
    absolute_axes, relative_axes = grid.axes[0][0], grid.axes[1][0]
    handles, labels, drift_values, relative_values = [], [], [], []
    base_steps, base = _curves(results, _BASELINE)
    if base_steps is not None:
        base_mean = _seed_mean(base)
        spread = _seed_spread(base)
        if spread is not None:
            absolute_axes.fill_between(base_steps, -spread, spread, color=_BAND_COLOUR, linewidth=0)
            relative_axes.fill_between(base_steps, -100 * spread / base_mean, 100 * spread / base_mean,
                                       color=_BAND_COLOUR, linewidth=0)
        for name in config_names:
            if name == _BASELINE:
                continue
            steps, table = _curves(results, name)
            if steps is None:
                continue
            common = np.intersect1d(steps, base_steps)
            mine = table[:, np.searchsorted(steps, common)]
            theirs = base[:, np.searchsorted(base_steps, common)]
            seeds = min(mine.shape[0], theirs.shape[0])
            delta = _seed_mean(mine[:seeds] - theirs[:seeds])
            relative = 100 * delta / base_mean[np.searchsorted(base_steps, common)]
            colour, line_style, line_width = styles[name]
            line, = absolute_axes.plot(common, delta, color=colour, linestyle=line_style, linewidth=line_width,
                                       gid=f"delta|absolute|{name}")
            relative_axes.plot(common, relative, color=colour, linestyle=line_style, linewidth=line_width,
                               gid=f"delta|relative|{name}")
            handles.append(line)
            drift_values.extend(value for value in delta if math.isfinite(value))
            relative_values.extend(value for value in relative if math.isfinite(value))
            end = f"{delta[-1]:+.4f} ({relative[-1]:+.1f}%)" if delta.size and math.isfinite(delta[-1]) else "n/a"
            labels.append(f"{name}: ΔL at the last step {end}")
        if spread is not None:
            handles.append(Patch(color=_BAND_COLOUR))
            labels.append(f"fp32 seed spread (±1 std over {base.shape[0]} seeds)")
    for panel, values in ((absolute_axes, drift_values), (relative_axes, relative_values)):
        panel.axhline(0.0, color="black", linewidth=0.8)
        panel.grid(alpha=0.3)
        _fit_range(panel, values + [0.0])
    absolute_axes.set_ylabel("ΔL(t) = L_config − L_fp32")
    absolute_axes.set_title("drift", fontsize=10)
    relative_axes.set_ylabel("ΔL(t) / L_fp32(t)  [%]")
    relative_axes.set_title("drift relative to the FP32 loss", fontsize=10)
    relative_axes.set_xlabel("step")
    title = (f"fmtlab drift {task_name}: drift against FP32 (paired by seed, mean over seeds)").replace("  ", " ")
    return grid.finish(title, [(handles, labels, "configuration")])


def plot(results, config_names, directory, task_name="") -> list[pathlib.Path]:
    """Write loss.png and delta.png into ``directory``, atomically; return their paths."""
    directory = pathlib.Path(directory)
    paths = [directory / "loss.png", directory / "delta.png"]
    save_figure(loss_figure(results, config_names, task_name), paths[0])
    save_figure(delta_figure(results, config_names, task_name), paths[1])
    return paths
