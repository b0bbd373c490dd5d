"""Scaled-format throughput against fmtlab's unscaled codec and the peers (a benchmark, not a test).

Quantizes 2^22 standard-normal float32 values, shaped (2^22 / 4096, 4096), to MXFP8 (E4M3),
MXFP4 and NVFP4 and prints millions of elements per second for fmtlab's scaled quantize and
encode, fmtlab's unscaled e4m3fn quantize (the target: a scaled quantize at least half as fast),
torchao's to_mx and nvfp4_quantize (eager, CPU) and gfloat's quantize_block.  gfloat rounds
one value at a time in Python, so it is timed on the first 2^--gfloat-size-log2 values only
(its rate does not depend on the count).  Each figure is the best of --repeats runs.  Usage:

    python benchmarks/bench_scaled.py [--size-log2 22] [--repeats 5] [--threads N] [--gfloat-size-log2 13]
"""
import argparse

import numpy as np

import fmtlab as fl
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-log2", type=int, default=22)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for fmtlab and torch (default: each library's own default)")
    parser.add_argument("--gfloat-size-log2", type=int, default=13)
    args = parser.parse_args()
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
    rows = [("float32 copy (bandwidth ceiling)", best_rate(x.copy, count, repeats))]
    unscaled = best_rate(lambda: fl.quantize(x, fl.E4M3FN), count, repeats)
    rows.append(("fmtlab quantize e4m3fn (unscaled)", unscaled))
    rows.append(("fmtlab encode   e4m3fn (unscaled)", best_rate(lambda: fl.encode(x, fl.E4M3FN), count, repeats)))
    rows.append(("fmtlab quantize e4m3fn stochastic (unscaled)",
                 best_rate(lambda: fl.quantize(x, fl.E4M3FN, "stochastic", seed=1), count, repeats)))
    for name in ("mxfp8_e4m3", "mxfp4", "nvfp4", "fp8_block128"):
        sf = fl.scaled_format(name)
        rows.append((f"fmtlab quantize {name}", best_rate(lambda: fl.quantize(x, sf), count, repeats)))
        rows.append((f"fmtlab encode   {name}", best_rate(lambda: fl.encode(x, sf), count, repeats)))
    rows.append(("fmtlab quantize mxfp8_e4m3 stochastic",
                 best_rate(lambda: fl.quantize(x, "mxfp8_e4m3", "stochastic", seed=1), count, repeats)))
    rows += torchao_rows(x, repeats)
    rows += gfloat_rows(x, args.gfloat_size_log2)
    torchao_mx = dict(rows).get("torchao to_mx mxfp8_e4m3 (floor)")
    print(f"{count} float32 values, shape {x.shape}; fmtlab threads: {fl.get_threads()}")
    header = f"{'operation':46s} {'Melem/s':>9s} {'/unscaled':>10s} {'/torchao':>9s}"
    print(header)
    print("-" * len(header))
    for name, rate in rows:
        versus_torchao = (f"{rate / torchao_mx:9.2f}" if rate / torchao_mx >= 0.01 else f"{rate / torchao_mx:9.4f}") \
            if torchao_mx else f"{'n/a':>9s}"
        shown = f"{rate:9.1f}" if rate >= 10 else f"{rate:9.3f}"
        versus_unscaled = f"{rate / unscaled:10.2f}" if rate / unscaled >= 0.01 else f"{rate / unscaled:10.5f}"
        print(f"{name:46s} {shown} {versus_unscaled} {versus_torchao}")
    print("/unscaled: against fmtlab's unscaled e4m3fn quantize (the target is >= 0.5 for a scaled quantize); "
          "/torchao: against torchao's to_mx mxfp8_e4m3, same run")


if __name__ == "__main__":
    main()
