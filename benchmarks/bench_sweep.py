"""Precision-sweep throughput against a plain numpy/ml_dtypes peer (a benchmark, not a test).

Prints, for a standard-normal float32 tensor of 2^--size-log2 values:

* one sweep evaluation (``fmtlab.sweep.evaluate_piece``: the quantize at the piece's index
  offset + the mergeable statistics of docs/sweep.md's metrics) per format, against
  the peer a user would write by hand: ml_dtypes ``astype`` round trip + numpy SQNR only;
* the default ``fmtlab sweep`` job (524 evaluations, no plots) inline (--jobs 1) and on
  every available CPU (fmtlab's own worker processes, ``fmtlab._pool``; their start-up is
  included), and the speed-up.

* the issue-14 job (``--job``, default on): two 2^20-value tensors (normal, lognormal) swept
  over cfloat8_1_4_3 and cfloat8_1_5_2 at every bias, e4m3fn and bf16, nearest-even and
  stochastic (520 evaluations), against its peer: the 520 bare ``fl.quantize`` calls it stands
  for (same process, same run, one thread); element-evaluations per second with 1 and 2 jobs,
  and the ratio sweep / bare quantizes;
* the default ``fmtlab sweep`` command's wall time and CPU time (a subprocess and all its processes,
  start-up of Python included): as it runs by default, with ``--jobs 1`` and ``--jobs 2``, and the
  same without plots and report;
* the CPU time per element-evaluation of the job with 1 and 2 jobs (the process tree's user + system
  time: on a loaded machine the 2-job wall time says little, its CPU time still says what the
  work cost);
* the same sweep with one fused pass per bias (the path before the bias axis in one pass) and
  the ratio one-pass / per-bias, in wall time and in this process's CPU time.

Each figure is the best of --repeats runs.

``--checkpoint 64,256,600``: checkpoint-scale sweeps instead.  For each size (MB) a BF16
.safetensors checkpoint is written (rows of 4096 values; tensors of 1/2, 1/4, 1/8, 1/8 of the
file, so the largest is half of it) and ``fmtlab sweep --formats e4m3fn,bf16 --bias auto
--rounding nearest_even`` is run on it as a command (default --chunk) inline, with 2 jobs and
on a Dask LocalCluster of 2 workers, recording wall time and the peak RSS of the whole process
tree (sampled every 20 ms, workers, scheduler and nannies included), next to the peer a user
would write by hand (each tensor memory-mapped, widened whole to float32, ml_dtypes e4m3fn
round trip, numpy SQNR; run for sizes up to --peer-limit MB).  Usage:

    python benchmarks/bench_sweep.py [--size-log2 18] [--repeats 3]
    python benchmarks/bench_sweep.py --checkpoint 64,256,600 [--dir /tmp/fmtlab-bench]
"""
import argparse
import importlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import ml_dtypes
import numpy as np

import fmtlab as fl
from fmtlab._inputs import synthetic
from fmtlab._pool import available_cpus
from fmtlab._inputs import tensor_sources
from fmtlab.sweep import evaluate_piece, sweep
from _timing import best_time  # benchmarks/_timing.py


def peer_sqnr(x, dtype):
    q = x.astype(dtype).astype(np.float64)
    x64 = x.astype(np.float64)
    return 10 * np.log10(np.square(x64).sum() / np.square(q - x64).sum())


ROW = 4096  # values per row of the benchmark checkpoints
PEER = """
import sys, json, struct, numpy as np, ml_dtypes
path = sys.argv[1]
with open(path, "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8)); header = json.loads(f.read(n))
for name, info in header.items():
    b, e = info["data_offsets"]
    x = np.memmap(path, dtype=ml_dtypes.bfloat16, mode="r", offset=8 + n + b, shape=tuple(info["shape"]))
    x = np.asarray(x, dtype=np.float32)
    q = x.astype(ml_dtypes.float8_e4m3fn).astype(np.float64)
    x64 = x.astype(np.float64)
    print(name, 10 * np.log10(np.square(x64).sum() / np.square(q - x64).sum()))
"""


def write_checkpoint(path, megabytes):
    """A BF16 .safetensors file of about ``megabytes`` MB, written a block of rows at a time."""
    rows_total = max(8, megabytes * 1_000_000 // (2 * ROW))
    shares = {"model.embed_tokens.weight": 4, "layers.0.mlp.up_proj.weight": 2,
              "layers.0.self_attn.q_proj.weight": 1, "layers.0.self_attn.k_proj.weight": 1}
    header, offset, layout = {}, 0, []
    for name, share in shares.items():
        rows = max(1, rows_total * share // 8)
        header[name] = {"dtype": "BF16", "shape": [rows, ROW], "data_offsets": [offset, offset + rows * ROW * 2]}
        offset += rows * ROW * 2
        layout.append((name, rows))
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    rng = np.random.default_rng(0)
    with open(path, "wb") as handle:
        handle.write(len(text).to_bytes(8, "little") + text)
        for index, (_name, rows) in enumerate(layout):
            for start in range(0, rows, 2048):
                count = min(2048, rows - start)
                block = rng.standard_normal((count, ROW), dtype=np.float32) * 0.02 * (index + 1)
                handle.write(block.astype(ml_dtypes.bfloat16).tobytes())
    return max(rows for _name, rows in layout) * ROW * 2


def tree_peak(command, env=None):
    """(seconds, peak RSS in bytes of the process and all its descendants, exit status)."""
    import psutil

    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    root = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        total = 0
        try:
            for member in [root, *root.children(recursive=True)]:
                try:
                    total += member.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    if process.returncode:
        print(process.stderr.read().decode()[-2000:], file=sys.stderr)
    return seconds, peak, process.returncode


def checkpoint_benchmark(sizes, directory, peer_limit):
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).resolve().parents[1])}
    print("checkpoint sweeps: fmtlab sweep --formats e4m3fn,bf16 --bias auto --rounding nearest_even "
          "(default --chunk), BF16 .safetensors")
    print(f"{'file MB':>8s} {'largest MB':>10s} {'run':>14s} {'time s':>8s} {'peak RSS MB':>12s} "
          f"{'RSS/file':>9s} {'time/peer':>10s}")
    for megabytes in sizes:
        path = directory / f"bench-{megabytes}MB.safetensors"
        largest = write_checkpoint(path, megabytes)
        size = path.stat().st_size
        peer_time = None
        runs = []
        if megabytes <= peer_limit:
            seconds, peak, _status = tree_peak([sys.executable, "-c", PEER, str(path)], env)
            peer_time = seconds
            runs.append(("peer (numpy)", seconds, peak))
        for label, extra in (("inline", ["--jobs", "1"]), ("2 jobs", ["--jobs", "2"]),
                             ("2 processes", ["--jobs", "2", "--pool", "processes"]),
                             ("dask, 2 workers", ["--dask", "local", "--jobs", "2"])):
            with tempfile.TemporaryDirectory(dir=directory) as out:
                command = [sys.executable, "-m", "fmtlab", "sweep", "--input", str(path), "--formats", "e4m3fn,bf16",
                           "--bias", "auto", "--rounding", "nearest_even", "--no-plots", "--quiet", "--out", out,
                           *extra]
                seconds, peak, status = tree_peak(command, env)
            runs.append((label if status == 0 else f"{label} (failed)", seconds, peak))
        for label, seconds, peak in runs:
            ratio = f"{seconds / peer_time:10.2f}" if peer_time else f"{'-':>10s}"
            print(f"{size / 1e6:8.0f} {largest / 1e6:10.0f} {label:>14s} {seconds:8.1f} {peak / 1e6:12.0f} "
                  f"{peak / size:9.2f} {ratio}", flush=True)
        path.unlink()


_TICKS = os.sysconf("SC_CLK_TCK")


def _processes():
    """{pid: (parent pid, CPU seconds: user + system)} of every process, from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS)
    return found


class TreeCpu:
    """CPU seconds (user + system) of a process and all its descendants over a ``with`` block:
    /proc sampled every 20 ms from a thread, each process counted at the largest value seen less
    its value when the block began (a process that ends between two samples loses at most 20 ms).
    ``root``: the pid (default this process: its own time, every thread's, is then taken exactly
    with time.process_time less the sampling thread's own time.thread_time, so that the sweep's
    worker threads count and the sampling does not)."""

    def __init__(self, root=None):
        self.own = root is None
        self.root = os.getpid() if root is None else root
        self.seconds = 0.0

    def _tree(self):
        processes = _processes()
        tree, grown = {self.root}, True
        while grown:
            grown = False
            for pid, (parent, _cpu) in processes.items():
                if parent in tree and pid not in tree:
                    tree.add(pid)
                    grown = True
        return {pid: processes[pid][1] for pid in tree if pid in processes}

    def _sample(self):
        start = time.thread_time()
        while not self._stop.wait(0.02):
            for pid, cpu in self._tree().items():
                self._seen[pid] = max(self._seen.get(pid, 0.0), cpu)
        self._sampling = time.thread_time() - start

    def __enter__(self):
        import threading

        self._base = self._tree()
        self._seen = dict(self._base)
        self._process_start = time.process_time()
        self._sampling = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        for pid, cpu in self._tree().items():
            self._seen[pid] = max(self._seen.get(pid, 0.0), cpu)
        others = sum(cpu - self._base.get(pid, 0.0) for pid, cpu in self._seen.items()
                     if not (self.own and pid == self.root))
        self.seconds = others + (time.process_time() - self._process_start - self._sampling if self.own else 0.0)
        return False


def timed(function, repeats):
    """(best wall seconds, CPU seconds of that process tree in the same run) over ``repeats`` runs."""
    best = (float("inf"), float("inf"))
    for _ in range(max(1, repeats)):
        with TreeCpu() as cpu:
            start = time.perf_counter()
            function()
            wall = time.perf_counter() - start
        best = min(best, (wall, cpu.seconds))
    return best


JOB_FORMATS = ("cfloat8_1_4_3", "cfloat8_1_5_2", "e4m3fn", "bf16")
JOB_ROUNDINGS = ("nearest_even", "stochastic")


def job_benchmark(log2, repeats):
    """The issue-14 job: the sweep against the bare quantizes it stands for, in one run."""
    count = 1 << log2
    tensors = {name: synthetic(name, count) for name in ("normal", "lognormal")}
    calls = []
    for fmt_name in JOB_FORMATS:
        fmt = fl.format(fmt_name)
        biases = range(64) if fmt_name.startswith("cfloat8") else (fmt.bias,)
        calls += [(fmt.replace(bias=bias) if bias != fmt.bias else fmt, rounding) for bias in biases
                  for rounding in JOB_ROUNDINGS]
    evaluations = len(calls) * len(tensors)

    def bare():
        for x in tensors.values():
            for fmt, rounding in calls:
                fl.quantize(x, fmt, rounding, seed=0)

    fl.set_threads(1)
    bare_time = best_time(bare, repeats)
    bare_cpu = best_time(bare, repeats, clock=time.process_time)
    fl.set_threads(None)
    arguments = dict(formats=",".join(JOB_FORMATS), biases="all", roundings=JOB_ROUNDINGS, seed=0)
    ways = ((1, "threads"), (2, "threads"), (2, "processes"))
    runs = {way: (float("inf"),) * 2 for way in ways}
    for _ in range(repeats):  # interleaved: 1 job, 2 jobs, 2 processes, 1 job, ...
        for jobs, pool in ways:
            runs[jobs, pool] = min(runs[jobs, pool], timed(lambda: sweep(tensors, jobs=jobs, pool=pool, **arguments), 1))
    (one, one_cpu), (two, two_cpu), (processes, processes_cpu) = (runs[way] for way in ways)
    per_bias = best_time(lambda: per_bias_sweep(tensors, arguments), repeats)
    per_bias_cpu = best_time(lambda: per_bias_sweep(tensors, arguments), repeats, clock=time.process_time)
    elements = evaluations * count
    print(f"issue-14 job: {len(tensors)} tensors of 2^{log2} values, {', '.join(JOB_FORMATS)} (cfloat8 at every "
          f"bias), {', '.join(JOB_ROUNDINGS)}: {evaluations} evaluations; load average {_load()}")
    print(f"  bare fl.quantize calls (peer, 1 thread): {bare_time:7.3f} s  {elements / bare_time / 1e6:8.1f} M elements/s")
    print(f"  sweep, 1 job:  {one:7.3f} s wall  {elements / one / 1e6:8.1f} M element-evaluations/s   "
          f"CPU {one_cpu:7.3f} s = {one_cpu / elements * 1e9:5.2f} ns per element-evaluation   "
          f"sweep / bare quantizes = {one / bare_time:.2f}")
    print(f"  sweep, 2 jobs (threads, the default pool): {two:7.3f} s wall  {elements / two / 1e6:8.1f} M element-evaluations/s   "
          f"CPU {two_cpu:7.3f} s = {two_cpu / elements * 1e9:5.2f} ns per element-evaluation   "
          f"2 jobs / 1 job speed-up = {one / two:.2f}x")
    print(f"  sweep, 2 jobs on worker processes (--pool processes): {processes:7.3f} s wall   CPU {processes_cpu:7.3f} s"
          f"   speed-up over 1 job = {one / processes:.2f}x")
    print(f"  sweep, 1 job, one pass per bias (before the bias axis in one pass): {per_bias:7.3f} s"
          f"   one-pass / per-bias = {one / per_bias:.2f}")
    print(f"  CPU time (less sensitive to other load): bare {bare_cpu:.3f} s, sweep 1 job {one_cpu:.3f} s, "
          f"per-bias {per_bias_cpu:.3f} s; sweep / bare quantizes = {one_cpu / bare_cpu:.2f}, "
          f"one-pass / per-bias = {one_cpu / per_bias_cpu:.2f}")


def _load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def per_bias_sweep(tensors, arguments):
    """The same sweep inline with every bias evaluated by its own fused pass (the path before the
    bias axis in one pass): the peer of the one-pass sweep, in the same run."""
    module = importlib.import_module("fmtlab.sweep")
    one_pass = module.fused_statistics_biases

    def per_bias(base, formats, rounding, seed):
        return [module.fused_statistics(base, fmt, rounding, seed) for fmt in formats]

    module.fused_statistics_biases = per_bias
    try:
        return sweep(tensors, jobs=1, **arguments)
    finally:
        module.fused_statistics_biases = one_pass


def default_command_benchmark(repeats):
    """The default ``fmtlab sweep`` command (a subprocess, Python start-up included): wall time and
    CPU time of its process tree (workers included), best of ``repeats``, interleaved: as it runs by
    default (plots and report; jobs chosen by cost), with --jobs 1 and --jobs 2, and without the
    plots and the report."""
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).resolve().parents[1])}
    variants = [("fmtlab sweep (default)", []), ("  --jobs 1", ["--jobs", "1"]), ("  --jobs 2", ["--jobs", "2"]),
                ("  --no-plots --no-report", ["--no-plots", "--no-report"]),
                ("  --no-plots --no-report --jobs 1", ["--no-plots", "--no-report", "--jobs", "1"]),
                ("  --no-plots --no-report --jobs 2", ["--no-plots", "--no-report", "--jobs", "2"]),
                ("  --no-plots --no-report --jobs 2 --pool processes",
                 ["--no-plots", "--no-report", "--jobs", "2", "--pool", "processes"])]
    best = {label: (float("inf"), float("inf")) for label, _extra in variants}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(max(1, repeats)):
            for label, extra in variants:
                command = [sys.executable, "-m", "fmtlab", "sweep", "--quiet", "--out", out, *extra]
                start = time.perf_counter()
                process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
                with TreeCpu(process.pid) as cpu:
                    process.wait()
                wall = time.perf_counter() - start
                if process.returncode:
                    raise RuntimeError(f"{command} exited with {process.returncode}")
                best[label] = min(best[label], (wall, cpu.seconds))
    print(f"the default `fmtlab sweep` command (524 evaluations of 2^18 values; subprocess; best of {repeats}; "
          f"load average {_load()}):")
    for label, (wall, cpu) in best.items():
        print(f"  {label:50s} wall {wall:6.2f} s   CPU (user + system, all processes) {cpu:6.2f} s")


def scaled_fused_benchmark(repeats):
    """A scaled format's piece evaluated by the fused C pass (fmtlab._sweep_scaled.fused_scaled_statistics)
    against its peer in the same run, the path before it: quantize_piece, then the numpy/C statistics
    of q and the scale-relative counts (same statistics, bit for bit); CPU time of this thread, one
    C thread, a 256 x 4096 float32 normal tensor."""
    from fmtlab._sweep_scaled import fused_scaled_statistics, quantize_piece, scaled_counts, tensor_amax
    from fmtlab.sweep import PieceInput, piece_statistics

    x = np.random.default_rng(0).standard_normal((256, 4096)).astype(np.float32)
    flat, amax = x.reshape(-1), tensor_amax(x)

    def before(fmt, rounding):
        base = PieceInput(flat, 0, flat.size)
        q, magnitudes = quantize_piece(flat, x.shape, fmt, rounding, 0, 0, (amax, amax))
        piece_statistics(base, q, fmt.element)
        scaled_counts(np.abs(base.x), q, magnitudes, fmt)

    def fused(fmt, rounding):
        base = PieceInput(flat, 0, flat.size)
        fused_scaled_statistics(flat, x.shape, fmt, rounding, 0, 0, amax, base.signal())

    fl.set_threads(1)
    print(f"scaled piece of 2^20 values, CPU ms of one thread (best of {repeats}; load average {_load()})")
    for name in ("mxfp8_e4m3", "nvfp4", "fp8_block128x128", "mxint8"):
        fmt = fl.format(name)
        for rounding in ("nearest_even", "stochastic"):
            peer = best_time(lambda: before(fmt, rounding), repeats, time.thread_time)
            ours = best_time(lambda: fused(fmt, rounding), repeats, time.thread_time)
            print(f"  {name:18s} {rounding:13s} quantize-then-statistics {peer * 1e3:7.1f}  fused {ours * 1e3:7.1f}"
                  f"  fused / peer {ours / peer:.2f}")
    fl.set_threads(None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-log2", type=int, default=18)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpoint", default=None, help="checkpoint sizes in MB, e.g. 64,256,600")
    parser.add_argument("--dir", default=tempfile.gettempdir() + "/fmtlab-bench")
    parser.add_argument("--peer-limit", type=int, default=256, help="largest size (MB) the peer runs on")
    parser.add_argument("--job-log2", type=int, default=20, help="values per tensor of the issue-14 job (log2)")
    parser.add_argument("--only-job", action="store_true", help="run the issue-14 job and the default command only")
    args = parser.parse_args()
    if args.checkpoint:
        checkpoint_benchmark([int(part) for part in args.checkpoint.split(",")], args.dir, args.peer_limit)
        return
    job_benchmark(args.job_log2, args.repeats)
    default_command_benchmark(args.repeats)
    if args.only_job:
        return
    scaled_fused_benchmark(args.repeats)
    count = 1 << args.size_log2
    x = synthetic("normal", count)
    fl.set_threads(1)
    print(f"one evaluation of {count} values, one thread (ms; lower is better)")
    print(f"{'format':16s} {'fmtlab':>10s} {'peer':>10s} {'fmtlab/peer':>12s}   peer = ml_dtypes astype + numpy SQNR")
    for name, peer_dtype in (("e4m3fn", ml_dtypes.float8_e4m3fn), ("bf16", ml_dtypes.bfloat16),
                             ("cfloat8_1_4_3", None)):
        fmt = fl.format(name)
        piece = tensor_sources({"x": x})[0].piece(0, count)
        ours = best_time(lambda: evaluate_piece(piece, [(fmt, "nearest_even", fmt.bias)], 0), args.repeats)
        peer = best_time(lambda: peer_sqnr(x, peer_dtype), args.repeats) if peer_dtype else None
        ratio = f"{ours / peer:12.2f}" if peer else f"{'(no peer)':>12s}"
        print(f"{name:16s} {ours * 1e3:10.2f} {peer * 1e3 if peer else float('nan'):10.2f} {ratio}")
    fl.set_threads(None)

    tensors = {name: synthetic(name, count) for name in ("normal", "lognormal")}
    arguments = dict(formats=None, biases="all", roundings=("nearest_even", "stochastic"))
    inline = best_time(lambda: sweep(tensors, jobs=1, **arguments), args.repeats)
    cores = available_cpus()
    parallel = best_time(lambda: sweep(tensors, jobs=cores, **arguments), args.repeats)
    print(f"\ndefault sweep job (524 evaluations of {count} values, no plots)")
    print(f"  inline (jobs=1):      {inline:7.2f} s")
    print(f"  {cores} processes:         {parallel:7.2f} s   speed-up {inline / parallel:.2f}x")


if __name__ == "__main__":
    main()
