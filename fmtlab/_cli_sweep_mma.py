"""``fmtlab sweep-mma``: the command-line face of :mod:`fmtlab.sweep_mma`.

Writes DIR/sweep_mma.csv, DIR/summary.txt, DIR/mma_error_vs_k.png and the run's page
DIR/report.html with DIR/provenance.json (not with --no-report) (DIR = --out, default
./fmtlab-sweep-mma) and prints the relative error per model and K.

Every flag (each model of --models included) and DIR are checked before any work.  Ctrl-C
writes the finished results and exits with status 130; a dead worker is named in one line,
the finished results are written, and the status is 1.
"""
from __future__ import annotations

import argparse
import time

from ._cli_args import non_negative_int, positive_float, positive_int, report_stop, split_list
from ._files import write_text

__all__ = ["DEFAULT_OUT", "configure", "run"]

DEFAULT_OUT = "fmtlab-sweep-mma"


def configure(parser: argparse.ArgumentParser) -> None:
    from ._inputs import DISTRIBUTIONS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = ("Example: fmtlab sweep-mma --models h100:e4m3fn,h100:e4m3fn:promote=128,fp32_fma "
                     "--k 16,256,4096,65536\nDefinitions: docs/sweep.md")
    parser.add_argument("--models", default=None, metavar="LIST",
                        help="comma-separated MMA models as GPU:INPUT (e.g. h100:e4m3fn, a100:fp16), or a "
                             "reference model name (see `fmtlab mma`); :promote=N sets the FP8 promotion "
                             "interval (default: the sweep's built-in comparison set)")
    parser.add_argument("--k", default=None, metavar="LIST",
                        help="comma-separated inner dimensions K (default 16,64,...,65536)")
    parser.add_argument("--dist", action="append", metavar="NAME",
                        help=f"input distribution(s), comma-separated: {', '.join(DISTRIBUTIONS)} "
                             "(default normal,lognormal)")
    parser.add_argument("--scale", type=positive_float, default=1.0, metavar="S",
                        help="scale of the input distributions (default 1)")
    parser.add_argument("--m", type=positive_int, default=16, metavar="M", help="rows of A and D (default 16)")
    parser.add_argument("--n", type=positive_int, default=16, metavar="N", help="columns of B and D (default 16)")
    parser.add_argument("--seed", type=non_negative_int, default=0, metavar="N", help="data seed (default 0)")
    parser.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                        help="worker processes (default: the CPUs this process may use; 1 runs in this process)")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"output directory for sweep_mma.csv and the plot (default ./{DEFAULT_OUT})")
    parser.add_argument("--no-plots", action="store_true", help="write the CSV and summary only")
    parser.add_argument("--no-report", action="store_true", help="do not write DIR/report.html, the run's page")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress and no table (the final line and errors still print)")


def run(args) -> int:
    from ._inputs import check_distribution
    from ._parse import parse_mma_model, split_model_list
    from ._pool import Interrupted, WorkerDied
    from ._progress import progress_display
    from ._files import output_directory
    from .sweep_mma import sweep_mma

    started = time.monotonic()
    # Check every argument before any work is done.
    models = None
    if args.models is not None:
        models = split_model_list(args.models)
        if not models:
            raise ValueError("--models is empty: give at least one model, e.g. h100:e4m3fn")
        for spec in models:
            parse_mma_model(spec, argument="--models")
    ks = None
    if args.k is not None:
        ks = []
        for part in split_list([args.k]):
            try:
                ks.append(int(part))
            except ValueError:
                raise ValueError(f"--k has {part!r}, which is not an integer; give e.g. 16,256,4096") from None
    distributions = [check_distribution(name, "--dist") for name in split_list(args.dist)] or None
    out = output_directory(args.out, "--out")

    if not args.no_report:
        from .report import start_run

        start_run(out, getattr(args, "_argv", None),
                  synthetic=f"synthetic {', '.join(distributions or ('normal', 'lognormal'))} matrices, "
                            f"m {args.m}, n {args.n}, scale {args.scale}, seed {args.seed}")
    display = progress_display("sweep-mma", unit="tasks", quiet=args.quiet)
    try:
        result = sweep_mma(models, ks, distributions, m=args.m, n=args.n, scale=args.scale, seed=args.seed,
                           jobs=args.jobs, progress=display.set)
    except (Interrupted, WorkerDied) as stopped:
        display.close()
        stopped.partial.to_csv(out / "sweep_mma.csv")  # what finished; no plot (it takes seconds)
        write_text(out / "summary.txt", stopped.partial.summary_table() + "\n")
        kept = f"{len(stopped.partial)} of {stopped.planned} results finished and were written to {out}/"
        return report_stop("sweep-mma", stopped, kept)
    display.close()
    csv_path = out / "sweep_mma.csv"
    result.to_csv(csv_path)
    table = result.summary_table()
    write_text(out / "summary.txt", table + "\n")
    written = [csv_path, out / "summary.txt"]
    if not args.no_plots:
        from .plots import plot_mma_error_vs_k

        written.append(plot_mma_error_vs_k(result, out / "mma_error_vs_k.png"))
    if not args.no_report:
        from .report import finish_run

        written.append(finish_run(out))
    if not args.quiet:
        print(table)
        print()
    print(f"{len(result)} results in {time.monotonic() - started:.1f} s; wrote "
          + ", ".join(str(path) for path in written))
    return 0
