"""Every deterministic rounding mode against the exact rational reference (tests/reference.py).

Inputs are float32 and float64 values:
* systematic lists: every midpoint between consecutive values (all of them for formats of
  12 bits or fewer, a seeded sample plus the boundary regions for 16-bit formats), each with
  its float64 and float32 neighbours; the subnormal/normal boundary, max, the overflow
  threshold (the midpoint above max) and one ulp either side, +-0, +-Inf, NaN; both signs;
  saturate False and True;
* Hypothesis: random magnitudes across the whole range of each format, points next to
  values and midpoints, and arbitrary floats;
* quantize == decode(encode), keeping the input's dtype; exception counts on crafted inputs;
* hand-worked examples of each special rule (written out, not computed).
"""
import functools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fmtlab as fl
from reference import (DETERMINISTIC_MODES, EXHAUSTIVE_FORMATS, WIDE_FORMATS, assert_codes_equal,
                       consecutive_pairs, format_id, layout, magnitude_value, max_value, next_above_max,
                       reference_float, reference_is_nan, reference_round, reference_round_all)

DTYPES = (np.float32, np.float64)


# ---- building inputs ------------------------------------------------------------------

def _around(q: Fraction, dtype):
    """The dtype value nearest q (via float64) and its two neighbours: q's neighbours in dtype."""
    with np.errstate(over="ignore"):
        nearest = dtype(float(q))
        if not np.isfinite(nearest):
            nearest = np.finfo(dtype).max
        return [nearest, np.nextafter(nearest, dtype(-np.inf)), np.nextafter(nearest, dtype(np.inf))]


def _selected_pairs(fmt):
    pairs = consecutive_pairs(fmt)
    if fmt.bits <= 12:
        return pairs
    rng = np.random.default_rng(fmt.bits * 1009 + fmt.exp_bits * 31 + fmt.bias)
    chosen = set(range(24)) | set(range(len(pairs) - 24, len(pairs)))
    # the subnormal/normal boundary: the pairs around min_normal
    boundary = next(index for index, (lo, hi) in enumerate(pairs) if magnitude_value(fmt, hi) >= fmt.min_normal)
    chosen |= set(range(max(0, boundary - 12), min(len(pairs), boundary + 12)))
    chosen |= set(int(i) for i in rng.choice(len(pairs), size=min(len(pairs), 150), replace=False))
    return [pairs[index] for index in sorted(chosen)]


def _targets(fmt):
    """Exact positive rationals around which to probe (midpoints and the special places)."""
    lay = layout(fmt)
    targets = []
    for lo, hi in _selected_pairs(fmt):
        targets.append((magnitude_value(fmt, lo) + magnitude_value(fmt, hi)) / 2)
    maximum, beyond = max_value(fmt), next_above_max(fmt)
    smallest_positive = min(v for v in (magnitude_value(fmt, c) for c in range(1, 1 << (fmt.man_bits + 1))) if v > 0)
    targets += [maximum, beyond, (maximum + beyond) / 2, 2 * beyond, Fraction(fmt.min_normal),
                smallest_positive, smallest_positive / 2, smallest_positive / 4, Fraction(1),
                magnitude_value(fmt, (1 << fmt.man_bits) - 1) if fmt.man_bits else Fraction(0)]
    if lay.subnormals == "tesla" and fmt.man_bits:
        largest_subnormal = magnitude_value(fmt, lay.mantissa_all_ones)
        targets += [(largest_subnormal + Fraction(fmt.min_normal)) / 2,
                    largest_subnormal + (Fraction(fmt.min_normal) - largest_subnormal) / 3]
    return targets


@functools.lru_cache(maxsize=None)
def systematic_inputs(fmt, dtype):
    values = []
    for target in _targets(fmt):
        if target == 0:
            continue
        values += _around(target, dtype)
    info = np.finfo(dtype)
    values += [dtype(0.0), dtype(np.inf), dtype(np.nan), info.max, info.smallest_subnormal,
               info.smallest_normal, dtype(1e30) if dtype is np.float32 else dtype(1e300)]
    positive = np.unique(np.array(values, dtype=dtype))
    positive = positive[(positive > 0) | np.isnan(positive) | (positive == 0)]
    result = np.concatenate([positive, -positive, np.array([-np.nan], dtype=dtype)])
    result.flags.writeable = False
    return result


@functools.lru_cache(maxsize=None)
def _expected_all(fmt, dtype, saturate):
    inputs = systematic_inputs(fmt, dtype)
    return _reference_codes(fmt, inputs, saturate)


def _reference_codes(fmt, inputs, saturate):
    table = {mode: np.empty(len(inputs), dtype=np.int64) for mode in DETERMINISTIC_MODES}
    for index, value in enumerate(inputs):
        codes = reference_round_all(value, fmt, saturate=saturate)
        for mode in DETERMINISTIC_MODES:
            table[mode][index] = codes[mode]
    return table


def _check(fmt, inputs, saturate, modes=DETERMINISTIC_MODES, expected=None):
    inputs = np.asarray(inputs)
    if expected is None:
        expected = _reference_codes(fmt, inputs, saturate)
    for mode in modes:
        got = fl.encode(inputs, fmt, mode, saturate=saturate)
        assert got.dtype == fmt.code_dtype
        assert_codes_equal(fmt, inputs, got, expected[mode],
                           f"rounding={mode} saturate={saturate} ({inputs.dtype} input)")


# ---- systematic lists ------------------------------------------------------------------

@pytest.mark.parametrize("fmt", EXHAUSTIVE_FORMATS, ids=format_id)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_midpoints_and_boundaries(fmt, dtype):
    inputs = systematic_inputs(fmt, dtype)
    _check(fmt, inputs, False, expected=_expected_all(fmt, dtype, False))


@pytest.mark.parametrize("fmt", EXHAUSTIVE_FORMATS, ids=format_id)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_midpoints_and_boundaries_saturating(fmt, dtype):
    inputs = systematic_inputs(fmt, dtype)
    # saturate only changes results beyond max: reuse the reference elsewhere
    plain = _expected_all(fmt, dtype, False)
    beyond = np.flatnonzero(~(np.abs(inputs.astype(np.float64)) <= float(max_value(fmt))))
    expected = {mode: codes.copy() for mode, codes in plain.items()}
    for index in beyond:
        for mode, code in reference_round_all(inputs[index], fmt, saturate=True).items():
            expected[mode][index] = code
    _check(fmt, inputs, True, expected=expected)


def _wide_inputs(fmt, dtype, count, seed):
    """Midpoints of random consecutive codes of a wide format and their dtype neighbours."""
    lay = layout(fmt)
    rng = np.random.default_rng(seed)
    magnitudes = [int(c) for c in rng.integers(0, lay.max_code + 1, size=count)]
    magnitudes += [0, 1, lay.mantissa_all_ones - 1, lay.mantissa_all_ones, lay.mantissa_all_ones + 1,
                   lay.max_code - 1, lay.max_code]
    values = []
    for mag in magnitudes:
        middle = (magnitude_value(fmt, mag) + magnitude_value(fmt, mag + 1)) / 2
        if dtype is np.float32 and not (2.0**-149 <= middle <= float(np.finfo(np.float32).max)):
            continue
        values += _around(middle, dtype)
    values = np.array(values, dtype=dtype)
    return np.concatenate([values, -values, np.array([0, np.inf, np.nan, -np.inf], dtype=dtype)])


@pytest.mark.parametrize("fmt", WIDE_FORMATS, ids=format_id)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("saturate", [False, True])
def test_wide_formats_midpoints(fmt, dtype, saturate):
    _check(fmt, _wide_inputs(fmt, dtype, 200, seed=fmt.man_bits * 7 + int(saturate)), saturate)


# ---- Hypothesis: random magnitudes across the whole range -------------------------------

def _finite_range(fmt, dtype):
    info = np.finfo(dtype)
    low = max(fmt.min_subnormal_exponent - 4, int(np.log2(float(info.smallest_subnormal))))
    high = min(fmt.emax + 3, int(np.log2(float(info.max))))
    return low, high


@st.composite
def format_inputs(draw, fmt):
    dtype = draw(st.sampled_from(DTYPES))
    low, high = _finite_range(fmt, dtype)
    mantissa_bits = 52 if dtype is np.float64 else 23
    random_magnitude = st.builds(
        lambda exponent, fraction: math.ldexp(1 + fraction / 2**mantissa_bits, exponent),
        st.integers(low, high), st.integers(0, 2**mantissa_bits - 1))
    lay = layout(fmt)

    def near(mag, where, offset):
        lo, hi = magnitude_value(fmt, mag), magnitude_value(fmt, mag + 1)
        target = lo + (hi - lo) * where
        centre = _around(target, dtype)[0]
        step = dtype(np.inf) if offset > 0 else dtype(-np.inf)
        for _ in range(abs(offset)):
            centre = np.nextafter(centre, step)
        return float(centre)

    near_value = st.builds(near, st.integers(0, lay.max_code),
                           st.sampled_from([Fraction(0), Fraction(1, 2), Fraction(1, 4), Fraction(3, 4)]),
                           st.integers(-3, 3))
    any_float = st.floats(width=32 if dtype is np.float32 else 64, allow_nan=True, allow_infinity=True)
    magnitudes = draw(st.lists(st.one_of(random_magnitude, near_value, any_float), min_size=1, max_size=24))
    signs = draw(st.lists(st.booleans(), min_size=len(magnitudes), max_size=len(magnitudes)))
    with np.errstate(over="ignore"):
        values = np.array([-m if s else m for m, s in zip(magnitudes, signs)], dtype=np.float64).astype(dtype)
    # an input that overflows the dtype becomes Inf: still a fine input
    return values, draw(st.booleans())


def _hypothesis_test(fmt, data):
    values, saturate = data.draw(format_inputs(fmt))
    _check(fmt, values, saturate)


@pytest.mark.parametrize("fmt", EXHAUSTIVE_FORMATS, ids=format_id)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_inputs_against_reference(fmt, data):
    _hypothesis_test(fmt, data)


@pytest.mark.parametrize("fmt", WIDE_FORMATS, ids=format_id)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_inputs_against_reference_wide(fmt, data):
    _hypothesis_test(fmt, data)


@pytest.mark.parametrize("fmt", WIDE_FORMATS + [fl.FP16, fl.BF16, fl.E4M3FN, fl.UHP], ids=format_id)
def test_random_inputs_seeded(fmt):
    """A fixed batch of random magnitudes over the whole range (no Hypothesis)."""
    rng = np.random.default_rng(1234 + fmt.bits)
    for dtype in DTYPES:
        low, high = _finite_range(fmt, dtype)
        exponents = rng.integers(low, high + 1, size=600)
        significands = rng.uniform(1, 2, size=600)
        signs = rng.choice([-1.0, 1.0], size=600)
        values = (signs * np.ldexp(significands, exponents)).astype(dtype)
        _check(fmt, values, bool(rng.integers(2)))


# ---- quantize == decode(encode), dtype kept ---------------------------------------------

QUANTIZE_FORMATS = [fl.FP16, fl.BF16, fl.E4M3FN, fl.E5M2FNUZ, fl.UHP, fl.TF32, fl.FP32, fl.E2M1FN,
                    fl.format("cfloat8_1_4_3", bias=10, subnormals="tesla"), fl.Format(3, 0, 3, specials="fn"),
                    fl.Format(11, 4, 1023)]


@pytest.mark.parametrize("fmt", QUANTIZE_FORMATS, ids=format_id)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_quantize_is_decode_of_encode(fmt, dtype):
    rng = np.random.default_rng(99)
    low, high = _finite_range(fmt, dtype)
    with np.errstate(over="ignore"):
        values = rng.choice([-1.0, 1.0], 5000) * np.ldexp(rng.uniform(1, 2, 5000), rng.integers(low, high + 1, 5000))
        values = np.concatenate([values, [0.0, -0.0, np.inf, -np.inf, np.nan]]).astype(dtype)
    for mode in fl.ROUNDINGS:
        for saturate in (False, True):
            quantized = fl.quantize(values, fmt, mode, saturate=saturate, seed=11)
            assert quantized.dtype == values.dtype and quantized.shape == values.shape
            codes = fl.encode(values, fmt, mode, saturate=saturate, seed=11)
            expected = fl.decode(codes, fmt).astype(dtype)
            same = (quantized == expected) & (np.signbit(quantized) == np.signbit(expected))
            same |= np.isnan(quantized) & np.isnan(expected)
            assert same.all(), (mode, saturate, values[~same][:5], quantized[~same][:5], expected[~same][:5])


@pytest.mark.parametrize("fmt", [fl.FP16, fl.E4M3FN, fl.UHP, fl.format("cfloat8_1_5_2", bias=3)], ids=format_id)
def test_quantize_matches_reference_values(fmt):
    """quantize against the reference directly (value of the reference code)."""
    values = systematic_inputs(fmt, np.float64)
    codes = _expected_all(fmt, np.float64, False)
    for mode in DETERMINISTIC_MODES:
        got = fl.quantize(values, fmt, mode)
        expected = np.array([reference_float(fmt, int(code)) for code in codes[mode]])
        same = ((got == expected) & (np.signbit(got) == np.signbit(expected))) | (np.isnan(got) & np.isnan(expected))
        assert same.all(), (mode, values[~same][:5], got[~same][:5], expected[~same][:5])


def test_quantize_keeps_float16_and_ml_dtypes():
    import ml_dtypes

    x16 = np.array([1.0, 1.5, 3.0e4, -2.0e-7], dtype=np.float16)
    q16 = fl.quantize(x16, fl.E4M3FN)
    assert q16.dtype == np.float16
    xb = np.array([1.0, 3.14159, -448.0], dtype=ml_dtypes.bfloat16)
    qb = fl.quantize(xb, fl.E5M2)
    assert qb.dtype == np.dtype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(qb.astype(np.float32), fl.quantize(xb.astype(np.float32), fl.E5M2))


# ---- hand-worked examples of the special rules -------------------------------------------

E3M0FN = fl.Format(3, 0, 3, specials="fn")   # values 0, 1/4, 1/2, 1, 2, 4, 8 (codes 0..6); code 7 NaN
CF143_TESLA = fl.format("cfloat8_1_4_3", subnormals="tesla")  # largest subnormal 7/1024, min_normal 16/1024


@pytest.mark.parametrize("fmt, x, mode, saturate, expected", [
    # e4m3fn: 464 is the midpoint of 448 (0x7E, even) and 480 (0x7F, beyond max): ties to 448
    (fl.E4M3FN, 464.0, "nearest_even", False, 0x7E),
    (fl.E4M3FN, 465.0, "nearest_even", False, "nan"),
    (fl.E4M3FN, -465.0, "nearest_even", False, "nan"),
    (fl.E4M3FN, 465.0, "nearest_even", True, 0x7E),
    (fl.E4M3FN, -1e9, "nearest_even", True, 0xFE),
    (fl.E4M3FN, 464.0, "nearest_away", False, "nan"),
    (fl.E4M3FN, 1e9, "toward_zero", False, 0x7E),
    (fl.E4M3FN, 1e9, "odd", False, 0x7E),
    (fl.E4M3FN, 449.0, "up", False, "nan"),
    (fl.E4M3FN, 449.0, "down", False, 0x7E),
    (fl.E4M3FN, -449.0, "up", False, 0xFE),
    (fl.E4M3FN, -449.0, "down", False, "nan"),
    (fl.E4M3FN, np.inf, "nearest_even", False, "nan"),
    (fl.E4M3FN, -np.inf, "nearest_even", True, 0xFE),
    (fl.E4M3FN, -0.0, "nearest_even", False, 0x80),
    (fl.E4M3FN, np.nan, "nearest_even", False, 0x7F),
    (fl.E4M3FN, -np.nan, "nearest_even", False, 0xFF),
    # fp16: 65520 is the midpoint of 65504 (0x7BFF, odd) and 65536: ties to Inf
    (fl.FP16, 65520.0, "nearest_even", False, 0x7C00),
    (fl.FP16, 65519.99, "nearest_even", False, 0x7BFF),
    (fl.FP16, 65520.0, "nearest_even", True, 0x7BFF),
    (fl.FP16, 65536.0, "toward_zero", False, 0x7BFF),
    (fl.FP16, 65505.0, "odd", False, 0x7BFF),
    (fl.FP16, -1e6, "up", False, 0xFBFF),
    (fl.FP16, -1e6, "down", False, 0xFC00),
    (fl.FP16, np.inf, "nearest_even", False, 0x7C00),
    (fl.FP16, np.nan, "nearest_even", False, 0x7E00),
    (fl.FP16, -np.nan, "toward_zero", False, 0xFE00),
    (fl.FP16, 2.0**-25, "nearest_even", False, 0x0000),      # tie between 0 and 2^-24 (odd code 1)
    (fl.FP16, -2.0**-25, "nearest_away", False, 0x8001),
    (fl.FP16, 2.0**-26, "up", False, 0x0001),
    (fl.FP16, -2.0**-26, "up", False, 0x8000),
    (fl.FP16, 2.0**-26, "odd", False, 0x0001),
    (fl.FP16, 1.0 + 2.0**-11, "nearest_even", False, 0x3C00),  # tie: 0x3C00 even
    (fl.FP16, 1.0 + 3 * 2.0**-11, "nearest_even", False, 0x3C02),
    (fl.FP16, 1.0 + 2.0**-11, "odd", False, 0x3C01),
    (fl.FP16, 1.0 + 2.0**-11 + 2.0**-30, "nearest_even", False, 0x3C01),
    # finite formats: NaN is +max, Inf is +-max, overflow is +-max
    (fl.CFLOAT8_1_4_3, np.nan, "nearest_even", False, 0x7F),
    (fl.CFLOAT8_1_4_3, -np.nan, "nearest_even", False, 0x7F),
    (fl.CFLOAT8_1_4_3, -np.inf, "nearest_even", False, 0xFF),
    (fl.CFLOAT8_1_4_3, 1e9, "up", False, 0x7F),
    (fl.CFLOAT8_1_4_3, -0.0, "nearest_even", False, 0x80),
    (fl.E2M1FN, 5.0, "nearest_even", False, 0x6),               # tie 4 (0x6) / 6 (0x7)
    (fl.E2M1FN, 7.0, "nearest_even", False, 0x7),
    (fl.E2M1FN, np.nan, "nearest_even", False, 0x7),
    # fnuz: no -0; the NaN is 0x80
    (fl.E4M3FNUZ, -0.0, "nearest_even", False, 0x00),
    (fl.E4M3FNUZ, -1e-30, "nearest_even", False, 0x00),
    (fl.E4M3FNUZ, -1e-30, "down", False, 0x81),
    (fl.E4M3FNUZ, 248.0, "nearest_even", False, 0x80),         # tie 240 (0x7F odd) / 256: NaN
    (fl.E4M3FNUZ, np.inf, "nearest_even", False, 0x80),
    (fl.E4M3FNUZ, np.inf, "nearest_even", True, 0x7F),
    (fl.E4M3FNUZ, np.nan, "nearest_even", False, 0x80),
    # UHP: no sign, flush to zero
    (fl.UHP, -1.0, "nearest_even", False, 0xFE00),
    (fl.UHP, -0.0, "nearest_even", False, 0x0000),
    (fl.UHP, -np.inf, "nearest_even", False, 0xFE00),
    (fl.UHP, np.inf, "nearest_even", False, 0xFC00),
    (fl.UHP, 2.0**-31, "up", False, 0x0000),
    (fl.UHP, 2.0**-30 * 0.999, "nearest_even", False, 0x0000),
    (fl.UHP, 2.0**-30, "down", False, 0x0400),
    (fl.UHP, 1.0, "nearest_even", False, 31 << 10),
    # man_bits = 0: ties go to the even code (the exponent field)
    (E3M0FN, 3.0, "nearest_even", False, 4),     # 2 (code 4) / 4 (code 5)
    (E3M0FN, 6.0, "nearest_even", False, 6),     # 4 (code 5) / 8 (code 6)
    (E3M0FN, 3.0, "nearest_away", False, 5),
    (E3M0FN, 3.0, "odd", False, 5),
    (E3M0FN, 6.0, "odd", False, 5),
    (E3M0FN, 12.0, "nearest_even", False, 6),    # 8 (code 6, max) / 16 (code 7 unbounded): ties to 8
    (E3M0FN, 12.5, "nearest_even", False, "nan"),
    (E3M0FN, 0.125, "nearest_even", False, 0),   # 0 / 1/4 (code 1)
    (E3M0FN, -0.125, "nearest_even", False, 0x8),
    (E3M0FN, 0.375, "nearest_even", False, 2),   # 1/4 (code 1) / 1/2 (code 2)
    # the Tesla gap: lo = 7/1024 (code 7), hi = 16/1024 (code 8)
    (CF143_TESLA, 11.5 / 1024, "nearest_even", False, 8),
    (CF143_TESLA, 11.49 / 1024, "nearest_even", False, 7),
    (CF143_TESLA, 11.5 / 1024, "odd", False, 7),
    (CF143_TESLA, 8.0 / 1024, "toward_zero", False, 7),
    (CF143_TESLA, 8.0 / 1024, "up", False, 8),
    (CF143_TESLA, -8.0 / 1024, "up", False, 0x87),
    (CF143_TESLA, 0.5 / 1024, "nearest_even", False, 0),   # tie 0 / 1/1024 (code 1)
])
def test_hand_worked_examples(fmt, x, mode, saturate, expected):
    got = int(fl.encode(np.array([x]), fmt, mode, saturate=saturate)[0])
    if expected == "nan":
        assert reference_is_nan(fmt, got), f"{fmt} {x} {mode}: got {got:#x}, expected a NaN code"
    else:
        assert got == expected, f"{fmt} {x} {mode}: got {got:#x}, expected {expected:#x}"
    # the reference agrees with the hand-worked value
    reference = reference_round(x, fmt, mode, saturate)
    if expected == "nan":
        assert reference_is_nan(fmt, reference)
    else:
        assert reference == expected
    # float32 input gives the same when x is a float32 value
    if float(np.float32(x)) == x or math.isnan(x):
        got32 = int(fl.encode(np.array([x], dtype=np.float32), fmt, mode, saturate=saturate)[0])
        assert got32 == got or (reference_is_nan(fmt, got32) and reference_is_nan(fmt, got))


@pytest.mark.parametrize("fmt", [fl.FP16, fl.BF16, fl.E5M2, fl.E4M3FN, fl.E4M3FNUZ, fl.UHP,
                                 fl.Format(4, 3, 7, signed=False)], ids=format_id)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_nan_input_gives_the_canonical_nan(fmt, dtype):
    """NaN input: sign kept where the format's NaN has one; ieee canonical = E all ones, top M bit."""
    e, m = fmt.exp_bits, fmt.man_bits
    sign = 1 << (e + m) if fmt.signed else 0
    if fmt.specials == "ieee":
        positive = (((1 << e) - 1) << m) | (1 << (m - 1))
        negative = positive | sign
    elif fmt.specials == "fn":
        positive = (1 << (e + m)) - 1
        negative = positive | sign
    else:
        positive = negative = sign
    for mode in fl.ROUNDINGS:
        got = fl.encode(np.array([np.nan, -np.nan], dtype=dtype), fmt, mode, seed=1)
        assert [int(c) for c in got] == [positive, negative], (mode, [hex(int(c)) for c in got])


# ---- exception counts ----------------------------------------------------------------------

@pytest.mark.parametrize("fmt, x, mode, counts", [
    (fl.FP16, [1.0, 2.0, -0.0, 0.0], "nearest_even", {}),
    (fl.FP16, [1.0 + 2.0**-12], "nearest_even", {"inexact": 1}),
    (fl.FP16, [1e6, -1e6], "nearest_even", {"overflow": 2, "inexact": 2}),
    (fl.FP16, [65504.0], "nearest_even", {}),
    (fl.FP16, [65519.0], "nearest_even", {"inexact": 1}),              # rounds to max: no overflow
    (fl.FP16, [np.nan, -np.nan], "nearest_even", {"invalid": 2}),
    (fl.FP16, [2.0**-30, -2.0**-30], "nearest_even", {"underflow": 2, "inexact": 2}),
    (fl.FP16, [2.0**-20, 2.0**-24], "nearest_even", {"denormal": 2}),
    (fl.FP16, [2.0**-20 + 2.0**-30], "nearest_even", {"denormal": 1, "inexact": 1}),
    (fl.FP16, [2.0**-26], "up", {"denormal": 1, "inexact": 1}),
    (fl.E4M3FN, [464.0], "nearest_even", {"inexact": 1}),
    (fl.E4M3FN, [465.0], "nearest_even", {"overflow": 1, "inexact": 1}),
    (fl.E4M3FN, [465.0], "nearest_even", {"overflow": 1, "inexact": 1}),
    (fl.UHP, [-1.0, -2.0], "nearest_even", {"invalid": 2, "inexact": None}),  # inexact: not specified
    (fl.UHP, [2.0**-40], "nearest_even", {"underflow": 1, "inexact": 1}),
    (fl.UHP, [2.0**-30], "nearest_even", {}),
    (fl.CFLOAT8_1_4_3, [np.nan], "nearest_even", {"invalid": 1}),
    (fl.CFLOAT8_1_4_3, [np.inf, -np.inf], "nearest_even", {"overflow": 2}),
    (fl.CFLOAT8_1_4_3, [1e6], "nearest_even", {"overflow": 1, "inexact": 1}),
    (fl.CFLOAT8_1_4_3, [480.0, 2.0**-9], "nearest_even", {"denormal": 1}),
])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_stats_on_crafted_inputs(fmt, x, mode, counts, dtype):
    values = np.array(x, dtype=dtype)
    codes, stats = fl.encode(values, fmt, mode, stats=True)
    expected = {"invalid": 0, "overflow": 0, "underflow": 0, "denormal": 0, "inexact": 0}
    expected.update(counts)
    expected = {key: value for key, value in expected.items() if value is not None}
    got = {key: getattr(stats, key) for key in expected}
    assert got == expected, (fmt, x, mode)
    assert stats.total == values.size
    _, quantize_stats = fl.quantize(values, fmt, mode, stats=True)
    assert quantize_stats.as_dict() == stats.as_dict()


def test_stats_count_over_a_large_array():
    """Counts add up across threads and blocks: 100000 copies of each crafted case."""
    block = np.array([1.0, 1.0 + 2.0**-12, 1e6, np.nan, 2.0**-30, 2.0**-20], dtype=np.float32)
    values = np.tile(block, 100000)
    _, stats = fl.encode(values, fl.FP16, stats=True)
    assert (stats.invalid, stats.overflow, stats.underflow, stats.denormal, stats.inexact) == (
        100000, 100000, 100000, 100000, 300000)
    assert stats.total == values.size


@pytest.mark.parametrize("fmt", [fl.FP16, fl.BF16, fl.TF32, fl.E4M3FN, fl.E5M2FNUZ, fl.UHP, fl.E2M1FN,
                                 fl.format("cfloat8_1_5_2", bias=40, subnormals="tesla"), E3M0FN,
                                 fl.Format(6, 9, 31, subnormals="none")], ids=format_id)
def test_float32_and_float64_inputs_agree_over_a_strided_sweep(fmt):
    """The same value must give the same code whether it arrives as float32 or float64 (the C core
    has a separate float32 path); about 2^20 float32 patterns through all 2^32, every mode.
    A sample of them is also checked against the reference."""
    bits = np.arange(12345, 1 << 32, 4099, dtype=np.uint64).astype(np.uint32)
    x32 = bits.view(np.float32)
    with np.errstate(invalid="ignore"):
        x64 = x32.astype(np.float64)
    step = 4999
    sample = x32[::step]
    for saturate in (False, True):
        expected = _reference_codes(fmt, sample, saturate)
        for mode in DETERMINISTIC_MODES:
            codes32 = fl.encode(x32, fmt, mode, saturate=saturate)
            codes64 = fl.encode(x64, fmt, mode, saturate=saturate)
            assert_codes_equal(fmt, x32, codes32, codes64, f"float32 vs float64, rounding={mode} saturate={saturate}")
            assert_codes_equal(fmt, sample, codes32[::step], expected[mode], f"sampled sweep, rounding={mode}")
