"""Codec throughput against its peers, measured in the same run (a benchmark, not a test).

Rounds 2^24 float32 values (standard normal) and prints millions of elements per second for
fmtlab's encode and quantize (nearest-even, stochastic, stochastic with sr_bits=8, and custom
formats of the preset's width), ml_dtypes' astype and torch's casts to the same type, and a plain
float32 copy (the memory-bandwidth ceiling), with each row as a fraction of the copy and of the
peers' cast to the same type (stochastic rounding against their nearest-even cast).  Each figure
is the best of --repeats runs.  The codec's SIMD path is the one chosen when fmtlab loads
(FMTLAB_SIMD=portable forces the portable C kernels).  Usage:

    python benchmarks/bench_codec.py [--size-log2 24] [--repeats 5] [--threads N] [--cpu-time]

--cpu-time times the calling thread's CPU time with one thread for both libraries: on a shared
machine it is far less disturbed by the other processes than wall-clock time.
"""
import argparse
import time

import ml_dtypes
import numpy as np

import fmtlab as fl
from _timing import best_time  # benchmarks/_timing.py

SIMD_NAMES = {0: "portable C", 1: "AVX2", 2: "AVX-512"}


def best_time_cpu(function, repeats):
    return best_time(function, repeats, clock=time.thread_time)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-log2", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for fmtlab and torch (default: each library's own default)")
    parser.add_argument("--cpu-time", action="store_true", help="one thread, timed by its CPU time")
    args = parser.parse_args()
    threads = 1 if args.cpu_time else args.threads
    timer = best_time_cpu if args.cpu_time else best_time
    count = 1 << args.size_log2
    x = np.random.default_rng(0).standard_normal(count).astype(np.float32)
    fl.set_threads(threads)

    def rate(function, repeats=args.repeats):
        return count / timer(function, repeats) / 1e6

    copy_rate = rate(x.copy)
    peers = {}  # (library, type) -> rate
    peers["ml_dtypes", "e4m3fn"] = rate(lambda: x.astype(ml_dtypes.float8_e4m3fn), max(1, args.repeats // 2))
    peers["ml_dtypes", "bf16"] = rate(lambda: x.astype(ml_dtypes.bfloat16), max(1, args.repeats // 2))
    try:
        import torch
        if threads:
            torch.set_num_threads(threads)
        tensor = torch.from_numpy(x)
        peers["torch", "e4m3fn"] = rate(lambda: tensor.to(torch.float8_e4m3fn))
        peers["torch", "bf16"] = rate(lambda: tensor.to(torch.bfloat16))
    except ImportError:
        print("torch is not installed: its rows are left out")
    rows = [("float32 copy (bandwidth ceiling)", copy_rate, None)]
    rows += [(f"{library} cast to {kind}", value, kind) for (library, kind), value in peers.items()]
    cases = [("e4m3fn", "e4m3fn"), (fl.Format(4, 3, 9, specials="fn"), "e4m3fn"), ("cfloat8_1_4_3", "e4m3fn"),
             ("bf16", "bf16"), (fl.Format(8, 7, 120), "bf16")]
    for fmt, kind in cases:
        label = fmt if isinstance(fmt, str) else f"e{fmt.exp_bits}m{fmt.man_bits} bias {fmt.bias} (custom)"
        modes = [("nearest_even", {}), ("stochastic", {}), ("stochastic", {"sr_bits": 8})]
        if not isinstance(fmt, str):
            modes = modes[:1]
        for mode, keywords in modes:
            name = f"{label} {mode}" + (" sr_bits=8" if keywords else "")
            rows.append((f"fmtlab encode   {name}",
                         rate(lambda: fl.encode(x, fmt, mode, seed=1, **keywords)), kind))
            rows.append((f"fmtlab quantize {name}",
                         rate(lambda: fl.quantize(x, fmt, mode, seed=1, **keywords)), kind))
    level = int(fl.codec.lib.fl_codec_simd_level())
    print(f"{count} float32 values; fmtlab threads: {fl.get_threads()}; codec kernels: {SIMD_NAMES[level]}; "
          f"{'CPU time of one thread' if args.cpu_time else 'wall-clock time'}, best of {args.repeats}")
    header = f"{'operation':52s} {'Melem/s':>8s} {'/copy':>6s} {'/ml_dtypes':>10s} {'/torch':>7s}"
    print(header)
    print("-" * len(header))
    for name, value, kind in rows:
        ratios = []
        for library in ("ml_dtypes", "torch"):
            peer = peers.get((library, kind))
            ratios.append(f"{value / peer:.2f}" if peer else "")
        print(f"{name:52s} {value:8.0f} {value / copy_rate:6.2f} {ratios[0]:>10s} {ratios[1]:>7s}")
    print("ratios: against the float32 copy and against each library's cast to the same type "
          "(its nearest-even cast for stochastic rows), all from this run")


if __name__ == "__main__":
    main()
