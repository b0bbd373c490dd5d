"""E8M0 (OCP MX v1.0's scale format): unsigned, 8 exponent bits, no mantissa, bias 127, no zero.

Code c < 255 is 2^(c - 127); 0xFF is the NaN.  What is proven here:

* every code decodes to 2^(c - 127) (written out here), to ml_dtypes' float8_e8m0fnu value
  and to gfloat's ocp_e8m0 value; Format's limits equal ml_dtypes.finfo's;
* ml_dtypes' float32 -> float8_e8m0fnu cast is bit for bit fmtlab's ``nearest_away``, over
  every float32 exponent, both signs, ties and their neighbours, zeros, the float32 subnormals,
  Inf and NaN; ``nearest_even`` is the same except at the exact ties whose even code is the
  lower one, where ml_dtypes 0.7 rounds up (docs/formats.md: fmtlab keeps ties-to-even-code,
  as gfloat and P3109's CodeIsEven do; jax-ml/ml_dtypes PR #398 proposes the same fix);
* the documented choice of every mode for zero, negative, tiny (below 2^-127) and huge
  (beyond 2^127) inputs, Inf and NaN, with each saturation mode;
* the float32 path equals the float64 path, the torch path equals the C path.
"""
import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
import torch
from gfloat import decode_float, encode_float, round_float
from gfloat.formats import format_info_ocp_e8m0
from gfloat.types import RoundMode

import fmtlab as fl
from fmtlab import _torch_codec
from reference import DETERMINISTIC_MODES, reference_round, reference_round_all

E8M0 = fl.format("e8m0")
SATURATIONS = (None, True, "sat_finite", "sat_propagate", "sat_none")
NAN = 0xFF
MAX = 0xFE


def test_format_facts_written_out():
    assert (E8M0.bits, E8M0.exp_bits, E8M0.man_bits, E8M0.bias, E8M0.signed) == (8, 8, 0, 127, False)
    assert (E8M0.specials, E8M0.subnormals) == ("fn", "normal")
    assert not E8M0.has_zero and not E8M0.has_inf and E8M0.has_nan and not E8M0.has_negative_zero
    assert E8M0.max == 2.0 ** 127 and E8M0.min_normal == E8M0.min_subnormal == 2.0 ** -127
    assert (E8M0.emin, E8M0.emax, E8M0.eps) == (-127, 127, 1.0)
    assert E8M0.num_finite == 255 and E8M0.max_magnitude_code == MAX
    assert E8M0.dynamic_range_binades == 254
    assert E8M0.ml_dtype == np.dtype(ml_dtypes.float8_e8m0fnu)
    assert fl.format("float8_e8m0fnu") is E8M0 and fl.format("E8M0FNU") is E8M0
    assert "e8m0" in fl.formats.ml_dtypes_presets()
    assert E8M0.decode_dtype == np.dtype(np.float32)


def test_finfo_names_agree_with_ml_dtypes():
    info = ml_dtypes.finfo(ml_dtypes.float8_e8m0fnu)
    assert E8M0.max == float(info.max)
    assert E8M0.smallest_normal == float(info.smallest_normal) == E8M0.tiny == float(info.tiny)
    assert E8M0.smallest_subnormal == float(info.smallest_subnormal)
    assert (E8M0.nmant, E8M0.nexp, E8M0.minexp, E8M0.maxexp) == (info.nmant, info.nexp, info.minexp, info.maxexp)
    assert E8M0.eps == float(info.eps)


def test_every_code_decodes_to_a_power_of_two():
    codes = np.arange(256, dtype=np.uint8)
    decoded = fl.decode(codes, E8M0)
    ml = codes.view(ml_dtypes.float8_e8m0fnu).astype(np.float32)
    values = E8M0.values()
    for code in range(255):
        exact = Fraction(2) ** (code - 127)
        assert E8M0.exact_value(code) == exact
        assert decoded[code] == values[code] == ml[code] == float(exact)
        assert decode_float(format_info_ocp_e8m0, code).fval == float(exact)
    assert E8M0.exact_value(NAN) == "nan" and math.isnan(decoded[NAN]) and math.isnan(values[NAN])
    assert math.isnan(ml[NAN]) and math.isnan(decode_float(format_info_ocp_e8m0, NAN).fval)
    assert np.array_equal(fl.to_ml_dtypes(codes, E8M0).view(np.uint8), codes)


def test_every_code_reencodes_to_itself():
    values = E8M0.values()
    for dtype in (np.float32, np.float64):
        for mode in fl.ROUNDINGS:
            for saturate in SATURATIONS:
                got = fl.encode(values.astype(dtype), E8M0, mode, saturate=saturate, seed=1)
                assert np.array_equal(got, np.arange(256)), (mode, saturate, dtype)


# ---- ml_dtypes bit for bit -----------------------------------------------------------------

def _probe_float32():
    """Every float32 exponent field with mantissas 0, 1, the half (a tie) and its neighbours, the
    top; the float32 subnormals on a stride plus the tie 1.5 * 2^-127; both signs; +-0, +-Inf, NaN."""
    mantissas = np.array([0, 1, 2, 0x1FFFFF, 0x3FFFFF, 0x400000, 0x400001, 0x5FFFFF, 0x7FFFFE, 0x7FFFFF],
                         dtype=np.uint32)
    exponents = np.arange(0, 256, dtype=np.uint32)
    bits = (exponents[:, None] << 23 | mantissas[None, :]).ravel()
    subnormals = np.concatenate([np.arange(1, 1 << 23, 977, dtype=np.uint32),
                                 np.array([0x200000, 0x3FFFFF, 0x400000, 0x400001, 0x5FFFFF, 0x600000, 0x600001],
                                          dtype=np.uint32)])
    rng = np.random.default_rng(8)
    random = rng.integers(0, 1 << 32, 200000, dtype=np.uint64).astype(np.uint32)
    bits = np.concatenate([bits, subnormals, random])
    bits = np.concatenate([bits, bits | 0x80000000])
    return bits.view(np.float32)


def _ml(x):
    with np.errstate(all="ignore"):
        return x.astype(ml_dtypes.float8_e8m0fnu).view(np.uint8)


def _exact_ties(x):
    """float32 inputs exactly halfway between two consecutive E8M0 values: 1.5 * 2^(c - 127)."""
    bits = x.view(np.uint32) & 0x7FFFFFFF
    return (((bits & 0x7FFFFF) == 0x400000) & ((bits >> 23) >= 1) & ((bits >> 23) <= 254)) | (bits == 0x600000)


def test_ml_dtypes_cast_is_nearest_away_bit_for_bit():
    x = _probe_float32()
    got = fl.encode(x, E8M0, "nearest_away")
    want = _ml(x)
    assert np.array_equal(got, want), [(float(v), int(a), int(b)) for v, a, b in
                                       zip(x[got != want][:6], got[got != want], want[got != want])]


def test_strided_sweep_over_all_float32_against_ml_dtypes():
    bits = np.arange(4321, 1 << 32, 4093, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    assert np.array_equal(fl.encode(x, E8M0, "nearest_away"), _ml(x))
    ties = _exact_ties(x)
    assert np.array_equal(fl.encode(x[~ties], E8M0, "nearest_even"), _ml(x[~ties]))


def test_nearest_even_is_ml_dtypes_except_at_exact_ties():
    x = _probe_float32()
    ties = _exact_ties(x)
    got = fl.encode(x, E8M0, "nearest_even")
    want = _ml(x)
    assert np.array_equal(got[~ties], want[~ties])
    # at a tie between codes c and c + 1 (value 1.5 * 2^(c - 127)) nearest_even takes the even one;
    # ml_dtypes 0.7 always takes c + 1, so they differ exactly where c is even
    tie_values = np.abs(x[ties].astype(np.float64))
    lower = np.floor(np.log2(tie_values)).astype(np.int64) + 127
    positive = ~np.signbit(x[ties])
    expected = np.where(lower % 2 == 0, lower, lower + 1)
    expected = np.where(expected > MAX, NAN, expected)  # the tie above max goes to 0xFF = NaN (odd)
    assert np.array_equal(got[ties][positive], expected[positive])
    assert np.array_equal(want[ties][positive], np.where(lower + 1 > MAX, NAN, lower + 1)[positive])
    assert (got[ties][~positive] == NAN).all()  # negative: invalid, NaN
    # the case the brief names: 3.0 lies between 2 (0x80) and 4 (0x81)
    assert int(fl.encode(np.float32(3.0), E8M0)) == 0x80 and int(_ml(np.array([3.0], np.float32))[0]) == 0x81
    assert int(fl.encode(np.float32(3.0), E8M0, "nearest_away")) == 0x81


def test_gfloat_agrees_with_nearest_even_on_ties():
    """gfloat's ocp_e8m0 rounds ties to the even code (its code_is_odd uses the exponent parity)."""
    for code in range(0, 253):
        tie = 1.5 * 2.0 ** (code - 127)
        gfloat_code = encode_float(format_info_ocp_e8m0, round_float(format_info_ocp_e8m0, tie, RoundMode.TiesToEven))
        assert int(fl.encode(tie, E8M0)) == gfloat_code == (code if code % 2 == 0 else code + 1)


# ---- the documented choices, every mode ------------------------------------------------------

@pytest.mark.parametrize("x, codes", [
    # zero has no code: NaN in every mode (ml_dtypes' cast), counted as invalid
    (0.0, {mode: NAN for mode in fl.ROUNDINGS}),
    (-0.0, {mode: NAN for mode in fl.ROUNDINGS}),
    # negative: invalid, NaN (fmtlab's rule for unsigned formats)
    (-1.0, {mode: NAN for mode in fl.ROUNDINGS}),
    (-1e-40, {mode: NAN for mode in fl.ROUNDINGS}),
    # below 2^-127: the smallest value (code 0) in every mode, stochastic included
    (2.0 ** -130, {mode: 0x00 for mode in fl.ROUNDINGS}),
    (5e-324, {mode: 0x00 for mode in fl.ROUNDINGS}),
    (2.0 ** -127, {mode: 0x00 for mode in fl.ROUNDINGS}),
    # between 2^-127 and 2^-126: ordinary rounding between codes 0 and 1
    (1.25 * 2.0 ** -127, {"nearest_even": 0, "nearest_away": 0, "toward_zero": 0, "up": 1, "down": 0, "odd": 1}),
    (1.5 * 2.0 ** -127, {"nearest_even": 0, "nearest_away": 1, "toward_zero": 0, "up": 1, "down": 0, "odd": 1}),
    # 1.5 between 1 (0x7F, odd) and 2 (0x80): nearest_even and nearest_away both take 0x80
    (1.5, {"nearest_even": 0x80, "nearest_away": 0x80, "toward_zero": 0x7F, "up": 0x80, "down": 0x7F, "odd": 0x7F}),
    # beyond max = 2^127: fn's rule, NaN in the nearest and outward modes, max inward and for odd
    (1.25 * 2.0 ** 127, {"nearest_even": MAX, "nearest_away": MAX, "toward_zero": MAX, "up": NAN, "down": MAX,
                         "odd": MAX}),
    (1.5 * 2.0 ** 127, {"nearest_even": MAX, "nearest_away": NAN, "toward_zero": MAX, "up": NAN, "down": MAX,
                        "odd": MAX}),
    (2.0 ** 128, {"nearest_even": NAN, "nearest_away": NAN, "toward_zero": MAX, "up": NAN, "down": MAX, "odd": MAX}),
    (np.inf, {mode: NAN for mode in fl.ROUNDINGS}),
    (-np.inf, {mode: NAN for mode in fl.ROUNDINGS}),
    (np.nan, {mode: NAN for mode in fl.ROUNDINGS}),
])
def test_documented_choices(x, codes):
    for dtype in (np.float32, np.float64):
        with np.errstate(over="ignore"):
            value = np.array([x], dtype=dtype)
        if not (np.isnan(x) or float(value[0]) == x):
            continue  # not a float32 value (5e-324, 2^128): float64 only
        for mode, expected in codes.items():
            assert int(fl.encode(value, E8M0, mode, seed=4)[0]) == expected, (x, mode, dtype)
            if mode in DETERMINISTIC_MODES:
                assert reference_round(value[0], E8M0, mode) == expected


@pytest.mark.parametrize("x, saturate, expected", [
    (2.0 ** 128, True, MAX), (np.inf, True, MAX), (np.inf, "sat_finite", MAX), (np.inf, "sat_propagate", MAX),
    (np.inf, "sat_none", MAX), (2.0 ** 128, "sat_none", MAX),      # no Inf: P3109's finite-domain rules
    (0.0, "sat_finite", NAN), (0.0, True, NAN),                     # zero: NaN whatever the saturation
    (-1.0, "sat_finite", 0x00), (-1.0, "sat_propagate", 0x00),     # below the range: M lo = 2^-127
    (-1.0, "sat_none", NAN), (-1.0, True, NAN), (-np.inf, "sat_finite", 0x00), (-np.inf, "sat_none", NAN),
])
def test_saturation_modes(x, saturate, expected):
    assert int(fl.encode(np.array([x]), E8M0, saturate=saturate)[0]) == expected
    assert reference_round(x, E8M0, "nearest_even", saturate) == expected


def test_toward_zero_and_up_clamp_negative_inputs_under_sat_none():
    for mode, expected in (("toward_zero", 0x00), ("up", 0x00), ("down", NAN), ("nearest_even", NAN)):
        assert int(fl.encode(np.array([-3.0]), E8M0, mode, saturate="sat_none")[0]) == expected


@pytest.mark.parametrize("x, mode, counts", [
    ([0.0, -0.0], "nearest_even", {"invalid": 2}),
    ([-1.0], "nearest_even", {"invalid": 1}),
    ([2.0 ** -130, 2.0 ** -149], "nearest_even", {"underflow": 2, "inexact": 2}),
    ([1.9 * 2.0 ** 127], "nearest_even", {"overflow": 1, "inexact": 1}),
    ([np.inf], "nearest_even", {"overflow": 1}),
    ([1.0, 2.0 ** -127, 2.0 ** 127], "nearest_even", {}),
    ([3.0], "nearest_even", {"inexact": 1}),
])
def test_stats(x, mode, counts):
    expected = {"invalid": 0, "overflow": 0, "underflow": 0, "denormal": 0, "inexact": 0, **counts}
    for dtype in (np.float32, np.float64):
        _, stats = fl.encode(np.array(x, dtype=dtype), E8M0, mode, stats=True)
        assert {key: getattr(stats, key) for key in expected} == expected, dtype


# ---- one result whatever the path --------------------------------------------------------------

def test_float32_path_equals_float64_path_and_the_reference():
    bits = np.arange(99, 1 << 32, 8191, dtype=np.uint64).astype(np.uint32)
    x32 = bits.view(np.float32)
    with np.errstate(invalid="ignore"):
        x64 = x32.astype(np.float64)
    sample = x32[::97]
    for saturate in SATURATIONS:
        expected = [reference_round_all(v, E8M0, saturate) for v in sample]
        for mode in fl.ROUNDINGS:
            codes32, stats32 = fl.encode(x32, E8M0, mode, saturate=saturate, seed=2, stats=True)
            codes64, stats64 = fl.encode(x64, E8M0, mode, saturate=saturate, seed=2, stats=True)
            assert np.array_equal(codes32, codes64) and stats32 == stats64, (mode, saturate)
            if mode in DETERMINISTIC_MODES:
                want = np.array([codes[mode] for codes in expected])
                assert np.array_equal(codes32[::97], want), (mode, saturate)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_torch_path_equals_the_c_path(dtype):
    with np.errstate(invalid="ignore"):
        x = _probe_float32()[::23].astype(dtype)
    for mode in fl.ROUNDINGS:
        for saturate in SATURATIONS:
            want = fl.quantize(x, E8M0, mode, saturate=saturate, seed=21)
            got = _torch_codec.quantize(torch.from_numpy(x), E8M0, mode, saturate=saturate, seed=21).numpy()
            integer = np.int64 if dtype is np.float64 else np.int32
            same = (got.view(integer) == want.view(integer)) | (np.isnan(got) & np.isnan(want))
            assert same.all(), (mode, saturate, x[~same][:4], got[~same][:4], want[~same][:4])


def test_no_zero_is_a_general_format_property():
    """subnormals="normal" works for any format: E = 0 is a normal binade, there is no zero."""
    fmt = fl.Format(3, 2, 2, specials="ieee", subnormals="normal")  # signed, with Inf
    assert not fmt.has_zero and fmt.min_subnormal == fmt.min_normal == 0.25
    assert fmt.exact_value(0b0_000_00) == Fraction(1, 4) and fmt.exact_value(0b1_000_11) == -Fraction(7, 16)
    assert int(fl.encode(-1e-9, fmt)) == 0b1_000_00          # -tiny: -min, the sign kept
    assert math.isnan(float(fl.quantize(0.0, fmt)))          # zero: NaN
    finite = fl.Format(3, 1, 2, signed=False, specials="finite", subnormals="normal")
    assert int(fl.encode(0.0, finite)) == 0                   # no NaN either: code 0, the smallest value
    with pytest.raises(ValueError, match="subnormals='normal'"):
        fl.Format(4, 3, 8, specials="fnuz", subnormals="normal")
    with pytest.raises(ValueError, match="subnormals='normal'"):
        fl.Format(4, 3, 8, specials="p3109", subnormals="normal")
