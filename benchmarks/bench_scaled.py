"""Scaled-format throughput against fmtlab's unscaled codec and the peers (a benchmark, not a test).

Quantizes 2^22 standard-normal float32 values, shaped (2^22 / 4096, 4096), to every scaled
preset (MXFP8/6/4, MXINT8, NVFP4 1-D and 2-D, block and per-tensor FP8) with nearest-even and
with exact stochastic rounding, and prints millions of elements per second for fmtlab's scaled
quantize (the C hot loop, csrc/scaled.c) beside its peers in the same run: fmtlab's unscaled
quantize to the preset's own element format in the same rounding mode (column /element: the
target is a scaled quantize at least half as fast; E4M3FN for the FP8 presets, E2M1 for MXFP4 and
NVFP4, int8 on 64 x for MXINT8), fmtlab's unscaled E4M3FN in the same mode (/e4m3fn),
torchao's to_mx and NVFP4 reference (eager, CPU) and gfloat's quantize_block.  Each scaled figure
and its peers are timed interleaved (peer, scaled, peer, scaled ...), best of --repeats runs
each, so that a change of machine load hits both.  gfloat rounds one value at a time in Python:
it is timed on the first 2^--gfloat-size-log2 values only (its rate does not depend on the
count).  --clock thread times the CPU time of the calling thread (steadier on a shared machine;
only meaningful with --threads 1), wall the elapsed time.  The load average is printed with the
table.  Usage:

    python benchmarks/bench_scaled.py [--size-log2 22] [--repeats 5] [--threads N] [--clock wall|thread]
                                      [--gfloat-size-log2 13]
"""
import argparse
import os
import time

import numpy as np

import fmtlab as fl
from fmtlab.integers import IntFormat
from fmtlab.scaled import preset_names
from _timing import best_time  # benchmarks/_timing.py


def best_rate(function, count, repeats):
    return count / best_time(function, repeats) / 1e6


def torchao_rows(x, repeats):
    """(name, rate) rows for torchao, or [] with a note when it is not installed."""
    try:
        import torch
        from torchao.prototype.mx_formats.config import ScaleCalculationMode
        from torchao.prototype.mx_formats.mx_tensor import to_mx
        from torchao.prototype.mx_formats.nvfp4_tensor import nvfp4_quantize, per_tensor_amax_to_scale
    except ImportError:
        print("torchao is not installed: its rows are left out")
        return []
    tensor = torch.from_numpy(x)
    count = x.size
    floor = ScaleCalculationMode.FLOOR
    return [
        ("torchao to_mx mxfp8_e4m3 (floor)",
         best_rate(lambda: to_mx(tensor, torch.float8_e4m3fn, 32, floor), count, repeats)),
        ("torchao to_mx mxfp4 (floor)",
         best_rate(lambda: to_mx(tensor, torch.float4_e2m1fn_x2, 32, floor), count, repeats)),
        ("torchao nvfp4_quantize (two-level)",
         best_rate(lambda: nvfp4_quantize(tensor, 16, per_tensor_amax_to_scale(tensor.abs().max())), count,
                   repeats)),
    ]


def gfloat_rows(x, size_log2):
    try:
        from gfloat.block import compute_scale_amax, quantize_block
        from gfloat.formats import format_info_mxfp4_e2m1, format_info_mxfp8_e4m3
    except ImportError:
        print("gfloat is not installed: its rows are left out")
        return []
    blocks = x.reshape(-1, 32)[: max(1, (1 << size_log2) // 32)].astype(np.float64)
    count = blocks.size
    rows = []
    for name, info in (("mxfp8_e4m3", format_info_mxfp8_e4m3), ("mxfp4", format_info_mxfp4_e2m1)):
        rows.append((f"gfloat quantize_block {name} ({count} values)",
                     best_rate(lambda: [quantize_block(info, block, compute_scale_amax) for block in blocks],
                               count, 1)))
    return rows


def interleaved(functions, count, repeats, clock):
    """Best rate (Melem/s) of each function, the functions run in turn repeats times."""
    best = [float("inf")] * len(functions)
    for _ in range(max(1, repeats)):
        for i, function in enumerate(functions):
            best[i] = min(best[i], best_time(function, 1, clock))
    return [count / b / 1e6 for b in best]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-log2", type=int, default=22)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for fmtlab and torch (default: each library's own default)")
    parser.add_argument("--clock", choices=("wall", "thread"), default="wall")
    parser.add_argument("--gfloat-size-log2", type=int, default=13)
    args = parser.parse_args()
    clock = time.thread_time if args.clock == "thread" else time.perf_counter
    count = 1 << args.size_log2
    columns = 4096 if count >= 4096 else count
    x = np.random.default_rng(0).standard_normal(count).astype(np.float32).reshape(-1, columns)
    fl.set_threads(args.threads)
    if args.threads:
        try:
            import torch
            torch.set_num_threads(args.threads)
        except ImportError:
            pass
    repeats = args.repeats
    print(f"{count} float32 values, shape {x.shape}; fmtlab threads: {fl.get_threads()}; clock: {args.clock}; "
          f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    header = (f"{'fmtlab scaled quantize':22s} {'mode':12s} {'Melem/s':>9s} {'element peer':>14s} {'Melem/s':>9s} "
              f"{'/element':>9s} {'e4m3fn':>9s} {'/e4m3fn':>8s}")
    print(header)
    print("-" * len(header))
    ratios = {}
    for mode in ("nearest_even", "stochastic"):
        keywords = {"seed": 1} if mode == "stochastic" else {}
        for name in preset_names():
            sf = fl.scaled_format(name)
            element, peer_input = sf.element, x
            if isinstance(element, IntFormat):
                # int8 with a 2^-6 step rounds x as int8 rounds 64 x (fmtlab.integers); the codec's
                # int8 is the integer peer (the stepped format takes a slower path unscaled)
                element, peer_input = fl.INT8, x * np.float32(2.0 ** -element.step_exponent)
            scaled_rate, element_rate, e4m3fn_rate = interleaved(
                [lambda: fl.quantize(x, sf, mode, **keywords), lambda: fl.quantize(peer_input, element, mode, **keywords),
                 lambda: fl.quantize(x, fl.E4M3FN, mode, **keywords)], count, repeats, clock)
            ratios[name, mode] = scaled_rate / element_rate
            print(f"{name:22s} {mode:12s} {scaled_rate:9.1f} {str(element):>14s} {element_rate:9.1f} "
                  f"{scaled_rate / element_rate:9.2f} {e4m3fn_rate:9.1f} {scaled_rate / e4m3fn_rate:8.2f}")
    others = torchao_rows(x, repeats) + gfloat_rows(x, args.gfloat_size_log2)
    if others:
        print()
        print(f"{'peer':46s} {'Melem/s':>9s}")
        for name, rate in others:
            shown = f"{rate:9.1f}" if rate >= 10 else f"{rate:9.3f}"
            print(f"{name:46s} {shown}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    met = [f"{name} {mode}" for (name, mode), r in ratios.items() if r >= 0.5]
    missed = [f"{name} {mode} ({r:.2f})" for (name, mode), r in ratios.items() if r < 0.5]
    print(f"target (a scaled quantize at least half as fast as the unscaled quantize to its element, same mode): "
          f"met by {len(met)} of {len(ratios)}" + (f"; not by {', '.join(missed)}" if missed else ""))


if __name__ == "__main__":
    main()
