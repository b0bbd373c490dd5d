"""Scaled formats in sweeps: records against fl.quantize and metrics computed here, the block and
rule axes, jobs independence, the summary, and the command line end to end with its errors.

The reference metrics below do not use fmtlab's metrics or decoding: the sums are exactly
rounded (math.fsum), the block scales are decoded here from their codes (E8M0 as 2^(code - 127),
E4M3 and FP32 through ml_dtypes / numpy views) and spread over their blocks, the element values
come from ml_dtypes, and overflow is counted by its definition, |x| > element.max * S.
"""
import concurrent.futures
import csv
import io
import math
import warnings

import ml_dtypes
import numpy as np
import pytest

import fmtlab as fl
from fmtlab import cli
from fmtlab._cli_sweep import check_synthetic_memory
from fmtlab._parse import parse_blocks, parse_formats, parse_rules
from fmtlab.sweep import scaled_variants, sweep

# ---- independent pieces -------------------------------------------------------------------------
_ELEMENT_DTYPES = {"e4m3fn": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2,
                   "e2m1fn": ml_dtypes.float4_e2m1fn, "e2m3fn": ml_dtypes.float6_e2m3fn}


def _scale_values(codes, scale_format):
    """Block scale values from their codes, decoded here (NaN for a NaN code)."""
    codes = np.asarray(codes)
    if scale_format == fl.E8M0:
        values = np.ldexp(1.0, codes.astype(np.int64) - 127)
        return np.where(codes == 0xFF, np.nan, values)
    if scale_format == fl.E4M3FN:
        return codes.astype(np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float64)
    if scale_format == fl.FP32:
        return codes.astype(np.uint32).view(np.float32).astype(np.float64)
    raise AssertionError(f"no independent decoder for {scale_format}")


def _per_element(scales, block, shape):
    """Each element's block scale: 1-D blocks along the last axis, or tiles over the last two."""
    if isinstance(block, tuple):
        spread = np.repeat(np.repeat(scales, block[0], axis=-2), block[1], axis=-1)
        return spread[..., :shape[-2], :shape[-1]]
    if block == "tensor":
        return np.full(shape, float(scales))
    return np.repeat(scales, block, axis=-1)[..., :shape[-1]]


def reference_metrics(x, fmt, rounding, seed):
    """Every metric of a sweep record for x in the scaled fmt, computed here."""
    codes = fl.encode(x, fmt, rounding, seed=seed)
    q = fl.quantize(np.asarray(x, np.float64), fmt, rounding, seed=seed)   # the exact values
    scale = _scale_values(codes.scales, fmt.scale)
    if fmt.tensor_scale is not None:
        scale = scale * float(np.uint32(codes.tensor_scale).view(np.float32))
    limit = fmt.element.max * _per_element(scale, fmt.block, x.shape)
    element = codes.codes.astype(np.uint8).view(_ELEMENT_DTYPES[fmt.element.name]).astype(np.float64)
    x64, q, limit, element = (np.asarray(a, np.float64).reshape(-1) for a in (x, q, limit, element))
    n = x64.size
    valid = np.isfinite(x64) & np.isfinite(q)
    e = q[valid] - x64[valid]
    noise = math.fsum(e * e)
    nonzero = x64[valid] != 0
    with np.errstate(invalid="ignore"):
        overflow = np.count_nonzero(np.abs(x64) > limit)
    if valid.any():
        errors = {"sqnr_db": math.inf if noise == 0 else 10 * math.log10(math.fsum(x64[valid] ** 2) / noise),
                  "rmse": math.sqrt(noise / valid.sum()), "max_abs_err": float(np.abs(e).max()),
                  "max_rel_err": float((np.abs(e[nonzero]) / np.abs(x64[valid][nonzero])).max()),
                  "mean_err": math.fsum(e) / valid.sum()}
    else:  # every value NaN (NVFP4 on a tensor holding a NaN: its tensor scale is NaN)
        errors = dict.fromkeys(("sqnr_db", "rmse", "max_abs_err", "max_rel_err", "mean_err"), math.nan)
    return {**errors,
            "overflow_frac": overflow / n,
            "underflow_frac": np.count_nonzero(np.isfinite(x64) & (x64 != 0) & (q == 0)) / n,
            "subnormal_frac": np.count_nonzero(np.isfinite(q) & (np.abs(element) > 0)
                                               & (np.abs(element) < fmt.element.min_normal)) / n,
            "nan_frac": np.count_nonzero(np.isnan(q)) / n, "inf_frac": np.count_nonzero(np.isinf(q)) / n,
            "scales": codes.scales.size,
            "bits_per_value": fmt.element.bits + (codes.scales.size * fmt.scale.bits
                                                  + (32 if fmt.tensor_scale is not None else 0)) / n}


@pytest.fixture(scope="module")
def tensors():
    generator = np.random.default_rng(11)
    wide = (generator.lognormal(0, 2.0, 1000) * np.sign(generator.standard_normal(1000))).astype(np.float32)
    wide[40:72] = 0                     # a whole zero block of 32 (and two of 16)
    special = generator.standard_normal(1000).astype(np.float32)
    special[[5, 300]] = np.nan          # two NaN blocks
    special[[600, 999]] = [np.inf, -np.inf]
    special[700:705] = 2.0 ** -140      # tiny values in a block of larger ones: underflow
    return {"wide": wide, "special": special,
            "matrix": generator.standard_normal((40, 200)).astype(np.float32)}   # partial tiles and blocks


# ---- records = fl.quantize + the definitions ------------------------------------------------------------
@pytest.mark.parametrize("spec", ["mxfp8_e4m3", "mxfp4", "mxfp6_e2m3:rule=even", "nvfp4", "fp8_block128",
                                  "e4m3fn:block=24,scale=e8m0,rule=ceil", "nvfp4_2d", "mxfp8_e5m2:rule=rceil"])
@pytest.mark.parametrize("rounding", ["nearest_even", "stochastic", "toward_zero"])
def test_scaled_records_equal_quantize_and_the_definitions(tensors, spec, rounding):
    fmt = fl.format(spec)
    result = sweep(tensors, [spec], "all", [rounding], seed=5, jobs=1, on_note=lambda line: None)
    names = [name for name, x in tensors.items() if not isinstance(fmt.block, tuple) or x.ndim == 2]
    assert [record.tensor for record in result] == names          # one record per tensor: no bias axis
    for record in result:
        x = tensors[record.tensor]
        expected = reference_metrics(x, fmt, rounding, 5)
        assert record.format == str(fmt) == spec and fl.format(record.format) == fmt
        assert (record.bias, record.rule_bias, record.best_bias) == (fmt.element.bias,) * 3
        assert record.is_rule_bias and record.is_best_bias and record.sqnr_gap_db == 0
        assert record.block == (f"{fmt.block[0]}x{fmt.block[1]}" if isinstance(fmt.block, tuple) else str(fmt.block))
        assert record.rule == fmt.rule and record.n == x.size
        for name, value in expected.items():
            if name in ("overflow_frac", "underflow_frac", "subnormal_frac", "nan_frac", "inf_frac", "scales"):
                assert getattr(record, name) == value, name
            else:
                assert getattr(record, name) == pytest.approx(value, rel=1e-12, abs=1e-300, nan_ok=True), name
        assert record.nan_input_frac == np.isnan(x).sum() / x.size
        assert record.inf_input_frac == np.isinf(x).sum() / x.size
        if spec in ("mxfp8_e4m3", "mxfp4") and record.tensor == "matrix":
            assert record.overflow_frac > 0   # the floor rule saturates blocks whose amax mantissa is large


def test_the_values_are_exact_and_the_codes_those_of_float32_input(tensors):
    # The sweep measures decode(encode(x)) (float64, exact); fl.quantize of float32 input gives the
    # same codes, and its float32 values differ only where a value has more than 24 bits (NVFP4).
    x = tensors["wide"]
    for spec in ("mxfp8_e4m3", "nvfp4", "fp8_block128"):
        fmt = fl.format(spec)
        for rounding in ("nearest_even", "stochastic"):
            from32, from64 = fl.encode(x, fmt, rounding, seed=1), fl.encode(x.astype(np.float64), fmt, rounding, seed=1)
            assert np.array_equal(from32.codes, from64.codes) and np.array_equal(from32.scales, from64.scales)
            exact = fl.quantize(x.astype(np.float64), fmt, rounding, seed=1)
            assert np.array_equal(fl.decode(from32), exact)
            assert np.array_equal(fl.quantize(x, fmt, rounding, seed=1), exact.astype(np.float32))
    nvfp4 = fl.quantize(x.astype(np.float64), "nvfp4")
    assert not np.array_equal(nvfp4.astype(np.float32).astype(np.float64), nvfp4)   # why float64 is used


def test_overflow_counts_the_elements_above_their_blocks_largest_value():
    # MX E4M3 in blocks of 4, floor rule: amax 1.9 = 1.9 * 2^0 gives the scale 2^(0 - 8), whose
    # largest value is 448 * 2^-8 = 1.75: 1.9 and 1.8 saturate.  An Inf block saturates its Inf;
    # a NaN block (NaN scale) counts nothing; the rceil rule never saturates a finite value.
    x = np.array([1.9, 1.0, 1.8, 0.0, np.inf, 1.0, 2.0, 3.0, np.nan, 5.0, 500.0, 1.0], np.float32)
    floor = sweep({"x": x}, ["e4m3fn:block=4,scale=e8m0"], jobs=1)[0]
    assert floor.overflow_frac == 3 / 12
    rceil = sweep({"x": x}, ["e4m3fn:block=4,scale=e8m0,rule=rceil"], jobs=1)[0]
    assert rceil.overflow_frac == 1 / 12          # the Inf only
    assert floor.nan_frac == rceil.nan_frac == 4 / 12 and floor.inf_frac == 0
    assert floor.inf_input_frac == floor.nan_input_frac == 1 / 12
    assert floor.scales == 3 and floor.bits_per_value == 8 + 3 * 8 / 12


# ---- the block and rule axes -------------------------------------------------------------------------------
def test_block_and_rule_axes_give_exactly_the_expected_records(tensors):
    notes = []
    data = {"wide": tensors["wide"], "matrix": tensors["matrix"]}
    result = sweep(data, ["mxfp8_e4m3", "nvfp4", "nvfp4_2d", "fp8_block128", "cfloat8_1_4_3"], "auto",
                   ["nearest_even"], blocks=[16, 32, (32, 32)], rules=["floor", "rceil"], jobs=1, on_note=notes.append)
    one_d = ["mxfp8_e4m3:block=16", "mxfp8_e4m3", "mxfp8_e4m3:block=16,rule=rceil", "mxfp8_e4m3:rule=rceil",
             "nvfp4", "nvfp4:block=32",
             "fp8_block128:block=16,rule=floor", "fp8_block128:block=32,rule=floor",
             "fp8_block128:block=16,rule=rceil", "fp8_block128:block=32,rule=rceil", "cfloat8_1_4_3"]
    expected = [("wide", spec) for spec in one_d] + [("matrix", spec) for spec in one_d[:6]] \
        + [("matrix", "nvfp4_2d:block=32x32")] + [("matrix", spec) for spec in one_d[6:]]
    assert [(record.tensor, record.format) for record in result] == expected
    assert {(r.format, r.block, r.rule) for r in result if r.format.startswith("mxfp8")} == {
        ("mxfp8_e4m3:block=16", "16", "floor"), ("mxfp8_e4m3", "32", "floor"),
        ("mxfp8_e4m3:block=16,rule=rceil", "16", "rceil"), ("mxfp8_e4m3:rule=rceil", "32", "rceil")}
    assert all(fl.format(record.format).block == ((32, 32) if record.block == "32x32" else int(record.block))
               for record in result if record.is_scaled)
    # Each skipped combination said once.
    assert notes == [
        "blocks=[(32, 32)] skipped for mxfp8_e4m3: it has 1-D blocks of 32, and tiles (RxC) replace only tiles",
        "blocks=[(32, 32)] skipped for nvfp4: it has 1-D blocks of 16, and tiles (RxC) replace only tiles",
        "rules=['floor', 'rceil'] skipped for nvfp4: its tensor scale (NVFP4's second level) needs rule amax "
        "(nvfp4:tensor_scale=none takes every rule); it keeps its own rule amax",
        "blocks=[16, 32] skipped for nvfp4_2d: it has 16x16 tiles, and only tiles (RxC) replace tiles",
        "rules=['floor', 'rceil'] skipped for nvfp4_2d: its tensor scale (NVFP4's second level) needs rule amax "
        "(nvfp4_2d:tensor_scale=none takes every rule); it keeps its own rule amax",
        "blocks=[(32, 32)] skipped for fp8_block128: it has 1-D blocks of 128, and tiles (RxC) replace only tiles",
        "nvfp4_2d:block=32x32 skipped for 1 tensor(s) 'wide': its 32x32 tiles need tensors of at least 2 dimensions"]
    assert result.notes == tuple(notes)


def test_skipped_combinations_warn_without_a_note_callback(tensors):
    with pytest.warns(UserWarning, match="skipped for nvfp4: its tensor scale"):
        sweep({"wide": tensors["wide"]}, ["mxfp4", "nvfp4"], rules=["rceil"], jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # nothing skipped: no warning
        sweep({"wide": tensors["wide"]}, ["mxfp4", "nvfp4"], blocks=[16], jobs=1)


def test_channel_and_tensor_blocks_and_a_combination_that_is_refused():
    x = np.random.default_rng(2).standard_normal((8, 64)).astype(np.float32)
    formats, notes = scaled_variants(parse_formats(["fp8_block128", "nvfp4"]), parse_blocks("channel,tensor"),
                                     None)
    assert [str(fmt) for fmt in formats] == ["fp8_block128:block=channel", "fp8_block128:block=tensor",
                                                "nvfp4:block=channel"]
    assert formats[1] == fl.format("fp8_tensor")   # the same format, named after the preset it came from
    assert notes == ["nvfp4 at block tensor and rule amax skipped: tensor_scale is not allowed with block='tensor': "
                     "the block scale already is one"]
    records = sweep({"w": x}, formats, jobs=1)
    assert [(record.block, record.scales) for record in records] == [("channel", 8), ("tensor", 1), ("channel", 8)]


@pytest.mark.parametrize("formats, blocks, rules, message", [
    (["mxfp8_e4m3", "cfloat8_1_4_3"], [(16, 16)], None,
     "blocks=[(16, 16)] applies to none of the formats: mxfp8_e4m3: it has 1-D blocks of 32, and tiles (RxC) "
     "replace only tiles; cfloat8_1_4_3 is not a scaled format"),
    (["nvfp4"], None, ["floor"], "rules=['floor'] applies to none of the formats: nvfp4: its tensor scale"),
    (["bf16"], [32], None, "blocks=[32] applies to none of the formats: bf16 is not a scaled format"),
    (["mxfp4"], [0], None, "blocks has the value 0; allowed: None, or a list of blocks"),
    (["mxfp4"], None, ["flor"], "rules has 'flor', which is not a scale rule; choose from floor, ceil, even"),
])
def test_python_argument_errors(tensors, formats, blocks, rules, message):
    with pytest.raises(ValueError) as raised:
        sweep({"wide": tensors["wide"]}, formats, blocks=blocks, rules=rules, jobs=1)
    assert str(raised.value).startswith(message)


def test_a_sweep_with_nothing_it_can_evaluate_is_an_error(tensors):
    with pytest.raises(ValueError, match=r"^nothing to evaluate: nvfp4_2d skipped for 1 tensor\(s\) 'wide': its "
                                         r"16x16 tiles need tensors of at least 2 dimensions$"):
        sweep({"wide": tensors["wide"]}, ["nvfp4_2d"], jobs=1)


def test_parsers_read_blocks_and_rules():
    assert parse_blocks("16, 32,16x16,CHANNEL,16", argument="--block") == (16, 32, (16, 16), "channel")
    assert parse_blocks([16, (16, 16), "tensor"]) == (16, (16, 16), "tensor") and parse_blocks(None) is None
    assert parse_blocks(64) == (64,)
    assert parse_rules("rceil, floor,rceil", argument="--rule") == ("rceil", "floor") and parse_rules(None) is None


# ---- parallel runs -----------------------------------------------------------------------------------------
def _bits(result):
    """Every field of every record, floats by their bits (float.hex: NaN equals NaN)."""
    return [tuple(value.hex() if isinstance(value, float) else value for value in record.as_dict().values())
            for record in result]


def test_results_do_not_depend_on_jobs_or_executor(tensors):
    arguments = dict(formats=["mxfp4", "nvfp4", "nvfp4_2d", "cfloat8_1_4_3"], biases=[3, 9],
                     roundings=["nearest_even", "stochastic"], seed=7, blocks=[16, 32],
                     rules=["floor", "rceil", "amax"], on_note=lambda line: None)
    inline = sweep(tensors, jobs=1, **arguments)
    pool = sweep(tensors, jobs=2, **arguments)
    with concurrent.futures.ThreadPoolExecutor(3) as executor:
        threaded = sweep(tensors, executor=executor, **arguments)
    assert _bits(inline) == _bits(pool) == _bits(threaded)   # NaN SQNRs included (NVFP4 on a NaN tensor)
    assert inline.to_csv() == pool.to_csv() == threaded.to_csv()
    assert any(record.rounding == "stochastic" and record.is_scaled for record in inline)


# ---- summary -----------------------------------------------------------------------------------------------
def test_summary_rows_and_the_comparison_line(tensors):
    result = sweep({"wide": tensors["wide"]}, ["mxfp8_e4m3", "mxfp4", "cfloat8_1_4_3"], [5, 6],
                   ["nearest_even"], blocks=[16, 32], rules=["floor", "rceil"], jobs=1)
    rows = {row["format"]: row for row in result.summary()}
    assert rows["mxfp4:block=16,rule=rceil"]["scaled"] and rows["mxfp4:block=16,rule=rceil"]["family"] == "mxfp4"
    assert not rows["cfloat8_1_4_3"]["scaled"] and rows["cfloat8_1_4_3"]["configurable"]
    table = result.summary_table()
    lines = table.splitlines()
    header = lines[0].split("  ")
    assert [cell.strip() for cell in header if cell.strip()][3:] == [
        "bits", "biases", "best bias", "SQNR dB", "rule bias", "rule SQNR dB", "gap dB", "overflow %", "underflow %",
        "Inf/NaN out %", "Inf/NaN in %"]
    mx = next(line for line in lines if line.split()[:2] == ["wide", "mxfp8_e4m3:block=16"])
    assert mx.split()[3:10] == [f"{8 + 63 * 8 / 1000:.5g}", "-", "-",
                                f"{rows['mxfp8_e4m3:block=16']['best_sqnr_db']:.2f}", "-", "-", "-"]
    cfloat = rows["cfloat8_1_4_3"]
    best8 = max((row for row in rows.values() if row["scaled"] and row["format"].startswith("mxfp8")),
                key=lambda row: (row["best_sqnr_db"], -row["bits_per_value"]))
    best4 = max((row for row in rows.values() if row["format"].startswith("mxfp4")),
                key=lambda row: (row["best_sqnr_db"], -row["bits_per_value"]))
    assert lines[-1] == (
        f"wide, nearest_even: best 8-bit scaled: mxfp8_e4m3 block {best8['block']} rule {best8['rule']} "
        f"{best8['best_sqnr_db']:.2f} dB; best 4-bit scaled: mxfp4 block {best4['block']} rule {best4['rule']} "
        f"{best4['best_sqnr_db']:.2f} dB; cfloat8_1_4_3 at its rule bias {cfloat['rule_bias']}: "
        f"{cfloat['rule_sqnr_db']:.2f} dB (best bias {cfloat['best_bias']}: {cfloat['best_sqnr_db']:.2f} dB)")
    assert lines[-2] == ""
    # overflow % of a floor-rule MX row is what its records say
    assert rows["mxfp8_e4m3:block=16"]["overflow_frac"] > 0
    assert mx.split()[10] == f"{100 * rows['mxfp8_e4m3:block=16']['overflow_frac']:.3g}"


# ---- the command line ----------------------------------------------------------------------------------
def run_cli(*argv):
    return cli.main(["sweep", *argv])


def test_cli_sweeps_blocks_and_rules_end_to_end(tmp_path, capsys):
    status = run_cli("--formats", "mxfp8_e4m3,nvfp4,cfloat8_1_4_3", "--bias", "auto", "--block", "16,32",
                     "--rule", "floor,rceil", "--size", "4096", "--rounding", "nearest_even,stochastic",
                     "--out", str(tmp_path), "--jobs", "1")
    assert status == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if line.startswith("fmtlab sweep: note:")]
    assert notes == ["fmtlab sweep: note: --rule floor,rceil skipped for nvfp4: its tensor scale (NVFP4's second "
                     "level) needs rule amax (nvfp4:tensor_scale=none takes every rule); it keeps its own rule amax"]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "sweep.csv").read_text())))
    formats = ["mxfp8_e4m3:block=16", "mxfp8_e4m3", "mxfp8_e4m3:block=16,rule=rceil", "mxfp8_e4m3:rule=rceil",
               "nvfp4", "nvfp4:block=32", "cfloat8_1_4_3"]
    assert [(row["tensor"], row["format"], row["rounding"]) for row in rows] == [
        (tensor, spec, rounding) for tensor in ("normal", "lognormal") for spec in formats
        for rounding in ("nearest_even", "stochastic")]
    nvfp4 = {(row["format"], row["block"], row["rule"], row["bias"]) for row in rows if row["format"].startswith("nvfp4")}
    assert nvfp4 == {("nvfp4", "16", "amax", "1"), ("nvfp4:block=32", "32", "amax", "1")}
    assert {row["block"] for row in rows if row["format"] == "cfloat8_1_4_3"} == {""}
    summary = (tmp_path / "summary.txt").read_text()
    assert "normal, stochastic: best 8-bit scaled: mxfp8_e4m3 block " in summary
    assert "cfloat8_1_4_3 at its rule bias " in summary and "best 4-bit scaled: nvfp4 block " in summary
    assert "mxfp8_e4m3 (4 with the block and rule axes)" not in captured.out
    assert "formats mxfp8_e4m3, nvfp4, cfloat8_1_4_3 (7 with the block and rule axes); biases auto; blocks 16,32; " \
           "rules floor,rceil;" in captured.out
    for name in ("sqnr_vs_bias.png", "sqnr_vs_block.png", "log2_histogram.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_cli_with_scaled_formats_only_draws_no_bias_plot(tmp_path, capsys):
    assert run_cli("--formats", "mxfp4", "--size", "2048", "--rounding", "nearest_even", "--out", str(tmp_path),
                   "--jobs", "1", "--quiet") == 0
    assert capsys.readouterr().err == ""
    assert (tmp_path / "sqnr_vs_block.png").exists() and not (tmp_path / "sqnr_vs_bias.png").exists()


def test_cli_skips_tiles_on_1d_tensors_with_a_note(tmp_path, capsys):
    generator = np.random.default_rng(4)
    np.savez(tmp_path / "w.npz", weight=generator.standard_normal((48, 64)).astype(np.float32),
             bias=generator.standard_normal(64).astype(np.float32))
    assert run_cli("--input", str(tmp_path / "w.npz"), "--formats", "nvfp4_2d,mxfp8_e4m3", "--rounding",
                   "nearest_even", "--out", str(tmp_path / "out"), "--jobs", "1", "--no-plots", "--quiet") == 0
    assert capsys.readouterr().err == ("fmtlab sweep: note: nvfp4_2d skipped for 1 tensor(s) 'bias': its 16x16 tiles "
                                       "need tensors of at least 2 dimensions\n")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "sweep.csv").read_text())))
    assert [(row["tensor"], row["format"], row["scales"]) for row in rows] == [
        ("weight", "nvfp4_2d", str(3 * 4)), ("weight", "mxfp8_e4m3", str(48 * 2)), ("bias", "mxfp8_e4m3", "2")]


@pytest.mark.parametrize("argv, message", [
    (["--block", "0"], "--block 0 is not allowed; allowed: block sizes as a list such as 16,32,128, tiles such as "
                       "16x16, channel or tensor"),
    (["--block", "16,chanel"], "--block chanel is not allowed (did you mean 'channel'?); allowed: block sizes"),
    (["--block", "16x0"], "--block 16x0 is not allowed; allowed: block sizes"),
    (["--formats", "mxfp8_e4m3,cfloat8_1_4_3", "--block", "16x16"],
     "--block 16x16 applies to none of the formats: mxfp8_e4m3: it has 1-D blocks of 32, and tiles (RxC) replace "
     "only tiles; cfloat8_1_4_3 is not a scaled format"),
    (["--formats", "bf16", "--block", "32"], "--block 32 applies to none of the formats: bf16 is not a scaled format"),
    (["--rule", "flor"], "--rule flor is not allowed (did you mean 'floor'?); allowed: floor, ceil, even, rceil, amax, bias "
                         "(comma-separated)"),
    (["--formats", "nvfp4", "--rule", "floor"],
     "--rule floor applies to none of the formats: nvfp4: its tensor scale (NVFP4's second level) needs rule amax "
     "(nvfp4:tensor_scale=none takes every rule)"),
    (["--formats", "mxfp4:rule=flor"],
     "--formats mxfp4:rule=flor is not allowed (did you mean 'mxfp4:rule=floor'?); allowed: rule=floor, ceil, "
     "even, rceil, amax"),
    (["--formats", "mxfp4:blok=16"], "--formats mxfp4:blok=16 is not allowed (did you mean 'mxfp4:block=16'?)"),
    (["--formats", "mxfp4:block=0"], "--formats mxfp4:block=0 is not allowed; allowed: block=K (a positive int), "
                                     "RxC (a tile such as 16x16), channel or tensor"),
    (["--formats", "e4m3fn:block=32,scale=e9m0"],
     "--formats e4m3fn:block=32,scale=e9m0 is not allowed (did you mean 'e4m3fn:block=32,scale=e8m0'?)"),
    (["--formats", "nvfp4:rule=floor"],
     "--formats nvfp4:rule=floor is not allowed: tensor_scale=fp32 needs rule='amax'"),
    (["--formats", "mxfp8_e4m"], "--formats mxfp8_e4m is not allowed (did you mean 'mxfp8_e4m3'?); allowed: fp32"),
    (["--formats", "cfloat8_1_4_3:blok=32"],
     "--formats cfloat8_1_4_3:blok=32 is not allowed (did you mean 'cfloat8_1_4_3:block=32'?); allowed: a scaled "
     "preset (mxfp8_e4m3"),
])
def test_cli_errors_are_one_line_in_command_line_terms(tmp_path, capsys, argv, message):
    assert run_cli(*argv, "--out", str(tmp_path), "--size", "100", "--jobs", "1") == 2
    err = capsys.readouterr().err
    assert err.startswith("fmtlab sweep: error: " + message) and err.count("\n") == 1, err
    assert "fl." not in err and "Format(" not in err
    assert not (tmp_path / "sweep.csv").exists()


def test_memory_check_counts_what_a_scaled_evaluation_holds():
    class Args:
        dist = None
        input = None
        size = 1 << 20

    with pytest.raises(ValueError, match=r"needs about 120.0 MiB .* plus about 56 per value in each of 2"):
        check_synthetic_memory(Args, 2, available=100 << 20, scaled=True)
    check_synthetic_memory(Args, 2, available=100 << 20)     # 92 MiB: fits unscaled
