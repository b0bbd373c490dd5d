"""Scaled-format throughput against fmtlab's unscaled codec and the peers (a benchmark, not a test).

Quantizes 2^22 standard-normal float32 values, shaped (2^22 / 4096, 4096), to every scaled
preset (MXFP8/6/4, NVFP4 1-D and 2-D, block and per-tensor FP8) and prints millions of elements
per second for fmtlab's scaled quantize and encode (the C hot loop, csrc/scaled.c), fmtlab's
unscaled e4m3fn quantize (the target: a scaled quantize at least half as fast), torchao's to_mx
and nvfp4_quantize (eager, CPU) and gfloat's quantize_block.  Every preset is also timed with
exact stochastic rounding and compared with the unscaled stochastic e4m3fn quantize (column /mode).  gfloat rounds one value at a time in
Python, so it is timed on the first 2^--gfloat-size-log2 values only (its rate does not depend
on the count).  Each figure is the best of --repeats runs.  Usage:

    python benchmarks/bench_scaled.py [--size-log2 22] [--repeats 5] [--threads N] [--gfloat-size-log2 13]
"""
import argparse

import numpy as np

import fmtlab as fl
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
    rows = [("float32 copy (bandwidth ceiling)", best_rate(x.copy, count, repeats), None)]
    unscaled = best_rate(lambda: fl.quantize(x, fl.E4M3FN), count, repeats)
    unscaled_stochastic = best_rate(lambda: fl.quantize(x, fl.E4M3FN, "stochastic", seed=1), count, repeats)
    rows.append(("fmtlab quantize e4m3fn (unscaled)", unscaled, unscaled))
    rows.append(("fmtlab encode   e4m3fn (unscaled)", best_rate(lambda: fl.encode(x, fl.E4M3FN), count, repeats),
                 unscaled))
    rows.append(("fmtlab quantize e4m3fn stochastic (unscaled)", unscaled_stochastic, unscaled_stochastic))
    # integers round on their float format and clamp (fmtlab.integers): mxint8's unscaled peer
    int8_scaled = x * np.float32(64.0)
    rows.append(("fmtlab quantize int8 (unscaled)", best_rate(lambda: fl.quantize(int8_scaled, fl.INT8), count,
                                                              repeats), unscaled))
    quantize_rates = {}
    for name in preset_names():
        sf = fl.scaled_format(name)
        quantize_rates[name] = best_rate(lambda: fl.quantize(x, sf), count, repeats)
        rows.append((f"fmtlab quantize {name}", quantize_rates[name], unscaled))
        rows.append((f"fmtlab encode   {name}", best_rate(lambda: fl.encode(x, sf), count, repeats), unscaled))
    stochastic_rates = {}
    for name in preset_names():
        sf = fl.scaled_format(name)
        stochastic_rates[name] = best_rate(lambda: fl.quantize(x, sf, "stochastic", seed=1), count, repeats)
        rows.append((f"fmtlab quantize {name} stochastic", stochastic_rates[name], unscaled_stochastic))
    rows += [(name, rate, None) for name, rate in torchao_rows(x, repeats) + gfloat_rows(x, args.gfloat_size_log2)]
    torchao_mx = {name: rate for name, rate, _ in rows}.get("torchao to_mx mxfp8_e4m3 (floor)")
    print(f"{count} float32 values, shape {x.shape}; fmtlab threads: {fl.get_threads()}")
    header = f"{'operation':46s} {'Melem/s':>9s} {'/unscaled':>10s} {'/mode':>6s} {'/torchao':>9s}"
    print(header)
    print("-" * len(header))

    def ratio(value, width):
        return f"{value:{width}.2f}" if value >= 0.01 else f"{value:{width}.5f}"

    for name, rate, same_mode in rows:
        versus_torchao = ratio(rate / torchao_mx, 9) if torchao_mx else f"{'n/a':>9s}"
        shown = f"{rate:9.1f}" if rate >= 10 else f"{rate:9.3f}"
        versus_mode = ratio(rate / same_mode, 6) if same_mode else f"{'':6s}"
        print(f"{name:46s} {shown} {ratio(rate / unscaled, 10)} {versus_mode} {versus_torchao}")
    print("/unscaled: against fmtlab's unscaled e4m3fn nearest-even quantize; /mode: against the unscaled quantize in "
          "the same rounding mode; /torchao: against torchao's to_mx mxfp8_e4m3, same run")
    met = [name for name, rate in quantize_rates.items() if rate >= 0.5 * unscaled]
    missed = [f"{name} ({rate / unscaled:.2f})" for name, rate in quantize_rates.items() if rate < 0.5 * unscaled]
    print(f"target (a scaled quantize at least half as fast as the unscaled one): met by {', '.join(met) or 'none'}"
          + (f"; not by {', '.join(missed)}" if missed else ""))
    met = [name for name, rate in stochastic_rates.items() if rate >= 0.5 * unscaled_stochastic]
    missed = [f"{name} ({rate / unscaled_stochastic:.2f})" for name, rate in stochastic_rates.items()
              if rate < 0.5 * unscaled_stochastic]
    print(f"stochastic (at least half as fast as the unscaled stochastic quantize): met by {', '.join(met) or 'none'}"
          + (f"; not by {', '.join(missed)}" if missed else ""))

if __name__ == "__main__":
    main()
