"""Plots of a drift experiment: loss curves, and the drift dL(t) = L_config(t) - L_fp32(t).

Both use the evaluation loss (measured every ``eval_every`` steps on the task's fixed
evaluation batch).  dL(t) is paired by seed: the mean over seeds s of
L_config,s(t) - L_fp32,s(t).  The grey band is the FP32 seed spread, +-1 sample standard
deviation of L_fp32,s(t) around its mean: a drift inside it is within seed noise.  The
lower panel of delta.png shows the same drift relative to the FP32 loss, in percent.
"""
from __future__ import annotations

import pathlib

import numpy as np


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


def plot(results, config_names, directory, task_name="") -> list[pathlib.Path]:
    """Write loss.png and delta.png into ``directory``; return their paths."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    directory = pathlib.Path(directory)
    colours = pyplot.get_cmap("tab10")
    paths = []

    figure, axes = pyplot.subplots(figsize=(8, 5))
    for index, name in enumerate(config_names):
        steps, table = _curves(results, name)
        if steps is None:
            continue
        axes.plot(steps, np.nanmean(table, axis=0), label=name, color=colours(index % 10),
                  linewidth=2.0 if name == "fp32" else 1.2)
    axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel("evaluation loss (mean over seeds)")
    axes.set_title(f"fmtlab drift {task_name}: loss")
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    paths.append(directory / "loss.png")
    figure.savefig(paths[-1], dpi=120)
    pyplot.close(figure)

    figure, (absolute_axes, relative_axes) = pyplot.subplots(2, 1, figsize=(8, 8), sharex=True)
    base_steps, base = _curves(results, "fp32")
    if base_steps is not None:
        base_mean = np.nanmean(base, axis=0)
        if base.shape[0] > 1:
            spread = np.nanstd(base, axis=0, ddof=1)
            absolute_axes.fill_between(base_steps, -spread, spread, color="0.8", label="fp32 seed spread (±1 std)")
            relative_axes.fill_between(base_steps, -100 * spread / base_mean, 100 * spread / base_mean,
                                       color="0.8", label="fp32 seed spread (±1 std)")
        for index, name in enumerate(config_names):
            if name == "fp32":
                continue
            steps, table = _curves(results, name)
            if steps is None:
                continue
            common = np.intersect1d(steps, base_steps)
            mine = table[:, np.searchsorted(steps, common)]
            theirs = base[:, np.searchsorted(base_steps, common)]
            seeds = min(mine.shape[0], theirs.shape[0])
            delta = np.nanmean(mine[:seeds] - theirs[:seeds], axis=0)
            colour = colours(index % 10)
            absolute_axes.plot(common, delta, label=name, color=colour, linewidth=1.2)
            relative_axes.plot(common, 100 * delta / base_mean[np.searchsorted(base_steps, common)],
                               label=name, color=colour, linewidth=1.2)
    for axes in (absolute_axes, relative_axes):
        axes.axhline(0.0, color="black", linewidth=0.8)
        axes.grid(alpha=0.3)
    absolute_axes.set_ylabel("ΔL(t) = L_config − L_fp32")
    relative_axes.set_ylabel("ΔL(t) / L_fp32(t)  [%]")
    relative_axes.set_xlabel("step")
    absolute_axes.set_title(f"fmtlab drift {task_name}: drift against FP32 (paired by seed, mean over seeds)")
    absolute_axes.legend(fontsize=8)
    figure.tight_layout()
    paths.append(directory / "delta.png")
    figure.savefig(paths[-1], dpi=120)
    pyplot.close(figure)
    return paths
