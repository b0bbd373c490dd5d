"""Codec throughput against its peers, measured in the same run (a benchmark, not a test).

Rounds 2^24 float32 values (standard normal) and prints millions of elements per
second for fmtlab's encode and quantize, ml_dtypes' astype, torch's cast to
float8_e4m3fn and a plain float32 copy (the memory-bandwidth ceiling), with ratios.
Each figure is the best of --repeats runs.  Usage:

    python benchmarks/bench_codec.py [--size-log2 24] [--repeats 5] [--threads N]
"""
import argparse
import ml_dtypes
import numpy as np

import fmtlab as fl
from _timing import best_time  # benchmarks/_timing.py


def best_rate(function, count, repeats):
    return count / best_time(function, repeats) / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-log2", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for fmtlab and torch (default: each library's own default)")
    args = parser.parse_args()
    count = 1 << args.size_log2
    x = np.random.default_rng(0).standard_normal(count).astype(np.float32)
    fl.set_threads(args.threads)
    rows = []
    rows.append(("float32 copy (bandwidth ceiling)", best_rate(x.copy, count, args.repeats)))
    ml_rate = best_rate(lambda: x.astype(ml_dtypes.float8_e4m3fn), count, max(1, args.repeats // 2))
    rows.append(("ml_dtypes astype float8_e4m3fn", ml_rate))
    rows.append(("ml_dtypes astype bfloat16", best_rate(lambda: x.astype(ml_dtypes.bfloat16), count,
                                                        max(1, args.repeats // 2))))
    torch_rate = None
    try:
        import torch
        if args.threads:
            torch.set_num_threads(args.threads)
        tensor = torch.from_numpy(x)
        torch_rate = best_rate(lambda: tensor.to(torch.float8_e4m3fn), count, args.repeats)
        rows.append(("torch .to(float8_e4m3fn)", torch_rate))
        rows.append(("torch .to(bfloat16)", best_rate(lambda: tensor.to(torch.bfloat16), count, args.repeats)))
    except ImportError:
        print("torch is not installed: its rows are left out")
    for name in ("e4m3fn", "cfloat8_1_4_3", "bf16"):
        for rounding in ("nearest_even", "stochastic"):
            rows.append((f"fmtlab encode   {name} {rounding}",
                         best_rate(lambda: fl.encode(x, name, rounding, seed=1), count, args.repeats)))
            rows.append((f"fmtlab quantize {name} {rounding}",
                         best_rate(lambda: fl.quantize(x, name, rounding, seed=1), count, args.repeats)))
    print(f"{count} float32 values; fmtlab threads: {fl.codec.lib.fl_max_threads()}")
    header = f"{'operation':42s} {'Melem/s':>9s} {'/ml_dtypes':>10s} {'/torch':>8s}"
    print(header)
    print("-" * len(header))
    for name, rate in rows:
        torch_ratio = f"{rate / torch_rate:8.2f}" if torch_rate else f"{'n/a':>8s}"
        print(f"{name:42s} {rate:9.0f} {rate / ml_rate:10.1f} {torch_ratio}")
    print("ratios compare with ml_dtypes' and torch's float8_e4m3fn cast from the same run")


if __name__ == "__main__":
    main()
