"""``fmtlab sweep``: the command-line face of :mod:`fmtlab.sweep`.

``fmtlab sweep`` with no arguments sweeps normal and lognormal data over FP32, FP16, BF16,
CFloat8 1-4-3 and 1-5-2 (every bias 0..63) with nearest-even and stochastic rounding,
prints the summary table and writes DIR/sweep.csv, DIR/summary.txt and the plots
DIR/sqnr_vs_bias.png and DIR/log2_histogram.png, and the run's page DIR/report.html (with
DIR/provenance.json and DIR/histograms.json, which it is built from; not with --no-report)
(DIR = --out, default ./fmtlab-sweep).
Scaled formats (``--formats mxfp8_e4m3,nvfp4``) are swept over ``--block`` and ``--rule``
(:func:`fmtlab.sweep.scaled_variants`) and drawn in DIR/sqnr_vs_block.png; what a format
does not take is said in one note line each on stderr.

Before any work: every flag is checked, DIR is created (or refused), and the memory the
synthetic tensors need is compared with what the machine has.  Ctrl-C stops the workers at
once, writes the (tensor, format, rounding) groups that had finished to sweep.csv and
summary.txt, says so in one line and exits with status 130.  The --jobs workers are threads of
this process unless ``--pool processes``; a worker process that dies (killed, out of memory) is
named in one line, the finished groups are written, and the status is 1.
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
    from ._pool import POOLS

    from .formats import ROUNDINGS
    from ._inputs import DISTRIBUTIONS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = ("With no input, sweeps synthetic normal and lognormal data.  Example:\n"
                     "  fmtlab sweep --input model.safetensors --formats bf16,cfloat8_1_4_3 --bias all\n"
                     "Metric definitions and the bias rule: docs/sweep.md")
    source = parser.add_argument_group("inputs (default: --dist normal,lognormal)")
    source.add_argument("--input", action="append", metavar="PATH",
                        help="a .npy, .npz, .pt/.pth or .safetensors file, a directory of them, or a sharded "
                             "checkpoint's *.index.json; every floating-point tensor in it is swept, read a chunk "
                             "at a time (repeatable)")
    source.add_argument("--include", action="append", metavar="GLOB",
                        help="sweep only the input tensors whose name matches one of these patterns, e.g. "
                             "'*.q_proj.*,*.k_proj.*' (repeatable)")
    source.add_argument("--exclude", action="append", metavar="GLOB",
                        help="leave out the input tensors whose name matches one of these patterns (repeatable)")
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
                        help="workers (default: the CPUs this process may use; 1 runs in this process)")
    parser.add_argument("--pool", default="threads", metavar="|".join(POOLS),
                        help="what the --jobs workers are: threads of this process (default; they share the "
                             "tensors and start at once) or worker processes (a killed worker is named and "
                             "the finished results kept)")
    parser.add_argument("--chunk", type=positive_int, default=None, metavar="N",
                        help="elements per task of a large tensor, cut by whole rows (default 4194304); the "
                             "results do not depend on it, the memory does")
    parser.add_argument("--dask", default=None, metavar="local|ADDRESS",
                        help="run the tasks on Dask: local (a LocalCluster of --jobs worker processes) or a "
                             "scheduler address such as tcp://host:8786")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out: keep its finished rows of sweep.csv, compute the rest "
                             "(refused if the arguments differ)")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"output directory for sweep.csv, summary.txt and the plots (default ./{DEFAULT_OUT})")
    parser.add_argument("--no-plots", action="store_true", help="write the CSV and summary only")
    parser.add_argument("--no-report", action="store_true",
                        help="do not write DIR/report.html, the run's page (nor histograms.json, which it needs)")
    parser.add_argument("--parquet", action="store_true",
                        help="also write DIR/sweep.parquet (the CSV's rows, typed columns; needs pyarrow)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress and no summary table (the final line and errors still print)")


def _sources(args):
    """The tensors the arguments name (TensorSource objects: files are not read here), and a
    list of (name, reason) skipped from files."""
    from ._inputs import synthetic, tensor_sources

    skipped = []
    sources = []
    if args.input:
        sources = tensor_sources(args.input, include=args.include, exclude=args.exclude, skipped=skipped,
                                 include_argument="--include", exclude_argument="--exclude",
                                 input_argument="input file")
    names = {source.name for source in sources}
    synthetic_tensors = {}
    for distribution in _distributions(args):
        name = distribution if distribution not in names else f"synthetic/{distribution}"
        synthetic_tensors[name] = synthetic(distribution, args.size, args.scale, args.seed)
    if synthetic_tensors:
        sources += tensor_sources(synthetic_tensors)
    return sources, skipped


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
                         f"per value in each of {min(count, workers)} worker(s) evaluating them), but "
                         f"{_bytes(available)} of memory is available; give a smaller --size "
                         f"(or --jobs 1)")


def _bytes(count: int) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"


def check_input_memory(sources, chunk: int, workers: int, available=None, *, scaled=()) -> None:
    """A ValueError naming --chunk when the evaluation of the file tensors would not fit in
    memory: each of ``workers`` processes holds one piece of at most ``chunk`` values (whole
    rows: at least one row; for the ``scaled`` formats given, at least one row of their blocks,
    fmtlab._sweep_scaled.row_quantum) at about ``_WORKER_BYTES_PER_VALUE`` bytes per value
    (``_SCALED_WORKER_BYTES_PER_VALUE`` with scaled formats).  In-memory tensors are checked by
    check_synthetic_memory."""
    from ._sweep_scaled import row_quantum

    files = [source for source in sources if source.kind != "array"]
    if not files:
        return
    available = available_memory() if available is None else available
    if available is None:
        return

    def piece(source):
        rows = max([1] + [row_quantum(fmt, source.shape) for fmt in scaled])
        return min(source.size, max(chunk, rows * source.row_size))

    largest_piece = max(piece(source) for source in files)
    per_value = _SCALED_WORKER_BYTES_PER_VALUE if scaled else _WORKER_BYTES_PER_VALUE
    needed = workers * largest_piece * per_value
    if needed > available:
        raise ValueError(f"--chunk {chunk} needs about {_bytes(needed)} ({workers} worker(s) evaluating pieces "
                         f"of up to {largest_piece:,} values at about {per_value} bytes per value), "
                         f"but {_bytes(available)} of memory is available; give a smaller --chunk or --jobs")


def _nonfinite_note(result) -> str | None:
    """One line naming the tensors that hold NaN or Inf (from the records' input fractions),
    and how the sweep treats them."""
    found, seen = [], set()
    for record in result:
        if record.tensor in seen:
            continue
        seen.add(record.tensor)
        nans, infs = round(record.nan_input_frac * record.n), round(record.inf_input_frac * record.n)
        if nans or infs:
            found.append(f"{record.tensor} ({nans} NaN, {infs} Inf of {record.n:,})")
    if not found:
        return None
    shown = ", ".join(found[:6]) + (f" and {len(found) - 6} more" if len(found) > 6 else "")
    return (f"fmtlab sweep: note: non-finite input values in {shown}: they are left out of the SQNR, RMSE "
            "and error columns (a format without NaN/Inf codes maps them to its max), Inf counts as "
            "overflow; see the Inf/NaN in % column and nan_input_frac, inf_input_frac in sweep.csv")


def _note(line: str) -> None:
    print(f"fmtlab sweep: note: {line}", file=sys.stderr)


RUN_FILE = "sweep.run.json"


def _run_arguments(args, formats, roundings, sources) -> dict:
    """What decides a sweep's results (the --resume check): every argument but --jobs, --chunk,
    --dask, --out, --quiet and --no-plots, which change how it runs, not what it computes; the
    input files by path, size and SHA-256."""
    from ._inputs import file_digest

    files = sorted({source.path for source in sources if source.path is not None})
    return {"formats": [str(fmt) for fmt in formats], "bias": args.bias, "rounding": list(roundings),
            "block": args.block, "rule": args.rule, "seed": args.seed,
            "dist": _distributions(args), "size": args.size if _distributions(args) else None,
            "scale": args.scale if _distributions(args) else None,
            "include": args.include, "exclude": args.exclude,
            "inputs": [{"path": str(pathlib.Path(path).resolve()), "bytes": os.path.getsize(path),
                        "sha256": file_digest(path)} for path in files]}


def _resume(out, arguments):
    """The records a --resume run keeps, and the byte length of sweep.csv's valid rows."""
    import json

    from ._records import read_records_csv

    run_file = out / RUN_FILE
    if not run_file.exists() or not (out / "sweep.csv").exists():
        raise ValueError(f"--resume: {str(out)!r} holds no earlier sweep ({RUN_FILE} and sweep.csv); "
                         "run without --resume to start one")
    try:
        earlier = json.loads(run_file.read_text())["arguments"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"--resume: {str(run_file)!r} cannot be read ({error})") from None
    if earlier != arguments:
        differing = [key for key in sorted(set(earlier) | set(arguments)) if earlier.get(key) != arguments.get(key)]
        shown = "; ".join(f"{key}: was {earlier.get(key)!r}, now {arguments.get(key)!r}" for key in differing[:4])
        raise ValueError(f"--resume: the arguments differ from those of the run in {str(out)!r} ({shown}); "
                         "give the same arguments, or another --out (or leave out --resume to start over)")
    records, valid_bytes, dropped = read_records_csv(out / "sweep.csv")
    return records, valid_bytes, dropped


def _provenance(arguments) -> str:
    import datetime

    from . import __version__

    lines = ["provenance:", f"  command: fmtlab sweep {' '.join(sys.argv[2:]) if sys.argv[1:2] == ['sweep'] else ''}".rstrip(),
             f"  fmtlab {__version__}, written {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M:%S} UTC"]
    for entry in arguments["inputs"]:
        lines.append(f"  input {entry['path']}: {entry['bytes']:,} bytes, sha256 {entry['sha256']}")
    if arguments["dist"]:
        lines.append(f"  synthetic: {', '.join(arguments['dist'])}, {arguments['size']:,} values each, "
                     f"scale {arguments['scale']}, seed {arguments['seed']}")
    return "\n".join(lines)


def _histogram_tensors(sources, chunk):
    """The tensors the log2 histogram draws: the in-memory ones and the file tensors of at most
    ``chunk`` values (read here, one chunk of memory each at most; larger ones are left out)."""
    from .plots import MAX_PANELS

    shown, left_out = {}, []
    for source in sources:
        if len(shown) >= MAX_PANELS:
            break
        if source.kind == "array" or source.size <= chunk:
            shown[source.name] = source.piece(0, source.rows).read().reshape(source.shape)
        else:
            left_out.append(source.name)
    return shown, left_out


def _partial_report(out, stopped) -> None:
    """report.html of a stopped sweep: its finished groups, marked partial with the missing ones
    (fmtlab.report.partial); nothing when no group had finished (the page needs results)."""
    from ._pool import Interrupted
    from .report import finish_sweep

    finished = {(record.tensor, record.format, record.rounding) for record in stopped.partial}
    planned = getattr(stopped, "planned_groups", None)
    if not finished or planned is None:
        return
    reason = "interrupted (Ctrl-C)" if isinstance(stopped, Interrupted) else "a worker process died"
    # jobs=1: no worker processes are started while the run is stopping
    finish_sweep(out, getattr(stopped.partial, "histograms", {}), jobs=1,
                 partial={"reason": reason, "unit": "(tensor, format, rounding) groups", "finished": len(finished),
                          "planned": len(planned), "missing": [group for group in planned if group not in finished]})


def run(args) -> int:
    import json

    from ._parse import parse_biases, parse_blocks, parse_formats, parse_roundings, parse_rules
    from ._pool import Interrupted, WorkerDied, available_cpus, check_pool, dask_client
    from ._progress import progress_display
    from ._files import output_directory
    from ._records import COLUMNS, SUMMARY_LEGEND, CsvAppender, layer_kind
    from .scaled import ScaledFormat
    from .sweep import DEFAULT_CHUNK, scaled_variants, sweep

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
    if args.parquet:
        try:
            import pyarrow  # noqa: F401  (checked before any work)
        except ImportError:
            raise ValueError("--parquet needs pyarrow, which is not installed (pip install pyarrow)") from None
    check_pool(args.pool, "--pool")
    out = output_directory(args.out, "--out")
    jobs = args.jobs or available_cpus()
    chunk = args.chunk or DEFAULT_CHUNK
    check_synthetic_memory(args, jobs, scaled=scaled)
    sources, skipped = _sources(args)
    check_input_memory(sources, chunk, jobs, scaled=[fmt for fmt in formats if isinstance(fmt, ScaledFormat)])
    arguments = _run_arguments(args, formats, roundings, sources)
    done, keep, dropped = (None, None, 0)
    if args.resume:
        done, keep, dropped = _resume(out, arguments)

    total_values = sum(source.size for source in sources)
    if not args.quiet:
        described = ", ".join(f"{source.name} ({source.size:,} values)" for source in sources[:6])
        more = f" and {len(sources) - 6} more" if len(sources) > 6 else ""
        print(f"fmtlab sweep: {len(sources)} tensor(s): {described}{more}")
        axes = "".join(f"; {name} {value}" for name, value in (("blocks", args.block), ("rules", args.rule))
                       if value is not None)
        variants = f" ({len(formats)} with the block and rule axes)" if len(formats) != len(given) else ""
        where = f"dask {args.dask}" if args.dask else f"jobs {jobs}" + (" (processes)" if args.pool == "processes"
                                                                         and jobs > 1 else "")
        print(f"  formats {', '.join(str(fmt) for fmt in given)}{variants}; biases {args.bias}{axes}; "
              f"rounding {', '.join(roundings)}; seed {args.seed}; {where}")
        if skipped:
            print(f"  skipped {len(skipped)} tensor(s) that are not floating point or are empty: "
                  + ", ".join(name for name, _reason in skipped[:8]) + (" ..." if len(skipped) > 8 else ""))
        if args.resume:
            print(f"  resuming: {len(done)} finished rows kept from {out / 'sweep.csv'}"
                  + (f" ({dropped} torn or partial last line dropped)" if dropped else ""))
        sys.stdout.flush()
    for line in notes:
        _note(line)

    write_text(out / RUN_FILE, json.dumps({"arguments": arguments}, indent=1) + "\n")
    if not args.no_report:
        from .report import start_run

        start_run(out, getattr(args, "_argv", None), arguments["inputs"])
    csv_path = out / "sweep.csv"
    appender = CsvAppender(csv_path, COLUMNS, keep=keep)
    kept = {(record.tensor, record.format, record.rounding, record.bias) for record in done or ()}

    def on_records(records):  # whole rows of each finished tensor, flushed as it finishes
        fresh = [record for record in records if (record.tensor, record.format, record.rounding, record.bias)
                 not in kept]
        appender.append(fresh)
        kept.update((record.tensor, record.format, record.rounding, record.bias) for record in fresh)

    display = progress_display("sweep", unit="tasks", quiet=args.quiet)
    dask = []  # the client and cluster of --dask, closed before the last line is printed

    def close_dask():
        import logging

        # Closing stops the scheduler under cancelled tasks, which it logs (even as CRITICAL, with a
        # traceback) after the run's own last line: it has nothing to say any more.
        logging.getLogger("distributed").setLevel(logging.CRITICAL + 1)
        while dask:
            dask.pop().close()

    client = None
    try:
        if args.dask:
            client, cluster = dask_client(args.dask, jobs)
            dask.extend(part for part in (cluster, client) if part is not None)
        result = sweep(sources, formats, biases, roundings, seed=args.seed, jobs=args.jobs, progress=display.set,
                       on_note=_note, chunk=chunk, executor=client, on_records=on_records, done=done,
                       pool=args.pool)
    except (Interrupted, WorkerDied) as stopped:
        display.close()
        appender.close()
        close_dask()
        if stopped.partial is None:  # stopped in the scan pass (fmtlab.sweep's first pass): no result yet
            return report_stop("sweep", stopped, f"it stopped in the scan pass, before any result ({csv_path} holds no row)")
        # Keep what finished: the complete (tensor, format, rounding) groups; no plots (they take seconds).
        stopped.partial.to_csv(csv_path)
        write_text(out / "summary.txt", stopped.partial.summary_table() + "\n\n" + SUMMARY_LEGEND + "\n\n"
                   + _provenance(arguments) + "\n")
        if not args.no_report:
            _partial_report(out, stopped)
        kept_line = f"{len(stopped.partial)} of {stopped.planned} results finished and were written to {out}/"
        return report_stop("sweep", stopped, kept_line)
    finally:
        display.close()
        appender.close()
        close_dask()

    note = _nonfinite_note(result)
    if note:
        print(note, file=sys.stderr)
    result.to_csv(csv_path)  # the whole result in its canonical order, atomically over the streamed rows
    table = result.summary_table()
    if any(layer_kind(source.name) != "other" for source in sources):  # a model's checkpoint
        table += ("\n\nper layer kind (mean SQNR: weighted by values, at each tensor's best bias):\n"
                  + result.layer_table())
    write_text(out / "summary.txt", table + "\n\n" + SUMMARY_LEGEND + "\n\n" + _provenance(arguments) + "\n")
    written = [csv_path, out / "summary.txt"]
    if args.parquet:
        result.to_parquet(out / "sweep.parquet")
        written.append(out / "sweep.parquet")
    if not args.no_plots:
        from .plots import plot_log2_histogram, plot_sqnr_vs_bias, plot_sqnr_vs_block

        if any(not record.is_scaled for record in result):
            written.append(plot_sqnr_vs_bias(result, out / "sqnr_vs_bias.png"))
        if any(record.is_scaled for record in result):
            written.append(plot_sqnr_vs_block(result, out / "sqnr_vs_block.png"))
        shown, left_out = _histogram_tensors(sources, chunk)
        if shown:
            written.append(plot_log2_histogram(shown, result, out / "log2_histogram.png"))
        if left_out:
            _note(f"log2_histogram.png leaves out {len(left_out)} tensor(s) larger than --chunk {chunk} "
                  f"(they are never read whole): {', '.join(left_out[:4])}{' ...' if len(left_out) > 4 else ''}")
    if not args.no_report:
        from .report import finish_sweep

        # --jobs counts the sweep's workers (threads by default); the report's details are drawn on
        # worker processes, which pay only for many tensors: its own default decides (inline below
        # 40 tensors), except that --jobs 1 keeps everything in this process.
        written.append(finish_sweep(out, result.histograms, jobs=1 if args.jobs == 1 else None))
    if not args.quiet:
        print()
        print(table)
        print()
        print(SUMMARY_LEGEND)
        print()
    print(f"{len(result)} results over {total_values:,} values in {time.monotonic() - started:.1f} s; wrote "
          + ", ".join(str(path) for path in written))
    return 0
