"""``fmtlab drift``: training-loss drift of emulated number formats against an FP32 baseline.

    fmtlab drift [--task digits|charlm] [--configs LIST] [--steps N] [--seeds N] [--quick]
                 [--out DIR] [--jobs N] [--eval-every N] [--no-plots]

``--quick`` is the digits task, every configuration, 3 seeds and the task's short run
length; options given explicitly override it.  The FP32 baseline is always run (the drift
is measured against it).  Writes DIR/drift.csv, DIR/summary.csv, DIR/loss.png and
DIR/delta.png, and prints the summary table.  Exit status 0, or 1 when a configuration
could not run in this installation (e.g. h100_fp8 without the tensor-core model); the
others are still run and written.
"""
from __future__ import annotations

import sys
import time

from . import CONFIG_NAMES, TASK_NAMES


def _positive_int(text):
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an int") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed: a positive int")
    return value


def configure(parser) -> None:
    parser.add_argument("--task", choices=TASK_NAMES, default=None, help="training task (default: digits)")
    parser.add_argument("--configs", default=None,
                        help=f"comma-separated configurations, or 'all' (default); known: {', '.join(CONFIG_NAMES)}")
    parser.add_argument("--steps", type=_positive_int, default=None,
                        help="training steps per run (default: the task's full or quick length)")
    parser.add_argument("--seeds", type=_positive_int, default=None, help="number of seeds, 0..N-1 (default 3)")
    parser.add_argument("--quick", action="store_true",
                        help="digits, all configurations, 3 seeds, short runs (under 5 minutes on 2 cores)")
    parser.add_argument("--out", default="drift-results", help="output folder (default: drift-results)")
    parser.add_argument("--jobs", type=_positive_int, default=None,
                        help="worker processes (default: the CPUs available); results do not depend on it")
    parser.add_argument("--eval-every", type=_positive_int, default=None,
                        help="steps between evaluations of the loss (default: the task's)")
    parser.add_argument("--no-plots", action="store_true", help="do not draw loss.png and delta.png")
    parser.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")


def _progress_bar(total, enabled):
    try:
        from .._progress import ProgressBar
    except ImportError:  # pragma: no cover - the shared bar is part of fmtlab
        ProgressBar = None
    if ProgressBar is None:
        return None
    return ProgressBar(total=total, label="drift", enabled=False if not enabled else None)


def run(args) -> int:
    from .configs import CONFIGS, parse_configs
    from .runner import default_jobs, run_experiment
    from .summary import format_table, summarize, write_outputs
    from .tasks import make_task

    task_name = args.task or "digits"
    task = make_task(task_name)
    steps = args.steps or (task.settings.quick_steps if args.quick else task.settings.steps)
    eval_every = args.eval_every or (task.settings.quick_eval_every if args.quick else task.settings.eval_every)
    seeds = list(range(args.seeds or 3))
    config_names = parse_configs(args.configs)
    if "fp32" not in config_names:
        config_names.insert(0, "fp32")
    unavailable = {name: reason for name in config_names
                   if (reason := CONFIGS[name].unavailable_reason()) is not None}
    for name, reason in unavailable.items():
        print(f"fmtlab drift: {name} cannot run: {reason}", file=sys.stderr)
    runnable = [name for name in config_names if name not in unavailable]
    jobs = args.jobs or default_jobs()
    print(f"fmtlab drift: task {task_name}, {len(runnable)} configurations x {len(seeds)} seeds, "
          f"{steps} steps, {jobs} jobs", file=sys.stderr)
    start = time.perf_counter()
    bar = _progress_bar(len(runnable) * len(seeds), not args.no_progress)
    results = run_experiment(task_name, runnable, seeds, steps, eval_every, jobs=jobs,
                             progress=(lambda result: bar.update()) if bar else None)
    if bar:
        bar.close()
    rows = summarize(results, config_names, unavailable)
    paths = write_outputs(args.out, results, rows)
    if not args.no_plots:
        from .plots import plot
        plot(results, runnable, args.out, task_name)
    elapsed = time.perf_counter() - start
    print(format_table(rows))
    print(f"\n{task_name}: {steps} steps, seeds {seeds[0]}..{seeds[-1]}, {elapsed:.0f} s; "
          f"written to {paths['summary'].parent}/ (drift.csv, summary.csv"
          f"{', loss.png, delta.png' if not args.no_plots else ''})")
    return 1 if unavailable else 0
