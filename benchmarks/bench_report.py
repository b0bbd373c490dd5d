"""Time to build report.html, against a peer measured in the same run (a benchmark, not a test).

For a sweep folder of N tensors (default 15 and 500: small tensors swept over bf16, fp16, e4m3fn,
e5m2, cfloat8_1_4_3 and cfloat8_1_5_2 at every bias, records repeated under N names as in
tests/test_report_browser.py), prints the best of --repeats builds of report.html
(``fmtlab.report.build_report``: reading sweep.csv, the summary, the figures, the page) next
to its peer, reading the same sweep.csv back (``fmtlab._records.read_records_csv``, the first
thing every consumer of a sweep does), their ratio, and the page's size.  Also the time of the
histogram pass per value (``tensor_histograms``) against a plain ``np.abs(x).max()`` over the
same values (one read of the tensor).  Usage:

    python benchmarks/bench_report.py [--tensors 15,500] [--repeats 3]
"""
import argparse
import dataclasses
import pathlib
import sys
import tempfile

import numpy as np

import fmtlab as fl
from fmtlab._inputs import tensor_sources
from fmtlab._records import read_records_csv
from fmtlab.report import build_report, tensor_histograms, write_histograms

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _timing import best_time  # noqa: E402

FORMATS = ["bf16", "fp16", "e4m3fn", "e5m2", "cfloat8_1_4_3", "cfloat8_1_5_2"]
PARTS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.up_proj",
         "mlp.down_proj", "mlp.gate_proj", "input_layernorm", "post_attention_layernorm", "mlp.experts")


def sweep_folder(directory: pathlib.Path, count: int) -> None:
    rng = np.random.default_rng(0)
    base = {part: (0.01 * (index + 1) * rng.standard_normal(256)).astype(np.float32)
            for index, part in enumerate(PARTS)}
    swept = fl.sweep({f"model.layers.0.{part}.weight": values for part, values in base.items()}, FORMATS, "all",
                     jobs=1)
    layers = -(-count // len(PARTS))
    names = [f"model.layers.{layer}.{part}.weight" for layer in range(layers) for part in PARTS][:count]
    wanted = set(names)
    records = [dataclasses.replace(record, tensor=record.tensor.replace("layers.0.", f"layers.{layer}."))
               for layer in range(layers) for record in swept]
    records = [record for record in records if record.tensor in wanted]
    type(swept)(sorted(records, key=lambda r: (r.tensor, r.format, r.rounding, r.bias))).to_csv(directory / "sweep.csv")
    tensors = {name: base[name.split(".", 3)[3].rsplit(".", 1)[0]] for name in names}
    write_histograms(directory / "histograms.json", tensor_histograms(tensor_sources(tensors), 1 << 20))


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
            build = best_time(lambda: build_report(directory), args.repeats)
            peer = best_time(lambda: read_records_csv(directory / "sweep.csv"), args.repeats)
            rows = sum(1 for _ in open(directory / "sweep.csv")) - 1
            size = (directory / "report.html").stat().st_size
            print(f"{count} tensors ({rows:,} rows): report.html {size / 2**20:.2f} MiB built in {build:.2f} s; "
                  f"peer (read sweep.csv) {peer:.2f} s; ratio {build / peer:.2f}")
    x = np.random.default_rng(1).standard_normal(1 << 22).astype(np.float32)
    sources = tensor_sources({"x": x})
    histogram = best_time(lambda: tensor_histograms(sources, 1 << 22), args.repeats)
    peer = best_time(lambda: np.abs(x).max(), args.repeats)
    print(f"histogram pass over 2^22 float32 values: {histogram * 1e3:.1f} ms; peer np.abs(x).max() "
          f"{peer * 1e3:.1f} ms; ratio {histogram / peer:.1f}")


if __name__ == "__main__":
    main()
