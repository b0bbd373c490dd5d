"""``fmtlab sweep``: the command-line face of :mod:`fmtlab.sweep`.

``fmtlab sweep`` with no arguments sweeps normal and lognormal data over FP32, FP16, BF16,
CFloat8 1-4-3 and 1-5-2 (every bias 0..63) with nearest-even and stochastic rounding,
prints the summary table and writes DIR/sweep.csv, DIR/summary.txt and the plots
DIR/sqnr_vs_bias.png and DIR/log2_histogram.png (DIR = --out, default ./fmtlab-sweep).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

from ._cli_args import non_negative_int, positive_float, positive_int, split_list

DEFAULT_DISTRIBUTIONS = ("normal", "lognormal")
DEFAULT_SIZE = 1 << 18
DEFAULT_ROUNDINGS = "nearest_even,stochastic"
DEFAULT_OUT = "fmtlab-sweep"


# ---- fmtlab sweep ------------------------------------------------------------------------------
def configure(parser: argparse.ArgumentParser) -> None:
    from .formats import ROUNDINGS
    from ._inputs import DISTRIBUTIONS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = ("With no input, sweeps synthetic normal and lognormal data.  Example:\n"
                     "  fmtlab sweep --input model.safetensors --formats bf16,cfloat8_1_4_3 --bias all\n"
                     "Metric definitions and the bias rule: docs/sweep.md")
    source = parser.add_argument_group("inputs (default: --dist normal,lognormal)")
    source.add_argument("--input", action="append", metavar="FILE",
                        help="a .npy, .npz, .pt/.pth or .safetensors file; every floating-point tensor in it "
                             "is swept (repeatable)")
    source.add_argument("--dist", action="append", metavar="NAME",
                        help=f"synthetic distribution(s), comma-separated: {', '.join(DISTRIBUTIONS)}")
    source.add_argument("--size", type=positive_int, default=DEFAULT_SIZE, metavar="N",
                        help=f"elements per synthetic tensor (default {DEFAULT_SIZE})")
    source.add_argument("--scale", type=positive_float, default=1.0, metavar="S",
                        help="scale of the synthetic distributions (default 1)")
    parser.add_argument("--formats", default=None, metavar="LIST",
                        help="comma-separated formats, e.g. fp16,cfloat8_1_4_3:subnormals=tesla "
                             "(default fp32,fp16,bf16,cfloat8_1_4_3,cfloat8_1_5_2)")
    parser.add_argument("--bias", default="all", metavar="all|auto|LIST",
                        help="biases of the configurable formats: all (0..63), auto (the amax rule), "
                             "or a list such as 5,7,10-14 (default all)")
    parser.add_argument("--rounding", default=DEFAULT_ROUNDINGS, metavar="LIST",
                        help=f"comma-separated rounding modes: {', '.join(ROUNDINGS)} "
                             f"(default {DEFAULT_ROUNDINGS})")
    parser.add_argument("--seed", type=non_negative_int, default=0, metavar="N",
                        help="seed of the synthetic data and of stochastic rounding (default 0)")
    parser.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                        help="worker processes (default: every core; 1 runs in this process)")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"output directory for sweep.csv, summary.txt and the plots (default ./{DEFAULT_OUT})")
    parser.add_argument("--no-plots", action="store_true", help="write the CSV and summary only")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary table")


def _tensors(args):
    """The tensors the arguments name, and a list of (name, reason) skipped from files."""
    from ._inputs import load_file, synthetic

    tensors, skipped = {}, []
    files = args.input or []
    for path in files:
        loaded = load_file(path, skipped)
        prefix = f"{pathlib.Path(path).stem}/" if len(files) > 1 else ""
        tensors.update({prefix + name: array for name, array in loaded.items()})
    distributions = split_list(args.dist) or ([] if files else list(DEFAULT_DISTRIBUTIONS))
    for distribution in dict.fromkeys(distributions):
        name = distribution if distribution not in tensors else f"synthetic/{distribution}"
        tensors[name] = synthetic(distribution, args.size, args.scale, args.seed)
    return tensors, skipped


def run(args) -> int:
    from ._progress import ProgressBar
    from ._parse import parse_biases, parse_formats, parse_roundings
    from .sweep import sweep

    started = time.monotonic()
    # Check every argument before any work is done.
    formats = parse_formats(args.formats)
    biases = parse_biases(args.bias)
    roundings = parse_roundings(args.rounding)
    tensors, skipped = _tensors(args)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    total_values = sum(array.size for array in tensors.values())
    if not args.quiet:
        described = ", ".join(f"{name} ({array.size:,} values)" for name, array in list(tensors.items())[:6])
        more = f" and {len(tensors) - 6} more" if len(tensors) > 6 else ""
        print(f"fmtlab sweep: {len(tensors)} tensor(s): {described}{more}")
        print(f"  formats {', '.join(str(fmt) for fmt in formats)}; biases {args.bias}; "
              f"rounding {', '.join(roundings)}; seed {args.seed}; "
              f"jobs {args.jobs or os.cpu_count()}")
        if skipped:
            print(f"  skipped {len(skipped)} tensor(s) that are not floating point or are empty: "
                  + ", ".join(name for name, _reason in skipped[:8]) + (" ..." if len(skipped) > 8 else ""))
        sys.stdout.flush()

    bar = ProgressBar(0, "sweep", enabled=None if not args.quiet else False)

    def progress(done, total):
        bar.total = total
        bar.update(done - bar.done)

    try:
        result = sweep(tensors, formats, biases, roundings, seed=args.seed, jobs=args.jobs, progress=progress)
    finally:
        bar.close()

    csv_path = out / "sweep.csv"
    result.to_csv(csv_path)
    table = result.summary_table()
    (out / "summary.txt").write_text(table + "\n")
    written = [csv_path, out / "summary.txt"]
    if not args.no_plots:
        from .plots import plot_log2_histogram, plot_sqnr_vs_bias

        written.append(plot_sqnr_vs_bias(result, out / "sqnr_vs_bias.png"))
        written.append(plot_log2_histogram(tensors, result, out / "log2_histogram.png"))
    if not args.quiet:
        print()
        print(table)
        print()
        print("best bias = highest SQNR among the biases swept; rule bias = largest bias whose max >= amax "
              "(docs/sweep.md)")
        print(f"{len(result)} results over {total_values:,} values in {time.monotonic() - started:.1f} s; wrote "
              + ", ".join(str(path) for path in written))
    return 0
