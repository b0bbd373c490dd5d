"""The report pages opened in a real browser (headless Chromium), as a reader opens them.

For the 15-tensor silero-vad checkpoint (through ``fmtlab sweep``, the command of issue 13),
a synthetic 500-tensor sweep, a sweep-mma run and a drift run:

* nothing leaves the file: no URL with a scheme anywhere in it, and Chromium's net log holds
  no request made by the page (tests/chromium.py);
* no console message at all (uncaught errors included) and the page's script ran to its end
  (``data-report-ready``);
* the expected sections, and one heatmap cell per (tensor, format, rounding) of sweep.csv;
* the per-tensor detail (opened by ``#tensor=NAME``) draws one bar per nonzero binade of the
  tensor, counted here independently with ``math.frexp``; the table filters (``#filter=``)
  and sorts (``#sort=``);
* screenshots go to test-artifacts/report/ (looked at by hand, described in the closing note).

The harness itself is checked first: a page with a script error and a page that fetches
an image and a script must fail these checks.  Chromium must be installed (.ci/run installs
it): without it these tests fail, they do not skip.
"""
import csv
import importlib.resources
import math
import pathlib
import re
import time

import numpy as np
import pytest

from chromium import chromium_path, open_page, parse
from fmtlab.cli import main
from fmtlab.report import build_report
from test_report import detail_bars, page_details

ARTIFACTS = pathlib.Path(__file__).resolve().parent.parent / "test-artifacts" / "report"
URL_SCHEME = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://")
SILERO_FORMATS = "bf16,fp16,e4m3fn,e5m2,cfloat8_1_4_3,cfloat8_1_5_2"


def _silero_path():
    import silero_vad

    return importlib.resources.files(silero_vad) / "data" / "silero_vad_16k.safetensors"


def test_chromium_is_installed():
    assert chromium_path() is not None, "chromium is required (apt-get install chromium; .ci/run installs it)"


def _assert_clean(visit, markup):
    assert not URL_SCHEME.search(markup), URL_SCHEME.search(markup)
    assert visit.requests == [], visit.requests
    assert visit.console == [], visit.console
    body = next(visit.dom.find_all("body"))
    assert body.attributes.get("data-report-ready") == "yes"
    assert not list(visit.dom.find_all(id="js-errors"))


def test_the_checks_catch_a_broken_page(tmp_path):
    """A script error shows in the console and stops the page's script; an external image and
    script show as the page's requests; a URL in the text is found."""
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><body><p id=x>before</p><script>missingFunction();"
                      "document.body.setAttribute('data-report-ready','yes')</script></body></html>")
    visit = open_page(broken, tmp_path / "one")
    assert any("missingFunction is not defined" in line for line in visit.console)
    with pytest.raises(AssertionError):
        _assert_clean(visit, broken.read_text())
    leaking = tmp_path / "leaking.html"
    leaking.write_text('<!DOCTYPE html><html><body data-report-ready="yes"><img src="http://example.invalid/x.png">'
                       '<script src="https://cdn.example.invalid/lib.js"></script></body></html>')
    visit = open_page(leaking, tmp_path / "two")
    assert set(visit.requests) == {"http://example.invalid/x.png", "https://cdn.example.invalid/lib.js"}
    with pytest.raises(AssertionError):
        _assert_clean(visit, "")


# ---- the 15-tensor real checkpoint, through the command line ---------------------------------------
@pytest.fixture(scope="module")
def silero_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("silero") / "run"
    argv = ["sweep", "--input", str(_silero_path()), "--formats", SILERO_FORMATS, "--bias", "auto", "--jobs", "1",
            "--out", str(out), "--quiet", "--no-plots"]
    assert main(argv) == 0
    return out


def _heatmap_cells(dom):
    columns = {header.attributes["data-c"]: (header.attributes["data-format"], header.attributes["data-rounding"])
               for header in dom.find_all("th", class_="column")}
    cells = []
    for row in dom.find_all("tr", class_="tensor-row"):
        for cell in row.find_all("td", class_="cell"):
            cells.append((row.attributes["data-tensor"],) + columns[cell.attributes["data-c"]])
    return cells


def _best_bias(run, tensor, spec, rounding="nearest_even") -> int:
    with open(run / "sweep.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle)
                if (row["tensor"], row["format"], row["rounding"]) == (tensor, spec, rounding)]
    return int(next(row["bias"] for row in rows if row["is_best_bias"] == "True"))


def _binades(values) -> dict:
    counts = {}
    for value in values:
        if value != 0 and math.isfinite(value):
            exponent = math.frexp(value)[1] - 1  # 2^e <= |x| < 2^(e+1)
            counts[exponent] = counts.get(exponent, 0) + 1
    return counts


def test_the_silero_report_in_a_browser(silero_run, tmp_path):
    report = silero_run / "report.html"
    markup = report.read_text()
    visit = open_page(report, tmp_path / "visit", fragment="tensor=conv4.weight",
                      screenshot=ARTIFACTS / "sweep-silero-15-tensors.png", window=(1400, 3000))
    _assert_clean(visit, markup)
    for section in ("provenance", "overview", "heatmap", "depth", "detail", "table"):
        assert list(visit.dom.find_all("section", id=section)), section
    with open(silero_run / "sweep.csv", newline="") as handle:
        expected = {(row["tensor"], row["format"], row["rounding"]) for row in csv.DictReader(handle)}
    cells = _heatmap_cells(visit.dom)
    assert len(cells) == len(expected) == 15 * 6 * 2 and set(cells) == expected
    # The overview says issue 13's finding first (the figures of docs/sweep.md, "A real checkpoint").
    lost = [item.all_text() for item in next(visit.dom.find_all("ul", id="values-lost")).find_all("li")]
    assert lost[0] == ("conv4.weight: e4m3fn loses 8.01% of its values to underflow (rounded to 0), cfloat8_1_4_3 "
                       "at bias 10 1.01% (32.55 dB against 32.57 dB)")
    # The detail of conv4.weight: one bar per nonzero binade, counted here with math.frexp.
    from safetensors.numpy import load_file

    weights = load_file(str(_silero_path()))["conv4.weight"].astype(np.float64).reshape(-1)
    binades = _binades(weights.tolist())
    title = next(visit.dom.find_all(id="detail-title")).all_text()
    assert title.startswith("conv4.weight") and f"{weights.size:,} values" in title
    # The detail is matplotlib's SVG, inflated by the page: a bar per nonzero binade, named by
    # its binade and count, and a range row per element format (6), at its best bias.
    (figure,) = list(visit.dom.find_all("figure", class_="detail-figure"))
    assert figure.attributes["data-tensor"] == "conv4.weight"
    assert detail_bars(figure) == binades
    labels = [text.all_text().strip("←→ ") for text in next(figure.find_all("g", id="detail-ranges")).find_all("text")]
    assert labels == ["bf16", "fp16", "e4m3fn", "e5m2", "cfloat8_1_4_3 (bias 10)", f"cfloat8_1_5_2 (bias {_best_bias(silero_run, 'conv4.weight', 'cfloat8_1_5_2')})"]
    assert not list(visit.dom.find_all("path", class_="bias-curve"))  # no plot drawn by the script
    counts = [[cell.all_text() for cell in row.find_all("td")]
              for table in visit.dom.find_all("table", class_="counts") for row in table.find_all("tr")]
    assert ["e4m3fn", "nearest_even", "8", "-", "32.55", "-", "-", "0", "8.01", "0"] in counts
    # Provenance: the command as typed and the input's SHA-256.
    import hashlib

    digest = hashlib.sha256(pathlib.Path(_silero_path()).read_bytes()).hexdigest()
    provenance = next(visit.dom.find_all("section", id="provenance")).all_text()
    assert digest in provenance and "fmtlab sweep --input" in provenance and "--bias auto" in provenance


def test_the_silero_table_filters_and_sorts(silero_run, tmp_path):
    report = silero_run / "report.html"
    visit = open_page(report, tmp_path / "filter", fragment="filter=conv4.weight%20e4m3fn")
    _assert_clean(visit, report.read_text())
    rows = [[cell.all_text() for cell in row.find_all("td")]
            for row in next(visit.dom.find_all("table", id="results")).find_all("tr") if row.find_all("td")]
    rows = [row for row in rows if row]
    assert sorted((row[0], row[2], row[3]) for row in rows) == [("conv4.weight", "e4m3fn", "nearest_even"),
                                                                 ("conv4.weight", "e4m3fn", "stochastic")]
    assert next(visit.dom.find_all(id="table-count")).all_text() == f"2 of {15 * 12} rows"
    visit = open_page(report, tmp_path / "sort", fragment="sort=SQNR%20dB&order=down")
    rows = [[cell.all_text() for cell in row.find_all("td")]
            for row in next(visit.dom.find_all("table", id="results")).find_all("tr")]
    sqnrs = [float(row[6]) for row in rows if row]
    assert len(sqnrs) == 15 * 12 and sqnrs == sorted(sqnrs, reverse=True)
    with open(silero_run / "sweep.csv", newline="") as handle:
        best = max(float(row["sqnr_db"]) for row in csv.DictReader(handle))
    assert sqnrs[0] == round(best, 2)


def test_a_partial_page_in_a_browser(silero_run, tmp_path):
    """The silero-vad run's folder with the mark of a stopped run written into it (its results
    stay whole: only the box's rendering is checked here; tests/test_report_partial.py stops
    real runs and checks what they show): the box at the top, clean in the browser."""
    import shutil

    from fmtlab.report.partial import write_partial

    folder = tmp_path / "partial"
    shutil.copytree(silero_run, folder)
    missing = [("lstm_cell.weight_hh", spec, rounding) for spec in SILERO_FORMATS.split(",")
               for rounding in ("nearest_even", "stochastic")]
    write_partial(folder, reason="interrupted (Ctrl-C)", unit="(tensor, format, rounding) groups", finished=168,
                  planned=180, missing=missing)
    report = build_report(folder, jobs=1)
    visit = open_page(report, tmp_path / "visit", screenshot=ARTIFACTS / "sweep-partial.png", window=(1400, 900))
    _assert_clean(visit, report.read_text())
    (box,) = list(visit.dom.find_all("section", id="partial"))
    assert "when 168 of 180 (tensor, format, rounding) groups had finished" in box.all_text()
    assert [item.all_text() for item in box.find_all("li")] == [" · ".join(group) for group in missing]


# ---- a synthetic 500-tensor checkpoint ------------------------------------------------------------
_PARTS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.up_proj",
          "mlp.down_proj", "mlp.gate_proj", "input_layernorm", "post_attention_layernorm", "mlp.experts")
_SHAPES = {"input_layernorm": (24,), "post_attention_layernorm": (24,), "mlp.experts": (2, 8, 6)}
BIG_FORMATS = "bf16,e4m3fn,e5m2,cfloat8_1_4_3"
ALL_ZERO = ("model.layers.13.post_attention_layernorm.weight", "model.layers.31.mlp.down_proj.weight")
OUTLIERS = "model.layers.7.mlp.up_proj.weight"
TINY = "model.layers.22.self_attn.k_proj.weight"


def synthetic_checkpoint(layers: int = 50) -> dict:
    """``layers`` x 10 distinct small float32 tensors named like a decoder's: each of its own
    scale (by layer kind, depth and a random factor over 4 decades), a norm's weights near 1,
    every 7th tensor with outliers (300x its scale), the ALL_ZERO ones all zero, TINY with
    values around 1e-6 (below e4m3fn's smallest subnormal), one with an Inf and one with a NaN."""
    rng = np.random.default_rng(13)
    tensors = {}
    for layer in range(layers):
        for index, part in enumerate(_PARTS):
            name = f"model.layers.{layer}.{part}.weight"
            shape = _SHAPES.get(part, (8, 16) if index % 2 else (12, 8))
            if part.endswith("layernorm"):
                values = 1.0 + 0.1 * (1 + layer / layers) * rng.standard_normal(shape)
            else:
                values = 10.0 ** rng.uniform(-3.5, 0.5) * (1 + layer / 10) * rng.standard_normal(shape)
            if (layer * len(_PARTS) + index) % 7 == 0:
                flat = values.reshape(-1)
                flat[rng.choice(flat.size, 3, replace=False)] *= 300.0
            tensors[name] = values.astype(np.float32)
    for name in ALL_ZERO:
        tensors[name] = np.zeros_like(tensors[name])
    tensors[OUTLIERS].reshape(-1)[:5] = [900.0, -2000.0, 0.0, 1e-9, 5e4]
    tensors[TINY] = (1e-6 * rng.standard_normal(tensors[TINY].shape)).astype(np.float32)
    tensors["model.layers.40.mlp.gate_proj.weight"].reshape(-1)[3] = np.inf
    tensors["model.layers.41.mlp.gate_proj.weight"].reshape(-1)[4] = np.nan
    return tensors


@pytest.fixture(scope="module")
def big_run(tmp_path_factory):
    from safetensors.numpy import save_file

    folder = tmp_path_factory.mktemp("big")
    tensors = synthetic_checkpoint()
    assert len(tensors) == 500 and len({values.tobytes() for values in tensors.values()}) == 500  # all distinct
    save_file(tensors, str(folder / "synthetic.safetensors"))
    out = folder / "run"
    started = time.perf_counter()
    # no --jobs: the sweep runs inline (small), the 500 details are drawn on the CPUs' workers
    assert main(["sweep", "--input", str(folder / "synthetic.safetensors"), "--formats", BIG_FORMATS, "--bias", "8-14",
                 "--rounding", "nearest_even", "--out", str(out), "--quiet", "--no-plots"]) == 0
    (out / "build-seconds.txt").write_text(f"fmtlab sweep with its report: {time.perf_counter() - started:.1f} s\n")
    return out, tensors


def test_the_500_tensor_report_in_a_browser(big_run, tmp_path):
    out, tensors = big_run
    report = out / "report.html"
    markup = report.read_text()
    size = report.stat().st_size
    assert size < 3 * 2 ** 20, size  # "under a few MB"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "sweep-500-tensors.txt").write_text(
        f"report.html: {size:,} bytes; {(out / 'build-seconds.txt').read_text().strip()}\n")
    visit = open_page(report, tmp_path / "visit", fragment=f"tensor={OUTLIERS}",
                      screenshot=ARTIFACTS / "sweep-500-tensors.png", window=(1400, 2600))
    _assert_clean(visit, markup)
    with open(out / "sweep.csv", newline="") as handle:
        expected = {(row["tensor"], row["format"], row["rounding"]) for row in csv.DictReader(handle)}
    assert expected == {(name, spec, "nearest_even") for name in tensors for spec in BIG_FORMATS.split(",")}
    cells = _heatmap_cells(visit.dom)
    assert len(cells) == len(expected) == 500 * 4 and set(cells) == expected
    # 500 tensors: each kind starts closed, its row showing the kind's mean per format.
    kinds = list(visit.dom.find_all("tr", class_="kind-row"))
    assert [row.all_text().split(":")[0].strip() for row in kinds] == [
        "attention.q", "attention.k", "attention.v", "attention.o", "mlp", "norm"]
    assert all(len(list(row.find_all("td", class_="kind-mean"))) == 4 for row in kinds)
    assert all("collapsed" in row.attributes["class"] for row in visit.dom.find_all("tr", class_="tensor-row"))
    _assert_detail(visit.dom, OUTLIERS, tensors[OUTLIERS])


def _assert_detail(dom, name, values):
    """The one detail shown is ``name``'s: its title, its bars (the exact binade counts of
    ``values``, counted here with math.frexp) and its SQNR-vs-bias curve of cfloat8_1_4_3."""
    (figure,) = list(dom.find_all("figure", class_="detail-figure"))
    assert figure.attributes["data-tensor"] == name
    title = next(dom.find_all(id="detail-title")).all_text()
    assert title.startswith(name) and f"{values.size:,} values" in title
    flat = values.astype(np.float64).reshape(-1).tolist()
    assert f"{sum(1 for value in flat if value == 0):,} zeros" in title
    assert detail_bars(figure) == _binades(flat)
    curves = [group for group in figure.find_all("g") if group.attributes.get("id", "").startswith("curve_")]
    assert len(curves) == (1 if any(value != 0 and math.isfinite(value) for value in flat) else 0)


def test_every_detail_of_the_500_tensor_report_is_its_tensors(big_run):
    """All 500 details, inflated here: each names its tensor and draws its exact binade counts;
    the all-zero tensors say they have no finite nonzero value."""
    out, tensors = big_run
    markup = (out / "report.html").read_text()
    order = [row.attributes["data-tensor"] for row in parse(markup).find_all("tr", class_="tensor-row")]
    details = page_details(markup)
    assert len(details) == len(order) == 500 and set(order) == set(tensors)
    distinct = set()
    for name, detail in zip(order, details):
        (figure,) = list(detail.find_all("figure", class_="detail-figure"))
        assert figure.attributes["data-tensor"] == name
        bars = detail_bars(figure)
        assert bars == _binades(tensors[name].astype(np.float64).reshape(-1).tolist()), name
        if name in ALL_ZERO:
            assert bars == {} and "no finite nonzero value" in figure.all_text()
        rows = [[cell.all_text() for cell in row.find_all("td")] for row in detail.find_all("tr")]
        assert [row[0] for row in rows if row] == ["bf16", "e4m3fn", "e5m2", "cfloat8_1_4_3"]
        distinct.add(str(figure))
    assert len(distinct) == 500


def test_several_details_in_the_browser(big_run, tmp_path):
    out, tensors = big_run
    report = out / "report.html"
    for name in (TINY, ALL_ZERO[0], "model.layers.49.mlp.experts.weight"):
        visit = open_page(report, tmp_path / name, fragment=f"tensor={name}")
        _assert_clean(visit, "")
        _assert_detail(visit.dom, name, tensors[name])


# ---- sweep-mma and drift --------------------------------------------------------------------------
def test_the_sweep_mma_report_in_a_browser(tmp_path):
    out = tmp_path / "mma"
    assert main(["sweep-mma", "--models", "h100:e4m3fn,h100:e4m3fn:promote=128,fp32_fma", "--k", "16,256,1024",
                 "--jobs", "1", "--out", str(out), "--quiet", "--no-plots"]) == 0
    report = out / "report.html"
    visit = open_page(report, tmp_path / "visit", screenshot=ARTIFACTS / "sweep-mma.png", window=(1400, 1500))
    _assert_clean(visit, report.read_text())
    for section in ("provenance", "error-vs-k", "table"):
        assert list(visit.dom.find_all("section", id=section)), section
    rows = [row for row in next(visit.dom.find_all("table", class_="results")).find_all("tr")
            if list(row.find_all("td"))]
    assert len(rows) == 3 * 2  # models x distributions


def test_the_drift_report_in_a_browser(tmp_path):
    out = tmp_path / "drift"
    assert main(["drift", "--configs", "bf16_pure_sr,fp16_mixed_dynscale", "--steps", "4", "--seeds", "2",
                 "--eval-every", "2", "--jobs", "1", "--out", str(out), "--quiet", "--no-plots"]) == 0
    report = out / "report.html"
    visit = open_page(report, tmp_path / "visit", screenshot=ARTIFACTS / "drift.png", window=(1400, 1500))
    _assert_clean(visit, report.read_text())
    for section in ("provenance", "stands-out", "curves", "summary"):
        assert list(visit.dom.find_all("section", id=section)), section
    explained = next(visit.dom.find_all(id="counters-explained")).all_text()
    assert "updates cancelled: of the weights with a nonzero gradient" in explained
    configs = [row.find_all("td").__next__().all_text() for row in
               next(visit.dom.find_all("table", class_="summary")).find_all("tr") if list(row.find_all("td"))]
    assert configs == ["fp32", "bf16_pure_sr", "fp16_mixed_dynscale"]
