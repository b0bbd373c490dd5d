"""Time to build report.html, against a peer measured in the same run (a benchmark, not a test).

For a sweep folder of N distinct tensors (default 15 and 500: small tensors of varied scales, a
decoder's names, swept over bf16, fp16, e4m3fn, e5m2, cfloat8_1_4_3 and cfloat8_1_5_2 at every
bias), prints the best of --repeats builds (interleaved with the peer's) of report.html (``fmtlab.report.build_report``:
reading sweep.csv, the summary, the figures, one detail SVG per tensor, the page) inline
(jobs=1) and on the CPUs' workers (jobs=None), next to its peer, reading the same sweep.csv back
(``fmtlab._records.read_records_csv``, the first thing every consumer of a sweep does), their
ratios, and the page's size.  Also the cost of the binade histogram the sweep's scan now
gathers (``fmtlab._binades.log2_histogram``) per value, against the amax the scan always took
(``np.abs(x).max()``) over the same values.  Usage:

    python benchmarks/bench_report.py [--tensors 15,500] [--repeats 3]
"""
import argparse
import pathlib
import sys
import tempfile

import numpy as np

import fmtlab as fl
from fmtlab._binades import log2_histogram
from fmtlab._records import read_records_csv
from fmtlab.report import build_report, write_histograms

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _timing import best_time  # noqa: E402

FORMATS = ["bf16", "fp16", "e4m3fn", "e5m2", "cfloat8_1_4_3", "cfloat8_1_5_2"]
PARTS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.up_proj",
         "mlp.down_proj", "mlp.gate_proj", "input_layernorm", "post_attention_layernorm", "mlp.experts")


def sweep_folder(directory: pathlib.Path, count: int) -> None:
    """sweep.csv and histograms.json of ``count`` distinct 256-value tensors."""
    rng = np.random.default_rng(0)
    layers = -(-count // len(PARTS))
    names = [f"model.layers.{layer}.{part}.weight" for layer in range(layers) for part in PARTS][:count]
    tensors = {name: (10.0 ** rng.uniform(-3, 0.5) * rng.standard_normal((16, 16))).astype(np.float32)
               for name in names}
    result = fl.sweep(tensors, FORMATS, "all", jobs=1)
    result.to_csv(directory / "sweep.csv")
    write_histograms(directory / "histograms.json", result.histograms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tensors", default="15,500")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        for count in (int(part) for part in args.tensors.split(",")):
            directory = pathlib.Path(temporary) / f"sweep-{count}"
            directory.mkdir()
            sweep_folder(directory, count)
            best = {"inline": float("inf"), "pooled": float("inf"), "peer": float("inf")}
            for _ in range(args.repeats):  # interleaved: a change of load falls on all three alike
                for name, function in (("inline", lambda: build_report(directory, jobs=1)),
                                       ("pooled", lambda: build_report(directory, jobs=None)),
                                       ("peer", lambda: read_records_csv(directory / "sweep.csv"))):
                    best[name] = min(best[name], best_time(function, 1))
            inline, pooled, peer = best["inline"], best["pooled"], best["peer"]
            rows = sum(1 for _ in open(directory / "sweep.csv")) - 1
            size = (directory / "report.html").stat().st_size
            print(f"{count} tensors ({rows:,} rows): report.html {size / 2**20:.2f} MiB; built in {inline:.2f} s "
                  f"inline (ratio {inline / peer:.1f}), {pooled:.2f} s with jobs=None (ratio {pooled / peer:.1f}); "
                  f"peer (read sweep.csv) {peer:.2f} s")
    x = np.random.default_rng(1).standard_normal(1 << 22).astype(np.float32)
    histogram = best_time(lambda: log2_histogram(x), args.repeats)
    peer = best_time(lambda: np.abs(x).max(), args.repeats)
    print(f"binade histogram of 2^22 float32 values: {histogram * 1e3:.1f} ms; peer np.abs(x).max() "
          f"{peer * 1e3:.1f} ms; ratio {histogram / peer:.1f}")


if __name__ == "__main__":
    main()
