"""The report pages without a browser: their numbers against independent references, their
data files, the command line.  (tests/test_report_browser.py opens them in Chromium.)

* log2|x| histograms: the counts of floor(log2|x|) agree with an exact rational count
  (Hypothesis: float32 and float64, subnormals, zeros, Inf, NaN), and do not depend on the chunk;
* the heatmap cell of (tensor, format) shows the SQNR of an exact rational reference, ▲ exactly
  when a value overflows, ▼ exactly when at least 1% underflow;
* the overview names the winner by the value-weighted mean SQNR (a case where the unweighted
  mean would name the other format);
* layer depth and order; provenance and the command line; the page holds no URL;
* drift: diverged runs, skipped steps, cancelled updates and saturation are said in words;
  sweep-mma: the promotion variants' error ratio;
* ``fmtlab report DIR`` rebuilds the very page the run wrote, and names DIR when it cannot;
  ``--no-report`` writes none of the report's files.
"""
import fractions
import hashlib
import json
import math
import re

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fmtlab as fl
from chromium import parse
from fmtlab.cli import main
from fmtlab._inputs import tensor_sources
from fmtlab.report import PROVENANCE_FILE, build_report, collect_provenance, log2_histogram, write_histograms
from fmtlab.report.page import json_script, svg_markup
from fmtlab.report.provenance import command_line
from fmtlab.report.sweep_page import UNDERFLOW_MARK, layer_depth, sweep_context, sweep_page, tensor_order

URL_SCHEME = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://")


# ---- histograms ---------------------------------------------------------------------------------------
def _exact_binade(value: float) -> int:
    """floor(log2|value|) by exact rational comparison."""
    magnitude = abs(fractions.Fraction(value))
    exponent = magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
    while fractions.Fraction(2) ** exponent > magnitude:
        exponent -= 1
    while fractions.Fraction(2) ** (exponent + 1) <= magnitude:
        exponent += 1
    return exponent


def _reference_histogram(values) -> dict:
    counts = {}
    for value in values:
        if value != 0 and math.isfinite(value):
            counts[_exact_binade(float(value))] = counts.get(_exact_binade(float(value)), 0) + 1
    return counts


def _as_dict(histogram) -> dict:
    return {histogram["low"] + index: count for index, count in enumerate(histogram["counts"]) if count}


@given(st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), max_size=200))
def test_float32_histogram_is_the_exact_binade_count(values):
    array = np.array(values, dtype=np.float32)
    histogram = log2_histogram(array)
    assert _as_dict(histogram) == _reference_histogram(array.tolist())
    assert histogram["zeros"] == sum(1 for value in values if value == 0)
    assert histogram["nonfinite"] == sum(1 for value in values if not math.isfinite(value))
    assert histogram["n"] == len(values)
    if histogram["counts"]:
        assert histogram["counts"][0] > 0 and histogram["counts"][-1] > 0  # trimmed to the used binades


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=100))
def test_float64_histogram_is_the_exact_binade_count(values):
    array = np.array(values, dtype=np.float64)
    assert _as_dict(log2_histogram(array)) == _reference_histogram(values)


def test_subnormals_and_powers_of_two_fall_in_their_binades():
    values = np.array([2.0 ** -149, 2.0 ** -126, 1.0, np.nextafter(np.float32(2), np.float32(0)), 2.0, -3.0, 0.0],
                      dtype=np.float32)
    assert _as_dict(log2_histogram(values)) == {-149: 1, -126: 1, 0: 2, 1: 2}


def _scan_histograms(tensors, tmp_path, **options) -> dict:
    """The histograms a sweep gathers in its scan pass, of ``tensors`` saved as a file (so that
    the scan reads them a chunk at a time, on the workers when there are any)."""
    from safetensors.numpy import save_file

    path = tmp_path / "tensors.safetensors"
    if not path.exists():
        save_file(tensors, str(path))
    return fl.sweep(path, ["bf16"], **options).histograms


@given(st.integers(1, 40), st.integers(1, 7), st.integers(0, 2 ** 32 - 1))
def test_the_sweeps_scan_histograms_do_not_depend_on_the_chunk(chunk, columns, seed):
    import tempfile
    import pathlib

    rng = np.random.default_rng(seed)
    array = (rng.standard_normal((23, columns)) * np.exp(rng.normal(0, 8, (23, columns)))).astype(np.float32)
    array[0, 0] = 0
    array[1, 0] = np.float32(2.0 ** -140)  # a subnormal
    array[2, 0] = np.inf
    with tempfile.TemporaryDirectory() as directory:
        found = _scan_histograms({"t": array}, pathlib.Path(directory), chunk=chunk, jobs=1)
    assert found == {"t": log2_histogram(array)}
    assert _as_dict(found["t"]) == _reference_histogram(array.reshape(-1).tolist())
    assert found["t"]["zeros"] == 1 and found["t"]["nonfinite"] == 1 and found["t"]["n"] == array.size


def test_the_sweeps_scan_histograms_do_not_depend_on_the_jobs_or_the_executor(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(7)
    tensors = {f"t{index}": (rng.standard_normal((50, 9)) * 10.0 ** index).astype(np.float32) for index in range(4)}
    tensors["zeros"] = np.zeros((3, 5), np.float32)
    expected = {name: log2_histogram(x) for name, x in tensors.items()}
    assert expected["zeros"] == {"low": None, "counts": [], "zeros": 15, "nonfinite": 0, "n": 15}
    assert _scan_histograms(tensors, tmp_path, chunk=100, jobs=1) == expected
    assert _scan_histograms(tensors, tmp_path, chunk=37, jobs=2) == expected
    with ThreadPoolExecutor(3) as executor:
        assert _scan_histograms(tensors, tmp_path, chunk=11, executor=executor) == expected
    # in-memory tensors are scanned whole, here: the same histograms
    assert fl.sweep(tensors, ["bf16"], jobs=1).histograms == expected


# ---- the sweep page's numbers ----------------------------------------------------------------------
def _exact_sqnr(x, q) -> float:
    """10 log10 of signal / error energy over V = {i : x_i and q_i finite} (docs/sweep.md)."""
    kept = [(float(a), float(b)) for a, b in zip(x, q) if math.isfinite(a) and math.isfinite(b)]
    signal = sum(fractions.Fraction(a) ** 2 for a, _b in kept)
    noise = sum((fractions.Fraction(a) - fractions.Fraction(b)) ** 2 for a, b in kept)
    return 10 * math.log10(signal / noise)


def _cells(markup):
    dom = parse(markup)
    columns = {header.attributes["data-c"]: header.attributes["data-format"] for header in
               dom.find_all("th", class_="column")}
    found = {}
    for row in dom.find_all("tr", class_="tensor-row"):
        for cell in row.find_all("td", class_="cell"):
            marks = "".join(mark.all_text() for mark in cell.find_all("b"))
            value = cell.children[0].text
            found[(row.attributes["data-tensor"], columns[cell.attributes["data-c"]])] = (value, marks)
    return found


def test_heatmap_cells_show_the_exact_sqnr_and_mark_overflow_and_underflow(tmp_path):
    rng = np.random.default_rng(1)
    plain = rng.standard_normal(300).astype(np.float32)
    overflowing = plain.copy()
    overflowing[0] = 1000.0  # above e4m3fn's max 448: NaN (e4m3fn has no Inf), outside the SQNR's V
    underflowing = plain.copy()
    underflowing[:3] = 1e-6  # 3 of 300 = 1% are below e4m3fn's smallest subnormal 2^-9 / 2: they round to 0
    just_under = plain.copy()
    just_under[:2] = 1e-6   # 2 of 300 < 1%: no mark
    tensors = {"plain": plain, "overflowing": overflowing, "underflowing": underflowing, "just_under": just_under}
    result = fl.sweep(tensors, ["e4m3fn", "bf16"], jobs=1)
    result.to_csv(tmp_path / "sweep.csv")
    cells = _cells(sweep_page(tmp_path))
    assert len(cells) == 4 * 2
    for name, values in tensors.items():
        exact = _exact_sqnr(values, fl.quantize(values.astype(np.float64), "e4m3fn"))
        assert cells[(name, "e4m3fn")][0] == f"{exact:.1f}", name
    assert UNDERFLOW_MARK == 0.01
    assert cells[("overflowing", "e4m3fn")][1] == "▲"
    assert cells[("underflowing", "e4m3fn")][1] == "▼"
    assert cells[("just_under", "e4m3fn")][1] == "" and cells[("plain", "e4m3fn")][1] == ""
    assert cells[("overflowing", "bf16")][1] == ""  # bf16 holds 1000 and 1e-6
    # The overview's sentences on lost values: the overflow; no underflow sentence, since no
    # format of e4m3fn's width was swept beside it (bf16 is 16-bit).
    assert sweep_context(result)["overview"]["standouts"] == ["overflowing: e4m3fn overflows 0.333% of its values"]
    tiny = plain.copy()
    tiny[:3] = 3e-5  # below half e4m3fn's smallest subnormal (2^-10), e5m2 keeps it (2^-15)
    with_peer = fl.sweep({"underflowing": tiny}, ["e4m3fn", "e5m2"], jobs=1)
    e5m2 = next(row for row in with_peer.summary() if row["format"] == "e5m2")
    assert e5m2["underflow_frac"] == 0
    assert sweep_context(with_peer)["overview"]["standouts"] == [
        f"underflowing: e4m3fn loses 1% of its values to underflow (rounded to 0), e5m2 0% "
        f"({_exact_sqnr(tiny, fl.quantize(tiny.astype(np.float64), 'e4m3fn')):.2f} dB against "
        f"{_exact_sqnr(tiny, fl.quantize(tiny.astype(np.float64), 'e5m2')):.2f} dB)"]


def test_the_overview_winner_is_weighted_by_values():
    """e4m3fn wins on a large normal tensor, e5m2 on a small one of tiny values (below e4m3fn's
    smallest subnormal, inside e5m2's range): the unweighted mean would crown e5m2, the
    value-weighted one crowns e4m3fn."""
    rng = np.random.default_rng(2)
    large = rng.standard_normal(20000).astype(np.float32)
    small = (rng.standard_normal(50) * 3e-4).astype(np.float32)
    result = fl.sweep({"large": large, "small": small}, ["e4m3fn", "e5m2"], jobs=1)
    rows = {(row["tensor"], row["format"]): row["best_sqnr_db"] for row in result.summary()}
    unweighted = {spec: (rows[("large", spec)] + rows[("small", spec)]) / 2 for spec in ("e4m3fn", "e5m2")}
    assert unweighted["e5m2"] > unweighted["e4m3fn"]
    weighted = {spec: math.fsum([rows[("large", spec)] * 20000, rows[("small", spec)] * 50]) / 20050
                for spec in ("e4m3fn", "e5m2")}
    assert weighted["e4m3fn"] > weighted["e5m2"]
    sentence = sweep_context(result)["overview"]["sentence"]
    assert (f"among 8-bit formats, e4m3fn ({weighted['e4m3fn']:.2f} dB); next: e5m2 ({weighted['e5m2']:.2f} dB)"
            in sentence), sentence


def test_layer_depth_and_the_order_of_tensors():
    assert layer_depth("model.layers.12.mlp.up_proj.weight") == 12
    assert layer_depth("transformer/h/3/attn/c_attn/w") == 3
    assert layer_depth("conv4.weight") is None
    names = ["model.layers.10.mlp.up_proj.weight", "model.layers.2.mlp.up_proj.weight",
             "model.layers.2.self_attn.q_proj.weight", "model.norm.weight", "lm_head.weight", "conv1.weight"]
    assert tensor_order(names) == ["model.layers.2.self_attn.q_proj.weight", "model.layers.2.mlp.up_proj.weight",
                                   "model.layers.10.mlp.up_proj.weight", "lm_head.weight", "model.norm.weight",
                                   "conv1.weight"]


def page_details(markup) -> list:
    """The per-tensor details of a sweep page, inflated here (base64 of gzip, as the page's
    script inflates them with DecompressionStream), each parsed: [Element]."""
    import base64
    import gzip

    packed = json.loads(re.search(r'<script type="application/json" id="sweep-details">(.*?)</script>', markup,
                                  re.S).group(1))
    return [parse(gzip.decompress(base64.b64decode(text)).decode("utf-8")) for text in packed]


def detail_bars(detail) -> dict:
    """binade -> count of the histogram bars of a detail SVG (their groups are binade_E_COUNT)."""
    found = {}
    for group in detail.find_all("g"):
        name = group.attributes.get("id", "")
        if name.startswith("binade_"):
            binade, count = name[len("binade_"):].rsplit("_", 1)
            assert int(binade) not in found
            found[int(binade)] = int(count)
    return found


def test_scaled_and_integer_formats_get_cells_without_a_range(tmp_path):
    from fmtlab.report.sweep_page import _format_range

    x = np.random.default_rng(3).standard_normal((4, 64)).astype(np.float32)
    result = fl.sweep({"x": x}, ["mxfp8_e4m3", "int8", "cfloat8_1_4_3"], "all", jobs=1)
    result.to_csv(tmp_path / "sweep.csv")
    write_histograms(tmp_path / "histograms.json", result.histograms)
    markup = sweep_page(tmp_path)
    assert set(_cells(markup)) == {("x", "mxfp8_e4m3"), ("x", "int8"), ("x", "cfloat8_1_4_3")}
    (detail,) = page_details(markup)
    best = next(row["best_bias"] for row in result.summary() if row["format"] == "cfloat8_1_4_3")
    fmt = fl.format("cfloat8_1_4_3", bias=best)
    assert _format_range("cfloat8_1_4_3", best) == [round(math.log2(fmt.min_subnormal), 4),
                                                    round(math.log2(fmt.min_normal), 4), round(math.log2(fmt.max), 4)]
    assert _format_range("int8", 0) is None and _format_range("mxfp8_e4m3", 7) is None
    # one range row, cfloat8_1_4_3's at its best bias; its normal band drawn; none for int8 or MX
    columns = [header.attributes["data-format"] for header in parse(markup).find_all("th", class_="column")]
    bands = {group.attributes["id"] for group in detail.find_all("g") if group.attributes.get("id", "").startswith("range_")}
    assert f"range_{columns.index('cfloat8_1_4_3')}_normal" in bands
    assert all(band.startswith(f"range_{columns.index('cfloat8_1_4_3')}_") for band in bands)
    ranges = next(detail.find_all("g", id="detail-ranges"))
    labels = [text.all_text().strip("←→ ") for text in ranges.find_all("text")]
    assert labels == [f"cfloat8_1_4_3 (bias {best})"], labels
    # the bars: the exact binade counts of x
    assert detail_bars(detail) == _reference_histogram(x.reshape(-1).tolist())


# ---- what a page may contain ---------------------------------------------------------------------
def test_svg_and_json_are_safe_inline():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure()
    FigureCanvasAgg(figure)
    figure.add_subplot().plot([1, 2], [3, 4], label="a")
    markup = str(svg_markup(figure))
    assert markup.startswith("<svg") and "xmlns" not in markup and not URL_SCHEME.search(markup)
    assert "<metadata" not in markup and "DOCTYPE" not in markup
    assert str(json_script({"name": "</script><b>&"})) == '{"name":"\\u003c/script\\u003e\\u003cb\\u003e\\u0026"}'
    assert json.loads(str(json_script({"name": "</script>"}))) == {"name": "</script>"}


def test_provenance_and_command_line():
    assert command_line(["sweep", "--include", "*.q_proj.*", "--out", "a b"]) == \
        "fmtlab sweep --include '*.q_proj.*' --out 'a b'"
    provenance = collect_provenance(["sweep"], [{"path": "/x", "bytes": 3, "sha256": "ab"}])
    assert provenance["fmtlab_version"] == fl.__version__ and provenance["inputs"][0]["sha256"] == "ab"
    assert provenance["date"].endswith(" UTC") and provenance["machine"]["cpus"] >= 1


# ---- the command line ------------------------------------------------------------------------------
def test_sweep_writes_the_report_and_fmtlab_report_rebuilds_it(tmp_path, capsys):
    source = tmp_path / "model.npz"
    np.savez(source, **{"layers.0.weight": np.random.default_rng(4).standard_normal((8, 16)).astype(np.float32)})
    out = tmp_path / "run"
    assert main(["sweep", "--input", str(source), "--formats", "bf16,cfloat8_1_4_3", "--bias", "8-12",
                 "--rounding", "nearest_even", "--jobs", "1", "--out", str(out), "--quiet", "--no-plots"]) == 0
    assert f"{out / 'report.html'}" in capsys.readouterr().out
    written = (out / "report.html").read_bytes()
    provenance = json.loads((out / PROVENANCE_FILE).read_text())
    assert provenance["command"] == (f"fmtlab sweep --input {source} --formats bf16,cfloat8_1_4_3 --bias 8-12 "
                                     f"--rounding nearest_even --jobs 1 --out {out} --quiet --no-plots")
    assert provenance["inputs"] == [{"path": str(source.resolve()), "bytes": source.stat().st_size,
                                     "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}]
    assert not URL_SCHEME.search(written.decode())
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.html").read_bytes() == written
    assert "wrote" in capsys.readouterr().out


def test_no_report_writes_none_of_its_files(tmp_path):
    out = tmp_path / "run"
    assert main(["sweep", "--dist", "normal", "--size", "256", "--formats", "bf16", "--jobs", "1", "--out", str(out),
                 "--quiet", "--no-plots", "--no-report"]) == 0
    assert (out / "sweep.csv").exists()
    assert not any((out / name).exists() for name in ("report.html", "histograms.json", PROVENANCE_FILE))


def test_fmtlab_report_names_a_folder_it_cannot_use(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    error = capsys.readouterr().err
    assert "fmtlab report: error: DIR" in error and "missing" in error and "is not a directory" in error
    assert main(["report", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "holds no run to report on" in error and "sweep.csv (sweep)" in error and "drift.csv (drift)" in error
    assert "Traceback" not in error


def test_a_report_built_without_histograms_says_so(tmp_path):
    fl.sweep({"a": np.ones(4, np.float32) * 3, "b": np.arange(1, 9, dtype=np.float32)}, ["bf16"],
             jobs=1).to_csv(tmp_path / "sweep.csv")
    write_histograms(tmp_path / "histograms.json", {"a": log2_histogram(np.ones(4) * 3)})
    markup = build_report(tmp_path).read_text()
    assert "1 of 2 tensors have no log2|x| histogram" in markup and "b" in markup


# ---- drift and sweep-mma ---------------------------------------------------------------------------
def test_drift_findings_say_what_stands_out(tmp_path):
    from fmtlab.drift.runner import RunResult
    from fmtlab.drift.summary import summarize, write_outputs
    from fmtlab.report.drift_page import drift_page

    def rows(config, seed, losses, cancelled=0.0, skipped=(), saturated=0.0):
        found = [{"config": config, "seed": seed, "step": 0, "eval_loss": losses[0]}]
        for step, loss in enumerate(losses[1:], start=1):
            found.append({"config": config, "seed": seed, "step": step, "loss": loss, "eval_loss": loss, "grad_underflow": 0.0, "saturated": saturated,
                          "update_cancelled": cancelled, "loss_scale": 1.0, "nonfinite": int(step in skipped),
                          "skipped": int(step in skipped)})
        return found

    results = [RunResult("fp32", 0, rows("fp32", 0, [2.0, 1.5, 1.0]), False, None, 1.0, 0.1),
               RunResult("fp32", 1, rows("fp32", 1, [2.0, 1.6, 1.25]), False, None, 1.25, 0.1),
               RunResult("bf16_pure_sr", 0, rows("bf16_pure_sr", 0, [2.0, 1.7, 1.25], cancelled=0.5), False, None, 1.25, 0.1),
               RunResult("bf16_pure_sr", 1, rows("bf16_pure_sr", 1, [2.0, 1.8, 1.5], cancelled=0.5), False, None, 1.5, 0.1),
               RunResult("fp16_mixed_dynscale", 0, rows("fp16_mixed_dynscale", 0, [2.0, 1.5, 1.0], skipped=(1, 2)), False, None, 1.0, 0.1),
               RunResult("fp16_mixed_dynscale", 1, rows("fp16_mixed_dynscale", 1, [2.0, 1.6], saturated=0.25), True, 1, math.nan, 0.1)]
    configs = ["fp32", "bf16_pure_sr", "fp16_mixed_dynscale"]
    write_outputs(tmp_path, results, summarize(results, configs))
    text = parse(drift_page(tmp_path))
    findings = [item.all_text() for item in next(text.find_all("ul", class_="stands-out")).find_all("li")]
    assert findings[0] == ("fp16_mixed_dynscale diverged (1 of 2 seeds): seed 1 at step 1; left out of its loss "
                           "statistics.")
    assert ("fp16_mixed_dynscale skipped 2 steps (non-finite gradients under loss scaling, the loss scale then "
            "halved) in 1 of 2 runs.") in findings
    assert ("bf16_pure_sr: 50.0% of the weight updates were cancelled (the stored weight did not change although "
            "its gradient was nonzero), mean over steps.") in findings
    assert any(line.startswith("fp16_mixed_dynscale: ") and "saturated" in line for line in findings)
    # bf16_pure_sr drifts by mean(1.25, 1.5) - mean(1.0, 1.25) = +0.25, paired spread std(0.25, 0.25) = 0
    # (binary fractions: exact).
    assert findings[-1] == ("The largest drift is bf16_pure_sr's: its final loss is +0.25 from FP32's "
                           "(paired spread over seeds 0).")


def test_mma_findings_give_the_promotion_ratio(tmp_path):
    from fmtlab.report.mma_page import mma_page, model_group
    from fmtlab.sweep_mma import MMARecord, MMASweepResult

    def record(model, k, error):
        return MMARecord(model, "normal", k, 16, 16, 1.0, 0, -20 * math.log10(error), error, error, 0.0, 0.0)

    MMASweepResult([record("h100:e4m3fn", 16, 1e-4), record("h100:e4m3fn", 4096, 1e-3),
                    record("h100:e4m3fn:promote=128", 16, 1e-4), record("h100:e4m3fn:promote=128", 4096, 1e-4),
                    record("fp32_fma", 16, 1e-7), record("fp32_fma", 4096, 1e-6)]).to_csv(tmp_path / "sweep_mma.csv")
    assert model_group("h100:e4m3fn:promote=128") == "h100:e4m3fn"
    dom = parse(mma_page(tmp_path))
    findings = [item.all_text() for item in next(dom.find_all("ul", class_="stands-out")).find_all("li")]
    assert findings == ["At K = 4,096 on normal data, h100:e4m3fn:promote=128 has 10× lower relative error than "
                        "h100:e4m3fn (0.0001 against 0.001)."]
    titles = [text.all_text() for text in dom.find_all("text") if "·" in text.all_text()]
    assert titles == ["h100:e4m3fn · normal"]  # one panel: the variants side by side, fp32_fma a reference


def test_page_requires_a_sweep_with_results(tmp_path):
    (tmp_path / "sweep.csv").write_text(",".join(f.name for f in __import__("dataclasses").fields(
        __import__("fmtlab._records", fromlist=["SweepRecord"]).SweepRecord)) + "\n")
    with pytest.raises(ValueError, match="holds no results"):
        build_report(tmp_path)


def test_a_stopped_sweep_gets_its_page_from_fmtlab_report(tmp_path):
    """What a stopped run leaves (its finished rows, provenance.json, no histograms.json) is
    enough for ``fmtlab report DIR``."""
    from fmtlab.report import start_run

    result = fl.sweep({"a": np.linspace(-2, 2, 64, dtype=np.float32), "b": np.ones(8, np.float32)}, ["e4m3fn"],
                      jobs=1)
    type(result)([record for record in result if record.tensor == "a"]).to_csv(tmp_path / "sweep.csv")
    start_run(tmp_path, ["sweep", "--formats", "e4m3fn"])
    assert main(["report", str(tmp_path)]) == 0
    markup = (tmp_path / "report.html").read_text()
    assert set(_cells(markup)) == {("a", "e4m3fn")}
    assert "fmtlab sweep --formats e4m3fn" in markup and "1 of 1 tensors have no log2|x| histogram" in markup


def test_tensor_names_cannot_inject_markup(tmp_path):
    name = 'evil</script><script>alert(1)</script>"<b>.weight'
    fl.sweep({name: np.linspace(-1, 1, 32, dtype=np.float32)}, ["bf16"], jobs=1).to_csv(tmp_path / "sweep.csv")
    markup = sweep_page(tmp_path)
    assert "<script>alert(1)" not in markup and '"<b>' not in markup
    assert set(_cells(markup)) == {(name, "bf16")}  # the attribute, unescaped by the parser, is the name
    data = json.loads(re.search(r'<script type="application/json" id="sweep-data">(.*?)</script>', markup,
                                re.S).group(1))
    assert data["tensors"][0]["name"] == name


def test_many_tensors_losing_values_are_said_in_one_sentence():
    """More than STANDOUTS tensors of one format losing values: one sentence (how many, the worst)."""
    from fmtlab.report.sweep_page import STANDOUTS

    rng = np.random.default_rng(8)
    tensors = {}
    for index in range(STANDOUTS + 2):
        values = (0.5 + np.abs(rng.standard_normal(200))).astype(np.float32)  # none near e4m3fn's underflow
        values[:3 + index] = 3e-5  # underflows in e4m3fn (3 + index of 200), kept by e5m2
        tensors[f"layers.{index}.weight"] = values
    result = fl.sweep(tensors, ["e4m3fn", "e5m2"], jobs=1)
    lines = sweep_context(result)["overview"]["standouts"]
    worst = f"layers.{STANDOUTS + 1}.weight"
    assert len(lines) == 1 and lines[0].startswith(
        f"e4m3fn loses at least 1% of its values to underflow, beside a format of its width that keeps them, on "
        f"{STANDOUTS + 2} tensors; the worst: {worst}: e4m3fn loses {100 * (3 + STANDOUTS + 1) / 200:.3g}% of its values")


def test_the_page_does_not_depend_on_the_jobs(tmp_path):
    """The details drawn inline on one reused Figure and in batches on two workers are the same
    bytes: no tensor's picture carries anything over from the one drawn before it (here a
    tensor with no finite nonzero value, one of tiny values and one of large ones, in turn)."""
    rng = np.random.default_rng(11)
    tensors = {"layers.0.weight": np.zeros(16, np.float32), "layers.1.weight": (1e-6 * rng.standard_normal(64)).astype(np.float32),
               "layers.2.weight": (300 * rng.standard_normal(64)).astype(np.float32),
               "layers.3.weight": rng.standard_normal(64).astype(np.float32)}
    result = fl.sweep(tensors, ["bf16", "e4m3fn", "cfloat8_1_4_3"], "all", jobs=1)
    result.to_csv(tmp_path / "sweep.csv")
    write_histograms(tmp_path / "histograms.json", result.histograms)
    inline = build_report(tmp_path, jobs=1).read_bytes()
    assert build_report(tmp_path, jobs=2).read_bytes() == inline
    # and one tensor's detail drawn alone is the one drawn after the others
    from fmtlab.report.sweep_page import tensor_order

    alone = tmp_path / "alone"
    alone.mkdir()
    name = tensor_order(tensors)[-1]
    type(result)([record for record in result if record.tensor == name]).to_csv(alone / "sweep.csv")
    write_histograms(alone / "histograms.json", {name: result.histograms[name]})
    assert str(page_details(build_report(alone, jobs=1).read_text())[0]) == \
        str(page_details(inline.decode())[-1])


def test_a_tensor_with_no_nonzero_value_is_left_out_of_the_means():
    """An all-zero tensor is exact in every format (nothing to lose); in the means it would make
    every one +inf (or NaN): it weighs nothing, and the sentence says so."""
    values = np.random.default_rng(12).standard_normal(2000).astype(np.float32)
    result = fl.sweep({"layers.0.weight": values, "layers.1.weight": np.zeros(50, np.float32)}, ["e4m3fn", "e5m2"],
                      jobs=1)
    context = sweep_context(result)
    exact = {spec: _exact_sqnr(values, fl.quantize(values.astype(np.float64), spec)) for spec in ("e4m3fn", "e5m2")}
    assert context["overview"]["sentence"] == (
        "Over all 2 tensors (2,050 values; mean SQNR weighted by values, at each tensor's best bias, nearest_even "
        "rounding; 1 tensor with no finite nonzero value left out of the means), among 8-bit formats, "
        f"e4m3fn ({exact['e4m3fn']:.2f} dB); next: e5m2 ({exact['e5m2']:.2f} dB).")
    (group,) = context["groups"]
    assert [mean["text"] for mean in group["means"]] == [f"{exact['e4m3fn']:.1f}", f"{exact['e5m2']:.1f}"]
