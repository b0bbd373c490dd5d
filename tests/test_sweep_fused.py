"""The fused evaluation kernel and the exact sums against quantize-then-exact-rational-sums.

The reference here quantizes with ``fl.quantize`` (the codec, with the same index offset and
seed) and computes every statistic of docs/sweep.md from ``fractions.Fraction`` values: the
sums S, E, D exactly, the counts by comparison, and the metrics by rounding the exact values
once (the correctly rounded square root by checking the neighbours of a candidate in rationals).
Nothing expected comes from fmtlab.metrics or from the C statistics.
"""
import math
import struct
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fmtlab as fl
from fmtlab import _c
from fmtlab.metrics import EXACT_EXPONENT, metrics_from_statistics
from fmtlab.sweep import PieceInput, fused_statistics, sweep

UNIT = Fraction(2) ** EXACT_EXPONENT
FORMATS = ["e4m3fn", "e5m2", "fp16", "bf16", "fp32", "e4m3fnuz", "p3109_8p3", "p3109_8p3_unsigned", "e2m1fn", "e8m0",
           "shp", "uhp", "cfloat8_1_4_3", "cfloat8_1_5_2", "cfloat8_1_4_3:subnormals=tesla", "int8"]


def correctly_rounded_sqrt(value: Fraction) -> float:
    """The float64 nearest to sqrt(value), ties to even (a tie happens when the exact root is a
    midpoint between two float64s, e.g. sqrt((2^53 + 3)^2))."""
    half = (value.numerator.bit_length() - value.denominator.bit_length()) // 2  # keep floats in range
    # Above the largest float64 a root rounds to inf iff it reaches max + half an ulp (2^1024 -
    # 2^970), the midpoint between max and the next power of two (IEEE 754's overflow rule).
    overflow_threshold = Fraction(2 ** 1024 - 2 ** 970)
    if value >= overflow_threshold ** 2:
        return math.inf
    candidate = min(math.ldexp(math.sqrt(float(value / Fraction(4) ** half)), half), sys.float_info.max)
    best = None
    for guess in (math.nextafter(candidate, 0), candidate, math.nextafter(candidate, math.inf)):
        # the candidates come in increasing order: the larger one is nearer when the midpoint
        # between them lies below sqrt(value), i.e. midpoint^2 < value (exact rationals)
        if not math.isfinite(guess):
            continue  # past max: excluded by the threshold above
        if best is None:
            best = guess
            continue
        midpoint = (Fraction(best) + Fraction(guess)) / 2
        if midpoint ** 2 == value:  # the exact root is the midpoint: ties to even
            best = guess if struct.unpack("<q", struct.pack("<d", guess))[0] % 2 == 0 else best
        elif (midpoint ** 2 < value) == (guess > best):
            best = guess
    return best


def rounded(value: Fraction) -> float:
    """float(value) correctly rounded, ±inf past the overflow threshold (Fraction's own float()
    raises OverflowError there)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def reference_statistics(x64, q64, fmt):
    xs = [Fraction(v) if math.isfinite(v) else None for v in x64.tolist()]
    qs = [Fraction(v) if math.isfinite(v) else None for v in q64.tolist()]
    valid = [(a, b) for a, b in zip(xs, qs) if a is not None and b is not None]
    errors = [b - a for a, b in valid]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        float_errors = np.abs(q64 - x64)
        relative = float_errors / np.abs(x64)
    in_v = np.isfinite(x64) & np.isfinite(q64)
    rel_v = relative[in_v & (x64 != 0)]
    return {
        "n": x64.size, "valid": len(valid),
        "zeros_in": int(np.count_nonzero(x64 == 0)), "nan_in": int(np.count_nonzero(np.isnan(x64))),
        "inf_in": int(np.count_nonzero(np.isinf(x64))),
        "overflow": sum(1 for v in x64.tolist() if abs(v) > fmt.max),
        "zeros_out": int(np.count_nonzero(q64 == 0)),
        "below_normal": sum(1 for v in q64.tolist() if abs(v) < fmt.min_normal),
        "nan_out": int(np.count_nonzero(np.isnan(q64))), "inf_out": int(np.count_nonzero(np.isinf(q64))),
        "max_abs": rounded(max((abs(e) for e in errors), default=Fraction(0))),
        "max_rel": float(rel_v.max()) if rel_v.size else 0.0,
        "S": sum((a * a for a, _b in valid), Fraction(0)), "E": sum((e * e for e in errors), Fraction(0)),
        "D": sum(errors, Fraction(0)),
    }


def assert_matches_reference(statistics, reference):
    for name in ("n", "valid", "zeros_in", "nan_in", "inf_in", "overflow", "zeros_out", "below_normal", "nan_out",
                 "inf_out", "max_abs", "max_rel"):
        assert statistics[name] == reference[name], name
    assert statistics["signal"] * UNIT == reference["S"]
    assert statistics["error_energy"] * UNIT == reference["E"]
    assert statistics["error_sum"] * UNIT == reference["D"]
    metrics = metrics_from_statistics(statistics)
    valid = reference["valid"]
    if valid == 0:
        assert math.isnan(metrics["sqnr_db"]) and math.isnan(metrics["rmse"]) and math.isnan(metrics["mean_err"])
        return
    S, E, D = reference["S"], reference["E"], reference["D"]
    if E == 0:
        assert metrics["sqnr_db"] == math.inf
    elif S == 0:
        assert metrics["sqnr_db"] == -math.inf
    elif 2.0 ** -1022 <= S / E <= Fraction(1.7976931348623157e308):
        assert metrics["sqnr_db"] == 10 * math.log10(float(S / E))
    else:
        assert metrics["sqnr_db"] == pytest.approx(10 * (math.log10(S.numerator) - math.log10(S.denominator)
                                                         - math.log10(E.numerator) + math.log10(E.denominator)),
                                                   rel=1e-12)
    assert metrics["rmse"] == correctly_rounded_sqrt(E / valid)
    assert metrics["mean_err"] == rounded(D / valid)


def values_strategy():
    special = st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 1e-45, -1e-45, 2.0 ** -126, 3.4e38, 448.0,
                               480.0, 500.0, 57344.0, 65504.0, 65520.0, 2.0 ** -9, 2.0 ** -10, 1.0625])
    scaled = st.builds(lambda m, e: math.ldexp(m, e), st.floats(-2, 2, allow_nan=False, width=32),
                       st.integers(-150, 128))
    return st.lists(st.one_of(special, scaled, st.floats(width=32)), min_size=0, max_size=200)


def _format(name, bias):
    fmt = fl.format(name)
    if name.startswith("cfloat8"):
        fmt = fmt.replace(bias=bias)
    return fmt


@settings(max_examples=150, deadline=None)
@given(values=values_strategy(), name=st.sampled_from(FORMATS), bias=st.integers(0, 63),
       rounding=st.sampled_from(fl.ROUNDINGS), seed=st.integers(0, 2 ** 64 - 1), offset=st.integers(0, 2 ** 40),
       wide=st.booleans())
def test_fused_kernel_equals_quantize_then_exact_sums(values, name, bias, rounding, seed, offset, wide):
    """Float32 and float64 inputs, every rounding mode, NaN/Inf, zeros, subnormal and overflow edges."""
    fmt = _format(name, bias)
    with np.errstate(over="ignore"):
        x = np.array(values, np.float32)
    if wide:  # float64 input, not float32-exact
        x = x.astype(np.float64) * (1 + 2.0 ** -40)
    base = PieceInput(x, offset, offset + x.size)
    statistics = fused_statistics(base, fmt, rounding, seed)
    source = base.original if fmt.decode_dtype == base.original.dtype else base.x
    q = fl.quantize(source, fmt, rounding, seed=seed, index_offset=offset).astype(np.float64)
    assert_matches_reference(statistics, reference_statistics(base.x, q, fmt))


def _fused_c(x, fmt, request, offset):
    """The C kernel itself, with a rounding request of any sr_bits / sr_rule."""
    stats = _c.ffi.new("fl_sweep_stats *")
    function, value_type = _c.float_entry("sweep_evaluate", x.dtype)
    _c.check_status(function(_c.pointer(x, value_type), x.size, _c.c_format(fmt), _c.c_rounding(request), offset,
                             float(fmt.max), float(fmt.min_normal), stats), "test")
    from fmtlab.metrics import exact_signal

    return _c.sweep_statistics(stats, exact_signal(x.astype(np.float64)))


@settings(max_examples=80, deadline=None)
@given(values=values_strategy(), name=st.sampled_from(FORMATS[:-1]), bias=st.integers(0, 63),
       seed=st.integers(0, 2 ** 64 - 1), sr_bits=st.one_of(st.none(), st.integers(1, 32)),
       sr_rule=st.sampled_from(_c.SR_RULES), saturate=st.sampled_from([False, True, "sat_finite", "sat_none"]),
       offset=st.integers(0, 2 ** 62))
def test_fused_kernel_stochastic_with_sr_bits_and_saturation(values, name, bias, seed, sr_bits, sr_rule, saturate,
                                                            offset):
    fmt = _format(name, bias)
    if sr_bits is None:
        sr_rule = "truncate"
    if saturate in ("sat_finite", "sat_none") and not name.startswith("p3109"):
        saturate = False
    with np.errstate(over="ignore"):
        x = np.array(values, np.float32)
    request = _c.rounding_request("stochastic", saturate, seed, sr_bits, sr_rule)
    statistics = _fused_c(x, fmt, request, offset)
    q = fl.quantize(x, fmt, "stochastic", saturate=saturate, seed=seed, sr_bits=sr_bits, sr_rule=sr_rule,
                    index_offset=offset).astype(np.float64)
    assert_matches_reference(statistics, reference_statistics(x.astype(np.float64), q, fmt))


def test_all_zero_and_empty_pieces():
    for x in (np.zeros(1000, np.float32), np.zeros(0, np.float32)):
        statistics = fused_statistics(PieceInput(x, 0, x.size), fl.format("cfloat8_1_4_3"), "stochastic", 3)
        reference = reference_statistics(x.astype(np.float64), np.zeros(x.size), fl.CFLOAT8_1_4_3)
        assert_matches_reference(statistics, reference)


def test_a_long_piece_spans_many_flushes_and_fast_blocks():
    """2^17 + 3 values (two bin flushes, 257 fast blocks, a short last one), float32 and float64."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((1 << 17) + 3) * np.exp(rng.uniform(-30, 30, (1 << 17) + 3))).astype(np.float32)
    fmt = fl.format("cfloat8_1_5_2", bias=20)
    for source in (x, x.astype(np.float64)):
        base = PieceInput(source, 5, 5 + x.size)
        statistics = fused_statistics(base, fmt, "stochastic", 9)
        q = fl.quantize(source, fmt, "stochastic", seed=9, index_offset=5).astype(np.float64)
        x64 = x.astype(np.float64)
        e = [Fraction(b) - Fraction(a) for a, b in zip(x64.tolist(), q.tolist())]
        assert statistics["error_energy"] * UNIT == sum(v * v for v in e)
        assert statistics["error_sum"] * UNIT == sum(e)
        assert statistics["signal"] * UNIT == sum(Fraction(v) ** 2 for v in x64.tolist())


@settings(max_examples=15, deadline=None)
@given(values=values_strategy().filter(lambda v: len(v) > 0), rounding=st.sampled_from(["nearest_even", "stochastic",
                                                                                       "toward_zero"]))
def test_sweep_records_are_the_exact_metrics_for_any_chunk(values, rounding):
    """A sweep's records (chunk 1, 7, whole) are the metrics of the exact reference."""
    with np.errstate(over="ignore"):
        x = np.array(values, np.float32)
    fmt = fl.format("cfloat8_1_4_3", bias=9)
    q = fl.quantize(x, fmt, rounding, seed=4).astype(np.float64)
    reference = reference_statistics(x.astype(np.float64), q, fmt)
    for chunk in (1, 7, 1 << 30):
        record = next(r for r in sweep({"x": x}, "cfloat8_1_4_3", [9], rounding, seed=4, jobs=1, chunk=chunk)
                      if r.bias == 9)
        statistics = {"n": reference["n"], "valid": reference["valid"], "zeros_in": reference["zeros_in"],
                      "nan_in": reference["nan_in"], "inf_in": reference["inf_in"], "overflow": reference["overflow"],
                      "zeros_out": reference["zeros_out"], "below_normal": reference["below_normal"],
                      "nan_out": reference["nan_out"], "inf_out": reference["inf_out"],
                      "max_abs": reference["max_abs"], "max_rel": reference["max_rel"]}
        expected = {}
        if reference["valid"]:
            S, E, D = reference["S"], reference["E"], reference["D"]
            expected = {"sqnr_db": math.inf if E == 0 else (-math.inf if S == 0 else 10 * math.log10(float(S / E))),
                        "rmse": correctly_rounded_sqrt(E / reference["valid"]),
                        "mean_err": float(D / reference["valid"])}
        for name, value in expected.items():
            assert getattr(record, name) == value, (name, chunk)
        if reference["valid"]:
            assert (record.max_abs_err, record.max_rel_err) == (statistics["max_abs"], statistics["max_rel"])
        else:
            assert math.isnan(record.max_abs_err) and math.isnan(record.sqnr_db)
        assert record.overflow_frac == reference["overflow"] / reference["n"]


def test_the_statistics_entry_points_return_their_documented_codes():
    x = np.ones(4, np.float32)
    x64 = np.ones(4)
    stats = _c.ffi.new("fl_sweep_stats *")
    request = _c.c_rounding(_c.rounding_request("nearest_even"))
    fmt = _c.c_format(fl.E4M3FN)
    lib, null = _c.lib, _c.ffi.NULL
    assert lib.fl_sweep_evaluate_f32(_c.pointer(x, "float"), -1, fmt, request, 0, 448.0, 2.0 ** -6, stats) == \
        lib.FL_ERROR_ARGUMENT
    assert lib.fl_sweep_evaluate_f32(_c.pointer(x, "float"), 4, fmt, request, 0, 448.0, 2.0 ** -6, null) == \
        lib.FL_ERROR_ARGUMENT
    assert lib.fl_sweep_evaluate_f64(null, 4, fmt, request, 0, 448.0, 2.0 ** -6, stats) == lib.FL_ERROR_ARGUMENT
    bad_format = _c.ffi.new("fl_format *")
    assert lib.fl_sweep_evaluate_f32(_c.pointer(x, "float"), 4, bad_format, request, 0, 1.0, 1.0, stats) == \
        lib.FL_ERROR_FORMAT
    bad_mode = _c.ffi.new("fl_rounding *")
    bad_mode.mode = 7
    assert lib.fl_sweep_evaluate_f64(_c.pointer(x64, "double"), 4, fmt, bad_mode, 0, 1.0, 1.0, stats) == \
        lib.FL_ERROR_ROUNDING_MODE
    assert lib.fl_sweep_statistics_f64(_c.pointer(x64, "double"), null, 4, 1.0, 1.0, stats) == lib.FL_ERROR_ARGUMENT
    assert lib.fl_exact_signal_f64(_c.pointer(x64, "double"), -2, _c.ffi.new("fl_exact_sum *")) == \
        lib.FL_ERROR_ARGUMENT
    assert lib.fl_sweep_evaluate_f32(_c.pointer(x, "float"), 4, fmt, request, 0, 448.0, 2.0 ** -6, stats) == lib.FL_OK
    assert stats.n == 4 and stats.valid == 4 and _c.exact_int(stats.error_energy) == 0


@settings(max_examples=120, deadline=None)
@given(pairs=st.lists(st.tuples(st.floats(width=64), st.floats(width=64)), max_size=60),
       name=st.sampled_from(["fp32", "bf16", "cfloat8_1_5_2"]))
def test_exact_statistics_of_any_float64_pairs(pairs, name):
    """fmtlab.metrics.exact_statistics on arbitrary float64 x and q (not a rounding of each other:
    the general terms q^2 - 2 q x + x^2, subnormals to near 2^1024, NaN and Inf) against exact
    rational sums."""
    from fmtlab.metrics import exact_statistics

    fmt = fl.format(name)
    x = np.array([a for a, _b in pairs], np.float64)
    q = np.array([b for _a, b in pairs], np.float64)
    assert_matches_reference(exact_statistics(x, q, fmt), reference_statistics(x, q, fmt))


@settings(max_examples=20, deadline=None)
@given(values=values_strategy().filter(lambda v: len(v) > 0), name=st.sampled_from(["bf16", "e4m3fn", "cfloat8_1_4_3"]),
       rounding=st.sampled_from(["nearest_even", "stochastic", "up"]))
def test_error_metrics_and_the_sweep_give_the_same_numbers(values, name, rounding):
    """One definition: fl.metrics.error_metrics(x, fl.quantize(x, ...)) is the sweep's record."""
    from fmtlab.metrics import METRIC_NAMES, error_metrics

    with np.errstate(over="ignore"):
        x = np.array(values, np.float32)
    fmt = fl.format(name)
    expected = error_metrics(x, fl.quantize(x, fmt, rounding, seed=2), fmt)
    record = next(r for r in sweep({"x": x}, name, None, rounding, seed=2, jobs=1, chunk=3) if r.bias == fmt.bias)
    for metric in METRIC_NAMES:
        got, want = getattr(record, metric), expected[metric]
        assert got == want or (math.isnan(got) and math.isnan(want)), metric


@pytest.mark.parametrize("pairs", [[(1.7e308, -1.7e308)], [(1.7e308, -1.7e308), (0.0, 0.0)],
                                   [(1.7976931348623157e308, 0.0)], [(1.7e308, -1.7e308), (-1.7e308, 1.7e308)],
                                   [(1.0, 9007199254740996.0)]])
def test_exact_statistics_whose_errors_pass_the_largest_float64(pairs):
    """|e| = |q - x| beyond 2^1024 (exact in the sums): max_abs_err, rmse and mean_err round to
    ±inf by IEEE 754's overflow rule, or stay finite, as the exact rational values say; and an
    rmse whose exact value 2^53 + 3 is a midpoint of float64s rounds to even (2^53 + 4)."""
    from fmtlab.metrics import exact_statistics

    fmt = fl.format("bf16")
    x = np.array([a for a, _b in pairs], np.float64)
    q = np.array([b for _a, b in pairs], np.float64)
    assert_matches_reference(exact_statistics(x, q, fmt), reference_statistics(x, q, fmt))
