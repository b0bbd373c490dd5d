"""Scaled formats in a checkpoint-scale sweep: peak memory and time against the input's size, next
to an element-format peer measured the same way in the same run (a benchmark, not a test).

For each size (MB) a float32 .npy tensor of rows of 4096 values is written, and each of
``fl.sweep(path, [FORMAT], "auto", ["nearest_even"], jobs=1)`` (default chunk) runs in a fresh
subprocess, which reports its wall time and its peak RSS growth over its RSS after imports
(VmHWM after /proc/self/clear_refs, Linux).  The scaled formats (pieces of whole blocks,
fmtlab/_sweep_scaled.py) are printed with their ratio to the peer, CFloat8 1-4-3 at its rule bias
(an element format: the pieces of docs/sweep.md).  Usage:

    python benchmarks/bench_sweep_scaled.py [--sizes 16,64,256] [--repeats 2] [--dir /tmp]
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

PEER = "cfloat8_1_4_3"
FORMATS = ("mxfp8_e4m3", "nvfp4", "fp8_block128x128", "fp8_tensor", "cfloat8_1_4_3:bias=auto")
ROW = 4096

RUN = """
import json, sys, time
import fmtlab as fl

def status(field):
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) * 1024 for line in lines if line.startswith(field + ":"))

path, spec = sys.argv[1], sys.argv[2]
fl.sweep({"warm": __import__("numpy").ones((64, 64), "float32")}, [spec], "auto", jobs=1, on_note=lambda line: None)
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")
start = time.perf_counter()
fl.sweep(path, [spec], "auto", ["nearest_even"], jobs=1, on_note=lambda line: None)
print(json.dumps({"seconds": time.perf_counter() - start, "growth": status("VmHWM") - before}))
"""


def measure(path, spec, repeats):
    """(best seconds, largest peak RSS growth in bytes) over ``repeats`` fresh processes."""
    runs = []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, "-c", RUN, str(path), spec], capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return min(run["seconds"] for run in runs), max(run["growth"] for run in runs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,64,256", help="tensor sizes in MB (float32)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dir", default=None, help="where the tensors are written (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        print(f"{'MB':>5} {'format':<24} {'seconds':>8} {'x peer':>7} {'peak MB':>8} {'x peer':>7} {'/ input':>8}")
        for megabytes in (int(text) for text in args.sizes.split(",")):
            rows = max(1, (megabytes << 20) // (4 * ROW))
            path = pathlib.Path(directory) / f"w{megabytes}.npy"
            np.save(path, np.random.default_rng(megabytes).standard_normal((rows, ROW)).astype(np.float32))
            size = path.stat().st_size
            peer_seconds, peer_growth = measure(path, PEER, args.repeats)
            print(f"{megabytes:>5} {PEER + ' (peer)':<24} {peer_seconds:>8.2f} {1:>7.2f} {peer_growth / 2**20:>8.1f} "
                  f"{1:>7.2f} {peer_growth / size:>8.3f}")
            for spec in FORMATS:
                seconds, growth = measure(path, spec, args.repeats)
                print(f"{megabytes:>5} {spec:<24} {seconds:>8.2f} {seconds / peer_seconds:>7.2f} "
                      f"{growth / 2**20:>8.1f} {growth / max(peer_growth, 1):>7.2f} {growth / size:>8.3f}", flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
