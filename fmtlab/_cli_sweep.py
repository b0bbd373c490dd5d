"""``fmtlab sweep``: the command-line face of :mod:`fmtlab.sweep`.

``fmtlab sweep`` with no arguments sweeps normal and lognormal data over FP32, FP16, BF16,
CFloat8 1-4-3 and 1-5-2 (every bias 0..63) with nearest-even and stochastic rounding,
prints the summary table and writes DIR/sweep.csv, DIR/summary.txt and the plots
DIR/sqnr_vs_bias.png and DIR/log2_histogram.png (DIR = --out, default ./fmtlab-sweep).
Scaled formats (``--formats mxfp8_e4m3,nvfp4``) are swept over ``--block`` and ``--rule``
(:func:`fmtlab.sweep.scaled_variants`) and drawn in DIR/sqnr_vs_block.png; what a format
does not take is said in one note line each on stderr.

Before any work: every flag is checked, DIR is created (or refused), and the memory the
synthetic tensors need is compared with what the machine has.  Ctrl-C stops the workers at
once, writes the (tensor, format, rounding) groups that had finished to sweep.csv and
summary.txt, says so in one line and exits with status 130; a worker that dies (killed, out
of memory) is named in one line, the finished groups are written, and the status is 1.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

from ._cli_args import non_negative_int, positive_float, positive_int, report_stop, split_list
from ._files import write_text

__all__ = ["DEFAULT_OUT", "configure", "run", "available_memory", "check_synthetic_memory"]

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
    parser.add_argument("--block", default=None, metavar="LIST",
                        help="block sizes to evaluate each scaled format at, e.g. 16,32,128 (1-D blocks), "
                             "16x16 (tiles), channel, tensor (default: each format's own)")
    parser.add_argument("--rule", default=None, metavar="LIST",
                        help="scale rules to evaluate each scaled format at: floor, ceil, even, rceil, amax "
                             "(default: each format's own)")
    parser.add_argument("--rounding", default=DEFAULT_ROUNDINGS, metavar="LIST",
                        help=f"comma-separated rounding modes: {', '.join(ROUNDINGS)} "
                             f"(default {DEFAULT_ROUNDINGS})")
    parser.add_argument("--seed", type=non_negative_int, default=0, metavar="N",
                        help="seed of the synthetic data and of stochastic rounding (default 0)")
    parser.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                        help="worker processes (default: the CPUs this process may use; 1 runs in this process)")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"output directory for sweep.csv, summary.txt and the plots (default ./{DEFAULT_OUT})")
    parser.add_argument("--no-plots", action="store_true", help="write the CSV and summary only")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress and no summary table (the final line and errors still print)")


def _tensors(args):
    """The tensors the arguments name, and a list of (name, reason) skipped from files."""
    from ._inputs import load_file, synthetic

    tensors, skipped = {}, []
    files = args.input or []
    for path in files:
        loaded = load_file(path, skipped)
        prefix = f"{pathlib.Path(path).stem}/" if len(files) > 1 else ""
        tensors.update({prefix + name: array for name, array in loaded.items()})
    for distribution in _distributions(args):
        name = distribution if distribution not in tensors else f"synthetic/{distribution}"
        tensors[name] = synthetic(distribution, args.size, args.scale, args.seed)
    return tensors, skipped


def _distributions(args) -> list:
    """The synthetic distributions --dist names (default normal, lognormal without --input), checked."""
    from ._inputs import check_distribution

    names = split_list(args.dist) or ([] if args.input else list(DEFAULT_DISTRIBUTIONS))
    return [check_distribution(name, "--dist") for name in dict.fromkeys(names)]


def available_memory() -> int | None:
    """Bytes of memory available to a new computation: MemAvailable of /proc/meminfo (free
    memory plus what the kernel can reclaim), else the physical memory, else None."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


# What a sweep holds per synthetic value: the float32 tensor in this process (4 bytes), and in
# the process evaluating it the tensor again (4), its float64 copy, |x| and |x| with zeros as
# inf (8 + 8 + 8), two masks (1 + 1) and the quantized result (4 or 8): about 42 bytes.  A scaled
# format's evaluation holds more at its peak (the blocked view and float64 quotients of the
# encode, the codes, the exact float64 values and the element values: 49 bytes measured with
# tracemalloc on 2^20 values of mxfp8_e4m3, nvfp4, fp8_block128), so about 56 with the tensor.
_PARENT_BYTES_PER_VALUE = 4
_WORKER_BYTES_PER_VALUE = 42
_SCALED_WORKER_BYTES_PER_VALUE = 56


def check_synthetic_memory(args, workers: int, available=None, *, scaled: bool = False) -> None:
    """A ValueError naming --size when the synthetic tensors would not fit in memory.

    Needed: 4 bytes per value of every synthetic tensor here, plus about 42 per value in
    each process that evaluates one (at most ``workers`` of them at once); 56 when the sweep
    has scaled formats (``scaled``).
    """
    count = len(_distributions(args))
    if not count:
        return
    available = available_memory() if available is None else available
    if available is None:
        return
    worker_bytes = _SCALED_WORKER_BYTES_PER_VALUE if scaled else _WORKER_BYTES_PER_VALUE
    needed = count * args.size * _PARENT_BYTES_PER_VALUE + min(count, workers) * args.size * worker_bytes
    if needed > available:
        raise ValueError(f"--size {args.size} needs about {_bytes(needed)} for {count} synthetic tensor(s) "
                         f"({_PARENT_BYTES_PER_VALUE} bytes per value, plus about {worker_bytes} "
                         f"per value in each of {min(count, workers)} process(es) evaluating them), but "
                         f"{_bytes(available)} of memory is available; give a smaller --size "
                         f"(or --jobs 1)")


def _bytes(count: int) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"


def _nonfinite_note(tensors) -> str | None:
    """One line naming the tensors that hold NaN or Inf, and how the sweep treats them."""
    import numpy as np

    found = []
    for name, array in tensors.items():
        finite = np.isfinite(array)
        if finite.all():
            continue
        nans = int(np.count_nonzero(np.isnan(array)))
        found.append(f"{name} ({nans} NaN, {array.size - int(np.count_nonzero(finite)) - nans} Inf "
                     f"of {array.size:,})")
    if not found:
        return None
    shown = ", ".join(found[:6]) + (f" and {len(found) - 6} more" if len(found) > 6 else "")
    return (f"fmtlab sweep: note: non-finite input values in {shown}: they are left out of the SQNR, RMSE "
            "and error columns (a format without NaN/Inf codes maps them to its max), Inf counts as "
            "overflow; see the Inf/NaN in % column and nan_input_frac, inf_input_frac in sweep.csv")


def _note(line: str) -> None:
    print(f"fmtlab sweep: note: {line}", file=sys.stderr)


def run(args) -> int:
    from ._parse import parse_biases, parse_blocks, parse_formats, parse_roundings, parse_rules
    from ._pool import Interrupted, WorkerDied, available_cpus
    from ._progress import progress_display
    from ._files import output_directory
    from ._records import SUMMARY_LEGEND
    from .scaled import ScaledFormat
    from .sweep import scaled_variants, sweep

    started = time.monotonic()
    # Check every argument before any work is done.
    given = parse_formats(args.formats, argument="--formats")
    biases = parse_biases(args.bias, argument="--bias")
    roundings = parse_roundings(args.rounding, argument="--rounding")
    blocks = parse_blocks(args.block, argument="--block")
    rules = parse_rules(args.rule, argument="--rule")
    formats, notes = scaled_variants(given, blocks, rules, block_argument="--block", rule_argument="--rule")
    scaled = any(isinstance(fmt, ScaledFormat) for fmt in formats)
    _distributions(args)
    out = output_directory(args.out, "--out")
    jobs = args.jobs or available_cpus()
    check_synthetic_memory(args, jobs, scaled=scaled)
    tensors, skipped = _tensors(args)

    total_values = sum(array.size for array in tensors.values())
    if not args.quiet:
        described = ", ".join(f"{name} ({array.size:,} values)" for name, array in list(tensors.items())[:6])
        more = f" and {len(tensors) - 6} more" if len(tensors) > 6 else ""
        print(f"fmtlab sweep: {len(tensors)} tensor(s): {described}{more}")
        axes = "".join(f"; {name} {value}" for name, value in (("blocks", args.block), ("rules", args.rule))
                       if value is not None)
        variants = f" ({len(formats)} with the block and rule axes)" if len(formats) != len(given) else ""
        print(f"  formats {', '.join(str(fmt) for fmt in given)}{variants}; biases {args.bias}{axes}; "
              f"rounding {', '.join(roundings)}; seed {args.seed}; jobs {jobs}")
        if skipped:
            print(f"  skipped {len(skipped)} tensor(s) that are not floating point or are empty: "
                  + ", ".join(name for name, _reason in skipped[:8]) + (" ..." if len(skipped) > 8 else ""))
        sys.stdout.flush()
    for line in notes:
        _note(line)
    note = _nonfinite_note(tensors)
    if note:
        print(note, file=sys.stderr)

    display = progress_display("sweep", unit="tasks", quiet=args.quiet)
    try:
        result = sweep(tensors, formats, biases, roundings, seed=args.seed, jobs=args.jobs, progress=display.set,
                       on_note=_note)
    except (Interrupted, WorkerDied) as stopped:
        display.close()
        # Keep what finished: the complete (tensor, format, rounding) groups; no plots (they take seconds).
        stopped.partial.to_csv(out / "sweep.csv")
        write_text(out / "summary.txt", stopped.partial.summary_table() + "\n\n" + SUMMARY_LEGEND + "\n")
        kept = f"{len(stopped.partial)} of {stopped.planned} results finished and were written to {out}/"
        return report_stop("sweep", stopped, kept)
    display.close()

    csv_path = out / "sweep.csv"
    result.to_csv(csv_path)
    table = result.summary_table()
    write_text(out / "summary.txt", table + "\n\n" + SUMMARY_LEGEND + "\n")
    written = [csv_path, out / "summary.txt"]
    if not args.no_plots:
        from .plots import plot_log2_histogram, plot_sqnr_vs_bias, plot_sqnr_vs_block

        if any(not record.is_scaled for record in result):
            written.append(plot_sqnr_vs_bias(result, out / "sqnr_vs_bias.png"))
        if any(record.is_scaled for record in result):
            written.append(plot_sqnr_vs_block(result, out / "sqnr_vs_block.png"))
        written.append(plot_log2_histogram(tensors, result, out / "log2_histogram.png"))
    if not args.quiet:
        print()
        print(table)
        print()
        print(SUMMARY_LEGEND)
        print()
    print(f"{len(result)} results over {total_values:,} values in {time.monotonic() - started:.1f} s; wrote "
          + ", ".join(str(path) for path in written))
    return 0
