"""Bit-accurate tensor-core matmul against numpy's float32 matmul (a benchmark, not a test).

For each size and MMA preset, times fl.matmul on inputs already in the model's formats
(standard normal values rounded to them) and numpy's float32 A @ B (BLAS) on the same
arrays, and prints both with the ratio.  A last row times the exact rational reference of
the tests (tests/mma_reference.py) on a small size, to show what the C kernel replaces.
Each figure is the best of --repeats runs, wall clock, with fmtlab's and BLAS's default
threads.  Usage:

    python benchmarks/bench_mma.py [--sizes 512,1024] [--repeats 3] [--threads N] [--other-size 256] [--cpu-time]

--cpu-time times the calling thread's CPU time with one thread for both (fmtlab and numpy's
BLAS, whose thread variables it sets to 1 before numpy loads): on a shared machine the least
disturbed measure, a per-core ratio.

The fast-path presets (--models) are timed at every size; the others (FP8 with FP16 output, the
AMD presets: --other-models) at --other-size only, and the Blackwell block-scaled presets
(--block-scaled-models, operands fl.encode'd with blocks along K, the encoding not timed; their
numpy peer multiplies the decoded float32 values) at each of --block-scaled-sizes.  Run it twice
for the two figures of docs/performance.md: with --cpu-time (one thread each) and with
--threads 2 (wall clock, numpy's BLAS with its default threads).
"""
import argparse
import os
import pathlib
import sys
import time

if "--cpu-time" in sys.argv:  # before numpy loads its BLAS: one thread, the calling one
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"

import numpy as np

import fmtlab as fl
from _timing import best_time as _best_time  # benchmarks/_timing.py

MODELS = ("h100-fp16-fp32", "h100-e4m3fn-fp32")
# Models off the fast path (the definition per output element): timed at --other-size only.
# Blackwell block-scaled presets (ScaledCodes operands; the C fast path): timed at each --block-scaled-sizes.
BLOCK_SCALED_MODELS = ("b200-mxfp8_e4m3-fp32", "b200-mxfp8_e5m2-fp32", "b200-mxfp6_e2m3-fp32", "b200-mxfp4-fp32",
                       "b200-nvfp4-fp32")
OTHER_MODELS = ("h100-e4m3fn-fp16", "mi100-fp16-fp32", "mi100-bf16-fp32", "mi250x-fp16-fp32", "mi300x-fp16-fp32",
                "mi300x-bf16-fp32", "mi300x-e4m3fnuz-fp32", "mi300x-e5m2fnuz-fp32")


def operands(model, size, seed=0):
    rng = np.random.default_rng(seed)
    a = fl.quantize(rng.standard_normal((size, size)).astype(np.float32), model.a_format)
    b = fl.quantize(rng.standard_normal((size, size)).astype(np.float32), model.b_format)
    return a, b


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="512,1024", help="comma-separated n for n x n x n products")
    parser.add_argument("--models", default=",".join(MODELS),
                        help="comma-separated preset names timed at every size ('' for none; the first one's "
                             "exact reference is the last row)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-size", type=int, default=24,
                        help="n of the exact reference's n x n x n product (it is slow)")
    parser.add_argument("--threads", type=int, default=None, help="threads for fmtlab (default: all)")
    parser.add_argument("--other-models", default=",".join(OTHER_MODELS),
                        help="comma-separated preset names timed at --other-size ('' for none)")
    parser.add_argument("--other-size", type=int, default=256)
    parser.add_argument("--block-scaled-models", default=",".join(BLOCK_SCALED_MODELS),
                        help="comma-separated block-scaled preset names ('' for none)")
    parser.add_argument("--block-scaled-sizes", default="256,512",
                        help="comma-separated n of the block-scaled presets' n x n x n products")
    parser.add_argument("--cpu-time", action="store_true",
                        help="one thread for fmtlab and numpy, timed by the calling thread's CPU time")
    args = parser.parse_args()
    if args.cpu_time:
        args.threads = 1
        clock = time.thread_time
    else:
        clock = time.perf_counter

    def best_time(function, repeats):
        return _best_time(function, repeats, clock=clock)

    fl.set_threads(args.threads)
    models = [fl.mma_model(name) for name in args.models.split(",") if name]
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"fmtlab {fl.__version__}, {os.cpu_count()} CPUs, fmtlab threads: "
          f"{args.threads or 'default'}; best of {args.repeats}, "
          f"{'CPU time of the calling thread (numpy: one BLAS thread)' if args.cpu_time else 'wall clock'}\n")
    rows = [("n x n x n", "model", "fmtlab ms", "numpy f32 ms", "ratio", "G products/s")]
    others = [fl.mma_model(name) for name in args.other_models.split(",") if name]
    runs = [(size, model) for size in sizes for model in models] + [(args.other_size, model) for model in others]
    for size, model in runs:
        a, b = operands(model, size)
        fl.matmul(a[:16], b, model=model)  # load the extension, warm the caches
        ours = best_time(lambda: fl.matmul(a, b, model=model), args.repeats)
        blas = best_time(lambda: a @ b, max(args.repeats, 5))
        rows.append((f"{size}", model.name, f"{ours * 1e3:.1f}", f"{blas * 1e3:.2f}",
                     f"{ours / blas:.1f}x", f"{size ** 3 / ours / 1e9:.2f}"))
    block_scaled = [(int(size), name) for size in args.block_scaled_sizes.split(",")
                    for name in filter(None, args.block_scaled_models.split(","))]
    for size, name in block_scaled:
        model = fl.mma_model(name)
        element = name.split("-")[1]
        rng = np.random.default_rng(0)
        qa = fl.encode(rng.standard_normal((size, size)).astype(np.float32), fl.format(element))
        qb = fl.encode(rng.standard_normal((size, size)).astype(np.float32), fl.format(element + ":axis=0"))
        a, b = fl.decode(qa).astype(np.float32), fl.decode(qb).astype(np.float32)
        ours = best_time(lambda: fl.matmul(qa, qb, model=model), args.repeats)
        blas = best_time(lambda: a @ b, max(args.repeats, 5))
        rows.append((f"{size}", model.name, f"{ours * 1e3:.1f}", f"{blas * 1e3:.2f}",
                     f"{ours / blas:.1f}x", f"{size ** 3 / ours / 1e9:.2f}"))
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
    try:
        import mma_reference
    except ImportError:
        mma_reference = None
    if mma_reference is not None and models:
        size = args.reference_size
        model = models[0]
        a, b = operands(model, size, seed=1)
        slow = best_time(lambda: mma_reference.matmul(a, b, None, model), 1)
        fast = best_time(lambda: fl.matmul(a, b, model=model), args.repeats)
        blas = best_time(lambda: a @ b, max(args.repeats, 5))
        assert np.array_equal(mma_reference.matmul(a, b, None, model).view(np.uint32),
                              fl.matmul(a, b, model=model).view(np.uint32))
        rows.append((f"{size}", f"{model.name} exact reference", f"{slow * 1e3:.0f}", f"{blas * 1e3:.3f}",
                     f"{slow / blas:.0f}x", f"{size ** 3 / slow / 1e9:.5f}"))
        rows.append((f"{size}", f"{model.name} fmtlab (same data)", f"{fast * 1e3:.2f}", f"{blas * 1e3:.3f}",
                     f"{fast / blas:.1f}x", f"{size ** 3 / fast / 1e9:.3f}"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(cell.rjust(width) if column >= 2 else cell.ljust(width)
                        for column, (cell, width) in enumerate(zip(row, widths))))
        if index == 0:
            print("  ".join("-" * width for width in widths))
    print("\nratio = fmtlab time / numpy float32 matmul time on the same arrays (lower is better)")
    print("load average (1, 5, 15 min) at the end: " + " ".join(f"{load:.2f}" for load in os.getloadavg()))


if __name__ == "__main__":
    main()
