"""fl.sweep_mma and `fmtlab sweep-mma`: matmul error against an independent reference as K grows."""
import csv
import io
import math
from fractions import Fraction

import numpy as np
import pytest

import fmtlab as fl
from fmtlab import cli
from fmtlab._inputs import synthetic
from fmtlab._parse import parse_mma_model
from fmtlab.sweep_mma import sweep_mma

mma = pytest.importorskip("fmtlab.mma")


def exact_relative_error(model, distribution, k, max_k, m, n, scale, seed):
    """||D - AB||_F / ||AB||_F with AB in exact rationals, D from fl.matmul on the same data."""
    a = synthetic(distribution, m * max_k, scale, 2 * seed).reshape(m, max_k)[:, :k]
    b = synthetic(distribution, max_k * n, scale, 2 * seed + 1).reshape(max_k, n)[:k, :]
    a = fl.quantize(np.ascontiguousarray(a), model.a_format)
    b = fl.quantize(np.ascontiguousarray(b), model.b_format)
    d = fl.matmul(a, b, model=model)
    signal = noise = Fraction(0)
    for i in range(m):
        for j in range(n):
            exact = sum(Fraction(float(a[i, t])) * Fraction(float(b[t, j])) for t in range(k))
            signal += exact * exact
            noise += (Fraction(float(d[i, j])) - exact) ** 2
    return math.sqrt(noise / signal)


def test_relative_error_matches_an_exact_rational_reference():
    result = sweep_mma(["h100:e4m3", "h100:bf16"], ks=[8, 40], distributions=["laplace"], m=3, n=2, seed=4,
                       jobs=1)
    assert len(result) == 4
    for record in result:
        model = parse_mma_model(record.model)
        expected = exact_relative_error(model, "laplace", record.k, 40, 3, 2, 1.0, 4)
        assert record.relative_error == pytest.approx(expected, rel=1e-9)
        if expected == 0:
            assert record.sqnr_db == math.inf
        else:
            assert record.sqnr_db == pytest.approx(-20 * math.log10(expected), rel=1e-9)
        assert record.nonfinite_frac == 0


def test_exact_model_is_within_one_rounding():
    # One rounding to nearest-even per element: |E_ij| <= 2^-24 |R_ij|.
    result = sweep_mma(["exact"], ks=[16, 1024], distributions=["normal"], m=4, n=4, jobs=1)
    for record in result:
        assert record.relative_error <= 2.0 ** -24


def test_fp8_swamping_grows_with_k_and_promotion_stops_it():
    result = sweep_mma(["h100:e4m3", "h100:e4m3:promote=128"], ks=[32, 4096], distributions=["lognormal"],
                       m=4, n=4, jobs=1)
    error = {(r.model, r.k): r.relative_error for r in result}
    # Positive data: the running sum grows like K and the 13-bit accumulator swamps the products.
    assert error[("h100:e4m3", 4096)] > 30 * error[("h100:e4m3", 32)]
    assert error[("h100:e4m3:promote=128", 4096)] < error[("h100:e4m3", 4096)] / 10
    mean = {(r.model, r.k): r.mean_scaled_error for r in result}
    assert mean[("h100:e4m3", 4096)] < 0  # truncation toward zero drags positive sums down


def test_results_do_not_depend_on_jobs():
    arguments = dict(models=["h100:fp16", "fp32_fma"], ks=[16, 512], distributions=["normal", "uniform"], m=4, n=4)
    assert sweep_mma(jobs=1, **arguments) == sweep_mma(jobs=2, **arguments)


def test_model_specs():
    # The preset carries the format's real name (OCP e4m3fn, not the IEEE-like e4m3).
    assert parse_mma_model("h100:e4m3").name == "h100-e4m3fn-fp32"
    assert parse_mma_model("h100:e4m3:promote=128").promote_every == 128
    assert parse_mma_model("h100:e4m3:promote=0").promote_every is None
    assert parse_mma_model("a100:fp16:fp16").out_format == fl.FP16
    assert parse_mma_model("fp32_fma").summation == "block_fma"
    with pytest.raises(ValueError, match="gpu='h900' is unknown"):
        parse_mma_model("h900:e4m3")
    with pytest.raises(ValueError, match="model option 'every' in 'h100:e4m3:every=2' is unknown"):
        parse_mma_model("h100:e4m3:every=2")
    with pytest.raises(ValueError, match="promote='x'"):
        parse_mma_model("h100:e4m3:promote=x")


@pytest.mark.parametrize("kwargs, message", [
    ({"ks": [0]}, "ks has 0"), ({"ks": []}, "ks is empty"), ({"distributions": ["cauchy"]}, "distribution='cauchy'"),
    ({"m": 0}, "m=0 is not allowed"), ({"models": []}, "models is empty"), ({"seed": -1}, "seed=-1"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sweep_mma(**{"models": ["h100:fp16"], **kwargs})


def test_cli_end_to_end(tmp_path, capsys):
    status = cli.main(["sweep-mma", "--models", "h100:e4m3,h100:e4m3:promote=128", "--k", "32,256",
                       "--dist", "normal", "--m", "4", "--n", "4", "--jobs", "1", "--out", str(tmp_path)])
    assert status == 0
    out = capsys.readouterr().out
    assert "h100:e4m3:promote=128" in out and "K=256" in out
    rows = list(csv.DictReader(io.StringIO((tmp_path / "sweep_mma.csv").read_text())))
    assert len(rows) == 4 and {row["k"] for row in rows} == {"32", "256"}
    assert (tmp_path / "mma_error_vs_k.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_bad_k_is_a_one_line_error(tmp_path, capsys):
    assert cli.main(["sweep-mma", "--k", "16,many", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--k has 'many', which is not an integer" in err and err.count("\n") == 1
