"""Limited-precision stochastic rounding: every ``sr_rule`` against its published definition.

With nu the fraction of an ulp that rounding toward zero discards (0 < nu < 1), N = sr_bits
and R the top N bits of the element's first 64-bit draw (0 <= R < 2^N), the IEEE P3109
interim report (v4.0, 26 June 2026, section 4.7.4 "Rounding to precision") defines

    RoundAway(StochasticA_N,R) = floor(nu * 2^N) + R >= 2^N                  "truncate"
    RoundAway(StochasticB_N,R) = floor(nu * 2^(N+1)) + (2R + 1) >= 2^(N+1)    "nearest_away"
    RoundAway(StochasticC_N,R) = RNITE(nu * 2^N) + R >= 2^N                   "nearest_even"

(RNITE: round to nearest integer, ties to even) and gfloat 0.5.2 adds StochasticOdd, the
same with ties to odd ("nearest_odd").  The reference below writes those four inequalities
out literally, in exact rationals, and never calls fmtlab's rounding; R is read from the
generator itself (``fl_random_word``), so every element's decision is checked, not only its
frequency.  gfloat is fed the very same R.
"""
import functools
import hashlib
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import fmtlab as fl
import fmtlab.torch as flt
from fmtlab import _c
from fmtlab._c import ffi, lib
from reference import layout, reference_stochastic_probability

gfloat = pytest.importorskip("gfloat")
gfloat_formats = pytest.importorskip("gfloat.formats")

RULES = ("truncate", "nearest_away", "nearest_even", "nearest_odd")
CF143_TESLA = fl.format("cfloat8_1_4_3", subnormals="tesla")
GFLOAT_MODES = {"truncate": "StochasticFastest", "nearest_away": "StochasticFast",
                "nearest_even": "Stochastic", "nearest_odd": "StochasticOdd"}


# ---- the definitions ---------------------------------------------------------------------

def _round_nearest_integer(value: Fraction, ties_to_even: bool) -> int:
    """RNITE (ties_to_even) of the report, or its ties-to-odd twin (gfloat's StochasticOdd)."""
    floor = math.floor(value)
    if value < floor + Fraction(1, 2):
        return floor
    if value == floor + Fraction(1, 2) and (floor % 2 == 0) == ties_to_even:
        return floor
    return floor + 1


def reference_away(nu: Fraction, r: int, n: int, rule: str) -> bool:
    """The rule's RoundAway for discarded fraction nu, random integer r and n random bits."""
    assert 0 <= nu < 1 and 0 <= r < 2**n
    if nu == 0:
        return False  # exact: nothing to round (the report's S is already an integer)
    if rule == "truncate":
        return math.floor(nu * 2**n) + r >= 2**n
    if rule == "nearest_away":
        return math.floor(nu * 2**(n + 1)) + (2 * r + 1) >= 2**(n + 1)
    if rule == "nearest_even":
        return _round_nearest_integer(nu * 2**n, ties_to_even=True) + r >= 2**n
    if rule == "nearest_odd":
        return _round_nearest_integer(nu * 2**n, ties_to_even=False) + r >= 2**n
    raise AssertionError(rule)


def reference_probability(nu: Fraction, n: int, rule: str) -> Fraction:
    """P(away) of the rule: its RoundAway counted over every r in 0..2^n - 1."""
    return Fraction(sum(reference_away(nu, r, n, rule) for r in range(2**n)), 2**n)


def test_the_reference_on_hand_worked_cases():
    """The definitions above, checked on values worked out by hand (so they can fail too)."""
    # nu = 5/8, N = 2: nu * 4 = 2.5, floor 2, RNITE 2, ties-to-odd 3, floor(nu * 8) = 5
    nu = Fraction(5, 8)
    assert reference_probability(nu, 2, "truncate") == Fraction(2, 4)
    assert reference_probability(nu, 2, "nearest_away") == Fraction(3, 4)  # 5 + 2R + 1 >= 8 for R >= 1
    assert reference_probability(nu, 2, "nearest_even") == Fraction(2, 4)
    assert reference_probability(nu, 2, "nearest_odd") == Fraction(3, 4)
    # nu = 7/8, N = 2: nu * 4 = 3.5 -> RNITE 4: always away; ties-to-odd 3
    assert reference_probability(Fraction(7, 8), 2, "nearest_even") == 1
    assert reference_probability(Fraction(7, 8), 2, "nearest_odd") == Fraction(3, 4)
    # nu = 1/3, N = 1: 2/3 -> truncate 0, nearest 1
    for rule, p in (("truncate", 0), ("nearest_away", Fraction(1, 2)), ("nearest_even", Fraction(1, 2)),
                    ("nearest_odd", Fraction(1, 2))):
        assert reference_probability(Fraction(1, 3), 1, rule) == p
    # nu with at most N bits: every rule is exact
    for rule in RULES:
        assert reference_probability(Fraction(3, 8), 3, rule) == Fraction(3, 8)


# ---- the generator's bits and the codec's decisions --------------------------------------

@functools.lru_cache(maxsize=8)
def _words(seed: int, count: int) -> np.ndarray:
    """Draw 0 of elements 0..count-1: the 64-bit words the C core's decisions use."""
    return np.array([lib.fl_random_word(seed, i, 0) for i in range(count)], dtype=np.uint64)


def _random_bits(seed: int, count: int, n: int) -> np.ndarray:
    return (_words(seed, count) >> np.uint64(64 - n)).astype(np.int64)


def _exact_nu(fmt, x: float):
    """(toward code, away code, nu) of x in fmt, from the exact reference (finite range only)."""
    toward, away, _ = reference_stochastic_probability(x, fmt)
    lay = layout(fmt)
    lo = lay.magnitude(toward & lay.magnitude_mask)
    hi = lay.magnitude(away & lay.magnitude_mask)
    nu = Fraction(0) if hi == lo else (abs(Fraction(x)) - lo) / (hi - lo)
    return toward, away, nu


def _expected_codes(fmt, x, seed, n, rule):
    bits = _random_bits(seed, x.size, n)
    expected = np.empty(x.size, dtype=np.int64)
    for i, value in enumerate(x.tolist()):
        toward, away, nu = _exact_nu(fmt, value)
        expected[i] = away if reference_away(nu, int(bits[i]), n, rule) else toward
    return expected


# ---- every draw of every nu on a grid, against the definition -------------------------------

DRAWS_PER_R = 12  # elements per nu: about DRAWS_PER_R * 2^N, so every R occurs (asserted)


def _grid_case(n, grid_bits, fmt=fl.FP16):
    """Inputs 1 + nu * ulp for nu = i / 2^grid_bits (0 < i < 2^grid_bits), each repeated."""
    ulp = Fraction(1, 2**fmt.man_bits)
    nus = [Fraction(i, 2**grid_bits) for i in range(1, 2**grid_bits)]
    repeat = DRAWS_PER_R * 2**n
    values = np.repeat(np.array([float(1 + nu * ulp) for nu in nus]), repeat)
    return nus, repeat, values


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("rule", RULES)
def test_every_draw_of_every_nu_follows_the_definition(rule, n, dtype):
    """nu on a grid of N + 3 bits (ties at every level below N) times every R: the code of
    every element is the definition's, for float32 input (the fast path) and float64 input
    (encode_one)."""
    seed = 0x5EED
    nus, repeat, values = _grid_case(n, n + 3)
    x = values.astype(dtype)
    assert np.array_equal(x.astype(np.float64), values)  # the grid is exact in float32
    codes = fl.encode(x, fl.FP16, "stochastic", seed=seed, sr_bits=n, sr_rule=rule).astype(np.int64)
    bits = _random_bits(seed, x.size, n).reshape(len(nus), repeat)
    away = (codes != 0x3C00).reshape(len(nus), repeat)
    assert set(np.unique(codes)) <= {0x3C00, 0x3C01}
    for row, nu in enumerate(nus):
        assert set(bits[row].tolist()) == set(range(2**n)), "some R never occurred: raise DRAWS_PER_R"
        expected = np.array([reference_away(nu, int(r), n, rule) for r in bits[row]])
        mismatched = np.flatnonzero(away[row] != expected)
        first = mismatched[0] if mismatched.size else 0
        assert mismatched.size == 0, (f"{rule} N={n} nu={nu}: R={int(bits[row][first])} gives "
                                      f"away={bool(away[row][first])}, the definition says {bool(expected[first])}")
    # quantize decides the same way
    quantized = fl.quantize(x, fl.FP16, "stochastic", seed=seed, sr_bits=n, sr_rule=rule)
    np.testing.assert_array_equal(quantized != 1.0, codes != 0x3C00)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("rule", RULES)
def test_exact_bias_over_a_grid(rule, n):
    """From the codec's own decisions over every R: P(away) per nu, and its average bias over
    nu uniform on a grid of D bits, as exact rationals.  Every rule is exact for nu with at
    most N bits; averaged over D > N bits truncate is biased by -(2^-N - 2^-D)/2, nearest_away
    by +2^-(D+1) (its ties all go up), nearest_even and nearest_odd by nothing."""
    seed = 77
    for grid_bits in (n, n + 1, n + 4):
        nus, repeat, values = _grid_case(n, grid_bits)
        codes = fl.encode(values, fl.FP16, "stochastic", seed=seed, sr_bits=n, sr_rule=rule)
        bits = _random_bits(seed, values.size, n).reshape(len(nus), repeat)
        away = (codes != 0x3C00).reshape(len(nus), repeat)
        total_bias = Fraction(0)
        for row, nu in enumerate(nus):
            decisions = {}
            for r, a in zip(bits[row].tolist(), away[row].tolist()):
                assert decisions.setdefault(r, a) == a, "the decision depends on more than (nu, R)"
            assert len(decisions) == 2**n
            probability = Fraction(sum(decisions.values()), 2**n)
            assert probability == reference_probability(nu, n, rule)
            if grid_bits <= n:
                assert probability == nu, f"{rule}: nu={nu} has at most N={n} bits but P={probability}"
            total_bias += probability - nu
        average_bias = total_bias / 2**grid_bits  # nu = 0 (exact, bias 0) is the grid's other point
        if grid_bits <= n:
            expected = Fraction(0)
        elif rule == "truncate":
            expected = -(Fraction(1, 2**n) - Fraction(1, 2**grid_bits)) / 2
        elif rule == "nearest_away":
            expected = Fraction(1, 2**(grid_bits + 1))
        else:
            expected = Fraction(0)
        assert average_bias == expected, f"{rule} N={n} D={grid_bits}: average bias {average_bias}"


# ---- random inputs: every element against the definition ----------------------------------

def _random_inputs(fmt, count, seed):
    """Values spread over fmt's finite range (normal and subnormal), away from overflow."""
    rng = np.random.default_rng(seed)
    top = math.log2(float(fmt.max)) - 0.01
    bottom = top - (fmt.emax - fmt.emin + fmt.man_bits + 3)
    x = np.exp2(rng.uniform(bottom, top, count)) * rng.choice([-1.0, 1.0], count)
    return x if fmt.signed else np.abs(x)


FORMATS = [fl.BF16, fl.FP16, fl.E4M3FN, fl.E5M2, fl.E2M1FN, fl.E5M2FNUZ, fl.UHP, CF143_TESLA]


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
@pytest.mark.parametrize("n", [1, 3, 8, 23, 32])
@pytest.mark.parametrize("rule", RULES)
def test_random_inputs_follow_the_definition(rule, n, fmt):
    """float64 inputs (nu of up to 53 bits) and the same values cast to float32 (the fast path
    where the format has one): each element's code is the definition's for its R."""
    seed = 1000 + n
    x64 = _random_inputs(fmt, 1500, seed)
    for x in (x64, x64.astype(np.float32)):
        codes = fl.encode(x, fmt, "stochastic", seed=seed, sr_bits=n, sr_rule=rule).astype(np.int64)
        expected = _expected_codes(fmt, x.astype(np.float64), seed, n, rule)
        mismatched = np.flatnonzero(codes != expected)
        assert mismatched.size == 0, (f"{fmt} {rule} N={n} {x.dtype}: x={x[mismatched[0]]!r} gives "
                                      f"{codes[mismatched[0]]:#x}, the definition {expected[mismatched[0]]:#x}")


@settings(max_examples=300)
@given(x=st.floats(min_value=2.0**-30, max_value=60000.0, allow_nan=False, allow_infinity=False),
       negative=st.booleans(), n=st.integers(1, 32), rule=st.sampled_from(RULES),
       seed=st.integers(0, 2**64 - 1), single=st.booleans())
def test_hypothesis_one_value_follows_the_definition(x, negative, n, rule, seed, single):
    """Any float64 (or float32) value into fp16, any seed: the code of element 0 is the
    definition's for R = top N bits of fl_random_word(seed, 0, 0)."""
    value = np.float32(x) if single else np.float64(x)
    value = -value if negative else value
    code = int(fl.encode(np.array([value]), fl.FP16, "stochastic", seed=seed, sr_bits=n, sr_rule=rule)[0])
    toward, away, nu = _exact_nu(fl.FP16, float(value))
    r = lib.fl_random_word(seed, 0, 0) >> (64 - n)
    assert code == (away if reference_away(nu, r, n, rule) else toward)


# ---- the Tesla gap: the ulp is not a power of two -------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("rule", RULES)
def test_tesla_gap_follows_the_definition_for_every_draw(rule, n):
    """cfloat8_1_4_3 with subnormals="tesla": between the largest subnormal 7/1024 and
    min_normal 16/1024 the spacing is 9/1024.  nu = i/2^(N+2) (ties included) and
    nu = i/9 (not dyadic), each against every R, with the exact rational nu."""
    seed = 4321
    lo, gap = Fraction(7, 1024), Fraction(9, 1024)
    nus = [Fraction(i, 2**(n + 2)) for i in range(1, 2**(n + 2))] + [Fraction(i, 9) for i in range(1, 9)]
    repeat = DRAWS_PER_R * 2**n
    values = np.repeat(np.array([float(lo + nu * gap) for nu in nus]), repeat)
    for x in (values, values.astype(np.float32)):
        codes = fl.encode(x, CF143_TESLA, "stochastic", seed=seed, sr_bits=n, sr_rule=rule)
        bits = _random_bits(seed, x.size, n).reshape(len(nus), repeat)
        away = (codes == 8).reshape(len(nus), repeat)
        assert set(np.unique(codes)) <= {7, 8}
        for row, nu in enumerate(nus):
            exact = (Fraction(float(x[row * repeat])) - lo) / gap
            assert exact == nu or nu.denominator == 9  # the dyadic points are exact in float32
            assert set(bits[row].tolist()) == set(range(2**n))
            expected = np.array([reference_away(exact, int(r), n, rule) for r in bits[row]])
            assert np.array_equal(away[row], expected), f"{rule} N={n} nu={exact} {x.dtype}"


def test_tesla_gap_with_exact_sr_bits_keeps_32_truncated_bits():
    """sr_bits=None in the gap is truncate with N = 32 (documented; no finite N is exact)."""
    seed = 99
    x = np.full(4000, float(Fraction(7, 1024) + Fraction(1, 3) * Fraction(9, 1024)))
    exact = fl.encode(x, CF143_TESLA, "stochastic", seed=seed)
    np.testing.assert_array_equal(exact, fl.encode(x, CF143_TESLA, "stochastic", seed=seed, sr_bits=32))


# ---- gfloat, fed the same random integers ---------------------------------------------------

GFLOAT_FORMATS = [(fl.FP16, "format_info_binary16"), (fl.BF16, "format_info_bfloat16"),
                  (fl.E4M3FN, "format_info_ocp_e4m3"), (fl.E5M2, "format_info_ocp_e5m2"),
                  (fl.E2M1FN, "format_info_ocp_e2m1")]


@pytest.mark.parametrize("fmt, info", GFLOAT_FORMATS, ids=[str(f) for f, _ in GFLOAT_FORMATS])
@pytest.mark.parametrize("n", [1, 2, 4, 7, 12])
@pytest.mark.parametrize("rule", RULES)
def test_against_gfloat_with_the_same_random_integers(rule, n, fmt, info):
    """fmtlab's rule against gfloat's matching RoundMode (round_ndarray, srbits = the R each
    element drew).  Inputs are float32 and n <= 12, so gfloat's float64 arithmetic
    (delta + srbits * 2^-N and friends) is exact and its modes are the definitions."""
    seed = 31 + n
    x = _random_inputs(fmt, 4000, seed).astype(np.float32)
    x[:64] = np.float32(1.0) + np.arange(64, dtype=np.float32) * np.float32(2.0**-(fmt.man_bits + 6))
    bits = _random_bits(seed, x.size, n)
    ours = fl.quantize(x.astype(np.float64), fmt, "stochastic", seed=seed, sr_bits=n, sr_rule=rule)
    theirs = gfloat.round_ndarray(getattr(gfloat_formats, info), x.astype(np.float64),
                                  getattr(gfloat.RoundMode, GFLOAT_MODES[rule]), False, bits, n)
    mismatched = np.flatnonzero(ours != theirs)
    assert mismatched.size == 0, (f"{fmt} {rule} N={n}: x={x[mismatched[0]]!r} R={bits[mismatched[0]]}: "
                                  f"fmtlab {ours[mismatched[0]]!r}, gfloat {theirs[mismatched[0]]!r}")
    ours32 = fl.quantize(x, fmt, "stochastic", seed=seed, sr_bits=n, sr_rule=rule)
    np.testing.assert_array_equal(ours32.astype(np.float64), ours)


@pytest.mark.parametrize("rule", RULES)
def test_against_gfloat_round_float_on_a_grid(rule):
    """The scalar round_float on every nu of a 6-bit grid and every R of 3 bits."""
    n = 3
    info = gfloat_formats.format_info_binary16
    mode = getattr(gfloat.RoundMode, GFLOAT_MODES[rule])
    nus, repeat, values = _grid_case(n, 6)
    seed = 5
    ours = fl.quantize(values, fl.FP16, "stochastic", seed=seed, sr_bits=n, sr_rule=rule)
    bits = _random_bits(seed, values.size, n)
    for i in range(values.size):
        theirs = gfloat.round_float(info, float(values[i]), mode, False, int(bits[i]), n)
        assert ours[i] == theirs, f"{rule}: x={values[i]!r} R={bits[i]}"
    seen = {(i // repeat, int(bits[i])) for i in range(values.size)}
    assert len(seen) == len(nus) * 2**n  # every R of every nu was compared


@pytest.mark.parametrize("rule, nu, r", [
    ("truncate", Fraction(1, 4) - Fraction(1, 2**55), 3),      # floor(nu 4) + 3 = 3 < 4: toward
    ("nearest_away", Fraction(3, 8) - Fraction(1, 2**54), 2),  # floor(nu 8) + 2R + 1 = 7 < 8: toward
])
def test_the_definition_where_a_float64_evaluation_rounds(rule, nu, r):
    """nu a hair below a threshold, with 53 significant bits (x = nu * 2^-24 in fp16's
    subnormal range): the decision is the definition's.  gfloat 0.5.2 evaluates
    StochasticFastest as delta + R 2^-N >= 1 and StochasticFast as delta + (2R+1) 2^-(N+1) >= 1
    in float64, where the sum rounds up to 1.0 and it rounds away; fmtlab's integer test does not."""
    n = 2
    x = float(nu * Fraction(1, 2**24))
    assert Fraction(x) == nu * Fraction(1, 2**24)
    assert not reference_away(nu, r, n, rule)
    seed = next(s for s in range(10_000) if lib.fl_random_word(s, 0, 0) >> (64 - n) == r)
    assert fl.encode(np.array([x]), fl.FP16, "stochastic", seed=seed, sr_bits=n, sr_rule=rule)[0] == 0
    assert fl.quantize(x, fl.FP16, "stochastic", seed=seed, sr_bits=n, sr_rule=rule) == 0.0


# ---- unbiased where the definition promises it --------------------------------------------

@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("nu, n", [(Fraction(5, 16), 4), (Fraction(3, 4), 2), (Fraction(1, 2), 1),
                                   (Fraction(1000003, 2**20), 20)])
def test_unbiased_when_nu_has_at_most_n_bits(rule, nu, n):
    """P(away) = nu exactly when nu has at most N bits, so the mean of many rounded copies
    of x lies within 5 standard errors of x."""
    count = 200_000
    ulp = 2.0**-10
    x = float(1 + nu * Fraction(ulp))
    quantized = fl.quantize(np.full(count, x), fl.FP16, "stochastic", seed=2024, sr_bits=n, sr_rule=rule)
    standard_error = ulp * math.sqrt(float(nu * (1 - nu)) / count)
    assert abs(quantized.mean() - x) <= 5 * standard_error


@pytest.mark.parametrize("rule, unbiased", [("nearest_even", True), ("nearest_odd", True), ("truncate", False)])
def test_mean_over_a_grid_detects_the_bias_of_truncation(rule, unbiased):
    """nu uniform on a 4-bit grid, N = 2: nearest_even and nearest_odd round to the right
    mean on average (within 5 standard deviations over 1.5 million draws); truncate is
    biased by -3/32 ulp per value, far outside that, so the test can tell them apart."""
    n, grid_bits, per_value = 2, 4, 100_000
    ulp = 2.0**-10
    nus = [Fraction(i, 2**grid_bits) for i in range(1, 2**grid_bits)]
    x = np.repeat(np.array([float(1 + nu * Fraction(ulp)) for nu in nus]), per_value)
    quantized = fl.quantize(x, fl.FP16, "stochastic", seed=11, sr_bits=n, sr_rule=rule)
    probabilities = [reference_probability(nu, n, rule) for nu in nus]
    bound = 5 * math.sqrt(sum(float(p * (1 - p)) for p in probabilities) * per_value)
    error = float(np.sum(quantized - x)) / ulp  # in ulps: the number of away draws minus sum(nu)
    expected = sum(p - nu for p, nu in zip(probabilities, nus)) * per_value
    if unbiased:
        assert expected == 0
        assert abs(error) <= bound
    else:
        # -(2^-N - 2^-D)/2 per grid point, nu = 0 included
        assert expected == -(Fraction(1, 2**n) - Fraction(1, 2**grid_bits)) / 2 * 2**grid_bits * per_value
        assert abs(error - float(expected)) <= bound and abs(error) > 10 * bound


# ---- the paths agree: float32 fast path, encode_one, torch ---------------------------------

def _mixed_inputs(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n) * np.exp2(rng.integers(-20, 20, n))
    x[::97] = np.nan
    x[::101] = np.inf
    x[::103] = 0.0
    return x.astype(dtype)


@pytest.mark.parametrize("n", [1, 4, 9, 23, 32])
@pytest.mark.parametrize("rule", RULES)
def test_float32_fast_path_equals_the_exact_path(rule, n):
    x32 = _mixed_inputs(70_001, np.float32, seed=9)
    for fmt in (fl.BF16, fl.FP16, fl.E4M3FN, CF143_TESLA, fl.E5M2FNUZ, fl.UHP, fl.E2M1FN):
        codes32 = fl.encode(x32, fmt, "stochastic", seed=4242, sr_bits=n, sr_rule=rule)
        codes64 = fl.encode(x32.astype(np.float64), fmt, "stochastic", seed=4242, sr_bits=n, sr_rule=rule)
        np.testing.assert_array_equal(codes32, codes64, err_msg=f"{fmt} {rule} N={n}")
        q32 = fl.quantize(x32, fmt, "stochastic", seed=4242, sr_bits=n, sr_rule=rule)
        q64 = fl.quantize(x32.astype(np.float64), fmt, "stochastic", seed=4242, sr_bits=n, sr_rule=rule)
        same = (q32.astype(np.float64) == q64) | (np.isnan(q32) & np.isnan(q64))
        assert same.all(), f"{fmt} {rule} N={n}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("n", [1, 3, 11, 32])
@pytest.mark.parametrize("rule", RULES)
def test_torch_path_gives_the_c_bits(rule, n, dtype):
    """The pure-torch codec (what GPUs run) against the C core, bit for bit."""
    x = torch.from_numpy(_mixed_inputs(30_001, np.float64, seed=3)).to(dtype)
    gap = torch.tensor([float(Fraction(7, 1024) + Fraction(i, 32) * Fraction(9, 1024)) for i in range(1, 32)]
                       + [float(Fraction(7, 1024) + Fraction(i, 9) * Fraction(9, 1024)) for i in range(1, 9)],
                       dtype=dtype).repeat(50)
    for fmt, values in ((fl.BF16, x), (fl.E4M3FN, x), (fl.FP16, x), (fl.UHP, x), (CF143_TESLA, x * 2.0**-6),
                        (CF143_TESLA, gap)):
        native = flt.quantize(values, fmt, "stochastic", seed=808, sr_bits=n, sr_rule=rule, backend="native")
        pure = flt.quantize(values, fmt, "stochastic", seed=808, sr_bits=n, sr_rule=rule, backend="torch")
        same = (native == pure) | (torch.isnan(native) & torch.isnan(pure))
        assert bool(same.all()), f"{fmt} {rule} N={n} {dtype}: {int((~same).sum())} differ"
        assert torch.equal(torch.signbit(native[~torch.isnan(native)]), torch.signbit(pure[~torch.isnan(pure)]))


def test_tensor_format_carries_the_rule():
    policy = flt.TensorFormat(fl.E4M3FN, rounding="stochastic", sr_bits=3, sr_rule="nearest_even")
    assert policy.sr_rule == "nearest_even"
    with pytest.raises(ValueError, match="sr_rule"):
        flt.TensorFormat(fl.E4M3FN, rounding="stochastic", sr_rule="nearest_even")  # needs sr_bits


# ---- threads, chunking, reproducibility ---------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule", RULES)
def test_identical_whatever_the_thread_count(rule, dtype):
    x = _mixed_inputs(300_001, dtype, seed=1)  # above the parallel threshold, odd length
    runs = []
    try:
        for threads in (1, 2, None):
            fl.set_threads(threads)
            results = []
            for fmt in (fl.BF16, fl.E4M3FN, CF143_TESLA):
                codes, stats = fl.encode(x, fmt, "stochastic", seed=2024, sr_bits=5, sr_rule=rule, stats=True)
                results.append((codes, stats.as_dict(),
                                fl.quantize(x, fmt, "stochastic", seed=2024, sr_bits=5, sr_rule=rule)))
            runs.append(results)
    finally:
        fl.set_threads(None)
    for other in runs[1:]:
        for (codes, stats, quantized), (codes_1, stats_1, quantized_1) in zip(other, runs[0]):
            np.testing.assert_array_equal(codes, codes_1)
            assert stats == stats_1
            np.testing.assert_array_equal(quantized, quantized_1)


def _encode_with_offset(x, fmt, seed, start, stop, n, rule):
    """The C core on x[start:stop] with index_offset = start (the chunking contract)."""
    chunk = np.ascontiguousarray(x[start:stop])
    codes = np.empty(chunk.shape, dtype=fmt.code_dtype)
    function = lib.fl_encode_f32 if chunk.dtype == np.float32 else lib.fl_encode_f64
    pointer = "float *" if chunk.dtype == np.float32 else "double *"
    rounding = _c.c_rounding(_c.rounding_request("stochastic", None, seed, n, rule))
    status = function(ffi.cast(pointer, chunk.ctypes.data), chunk.size, _c.c_format(fmt), rounding,
                      ffi.cast("void *", codes.ctypes.data), codes.itemsize, start, ffi.NULL)
    assert status == lib.FL_OK
    return codes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule", RULES)
def test_chunking_with_index_offset(rule, dtype):
    x = _mixed_inputs(20_003, dtype, seed=2)
    for fmt in (fl.BF16, fl.E5M2, CF143_TESLA):
        whole = fl.encode(x, fmt, "stochastic", seed=7, sr_bits=6, sr_rule=rule)
        for cuts in ([0, 1, 5000, 20_003], [0, 513, 1024, 20_003]):
            pieces = [_encode_with_offset(x, fmt, 7, a, b, 6, rule) for a, b in zip(cuts, cuts[1:])]
            np.testing.assert_array_equal(np.concatenate(pieces), whole)


def test_rules_differ_and_agree_where_they_should():
    """Different rules give different codes when nu has more than N bits (a grid of N + 3
    bits, ties included), and identical codes when it has at most N bits (float32 input into
    bf16: nu has at most 16 bits)."""
    _, _, grid = _grid_case(3, 6)
    results = {rule: fl.encode(grid, fl.FP16, "stochastic", seed=1, sr_bits=3, sr_rule=rule) for rule in RULES}
    for a in RULES:
        for b in RULES:
            if a < b:
                assert (results[a] != results[b]).any(), f"{a} and {b} gave the same codes"
    x = _mixed_inputs(50_000, np.float32, seed=4)
    many_bits = {rule: fl.encode(x, fl.BF16, "stochastic", seed=1, sr_bits=16, sr_rule=rule) for rule in RULES}
    for rule in RULES[1:]:
        np.testing.assert_array_equal(many_bits[rule], many_bits["truncate"])
    assert (many_bits["truncate"] != fl.encode(x, fl.BF16, "stochastic", seed=1, sr_bits=15,
                                               sr_rule="nearest_even")).any()


# ---- the default rule is today's ----------------------------------------------------------

def _golden_inputs(count, seed):
    """float64 values built from the generator's own words (no numpy RNG: stable forever)."""
    words = _words(seed, count)
    sign = (words >> np.uint64(63)) << np.uint64(63)
    exponent = (np.uint64(1023 - 24) + ((words >> np.uint64(52)) % np.uint64(48))) << np.uint64(52)
    x = (sign | exponent | (words & np.uint64((1 << 52) - 1))).view(np.float64).copy()
    x[::97] = np.nan
    x[::101] = np.inf
    x[::103] = 0.0
    return x


# sha256 of the codes and values below, computed with fmtlab before sr_rule existed
TODAYS_DIGEST = "60341b4754342c9345eb25cfb656a5595f7c6d0afed3c603a9a73605a24cc96d"


@pytest.mark.parametrize("explicit", [False, True])
def test_the_default_rule_keeps_todays_bits(explicit):
    x64 = _golden_inputs(60_000, 1234)
    keywords = {"sr_rule": "truncate"} if explicit else {}
    digest = hashlib.sha256()
    for x in (x64.astype(np.float32), x64):
        for name in ("bf16", "e4m3fn", "fp16", "e5m2fnuz", "tesla"):
            fmt = CF143_TESLA if name == "tesla" else fl.format(name)
            values = x * 2.0**-14 if name == "tesla" else x
            for bits in (None, 1, 3, 8, 13, 32):
                digest.update(fl.encode(values, fmt, "stochastic", seed=2718, sr_bits=bits, **keywords).tobytes())
                quantized = fl.quantize(values, fmt, "stochastic", seed=2718, sr_bits=bits, **keywords)
                # the digest predates the one NaN-sign rule (issue 11): quantize then gave +NaN for a
                # negative NaN code (e4m3fn's overflows), so NaNs are compared without their sign here
                # (tests/test_codec_regressions.py checks the signs)
                digest.update(np.where(np.isnan(quantized), np.abs(quantized), quantized).tobytes())
    assert digest.hexdigest() == TODAYS_DIGEST


# ---- arguments -----------------------------------------------------------------------------

def test_bad_rule_names_the_argument_and_suggests():
    x = np.ones(4)
    with pytest.raises(ValueError, match=r"sr_rule='nearest-even' is not allowed \(did you mean 'nearest_even'\?\); "
                                         r"allowed: truncate, nearest_away, nearest_even, nearest_odd"):
        fl.encode(x, fl.BF16, "stochastic", sr_bits=3, sr_rule="nearest-even")
    with pytest.raises(ValueError, match=r"did you mean 'nearest_even'"):
        fl.quantize(x, fl.BF16, "stochastic", sr_bits=3, sr_rule="StochasticC")
    with pytest.raises(ValueError, match=r"did you mean 'nearest_away'"):
        fl.quantize(x, fl.BF16, "stochastic", sr_bits=3, sr_rule="StochasticFast")
    with pytest.raises(ValueError, match=r"sr_rule=3 is not allowed"):
        fl.quantize(x, fl.BF16, "stochastic", sr_bits=3, sr_rule=3)
    with pytest.raises(ValueError, match=r"sr_rule='nearest_odd' needs sr_bits"):
        fl.encode(x, fl.BF16, "stochastic", sr_rule="nearest_odd")
    with pytest.raises(ValueError, match=r"sr_rule='bogus'"):
        flt.quantize(torch.ones(3), fl.BF16, "stochastic", sr_bits=2, sr_rule="bogus")


def test_c_core_rejects_an_unknown_rule():
    rounding = _c.c_rounding(_c.rounding_request("stochastic", None, 1, 3))
    rounding.sr_rule = 4
    x = np.ones(3)
    codes = np.empty(3, dtype=np.uint16)
    status = lib.fl_encode_f64(ffi.cast("double *", x.ctypes.data), 3, _c.c_format(fl.BF16), rounding,
                               ffi.cast("void *", codes.ctypes.data), 2, 0, ffi.NULL)
    assert status == lib.FL_ERROR_SR_RULE
    rounding.sr_rule = -1
    assert lib.fl_encode_f64(ffi.cast("double *", x.ctypes.data), 3, _c.c_format(fl.BF16), rounding,
                             ffi.cast("void *", codes.ctypes.data), 2, 0, ffi.NULL) == lib.FL_ERROR_SR_RULE


def test_rule_codes_come_from_the_header():
    assert _c.SR_RULES == RULES
    assert [_c.SR_RULE_CODES[rule] for rule in RULES] == [lib.FL_SR_TRUNCATE, lib.FL_SR_NEAREST_AWAY,
                                                          lib.FL_SR_NEAREST_EVEN, lib.FL_SR_NEAREST_ODD]
    assert ffi.new("fl_rounding *").sr_rule == lib.FL_SR_TRUNCATE  # a zeroed struct is today's rule
