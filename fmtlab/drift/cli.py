"""``fmtlab drift``: training-loss drift of emulated number formats against an FP32 baseline.

    fmtlab drift [--task digits|charlm] [--configs LIST] [--steps N] [--seeds N] [--quick]
                 [--out DIR] [--jobs N] [--dask local|ADDRESS] [--eval-every N] [--no-plots] [--quiet]

``--quick`` is the digits task, every configuration, 3 seeds and the task's short run
length; options given explicitly override it.  The FP32 baseline is always run (the drift
is measured against it).  Writes DIR/drift.csv, DIR/summary.csv, DIR/loss.png,
DIR/delta.png and the run's page DIR/report.html (not with --no-report) (DIR = --out, default ./fmtlab-drift, checked and created before any work),
and prints the summary table with the meaning of its columns.

Progress is counted in training steps, reported by the workers as they take them: a bar on
a terminal, a plain line every 10 s otherwise, nothing with ``--quiet``.  Ctrl-C stops every
worker at once, writes the runs that had finished (drift.csv, summary.csv; no plots), says
so in one line and exits with status 130; a worker that dies is named in one line, the
finished runs are written, and the status is 1.
"""
from __future__ import annotations

import sys
import time

from .._cli_args import positive_int, report_stop
from . import CONFIG_NAMES, TASK_NAMES

__all__ = ["DEFAULT_OUT", "configure", "run"]

DEFAULT_OUT = "fmtlab-drift"


def configure(parser) -> None:
    parser.add_argument("--task", choices=TASK_NAMES, default=None, help="training task (default: digits)")
    parser.add_argument("--configs", default=None,
                        help=f"comma-separated configurations, or 'all' (default); known: {', '.join(CONFIG_NAMES)}")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="training steps per run (default: the task's full or quick length)")
    parser.add_argument("--seeds", type=positive_int, default=None, help="number of seeds, 0..N-1 (default 3)")
    parser.add_argument("--quick", action="store_true",
                        help="digits, all configurations, 3 seeds, short runs (about a minute on 2 cores)")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"output directory (default: ./{DEFAULT_OUT})")
    parser.add_argument("--jobs", type=positive_int, default=None,
                        help="worker processes (default: the CPUs available); results do not depend on it")
    parser.add_argument("--dask", default=None, metavar="local|ADDRESS",
                        help="run the (configuration, seed) runs on Dask: local (a LocalCluster of --jobs "
                             "workers) or a scheduler address such as tcp://host:8786")
    parser.add_argument("--eval-every", type=positive_int, default=None,
                        help="steps between evaluations of the loss (default: the task's)")
    parser.add_argument("--no-plots", action="store_true", help="do not draw loss.png and delta.png")
    parser.add_argument("--no-report", action="store_true", help="do not write DIR/report.html, the run's page")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress and no summary table (the final line and errors still print)")


def run(args) -> int:
    from .._pool import Interrupted, WorkerDied, available_cpus, dask_client
    from .._progress import progress_display
    from .._files import output_directory
    from .configs import parse_configs
    from .runner import run_experiment
    from .summary import format_table, summarize, write_outputs
    from .tasks import make_task

    # Check every argument before any work is done.
    config_names = parse_configs(args.configs, argument="--configs")
    out = output_directory(args.out, "--out")
    task_name = args.task or "digits"
    task = make_task(task_name)
    steps = args.steps or (task.settings.quick_steps if args.quick else task.settings.steps)
    eval_every = args.eval_every or (task.settings.quick_eval_every if args.quick else task.settings.eval_every)
    seeds = list(range(args.seeds or 3))
    if "fp32" not in config_names:
        config_names.insert(0, "fp32")
    jobs = args.jobs or available_cpus()
    if not args.quiet:
        print(f"fmtlab drift: task {task_name}, {len(config_names)} configurations x {len(seeds)} seeds, "
              f"{steps} steps, {jobs} jobs", file=sys.stderr)
    if not args.no_report:
        from ..report import start_run

        start_run(out, getattr(args, "_argv", None),
                  synthetic=f"task {task_name}: configurations {', '.join(config_names)}; seeds "
                            f"{seeds[0]}..{seeds[-1]}; {steps} steps, evaluated every {eval_every}")
    start = time.perf_counter()
    # delay=0: the first line shows at once, before the workers have taken a step.
    display = progress_display("drift", unit="steps", quiet=args.quiet, delay=0)
    dask = []  # --dask: the client and cluster, closed before the last line

    def close_dask():
        import logging

        logging.getLogger("distributed").setLevel(logging.CRITICAL + 1)  # the scheduler's close, after our line
        while dask:
            dask.pop().close()

    try:
        client = None
        if args.dask:
            client, cluster = dask_client(args.dask, jobs)
            dask.extend(part for part in (cluster, client) if part is not None)
        results = run_experiment(task_name, config_names, seeds, steps, eval_every, jobs=jobs,
                                 progress=display.set, executor=client)
    except (Interrupted, WorkerDied) as stopped:
        display.close()
        close_dask()
        write_outputs(out, stopped.partial, summarize(stopped.partial, config_names))
        if not args.no_report and stopped.partial:  # the page of the finished runs, marked partial
            from .._pool import Interrupted
            from ..report import finish_run

            finished = {(result.config, result.seed) for result in stopped.partial}
            finish_run(out, partial={
                "reason": "interrupted (Ctrl-C)" if isinstance(stopped, Interrupted) else "a worker process died",
                "unit": "runs", "finished": len(finished), "planned": stopped.planned,
                "missing": [(config, f"seed {seed}") for config in config_names for seed in seeds
                            if (config, seed) not in finished]})
        kept = (f"{len(stopped.partial)} of {stopped.planned} runs finished and were written to {out}/ "
                "(drift.csv, summary.csv)")
        return report_stop("drift", stopped, kept)
    finally:
        close_dask()
    display.close()
    rows = summarize(results, config_names)
    write_outputs(out, results, rows)
    if not args.no_plots:
        from .plots import plot
        plot(results, config_names, out, task_name)
    if not args.no_report:
        from ..report import finish_run

        finish_run(out)
    elapsed = time.perf_counter() - start
    if not args.quiet:
        print(format_table(rows))
        print()
    print(f"{task_name}: {steps} steps, seeds {seeds[0]}..{seeds[-1]}, {elapsed:.0f} s; "
          f"written to {out}/ (drift.csv, summary.csv"
          f"{', loss.png, delta.png' if not args.no_plots else ''}{', report.html' if not args.no_report else ''})")
    return 0
