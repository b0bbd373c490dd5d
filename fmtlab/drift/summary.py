"""Aggregate drift runs into the summary table, and write drift.csv and summary.csv.

For configuration c over its seeds s (diverged seeds left out of the loss statistics):

    final_loss_mean = mean_s L_c,s          L the evaluation loss at the last step
    final_loss_std  = std_s L_c,s           (sample standard deviation, ddof = 1)
    delta_vs_fp32   = final_loss_mean(c) - final_loss_mean(fp32)
    delta_vs_fp32_std = std_s (L_c,s - L_fp32,s)   the paired, per-seed spread of the drift
                                                   (same weights and batches per seed, so it is
                                                   much smaller than final_loss_std)
    diverged        = number of seeds that diverged
    <counter>_mean  = mean over every step of every seed

``nonfinite_steps_mean`` is the mean number of steps per run whose gradients were not
finite, and ``loss_scale_mean`` the mean loss scale over steps.
"""
from __future__ import annotations

import csv
import io
import math
import pathlib

import numpy as np

from .._files import write_text
from .._table import render_table
from .runner import RUN_COLUMNS

__all__ = ["SUMMARY_COLUMNS", "TABLE_LEGEND", "summarize", "write_runs_csv", "write_summary_csv", "format_table",
           "write_outputs"]

SUMMARY_COLUMNS = ("config", "seeds", "final_loss_mean", "final_loss_std", "delta_vs_fp32", "delta_vs_fp32_std",
                   "diverged",
                   "grad_underflow_mean", "saturated_mean", "update_cancelled_mean", "loss_scale_mean",
                   "nonfinite_steps_mean", "seconds_mean")
_COUNTERS = ("grad_underflow", "saturated", "update_cancelled", "loss_scale")


def summarize(results, config_names) -> list[dict]:
    """One summary row per configuration, in ``config_names`` order.

    ``results`` may hold only some runs (an interrupted experiment): a configuration without
    any gets NaN numbers and the note "no run finished"; the others are summarised over the
    runs they have (``seeds`` says how many).
    """
    by_config = {name: [r for r in results if r.config == name] for name in config_names}
    rows = []
    for name in config_names:
        runs = by_config[name]
        if not runs:
            rows.append(dict(config=name, seeds=0, final_loss_mean=math.nan, final_loss_std=math.nan,
                             delta_vs_fp32=math.nan, delta_vs_fp32_std=math.nan, diverged=0,
                             **{f"{c}_mean": math.nan for c in _COUNTERS},
                             nonfinite_steps_mean=math.nan, seconds_mean=math.nan, note="no run finished"))
            continue
        finals = np.array([r.final_loss for r in runs if not r.diverged])
        steps = [row for r in runs for row in r.rows if row["step"] > 0 and "loss_scale" in row]
        row = dict(config=name, seeds=len(runs),
                   final_loss_mean=float(finals.mean()) if finals.size else math.nan,
                   final_loss_std=float(finals.std(ddof=1)) if finals.size > 1 else math.nan,
                   delta_vs_fp32=math.nan, delta_vs_fp32_std=math.nan, diverged=sum(r.diverged for r in runs))
        for counter in _COUNTERS:
            row[f"{counter}_mean"] = float(np.mean([s[counter] for s in steps])) if steps else math.nan
        row["nonfinite_steps_mean"] = float(np.mean([sum(s.get("nonfinite", 0) for s in r.rows) for r in runs]))
        row["seconds_mean"] = float(np.mean([r.seconds for r in runs]))
        row["note"] = ""
        rows.append(row)
    baseline = next((r for r in rows if r["config"] == "fp32"), None)
    if baseline is not None:
        baseline_by_seed = {r.seed: r.final_loss for r in by_config["fp32"]}
        for row in rows:
            row["delta_vs_fp32"] = row["final_loss_mean"] - baseline["final_loss_mean"]
            paired = [r.final_loss - baseline_by_seed[r.seed] for r in by_config.get(row["config"], [])
                      if r.seed in baseline_by_seed and math.isfinite(r.final_loss - baseline_by_seed[r.seed])]
            row["delta_vs_fp32_std"] = float(np.std(paired, ddof=1)) if len(paired) > 1 else math.nan
    return rows


def _text(value):
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def write_runs_csv(path, results) -> None:
    """drift.csv: one row per (configuration, seed, step); blank where a value does not apply.
    Written atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(RUN_COLUMNS)
    for result in results:
        for row in result.rows:
            writer.writerow([_text(row.get(column, math.nan)) for column in RUN_COLUMNS])
    write_text(path, buffer.getvalue())


def write_summary_csv(path, rows) -> None:
    """summary.csv: one row per configuration, the columns of SUMMARY_COLUMNS and a note.
    Written atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SUMMARY_COLUMNS + ("note",))
    for row in rows:
        writer.writerow([_text(row.get(column, "")) for column in SUMMARY_COLUMNS + ("note",)])
    write_text(path, buffer.getvalue())


# What each column of the printed table means, from the definitions above and in counters.py.
TABLE_LEGEND = """\
final loss: the evaluation loss at the last step, mean over the seeds that did not diverge; std: its
  sample standard deviation over those seeds.
delta vs fp32: final loss minus FP32's (mean over seeds); in brackets the standard deviation of the
  per-seed difference (same weights and batches per seed, so it is much smaller than std).
diverged: seeds whose loss or weights became non-finite (they stop there and are left out of the loss).
The counters are means over every step of every seed:
  grad underflow: of the nonzero gradient values rounded in the backward pass, the share rounded to 0;
  saturated: of all values rounded in a step, the share with |x| above the format's max (results +-max,
    +-Inf or NaN);
  updates cancelled: of the weights with a nonzero gradient, the share whose stored value did not change;
  loss scale: the factor S the loss was multiplied by before the backward pass (1: no loss scaling;
    dynamic scaling halves S on overflow and doubles it after 100 clean steps);
  non-finite steps: steps per run whose gradients were not all finite (with loss scaling they are
    skipped), mean over seeds: 6.3 means about 6 of each run's steps were thrown away."""


def format_table(rows) -> str:
    """The printed summary table, with the meaning of its columns below it."""
    header = ("config", "final loss", "std", "delta vs fp32 (paired std)", "diverged", "grad underflow", "saturated",
              "updates cancelled", "loss scale", "non-finite steps")
    lines = []
    for row in rows:
        if row.get("note") and not row["seeds"]:
            lines.append((row["config"], "-", "-", "-", "-", "-", "-", "-", "-", "-"))
            continue
        lines.append((row["config"], _decimal(row["final_loss_mean"], ".4f"), _decimal(row["final_loss_std"], ".4f"),
                      f"{_decimal(row['delta_vs_fp32'], '+.4f')} ({_decimal(row['delta_vs_fp32_std'], '.4f')})",
                      f"{row['diverged']}/{row['seeds']}",
                      f"{100 * row['grad_underflow_mean']:.3f}%", f"{100 * row['saturated_mean']:.4f}%",
                      f"{100 * row['update_cancelled_mean']:.1f}%", f"{row['loss_scale_mean']:.4g}",
                      f"{row['nonfinite_steps_mean']:.1f}"))
    notes = [f"{row['config']}: {row['note']}" for row in rows if row.get("note")]
    return "\n".join([render_table(header, lines, right=range(1, len(header)))] + notes + ["", TABLE_LEGEND])


def _decimal(value, spec) -> str:
    return "-" if isinstance(value, float) and math.isnan(value) else format(value, spec)


def write_outputs(directory, results, rows) -> dict:
    """Write drift.csv and summary.csv into ``directory`` (atomically); return their paths."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"drift": directory / "drift.csv", "summary": directory / "summary.csv"}
    write_runs_csv(paths["drift"], results)
    write_summary_csv(paths["summary"], rows)
    return paths
