"""Metrics of fmtlab.metrics against values computed independently.

The expected values come from hand arithmetic or from exact rational arithmetic
(fractions) on a reference rounding written here: a sorted list of every finite value of
the format, built from the field formulas, and round-to-nearest-even over it.  Nothing
expected is produced by the code under test.
"""
import math
from fractions import Fraction

import numpy as np
import pytest

import fmtlab as fl
from fmtlab.metrics import METRIC_NAMES, PreparedInput, error_metrics


# ---- an independent reference: value sets and nearest-even rounding -----------------------------
def finite_values(exp_bits, man_bits, bias, top_exponent_is_finite):
    """Every non-negative finite value with its mantissa-field parity: [(value, mantissa_is_even)]."""
    values = [(Fraction(0), True)]
    for mantissa in range(1, 1 << man_bits):  # subnormals (IEEE reading): 2^(1-bias) * m / 2^man_bits
        values.append((Fraction(mantissa, 1 << man_bits) * Fraction(2) ** (1 - bias), mantissa % 2 == 0))
    top = (1 << exp_bits) - 1 if top_exponent_is_finite else (1 << exp_bits) - 2
    for exponent in range(1, top + 1):
        for mantissa in range(1 << man_bits):
            value = (1 + Fraction(mantissa, 1 << man_bits)) * Fraction(2) ** (exponent - bias)
            values.append((value, mantissa % 2 == 0))
    return values


def round_nearest_even_saturating(x, values):
    """x (a Fraction) to the nearest of values, ties to the even mantissa; beyond max: max."""
    magnitude = abs(x)
    largest = values[-1][0]
    if magnitude >= largest:
        result = largest
    else:
        below = max((v for v in values if v[0] <= magnitude), key=lambda v: v[0])
        above = min((v for v in values if v[0] >= magnitude), key=lambda v: v[0])
        if magnitude - below[0] < above[0] - magnitude:
            result = below[0]
        elif magnitude - below[0] > above[0] - magnitude:
            result = above[0]
        else:
            result = below[0] if below[1] else above[0]
    return -result if x < 0 else result


def exact_metrics(xs, qs, fmt_max, fmt_min_normal):
    """The documented metrics from exact Fractions (finite inputs and outputs only)."""
    n = len(xs)
    errors = [q - x for x, q in zip(xs, qs)]
    signal = sum(x * x for x in xs)
    noise = sum(e * e for e in errors)
    relative = [abs(e) / abs(x) for x, e in zip(xs, errors) if x != 0]
    return {
        "sqnr_db": math.inf if noise == 0 else 10 * math.log10(signal / noise),
        "rmse": math.sqrt(noise / n),
        "max_abs_err": float(max(abs(e) for e in errors)),
        "max_rel_err": float(max(relative)) if relative else 0.0,
        "mean_err": float(sum(errors) / n),
        "overflow_frac": sum(abs(x) > fmt_max for x in xs) / n,
        "underflow_frac": sum(x != 0 and q == 0 for x, q in zip(xs, qs)) / n,
        "subnormal_frac": sum(0 < abs(q) < fmt_min_normal for q in qs) / n,
        "nan_frac": 0.0,
        "inf_frac": 0.0,
        "nan_input_frac": 0.0,
        "inf_input_frac": 0.0,
    }


def assert_metrics_close(actual, expected):
    assert set(actual) == set(METRIC_NAMES)
    for name in METRIC_NAMES:
        assert actual[name] == pytest.approx(expected[name], rel=1e-12, abs=0), name


# ---- hand-computed ---------------------------------------------------------------------------------
def test_hand_computed_cfloat8_1_4_3_bias_7():
    # CFloat8 1-4-3, bias 7: max 1.875 * 2^8 = 480, min normal 2^-6, min subnormal 2^-9.
    #   1          -> 1                  exact
    #   1.0625     -> 1        (tie between 1 and 1.125; 1 has the even mantissa 000)   e = -1/16
    #   3          -> 3                  exact
    #   -0.328125  -> -0.3125  (tie between 10/32 and 11/32; 10/32 = 1.010b * 2^-2 is even)  e = +1/64
    #   500        -> 480      (saturates: finite format)                              e = -20
    #   2^-11      -> 0        (below half of 2^-9: underflow)                          e = -2^-11
    #   3 * 2^-10  -> 2^-8     (tie between 2^-9 (m=1) and 2^-8 (m=2, even); subnormal) e = +2^-10
    x = np.array([1, 1.0625, 3, -0.328125, 500, 2.0 ** -11, 3 * 2.0 ** -10], dtype=np.float32)
    q = fl.quantize(x, "cfloat8_1_4_3", "nearest_even")
    assert q.tolist() == [1, 1, 3, -0.3125, 480, 0, 2.0 ** -8]
    errors = [0, -1 / 16, 0, 1 / 64, -20, -(2.0 ** -11), 2.0 ** -10]
    signal = 1 + 1.0625 ** 2 + 9 + 0.328125 ** 2 + 500 ** 2 + 2.0 ** -22 + 9 * 2.0 ** -20
    noise = sum(e * e for e in errors)
    metrics = error_metrics(x, q, fl.CFLOAT8_1_4_3)
    assert metrics["sqnr_db"] == pytest.approx(10 * math.log10(signal / noise), rel=1e-14)
    assert metrics["rmse"] == pytest.approx(math.sqrt(noise / 7), rel=1e-14)
    assert metrics["max_abs_err"] == 20
    assert metrics["max_rel_err"] == 1.0           # the underflowed 2^-11 lost all of itself
    assert metrics["mean_err"] == pytest.approx(sum(errors) / 7, rel=1e-14)
    assert metrics["overflow_frac"] == 1 / 7       # 500 > 480
    assert metrics["underflow_frac"] == 1 / 7      # 2^-11 -> 0
    assert metrics["subnormal_frac"] == 1 / 7      # 2^-8 < 2^-6
    assert metrics["nan_frac"] == 0 and metrics["inf_frac"] == 0


def test_exact_result_gives_infinite_sqnr_and_zero_errors():
    x = np.array([0.5, -2, 0, 448], dtype=np.float32)
    metrics = error_metrics(x, fl.quantize(x, "e4m3fn"), fl.E4M3FN)
    assert metrics["sqnr_db"] == math.inf
    assert metrics["rmse"] == metrics["max_abs_err"] == metrics["max_rel_err"] == metrics["mean_err"] == 0


def test_non_finite_results_are_left_out_of_the_error_metrics():
    # fp16: 1e6 overflows to +inf (nearest_even), NaN stays NaN; both are left out of V.
    x = np.array([1.0, 1e6, np.nan, 3.0, 2.0 ** -30], dtype=np.float32)
    q = fl.quantize(x, "fp16")
    assert np.isinf(q[1]) and np.isnan(q[2])
    metrics = error_metrics(x, q, fl.FP16)
    # V = {1.0, 3.0, 2^-30}; 1 and 3 are exact in fp16, 2^-30 underflows (min subnormal 2^-24).
    assert metrics["sqnr_db"] == pytest.approx(10 * math.log10((1 + 9 + 2.0 ** -60) / 2.0 ** -60), rel=1e-14)
    assert metrics["max_abs_err"] == 2.0 ** -30
    assert metrics["mean_err"] == pytest.approx(-(2.0 ** -30) / 3, rel=1e-14)
    assert metrics["overflow_frac"] == 1 / 5       # 1e6 > 65504; NaN does not count
    assert metrics["underflow_frac"] == 1 / 5
    assert metrics["inf_frac"] == 1 / 5
    assert metrics["nan_frac"] == 1 / 5
    assert metrics["nan_input_frac"] == 1 / 5     # the one NaN input
    assert metrics["inf_input_frac"] == 0         # 1e6 is finite: it overflowed in fp16


def test_all_results_non_finite_gives_nan_error_metrics():
    x = np.array([np.nan, np.inf], dtype=np.float32)
    metrics = error_metrics(x, fl.quantize(x, "fp16"), fl.FP16)
    assert math.isnan(metrics["sqnr_db"]) and math.isnan(metrics["rmse"])
    assert metrics["overflow_frac"] == 0.5 and metrics["nan_frac"] == 0.5 and metrics["inf_frac"] == 0.5
    assert metrics["nan_input_frac"] == 0.5 and metrics["inf_input_frac"] == 0.5


def test_non_finite_inputs_are_counted_even_when_the_format_maps_them_to_finite_values():
    # CFloat8 1-4-3 has no NaN or Inf codes: NaN -> +max, +-Inf -> +-max (docs/formats.md), so
    # the results are all finite and nan_frac = inf_frac = 0; the input counts say what was there.
    x = np.array([1.0, np.nan, np.inf, -np.inf, np.nan, 0.5, 2.0, np.nan], dtype=np.float32)
    q = fl.quantize(x, "cfloat8_1_4_3")
    assert np.isfinite(q).all()
    metrics = error_metrics(x, q, fl.CFLOAT8_1_4_3)
    assert metrics["nan_frac"] == 0 and metrics["inf_frac"] == 0
    assert metrics["nan_input_frac"] == 3 / 8 and metrics["inf_input_frac"] == 2 / 8
    assert metrics["overflow_frac"] == 2 / 8      # the two infinities; NaN is not an overflow
    assert metrics["sqnr_db"] == math.inf         # V = {1, 0.5, 2}: all exact
    # All finite inputs: both counts are 0 (the fast path).
    finite = error_metrics(x[[0, 5, 6]], q[[0, 5, 6]], fl.CFLOAT8_1_4_3)
    assert finite["nan_input_frac"] == 0 and finite["inf_input_frac"] == 0


def test_huge_float64_values_do_not_overflow_the_squares():
    x = np.array([1e300, -3e299, 2e300])
    q = x * (1 + 2.0 ** -20)  # a known relative error of 2^-20 on each element
    metrics = error_metrics(x, q, fl.FP32)
    expected_sqnr = 10 * math.log10(sum(Fraction(v) ** 2 for v in x)
                                    / sum((Fraction(a) - Fraction(b)) ** 2 for a, b in zip(q, x)))
    assert metrics["sqnr_db"] == pytest.approx(expected_sqnr, rel=1e-12)
    assert math.isfinite(metrics["rmse"]) and metrics["rmse"] > 1e279


# ---- against the exact reference on random data -------------------------------------------------------
@pytest.mark.parametrize("exp_bits, man_bits, name, bias", [
    (4, 3, "cfloat8_1_4_3", 7), (4, 3, "cfloat8_1_4_3", 12), (4, 3, "cfloat8_1_4_3", 2),
    (5, 2, "cfloat8_1_5_2", 20), (5, 2, "cfloat8_1_5_2", 30),
])
def test_nearest_even_metrics_match_exact_reference(exp_bits, man_bits, name, bias):
    generator = np.random.default_rng(bias)
    x = (generator.standard_normal(300) * 2.0 ** generator.integers(-12, 8, 300)).astype(np.float32)
    x[:3] = 0.0
    fmt = fl.format(name, bias=bias)
    values = finite_values(exp_bits, man_bits, bias, top_exponent_is_finite=True)
    exact_x = [Fraction(float(v)) for v in x]
    exact_q = [round_nearest_even_saturating(v, values) for v in exact_x]
    q = fl.quantize(x, fmt, "nearest_even")
    assert [Fraction(float(v)) for v in q] == exact_q
    expected = exact_metrics(exact_x, exact_q, values[-1][0], Fraction(2) ** (1 - bias))
    assert_metrics_close(error_metrics(x, q, fmt), expected)


def test_stochastic_metrics_match_exact_arithmetic_on_the_same_draws():
    generator = np.random.default_rng(5)
    x = generator.laplace(0, 1, 400).astype(np.float32)
    fmt = fl.format("cfloat8_1_5_2", bias=18)
    q = fl.quantize(x, fmt, "stochastic", seed=11)
    expected = exact_metrics([Fraction(float(v)) for v in x], [Fraction(float(v)) for v in q],
                             Fraction(7, 4) * Fraction(2) ** (31 - 18), Fraction(2) ** (1 - 18))
    assert_metrics_close(error_metrics(x, q, fmt), expected)


def test_prepared_input_gives_the_same_metrics_and_checks_sizes():
    x = np.linspace(-3, 3, 101, dtype=np.float32)
    q = fl.quantize(x, "bf16")
    assert error_metrics(PreparedInput(x), q, fl.BF16) == error_metrics(x, q, fl.BF16)
    with pytest.raises(ValueError, match="q has 100 elements but x has 101"):
        error_metrics(x, q[:100], fl.BF16)
    with pytest.raises(TypeError, match="int64"):
        PreparedInput(np.arange(4))
