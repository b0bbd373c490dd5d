"""Precision-sweep throughput against a plain numpy/ml_dtypes peer (a benchmark, not a test).

Prints, for a standard-normal float32 tensor of 2^--size-log2 values:

* one sweep evaluation (fl.quantize + the ten metrics of docs/sweep.md) per format, against
  the peer a user would write by hand: ml_dtypes ``astype`` round trip + numpy SQNR only;
* the default ``fmtlab sweep`` job (524 evaluations, no plots) inline (--jobs 1) and on
  every available CPU (fmtlab's own worker processes, ``fmtlab._pool``; their start-up is
  included), and the speed-up.

Each figure is the best of --repeats runs.  Usage:

    python benchmarks/bench_sweep.py [--size-log2 18] [--repeats 3]
"""
import argparse

import ml_dtypes
import numpy as np

import fmtlab as fl
from fmtlab._inputs import synthetic
from fmtlab._pool import available_cpus
from fmtlab.metrics import PreparedInput, error_metrics
from fmtlab.sweep import sweep
from _timing import best_time  # benchmarks/_timing.py


def peer_sqnr(x, dtype):
    q = x.astype(dtype).astype(np.float64)
    x64 = x.astype(np.float64)
    return 10 * np.log10(np.square(x64).sum() / np.square(q - x64).sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-log2", type=int, default=18)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    count = 1 << args.size_log2
    x = synthetic("normal", count)
    prepared = PreparedInput(x)
    fl.set_threads(1)
    print(f"one evaluation of {count} values, one thread (ms; lower is better)")
    print(f"{'format':16s} {'fmtlab':>10s} {'peer':>10s} {'fmtlab/peer':>12s}   peer = ml_dtypes astype + numpy SQNR")
    for name, peer_dtype in (("e4m3fn", ml_dtypes.float8_e4m3fn), ("bf16", ml_dtypes.bfloat16),
                             ("cfloat8_1_4_3", None)):
        fmt = fl.format(name)
        ours = best_time(lambda: error_metrics(prepared, fl.quantize(x, fmt), fmt), args.repeats)
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
