"""fl.sweep: records, the amax bias rule, the best bias against brute force, parallel runs, errors."""
import concurrent.futures
import csv
import io
import json
import math

import numpy as np
import pytest

import fmtlab as fl
from fmtlab._parse import parse_biases, parse_formats, parse_roundings
from fmtlab._pool import Interrupted
from fmtlab._records import COLUMNS, SweepResult
from fmtlab.sweep import best_bias, rule_bias as amax_rule_bias, sweep

# Largest finite value at bias b, from the Tesla whitepaper's ranges (Tables 4/5):
# CFloat8_1_4_3 spans up to 1.875 * 2^(15 - b), CFloat8_1_5_2 up to 1.75 * 2^(31 - b).
WHITEPAPER_MAX = {"cfloat8_1_4_3": lambda b: 1.875 * 2.0 ** (15 - b),
                  "cfloat8_1_5_2": lambda b: 1.75 * 2.0 ** (31 - b)}


def sqnr_db(x, q):
    """10 log10(sum x^2 / sum (q - x)^2) with exactly rounded sums (math.fsum)."""
    x, q = np.asarray(x, np.float64), np.asarray(q, np.float64)
    noise = math.fsum((q - x) ** 2)
    return math.inf if noise == 0 else 10 * math.log10(math.fsum(x * x) / noise)


def rule_by_definition(name, amax):
    fitting = [b for b in range(64) if amax <= WHITEPAPER_MAX[name](b)]
    return max(fitting) if fitting else 0


@pytest.fixture(scope="module")
def data():
    generator = np.random.default_rng(1)
    return {"wide": (generator.lognormal(0, 2.5, 3000) * np.sign(generator.standard_normal(3000))
                     * 2.0 ** -6).astype(np.float32),
            "narrow": generator.uniform(-40, 40, 2000).astype(np.float32)}


# ---- the amax rule ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cfloat8_1_4_3", "cfloat8_1_5_2"])
@pytest.mark.parametrize("amax", [0.0, 1e-30, 2.0 ** -40, 0.3, 1.0, 1.875, 1.9, 480.0, 481.0, 61440.0,
                                  61441.0, 114688.0, 1e9, 1e30])
def test_amax_rule_is_the_largest_bias_whose_max_fits(name, amax):
    # amax = 0: nothing to fit, every bias gives the same zeros; the rule keeps the format's own bias
    expected = fl.format(name).bias if amax == 0 else rule_by_definition(name, amax)
    assert amax_rule_bias(fl.format(name), amax) == expected


def test_amax_rule_for_fixed_formats_and_nan():
    assert amax_rule_bias(fl.BF16, 1e5) == 127
    assert amax_rule_bias(fl.CFLOAT8_1_4_3, math.nan) == 7


# ---- best bias against brute force ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cfloat8_1_4_3", "cfloat8_1_5_2"])
@pytest.mark.parametrize("rounding", ["nearest_even", "stochastic"])
def test_best_bias_equals_brute_force_over_all_biases(data, name, rounding):
    result = sweep(data, [name], biases="all", roundings=[rounding], seed=3, jobs=1)
    for tensor, x in data.items():
        records = [r for r in result if r.tensor == tensor]
        assert [r.bias for r in records] == list(range(64))
        brute = {b: sqnr_db(x, fl.quantize(x, fl.format(name, bias=b), rounding, seed=3)) for b in range(64)}
        rule = rule_by_definition(name, float(np.abs(x).max()))
        top = max(brute.values())
        # Highest SQNR; among equal SQNRs the bias nearest the rule, then the smaller.
        expected = min((b for b in brute if brute[b] == top), key=lambda b: (abs(b - rule), b))
        assert {r.best_bias for r in records} == {expected}
        assert {r.rule_bias for r in records} == {rule}
        for record in records:
            assert record.sqnr_db == pytest.approx(brute[record.bias], rel=1e-12, abs=1e-12)
            assert record.is_best_bias == (record.bias == expected)
            assert record.is_rule_bias == (record.bias == rule)
            assert record.sqnr_gap_db == pytest.approx(brute[expected] - brute[rule], rel=1e-9, abs=1e-12)
            assert record.sqnr_gap_db >= 0


def test_an_outlier_just_above_a_binade_makes_the_rule_lose_to_the_best_bias():
    # Away from saturation and underflow the bias does not change the rounding error, so the
    # amax rule is usually optimal.  Here amax = 240 + 2^-10 is just above max(8) = 240: the rule
    # takes bias 7, while bias 8 saturates that one value by 2^-10 and halves the error of the
    # 4000 values in [2^-10, 2^-6], which are subnormal at bias 7 (min normal 2^-6).
    generator = np.random.default_rng(0)
    x = np.concatenate([[240 + 2.0 ** -10], generator.uniform(2.0 ** -10, 2.0 ** -6, 4000)]).astype(np.float32)
    result = sweep({"x": x}, ["cfloat8_1_4_3"], "all", jobs=1)
    assert result[0].rule_bias == 7
    assert result[0].best_bias >= 8 and result[0].sqnr_gap_db > 1


def _rows(pairs):
    return [(bias, {"sqnr_db": value}) for bias, value in pairs]


def test_best_bias_tie_rule_on_constructed_ties():
    # The stated rule: highest SQNR (NaN as -inf); among equal SQNRs the bias nearest the rule
    # bias, then the smaller.
    assert best_bias(_rows([(3, 10.0), (4, 12.0), (9, 11.0)]), rule_bias=9) == 4            # highest wins
    assert best_bias(_rows([(3, 12.0), (7, 12.0), (10, 12.0), (9, 1.0)]), rule_bias=9) == 10  # nearest the rule
    assert best_bias(_rows([(3, 12.0), (5, 12.0), (4, 9.0)]), rule_bias=4) == 3              # equally near: smaller
    assert best_bias(_rows([(6, math.inf), (8, math.inf), (7, 5.0)]), rule_bias=7) == 6     # +inf ties too
    assert best_bias(_rows([(1, math.nan), (2, -50.0)]), rule_bias=1) == 2                  # NaN loses to anything


def test_tied_biases_in_a_sweep_resolve_to_the_one_nearest_the_rule():
    # 0.5, 1 and 2 are exact in CFloat8 1-4-3 at every bias from 0 to 14 (0.5 is the subnormal
    # m/8 * 2^(1 - b) with m = 2, 4 at biases 0, 1 and a normal above; 2 = 1.0 * 2^1 needs
    # max(b) = 1.875 * 2^(15 - b) >= 2), so those 15 biases tie at +inf SQNR; the rule bias is 14.
    x = np.array([1.0, 0.5, 2.0, -1.0], np.float32)
    result = sweep({"x": x}, ["cfloat8_1_4_3"], "all", jobs=1)
    tied = [r.bias for r in result if r.sqnr_db == math.inf]
    assert tied == list(range(0, 15))
    assert result[0].rule_bias == rule_by_definition("cfloat8_1_4_3", 2.0) == 14
    assert [r.bias for r in result if r.is_best_bias] == [14]


def test_non_finite_inputs_are_counted_in_every_record():
    # 10 values: 2 NaN, 1 +Inf; CFloat8 has no NaN/Inf codes (all results finite), fp16 keeps them.
    x = np.array([1.0, np.nan, 0.5, np.inf, 2.0, np.nan, 3.0, -1.0, 0.25, 4.0], np.float32)
    result = sweep({"w": x}, ["cfloat8_1_4_3", "fp16"], [10], jobs=1)
    for record in result:
        assert record.nan_input_frac == 2 / 10 and record.inf_input_frac == 1 / 10
        assert record.amax == 4.0  # over the finite values
    cfloat = [r for r in result if r.format == "cfloat8_1_4_3"]
    assert all(r.nan_frac == 0 and r.inf_frac == 0 for r in cfloat)  # what hid the NaNs before
    fp16 = next(r for r in result if r.format == "fp16")
    assert fp16.nan_frac == 2 / 10 and fp16.inf_frac == 1 / 10
    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    assert {(row["nan_input_frac"], row["inf_input_frac"]) for row in rows} == {("0.2", "0.1")}
    assert {row["nonfinite_input_frac"] for row in result.summary()} == {0.30000000000000004}  # 0.2 + 0.1
    table = result.summary_table().splitlines()
    assert table[0].endswith("Inf/NaN in %") and all(line.endswith(" 30") for line in table[2:])


def test_an_interrupted_sweep_keeps_the_complete_groups(data):
    arguments = dict(formats=["bf16", "cfloat8_1_4_3"], biases="all", roundings=["nearest_even", "stochastic"],
                     seed=4, chunk=1000)
    full = sweep(data, jobs=1, **arguments)

    def progress(done, total):
        if done == 4:
            raise KeyboardInterrupt  # Ctrl-C after the fourth task

    with pytest.raises(Interrupted) as caught:
        sweep(data, jobs=1, progress=progress, **arguments)
    partial, planned = caught.value.partial, caught.value.planned
    assert isinstance(partial, SweepResult) and planned == len(full) == 2 * (2 + 2 * 64)
    # A task is a row range and whole (format, rounding) groups on it (fmtlab._sweep_tasks); this
    # sweep (650,000 element evaluations) is below MIN_TASK_EVALUATIONS, so each range of chunk=1000
    # rows is one task with all four groups: "wide" rows 0-999, 1000-1999, 2000-2999, then "narrow"
    # rows 0-999, 1000-1999.  After four tasks every group of "wide" is complete and every group of
    # "narrow" has half its rows merged: those must not be reported (their statistics are of rows
    # 0-999 alone, plausible numbers but wrong).
    assert [(r.tensor, r.format, r.rounding) for r in partial] == [
        ("wide", "bf16", "nearest_even"), ("wide", "bf16", "stochastic")] + [
        ("wide", "cfloat8_1_4_3", rounding) for rounding in ("nearest_even", "stochastic") for _bias in range(64)]
    assert list(partial) == [r for r in full if r.tensor == "wide"]


def test_an_interrupted_parallel_sweep_keeps_only_complete_groups(data):
    # chunk=500: "wide" is six tasks (row ranges, both groups on each), "narrow" four; stopped after
    # seven, "narrow" is at most part done
    arguments = dict(formats=["cfloat8_1_4_3"], biases="all", roundings=["nearest_even", "stochastic"], seed=4,
                     chunk=500)
    full = sweep(data, jobs=1, **arguments)

    def progress(done, total):
        if done >= 7:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as caught:
        sweep(data, jobs=2, progress=progress, **arguments)
    partial = caught.value.partial
    groups = {(r.tensor, r.format, r.rounding) for r in partial}
    assert len(partial) < len(full)
    assert list(partial) == [r for r in full if (r.tensor, r.format, r.rounding) in groups]


def test_auto_evaluates_only_the_rule_bias(data):
    result = sweep(data, ["cfloat8_1_4_3", "bf16"], biases="auto", jobs=1)
    for record in result:
        assert record.bias == record.rule_bias == record.best_bias and record.sqnr_gap_db == 0
    assert [r.bias for r in result if r.tensor == "narrow" and r.format == "cfloat8_1_4_3"] == [
        rule_by_definition("cfloat8_1_4_3", float(np.abs(data["narrow"]).max()))]


def test_bias_list_adds_the_rule_bias_and_none_uses_each_formats_bias(data):
    narrow = {"narrow": data["narrow"]}  # amax ~40: CFloat8 1-4-3 rule bias 10 (max 60; bias 11: 30)
    result = sweep(narrow, ["cfloat8_1_4_3"], biases=[7, 9], jobs=1)
    assert [r.bias for r in result] == [7, 9, 10]
    result = sweep(narrow, ["cfloat8_1_4_3:bias=5", "fp16"], biases=None, jobs=1)
    assert [(r.format, r.bias) for r in result] == [("cfloat8_1_4_3", 5), ("cfloat8_1_4_3", 10), ("fp16", 15)]


def test_records_reproduce_with_quantize_and_the_seed(data):
    x = data["narrow"]
    result = sweep({"x": x}, ["cfloat8_1_5_2:subnormals=tesla"], biases=[20], roundings=["stochastic"], seed=9,
                   jobs=1)
    record = next(r for r in result if r.bias == 20)
    assert record.format == "cfloat8_1_5_2:subnormals=tesla"
    q = fl.quantize(x, fl.format("cfloat8_1_5_2", bias=20, subnormals="tesla"), "stochastic", seed=9)
    assert record.sqnr_db == pytest.approx(sqnr_db(x, q), rel=1e-12)
    assert record.n == x.size and record.amax == float(np.abs(x).max()) and record.seed == 9


# ---- running in parallel ---------------------------------------------------------------------------------
def test_results_do_not_depend_on_jobs_or_executor(data):
    arguments = dict(formats=["bf16", "cfloat8_1_4_3"], biases=[0, 5, 9, 30], roundings=["nearest_even", "stochastic"],
                     seed=2)
    inline = sweep(data, jobs=1, **arguments)
    pool = sweep(data, jobs=2, **arguments)
    with concurrent.futures.ThreadPoolExecutor(3) as executor:
        threaded = sweep(data, executor=executor, **arguments)
    assert inline == pool == threaded
    assert inline.to_csv() == pool.to_csv()


def test_progress_callback_sees_every_task(data):
    calls = []
    sweep(data, ["cfloat8_1_4_3"], biases=[1, 2], jobs=1, progress=lambda done, total: calls.append((done, total)))
    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1] and len(calls) == calls[-1][1] + 1


def test_package_attribute_is_the_function_after_importing_the_submodule(data):
    # `import fmtlab.sweep` must not leave fl.sweep bound to the submodule.
    import importlib
    importlib.import_module("fmtlab.sweep")
    assert fl.sweep is sweep and callable(fl.sweep)
    assert fl.sweep(data["narrow"], "bf16", jobs=1) == sweep(data["narrow"], "bf16", jobs=1)


# ---- writers and summary -------------------------------------------------------------------------------
def test_csv_json_and_summary(data, tmp_path):
    result = sweep({"narrow": data["narrow"]}, ["fp16", "cfloat8_1_4_3"], biases=[9, 10, 11],
                   roundings=["nearest_even", "toward_zero"], jobs=1)
    assert isinstance(result, SweepResult)
    result.to_csv(tmp_path / "s.csv")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "s.csv").read_text())))
    assert tuple(rows[0]) == COLUMNS and len(rows) == len(result) == 2 * (1 + 3)
    assert float(rows[1]["sqnr_db"]) == result[1].sqnr_db
    parsed = json.loads(result.to_json(tmp_path / "s.json"))
    assert parsed == json.loads((tmp_path / "s.json").read_text())
    assert parsed[0]["format"] == "fp16" and parsed[0]["bias"] == 15
    summary = result.summary()
    assert [(row["format"], row["rounding"]) for row in summary] == [
        ("fp16", "nearest_even"), ("fp16", "toward_zero"), ("cfloat8_1_4_3", "nearest_even"),
        ("cfloat8_1_4_3", "toward_zero")]
    table = result.summary_table()
    assert "best bias" in table and "cfloat8_1_4_3" in table and len(table.splitlines()) == 2 + 4
    # toward_zero is biased toward zero: on positive-and-negative data the mean error is small but
    # |q| <= |x| everywhere, so the SQNR is lower than nearest-even's.
    assert summary[3]["best_sqnr_db"] < summary[2]["best_sqnr_db"]


def test_exact_results_write_inf(data):
    result = sweep({"x": np.array([1.0, 0.5, -2.0], np.float32)}, ["fp16"], jobs=1)
    assert result[0].sqnr_db == math.inf and "inf" in result.to_csv()
    assert json.loads(result.to_json())[0]["sqnr_db"] == "inf"


# ---- bad arguments ------------------------------------------------------------------------------------
@pytest.mark.parametrize("biases, message", [
    ("70", "biases has the value 70"), ("abc", "bad item 'abc'"), ("5-3", "empty range '5-3'"),
    ([], "is empty"), ([1.5], "biases has the value 1.5"), ("-1", "bad item '-1'"), ([True], "value True"),
])
def test_bad_bias_lists_are_rejected(biases, message):
    with pytest.raises(ValueError, match=message):
        parse_biases(biases)


def test_bias_parsing():
    assert parse_biases("all") == "all" and parse_biases(" AUTO ") == "auto" and parse_biases(None) is None
    assert parse_biases("9,3-5,4") == (3, 4, 5, 9) and parse_biases(range(2)) == (0, 1) and parse_biases(7) == (7,)


def test_format_and_rounding_parsing():
    fmts = parse_formats("fp16, cfloat8_1_4_3:bias=10,subnormals=tesla ,bf16")
    assert [str(f) for f in fmts] == ["fp16", "cfloat8_1_4_3(bias=10, subnormals='tesla')", "bf16"]
    with pytest.raises(ValueError, match="format name 'fp17' is unknown"):
        parse_formats("fp16,fp17")
    with pytest.raises(TypeError, match="formats has 3"):
        parse_formats([3])
    assert parse_roundings("stochastic,nearest_even,stochastic") == ("stochastic", "nearest_even")
    with pytest.raises(ValueError, match="roundings has 'nearest', which is not a rounding mode; choose from"):
        parse_roundings(["nearest"])


def test_sweep_argument_errors(data):
    with pytest.raises(ValueError, match="seed=-1 is not allowed"):
        sweep(data, "bf16", seed=-1)
    with pytest.raises(ValueError, match="jobs=0 is not allowed"):
        sweep(data, "bf16", jobs=0)
    with pytest.raises(TypeError, match="executor=.* is not allowed"):
        sweep(data, "bf16", executor="dask")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sweep("/nonexistent/weights.safetensors", "bf16")


def test_the_gap_is_zero_when_the_best_bias_is_the_rule_bias_even_with_a_nan_sqnr():
    # Every value NaN: every SQNR is NaN, the best bias is the rule bias, and the cheap rule costs nothing.
    x = np.full(8, np.nan, np.float32)
    result = sweep({"x": x}, ["cfloat8_1_4_3", "fp16"], [3, 7], jobs=1)
    assert all(math.isnan(record.sqnr_db) for record in result)
    assert all(record.sqnr_gap_db == 0 for record in result)
    assert {record.best_bias for record in result if record.format == "cfloat8_1_4_3"} == {7}


def test_element_records_carry_empty_scaling_columns(data):
    result = sweep({"narrow": data["narrow"]}, ["fp16", "cfloat8_1_4_3"], [10], jobs=1)
    assert {(record.block, record.rule, record.scales, record.is_scaled) for record in result} == {("", "", 0, False)}
    assert [(record.format, record.bias, record.bits_per_value) for record in result] == [
        ("fp16", 15, 16.0), ("cfloat8_1_4_3", 10, 8.0)]   # 10 is also the rule bias (amax ~ 40)
    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    assert list(rows[0])[:5] == ["tensor", "format", "block", "rule", "bias"] and rows[0]["block"] == ""


def test_a_record_as_a_dict_is_dataclasses_asdict():
    """SweepRecord.as_dict reads the fields directly (fast); it must equal dataclasses.asdict."""
    import dataclasses

    result = sweep({"x": np.linspace(-3, 3, 1000).astype(np.float32)}, "bf16,cfloat8_1_4_3,mxfp8_e4m3", [3, 9],
                   ["nearest_even"], jobs=1)
    assert len(result) >= 4  # bf16, mxfp8_e4m3, cfloat8 at 3 and 9 (and its rule bias)
    for record in result:
        assert record.as_dict() == dataclasses.asdict(record)
        assert list(record.as_dict()) == [field.name for field in dataclasses.fields(record)]
