"""Stochastic rounding: exact probabilities, unbiasedness, reproducibility, threads, sr_bits.

The expected probabilities come from tests/reference.py (P3109: with nu the discarded
fraction of the ulp and R uniform in [0, 2^N), round away iff floor(nu 2^N) + R >= 2^N, so
P(away) = floor(nu 2^N) / 2^N; exact nu when sr_bits=None).  Empirical frequencies must lie
within 5 standard errors (plus one count) of it; every test uses a fixed seed, so a pass or
failure is reproducible.
"""
import math
from fractions import Fraction

import numpy as np
import pytest

import fmtlab as fl
from fmtlab import _c
from fmtlab._c import ffi, lib
from reference import (assert_codes_equal, format_id, layout, magnitude_value, reference_float, reference_is_nan,
                       reference_stochastic_probability)

N = 20000
E3M0FN = fl.Format(3, 0, 3, specials="fn")
CF143_TESLA = fl.format("cfloat8_1_4_3", subnormals="tesla")


def _draw_counts(fmt, x, sr_bits=None, saturate=False, seed=12345, n=N, dtype=np.float64):
    values = np.full(n, x, dtype=dtype)
    codes = fl.encode(values, fmt, "stochastic", seed=seed, sr_bits=sr_bits, saturate=saturate)
    return codes


def _check_frequency(fmt, x, sr_bits=None, saturate=False, seed=12345, dtype=np.float64):
    toward, away, probability = reference_stochastic_probability(dtype(x), fmt, sr_bits=sr_bits, saturate=saturate)
    codes = _draw_counts(fmt, x, sr_bits, saturate, seed, dtype=dtype)
    unique = set(int(c) for c in np.unique(codes))

    def is_code(c, target):
        return c == target or (reference_is_nan(fmt, c) and reference_is_nan(fmt, target))

    stray = [c for c in unique if not (is_code(c, toward) or is_code(c, away))]
    assert not stray, f"{fmt} x={x!r}: codes {[hex(c) for c in stray]} are neither {toward:#x} nor {away:#x}"
    if toward == away or (reference_is_nan(fmt, toward) and reference_is_nan(fmt, away)):
        return
    away_count = sum(int(np.count_nonzero(codes == c)) for c in unique if is_code(c, away))
    expected = float(probability) * N
    tolerance = 5 * math.sqrt(N * float(probability) * (1 - float(probability))) + 1
    assert abs(away_count - expected) <= tolerance, (
        f"{fmt} x={x!r} sr_bits={sr_bits}: {away_count} of {N} rounded away, expected {expected:.1f} "
        f"(P = {probability})")
    return away_count


ulp_bf16 = 2.0**-7
ulp_fp16 = 2.0**-10

CASES = [
    (fl.BF16, 1 + ulp_bf16 / 4, None),
    (fl.BF16, 1 + ulp_bf16 / 3, None),           # nu = 1/3 (to float64 precision): not dyadic
    (fl.BF16, -(1 + ulp_bf16 * 0.9), None),
    (fl.FP16, 1 + 0.7 * ulp_fp16, None),
    (fl.FP16, 1 + 0.7 * ulp_fp16, 1),            # floor(1.4) = 1: P = 1/2
    (fl.FP16, 1 + 0.7 * ulp_fp16, 2),            # floor(2.8) = 2: P = 1/2
    (fl.FP16, 1 + 0.7 * ulp_fp16, 3),            # floor(5.6) = 5: P = 5/8
    (fl.FP16, 1 + 0.7 * ulp_fp16, 32),
    (fl.FP16, 65520.0, None),                    # half-way from max to 65536: Inf with P = 1/2
    (fl.FP16, -65528.0, None),                   # P = 3/4 of -Inf
    (fl.FP16, 3 * 2.0**-26, None),               # subnormal region
    (fl.FP16, -2.0**-26, None),                  # between -0 and -2^-24: P = 1/4
    (fl.E4M3FN, 464.0, None),                    # P = 1/2 of NaN (non-saturating)
    (fl.E4M3FN, -470.0, 4),
    (fl.E4M3FNUZ, -1e-3, None),
    (fl.E4M3FNUZ, -2.0**-12, None),              # toward is +0 (code 0): fnuz has no -0
    (fl.E5M2, 3.3, None),
    (fl.E2M1FN, 5.5, None),                      # between 4 and 6: P = 3/4
    (fl.E2M1FN, 0.3, None),                      # between 0 and 0.5
    (fl.UHP, 1.7, None),
    (E3M0FN, 2.5, None),                         # between 2 and 4: nu = 1/4
    (E3M0FN, 11.0, None),                        # between 8 (max) and 16: NaN with P = 3/8
    (CF143_TESLA, 10.0 / 1024, None),            # the Tesla gap: nu = 1/3, 32 bits
    (CF143_TESLA, 8.0 / 1024, 2),                # the gap with sr_bits=2: floor(4/9) = 0
    (CF143_TESLA, 15.0 / 1024, 2),               # nu = 8/9: floor(32/9) = 3 -> 3/4
    (fl.format("cfloat8_1_5_2", bias=3), 0.3, None),
    (fl.TF32, 1 + 2.0**-12, None),
    (fl.FP32, 1 + 2.0**-25, None),               # float64 input into fp32: nu = 1/4
]


@pytest.mark.parametrize("fmt, x, sr_bits", CASES, ids=lambda v: format_id(v) if isinstance(v, fl.Format) else repr(v))
def test_probability_of_rounding_away(fmt, x, sr_bits):
    _check_frequency(fmt, x, sr_bits)


@pytest.mark.parametrize("fmt, x", [(fl.BF16, 1 + ulp_bf16 / 4), (fl.FP16, 1 + 0.7 * ulp_fp16),
                                    (fl.E4M3FN, 1.3), (fl.TF32, 1 + 2.0**-12)], ids=str)
def test_probability_from_float32_input(fmt, x):
    _check_frequency(fmt, float(np.float32(x)), dtype=np.float32)


def test_probabilities_of_the_hand_worked_cases():
    """The reference's probabilities for some cases, written out by hand."""
    assert reference_stochastic_probability(1 + 0.75 * ulp_fp16, fl.FP16, sr_bits=1)[2] == Fraction(1, 2)
    assert reference_stochastic_probability(1 + 0.25 * ulp_fp16, fl.FP16, sr_bits=1)[2] == 0
    assert reference_stochastic_probability(1 + 0.25 * ulp_fp16, fl.FP16)[2] == Fraction(1, 4)
    assert reference_stochastic_probability(65520.0, fl.FP16)[1:] == (0x7C00, Fraction(1, 2))
    assert reference_stochastic_probability(5.5, fl.E2M1FN) == (0x6, 0x7, Fraction(3, 4))
    toward, away, p = reference_stochastic_probability(10.0 / 1024, CF143_TESLA)
    assert (toward, away) == (7, 8) and p == Fraction(math.floor(Fraction(1, 3) * 2**32), 2**32)
    assert reference_stochastic_probability(-2.0**-12, fl.E4M3FNUZ) == (0x00, 0x81, Fraction(1, 4))


@pytest.mark.parametrize("fmt, x", [(fl.CFLOAT8_1_4_3, 500.0), (fl.CFLOAT8_1_4_3, -1e9), (fl.E2M1FN, 7.0)],
                         ids=str)
def test_finite_formats_never_overflow(fmt, x):
    codes = _draw_counts(fmt, x)
    max_code = (1 << (fmt.exp_bits + fmt.man_bits)) - 1 | (1 << (fmt.exp_bits + fmt.man_bits) if x < 0 else 0)
    assert (codes == max_code).all()


@pytest.mark.parametrize("fmt, x", [(fl.FP16, 65520.0), (fl.E4M3FN, 470.0), (fl.E4M3FNUZ, -250.0)], ids=str)
def test_saturate_never_overflows(fmt, x):
    codes = _draw_counts(fmt, x, saturate=True)
    lay = layout(fmt)
    expected = lay.max_code | (lay.sign_bit if x < 0 else 0)
    assert (codes == expected).all()


def test_flushed_inputs_never_round_up():
    # UHP flushes before rounding: a tiny input is always 0, whatever the draw
    assert (_draw_counts(fl.UHP, 2.0**-31) == 0).all()
    assert (_draw_counts(fl.UHP, 0.99 * 2.0**-30) == 0).all()


# ---- unbiased -------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, x", [(fl.BF16, 1 + ulp_bf16 / 3), (fl.FP16, -3.14159), (fl.E4M3FN, 0.0137),
                                    (fl.E5M2, 1234.5), (CF143_TESLA, 10.0 / 1024), (fl.TF32, 0.1)], ids=str)
def test_unbiased_for_one_value(fmt, x):
    n = 100000
    quantized = fl.quantize(np.full(n, x), fmt, "stochastic", seed=777)
    toward, away, _ = reference_stochastic_probability(x, fmt)
    lo, hi = reference_float(fmt, toward), reference_float(fmt, away)
    nu = (abs(x) - abs(lo)) / abs(hi - lo)
    standard_error = abs(hi - lo) * math.sqrt(nu * (1 - nu) / n)
    assert abs(quantized.mean() - x) <= 5 * standard_error + 1e-300


def test_unbiased_over_many_values():
    """Sum of (q - x) over 1000 random values x 200 draws each: within 5 standard deviations."""
    rng = np.random.default_rng(5)
    distinct = (rng.standard_normal(1000) * 10).astype(np.float32)
    values = np.repeat(distinct, 200)
    quantized = fl.quantize(values, fl.E4M3FN, "stochastic", seed=99).astype(np.float64)
    variance = 0.0
    for x in distinct:
        toward, away, p = reference_stochastic_probability(x, fl.E4M3FN)
        width = abs(reference_float(fl.E4M3FN, away) - reference_float(fl.E4M3FN, toward))
        variance += 200 * width**2 * float(p) * (1 - float(p))
    total_error = float(np.sum(quantized - values.astype(np.float64)))
    assert abs(total_error) <= 5 * math.sqrt(variance)


# ---- reproducible, seeds, threads, chunking -------------------------------------------------

def _mixed_inputs(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n) * np.exp2(rng.integers(-20, 20, n))
    x[::97] = np.nan
    x[::101] = np.inf
    x[::103] = 0.0
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reproducible_from_the_seed(dtype):
    x = _mixed_inputs(50000, dtype)
    for fmt in (fl.BF16, fl.E4M3FN, fl.UHP):
        a = fl.encode(x, fmt, "stochastic", seed=42)
        b = fl.encode(x, fmt, "stochastic", seed=42)
        np.testing.assert_array_equal(a, b)
        c = fl.encode(x, fmt, "stochastic", seed=43)
        assert (a != c).sum() > 1000
        qa = fl.quantize(x, fmt, "stochastic", seed=42)
        qb = fl.quantize(x, fmt, "stochastic", seed=42)
        np.testing.assert_array_equal(qa, qb)


def test_no_seed_gives_fresh_draws():
    x = np.full(10000, 1 + ulp_bf16 / 2)
    a = fl.encode(x, fl.BF16, "stochastic")
    b = fl.encode(x, fl.BF16, "stochastic")
    assert (a != b).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sr_bits", [None, 3, 32])
def test_identical_with_one_and_two_threads(dtype, sr_bits):
    x = _mixed_inputs(300_001, dtype, seed=1)  # well above the parallel threshold, odd length
    results = {}
    try:
        for threads in (1, 2, None):
            fl.set_threads(threads)
            for fmt in (fl.BF16, fl.E4M3FN, CF143_TESLA, fl.FP16):
                codes, stats = fl.encode(x, fmt, "stochastic", seed=2024, sr_bits=sr_bits, stats=True)
                quantized = fl.quantize(x, fmt, "stochastic", seed=2024, sr_bits=sr_bits)
                results.setdefault(fmt, []).append((codes, stats.as_dict(), quantized))
    finally:
        fl.set_threads(None)
    for fmt, runs in results.items():
        first_codes, first_stats, first_quantized = runs[0]
        for codes, stats, quantized in runs[1:]:
            np.testing.assert_array_equal(codes, first_codes, err_msg=str(fmt))
            assert stats == first_stats
            np.testing.assert_array_equal(quantized, first_quantized, err_msg=str(fmt))


def _encode_with_offset(x, fmt, seed, start, stop):
    """Call the C core on x[start:stop] with index_offset = start (the chunking contract)."""
    chunk = np.ascontiguousarray(x[start:stop])
    codes = np.empty(chunk.shape, dtype=fmt.code_dtype)
    stats = ffi.new("fl_stats *")
    function = lib.fl_encode_f32 if chunk.dtype == np.float32 else lib.fl_encode_f64
    pointer = "float *" if chunk.dtype == np.float32 else "double *"
    status = function(ffi.cast(pointer, chunk.ctypes.data), chunk.size, _c.c_format(fmt),
                      _c.c_rounding(_c.rounding_request("stochastic", None, seed, None)), ffi.cast("void *", codes.ctypes.data),
                      codes.itemsize, start, stats)
    assert status == 0
    return codes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunking_with_index_offset(dtype):
    x = _mixed_inputs(100_003, dtype, seed=2)
    for fmt in (fl.BF16, fl.E5M2):
        whole = fl.encode(x, fmt, "stochastic", seed=7)
        for cuts in ([0, 1, 40000, 100_003], [0, 33333, 66666, 100_003], [0, 99_999, 100_003]):
            pieces = [_encode_with_offset(x, fmt, 7, a, b) for a, b in zip(cuts, cuts[1:])]
            np.testing.assert_array_equal(np.concatenate(pieces), whole)


# ---- sr_bits semantics ---------------------------------------------------------------------

def _x_with_nu(nu, fmt=fl.FP16):
    """1 + nu ulp in fmt (binade [1, 2)), exact in float64."""
    return 1.0 + float(nu) * 2.0**-fmt.man_bits


def test_sr_bits_1_never_rounds_away_below_half():
    for nu in (Fraction(1, 16), Fraction(7, 16), Fraction(1, 3), Fraction(499, 1000)):
        codes = _draw_counts(fl.FP16, _x_with_nu(nu), sr_bits=1)
        assert (codes == 0x3C00).all(), nu


@pytest.mark.parametrize("nu, sr_bits, probability", [
    (Fraction(3, 4), 1, Fraction(1, 2)),     # floor(0.75 * 2) = 1
    (Fraction(1, 2), 1, Fraction(1, 2)),
    (Fraction(15, 16), 1, Fraction(1, 2)),
    (Fraction(3, 4), 2, Fraction(3, 4)),
    (Fraction(7, 10), 2, Fraction(1, 2)),    # floor(2.8) = 2
    (Fraction(7, 10), 3, Fraction(5, 8)),    # floor(5.6) = 5
    (Fraction(1, 3), 2, Fraction(1, 4)),     # floor(4/3) = 1
])
def test_sr_bits_probability(nu, sr_bits, probability):
    x = _x_with_nu(nu)
    assert reference_stochastic_probability(x, fl.FP16, sr_bits=sr_bits)[2] == probability
    _check_frequency(fl.FP16, x, sr_bits)


def test_sr_bits_32_ignores_a_tiny_fraction():
    # nu = 2^-33: floor(nu * 2^32) = 0, so never away with 32 bits
    x = 1.0 + 2.0**-7 * 2.0**-33
    codes = _draw_counts(fl.BF16, x, sr_bits=32, n=200000)
    assert (codes == 0x3F80).all()


@pytest.mark.parametrize("nu, least_bits", [(Fraction(3, 4), 2), (Fraction(5, 8), 3), (Fraction(1, 2), 1),
                                            (Fraction(13, 16), 4)])
def test_sr_bits_share_the_top_bits_of_one_draw(nu, least_bits):
    """R is the top N bits of the same 64-bit draw, so for nu with k fractional bits the
    decision is the same for every N >= k (same seed, same index)."""
    x = np.full(50000, _x_with_nu(nu))
    reference = fl.encode(x, fl.FP16, "stochastic", seed=31337, sr_bits=least_bits)
    for bits in range(least_bits + 1, 33):
        np.testing.assert_array_equal(fl.encode(x, fl.FP16, "stochastic", seed=31337, sr_bits=bits), reference,
                                      err_msg=f"sr_bits={bits}")


@pytest.mark.parametrize("sr_bits", [None, 1, 4, 8, 32])
def test_larger_fraction_rounds_away_whenever_a_smaller_one_does(sr_bits):
    """With the same seed and index the draw is the same, so rounding away is monotone in nu."""
    n = 50000
    nus = [Fraction(1, 10), Fraction(1, 4), Fraction(1, 2), Fraction(2, 3), Fraction(9, 10)]
    previous = None
    for nu in nus:
        away = fl.encode(np.full(n, _x_with_nu(nu, fl.BF16)), fl.BF16, "stochastic", seed=5,
                         sr_bits=sr_bits) == 0x3F81
        if previous is not None:
            assert not (previous & ~away).any(), f"nu={nu} sr_bits={sr_bits}"
        previous = away


def test_exact_values_never_move():
    x = np.repeat(np.array([1.0, -2.5, 0.0, -0.0, 65504.0, 2.0**-24]), 5000)
    codes = fl.encode(x, fl.FP16, "stochastic", seed=3, sr_bits=1)
    np.testing.assert_array_equal(codes, fl.encode(x, fl.FP16, "nearest_even"))


@pytest.mark.parametrize("fmt", [fl.BF16, fl.E4M3FN, CF143_TESLA, fl.UHP, E3M0FN], ids=format_id)
def test_stochastic_lands_on_a_neighbour(fmt):
    """Over random inputs every stochastic result is the toward or the away candidate."""
    rng = np.random.default_rng(17)
    lay = layout(fmt)
    mags = rng.integers(0, lay.max_code + 1, 300)
    x = np.array([float(magnitude_value(fmt, int(m)) + (magnitude_value(fmt, int(m) + 1) - magnitude_value(fmt, int(m))) *
                        Fraction(int(rng.integers(1, 1000)), 1000)) for m in mags])
    if fmt.signed:
        x *= rng.choice([-1.0, 1.0], x.size)
    codes = fl.encode(x, fmt, "stochastic", seed=8)
    for value, code in zip(x, codes):
        toward, away, _ = reference_stochastic_probability(value, fmt)
        code = int(code)
        ok = code in (toward, away) or (reference_is_nan(fmt, code) and reference_is_nan(fmt, away))
        assert ok, f"{fmt} x={value!r}: got {code:#x}, candidates {toward:#x}, {away:#x}"


@pytest.mark.parametrize("sr_bits", [1, 2, 3, 5, 8, 13, 32, None])
def test_tesla_gap_uses_floor_of_nu_times_2_to_the_n(sr_bits):
    """In the Tesla gap (spacing 9/8 * 2^-bias, not a power of two) the P3109 rule needs
    floor(nu * 2^N) exactly (N = 32 for sr_bits=None, as codec.py documents).  The draw of
    an element depends only on (seed, index), so a gap input must decide exactly like a
    power-of-two-grid input whose nu is floor(nu * 2^N) / 2^N, element by element."""
    bits = 32 if sr_bits is None else sr_bits
    n = 4000
    # gap of cfloat8_1_4_3(subnormals=tesla): lo = 7/1024, hi = 16/1024
    for numerator in range(1, 9):
        nu = Fraction(numerator, 9)
        x_gap = float(Fraction(7, 1024) + nu * Fraction(9, 1024))
        exact_nu = (Fraction(x_gap) - Fraction(7, 1024)) / Fraction(9, 1024)
        scaled = math.floor(exact_nu * 2**bits)
        x_grid = 1.0 + scaled * 2.0**(-bits) * 2.0**-10   # fp16: nu' = scaled / 2^N exactly
        gap_away = fl.encode(np.full(n, x_gap), CF143_TESLA, "stochastic", seed=606, sr_bits=sr_bits) == 8
        grid_away = fl.encode(np.full(n, x_grid), fl.FP16, "stochastic", seed=606, sr_bits=bits) == 0x3C01
        np.testing.assert_array_equal(gap_away, grid_away, err_msg=f"nu={numerator}/9 sr_bits={sr_bits}")


@pytest.mark.parametrize("sr_bits", [None, 1, 7, 23, 32])
@pytest.mark.parametrize("fmt", [fl.BF16, fl.FP16, fl.E4M3FN, CF143_TESLA, fl.E5M2FNUZ, fl.UHP], ids=format_id)
def test_same_value_same_draw_whatever_the_input_dtype(fmt, sr_bits):
    """The generator is keyed by (seed, index): a float32 input and the same value as float64
    round the same way (float32 input may take a faster path in the C core)."""
    x32 = _mixed_inputs(70_001, np.float32, seed=9)
    codes32 = fl.encode(x32, fmt, "stochastic", seed=4242, sr_bits=sr_bits)
    codes64 = fl.encode(x32.astype(np.float64), fmt, "stochastic", seed=4242, sr_bits=sr_bits)
    assert_codes_equal(fmt, x32, codes32, codes64, f"float32 vs float64 input, sr_bits={sr_bits}")
    q32 = fl.quantize(x32, fmt, "stochastic", seed=4242, sr_bits=sr_bits)
    q64 = fl.quantize(x32.astype(np.float64), fmt, "stochastic", seed=4242, sr_bits=sr_bits)
    same = (q32.astype(np.float64) == q64) | (np.isnan(q32) & np.isnan(q64))
    assert same.all()
