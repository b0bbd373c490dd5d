"""Codec throughput against its peers, measured in the same run (a benchmark, not a test).

Rounds 2^24 float32 values (standard normal) and prints millions of elements per second for
fmtlab's encode and quantize (nearest-even, stochastic, stochastic with sr_bits=8, and custom
formats of the preset's width), ml_dtypes' astype and torch's casts to the same type, and a plain
float32 copy into a reused array (the memory-bandwidth ceiling), with each row as a fraction of the
copy and of the peers' cast to the same type (stochastic rounding against their nearest-even
cast).  Each cast is timed twice: to a new array (what `fl.encode(x, fmt)` and torch's `.to()` do)
and into a reused one (`out=`, torch's `copy_`), since a new result's pages cost as much as the
rounding on large arrays; the targets are printed for both pairings.  Each figure
is the best of --repeats runs.  Then `sr_bits=8` against exact stochastic rounding as the median
ratio of --pairs interleaved pairs (exact, sr_bits) of runs, and the issue's targets with this
table's ratios.

One table per SIMD path of the codec: by default every path this CPU runs (AVX-512, AVX2,
portable C), each in its own process with FMTLAB_SIMD set (the kernels are chosen when fmtlab
loads), and the peers measured again in each.  Usage:

    python benchmarks/bench_codec.py [--simd all|avx512|avx2|portable|current] [--size-log2 24]
                                     [--repeats 5] [--pairs 7] [--threads N] [--cpu-time]

--cpu-time times the calling thread's CPU time with one thread for both libraries: on a shared
machine it is far less disturbed by the other processes than wall-clock time.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import ml_dtypes
import numpy as np

import fmtlab as fl
from _timing import best_time  # benchmarks/_timing.py

SIMD_NAMES = {0: "portable C", 1: "AVX2", 2: "AVX-512"}
SIMD_VALUES = {2: "avx512", 1: "avx2", 0: "portable"}  # FMTLAB_SIMD's value for each level


def best_time_cpu(function, repeats):
    return best_time(function, repeats, clock=time.thread_time)


def median_pair_ratio(first, second, pairs, clock):
    """Median over `pairs` interleaved runs (first, second) of time(first) / time(second): how many
    times faster `second` is, with both disturbed alike by what else the machine runs."""
    ratios = []
    for _ in range(max(1, pairs)):
        start = clock()
        first()
        middle = clock()
        second()
        ratios.append((middle - start) / (clock() - middle))
    return statistics.median(ratios), min(ratios), max(ratios)


def run_table(args):
    threads = 1 if args.cpu_time else args.threads
    timer = best_time_cpu if args.cpu_time else best_time
    clock = time.thread_time if args.cpu_time else time.perf_counter
    count = 1 << args.size_log2
    x = np.random.default_rng(0).standard_normal(count).astype(np.float32)
    fl.set_threads(threads)

    def rate(function, repeats=args.repeats):
        return count / timer(function, repeats) / 1e6

    # The ceiling is a copy into a reused array.  Any fresh result pays the kernel's zeroing of
    # its new pages as well (glibc maps an allocation of 32 MiB or more afresh each time, and
    # whether a smaller one reuses freed memory depends on the heap's history): the rows with
    # out= (fmtlab) and copy_ (torch) reuse a buffer, the others allocate their result.
    buffer = np.empty_like(x)
    copy_rate = rate(lambda: np.copyto(buffer, x))
    fresh_rate = rate(x.copy)
    peers = {}  # (library, type) -> rate
    torch_into = {}  # type -> rate of torch's cast into a reused tensor
    peers["ml_dtypes", "e4m3fn"] = rate(lambda: x.astype(ml_dtypes.float8_e4m3fn), max(1, args.repeats // 2))
    peers["ml_dtypes", "bf16"] = rate(lambda: x.astype(ml_dtypes.bfloat16), max(1, args.repeats // 2))
    try:
        import torch
        if threads:
            torch.set_num_threads(threads)
        tensor = torch.from_numpy(x)
        peers["torch", "e4m3fn"] = rate(lambda: tensor.to(torch.float8_e4m3fn))
        peers["torch", "bf16"] = rate(lambda: tensor.to(torch.bfloat16))
        # the same casts into a reused tensor (copy_): no allocation, so no page-fault lottery
        # (a fresh result's cost depends on whether glibc reuses freed memory or maps new pages)
        into_e4m3fn = torch.empty(count, dtype=torch.float8_e4m3fn)
        into_bf16 = torch.empty(count, dtype=torch.bfloat16)
        torch_into["e4m3fn"] = rate(lambda: into_e4m3fn.copy_(tensor))
        torch_into["bf16"] = rate(lambda: into_bf16.copy_(tensor))
    except ImportError:
        print("torch is not installed: its rows are left out")
    rows = [("float32 copy into a reused array (bandwidth ceiling)", copy_rate, None),
            ("float32 copy to a new array (fresh pages)", fresh_rate, None)]
    rows += [(f"{library} cast to {kind}", value, kind) for (library, kind), value in peers.items()]
    rows += [(f"torch cast to {kind} into a reused tensor (copy_)", value, kind) for kind, value in torch_into.items()]
    results = {}  # (label, mode, operation) -> rate
    cases = [("e4m3fn", "e4m3fn"), (fl.Format(4, 3, 9, specials="fn"), "e4m3fn"), ("cfloat8_1_4_3", "e4m3fn"),
             ("bf16", "bf16"), (fl.Format(8, 7, 120), "bf16")]
    for fmt, kind in cases:
        label = fmt if isinstance(fmt, str) else f"e{fmt.exp_bits}m{fmt.man_bits} bias {fmt.bias} (custom)"
        modes = [("nearest_even", {}), ("stochastic", {}), ("stochastic", {"sr_bits": 8})]
        if not isinstance(fmt, str):
            modes = modes[:1]
        for mode, keywords in modes:
            name = f"{mode}" + (" sr_bits=8" if keywords else "")
            operations = [("encode", fl.encode, {}), ("quantize", fl.quantize, {})]
            if isinstance(fmt, str):
                codes = np.empty(count, dtype=fl.format(fmt).code_dtype)
                operations[1:1] = [("encode out=", fl.encode, {"out": codes})]
                operations.append(("quantize out=", fl.quantize, {"out": buffer}))
            for operation, function, into in operations:
                value = rate(lambda: function(x, fmt, mode, seed=1, **keywords, **into))
                results[label, name, operation] = value
                rows.append((f"fmtlab {operation:13s} {label} {name}", value, kind))
    level = int(fl.codec.lib.fl_codec_simd_level())
    load = os.getloadavg()
    print(f"{count} float32 values; fmtlab threads: {fl.get_threads()}; codec kernels: {SIMD_NAMES[level]}; "
          f"{'CPU time of one thread' if args.cpu_time else 'wall-clock time'}, best of {args.repeats}; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    header = f"{'operation':60s} {'Melem/s':>8s} {'/copy':>6s} {'/ml_dtypes':>10s} {'/torch':>7s}"
    print(header)
    print("-" * len(header))
    for name, value, kind in rows:
        ratios = []
        for library in ("ml_dtypes", "torch"):
            # rows into a reused buffer against torch's copy_ into one, the others against .to()
            peer = torch_into.get(kind) if library == "torch" and "out=" in name else peers.get((library, kind))
            ratios.append(f"{value / peer:.2f}" if peer else "")
        print(f"{name:60s} {value:8.0f} {value / copy_rate:6.2f} {ratios[0]:>10s} {ratios[1]:>7s}")
    print("ratios: against the float32 copy and against each library's cast to the same type "
          "(its nearest-even cast for stochastic rows; out= rows against torch's copy_ into a reused tensor), "
          "all from this run")

    print(f"sr_bits=8 against exact stochastic rounding: median (min-max) of {args.pairs} interleaved pairs, "
          "time(exact) / time(sr_bits=8), > 1 when sr_bits=8 is faster")
    for fmt in ("e4m3fn", "cfloat8_1_4_3", "bf16"):
        for operation, function in (("encode", fl.encode), ("quantize", fl.quantize)):
            median, low, high = median_pair_ratio(lambda: function(x, fmt, "stochastic", seed=1),
                                                  lambda: function(x, fmt, "stochastic", seed=1, sr_bits=8),
                                                  args.pairs, clock)
            print(f"  {fmt:14s} {operation:8s} {median:5.2f} ({low:.2f}-{high:.2f})")

    torch_cast = {kind: peers.get(("torch", kind)) for kind in ("e4m3fn", "bf16")}
    if all(torch_cast.values()):
        print("targets (this table's ratios):")
        for fmt in ("e4m3fn", "bf16"):
            peer = torch_cast[fmt]
            checks = [(f"{fmt} encode >= 1.2x torch", results[fmt, "nearest_even", "encode"] / peer, 1.2),
                      (f"{fmt} quantize >= 0.8x torch", results[fmt, "nearest_even", "quantize"] / peer, 0.8),
                      (f"{fmt} stochastic encode >= 0.7x torch", results[fmt, "stochastic", "encode"] / peer, 0.7),
                      (f"{fmt} stochastic quantize >= 0.7x torch", results[fmt, "stochastic", "quantize"] / peer, 0.7)]
            into = torch_into.get(fmt)
            if into:  # no allocation on either side: out= against torch's copy_ into a reused tensor
                checks += [(f"{fmt} encode out= >= 1.2x torch copy_", results[fmt, "nearest_even", "encode out="] / into, 1.2),
                           (f"{fmt} quantize out= >= 0.8x torch copy_", results[fmt, "nearest_even", "quantize out="] / into, 0.8),
                           (f"{fmt} stochastic encode out= >= 0.7x torch copy_",
                            results[fmt, "stochastic", "encode out="] / into, 0.7),
                           (f"{fmt} stochastic quantize out= >= 0.7x torch copy_",
                            results[fmt, "stochastic", "quantize out="] / into, 0.7)]
            for name, ratio, target in checks:
                print(f"  {name:62s} {ratio:5.2f}  {'met' if ratio >= target else 'NOT met'}")
        for custom, preset in (("e4m3 bias 9 (custom)", "e4m3fn"), ("e8m7 bias 120 (custom)", "bf16")):
            for operation in ("encode", "quantize"):
                ratio = results[custom, "nearest_even", operation] / results[preset, "nearest_even", operation]
                name = f"{custom} {operation} / {preset}'s (>= 0.67)"
                print(f"  {name:62s} {ratio:5.2f}  {'met' if ratio >= 1 / 1.5 else 'NOT met'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simd", default="all", choices=["all", "avx512", "avx2", "portable", "current"],
                        help="the codec's SIMD path: every one this CPU runs (default), one of them, or the one "
                             "this process loaded (current)")
    parser.add_argument("--size-log2", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=7, help="interleaved pairs for sr_bits against exact")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for fmtlab and torch (default: each library's own default)")
    parser.add_argument("--cpu-time", action="store_true", help="one thread, timed by its CPU time")
    args = parser.parse_args()
    if args.simd == "current":
        run_table(args)
        return
    # the CPU's best level, as a process without FMTLAB_SIMD loads it
    unset = {name: value for name, value in os.environ.items() if name != "FMTLAB_SIMD"}
    best = int(subprocess.run([sys.executable, "-c", "import fmtlab; print(fmtlab.codec.lib.fl_codec_simd_level())"],
                              env=unset, capture_output=True, text=True, check=True).stdout)
    wanted = [level for level in (2, 1, 0) if level <= best] if args.simd == "all" else \
        [level for level, value in SIMD_VALUES.items() if value == args.simd]
    passed = [option for option in sys.argv[1:] if not option.startswith("--simd")]
    if "--simd" in sys.argv[1:]:  # "--simd VALUE" as two words
        index = sys.argv.index("--simd")
        passed = sys.argv[1:index] + sys.argv[index + 2:]
    for number, level in enumerate(wanted):
        if number:
            print()
        environment = dict(os.environ, FMTLAB_SIMD=SIMD_VALUES[level])
        subprocess.run([sys.executable, os.path.abspath(__file__), "--simd", "current"] + passed,
                       env=environment, check=True)


if __name__ == "__main__":
    main()
