"""IEEE P3109 formats: every Binary{K}p{P}{s,u}{e,f} with K <= 8, code for code and rounding for rounding.

What is proven here, and against what:

* the format parameters (bias, widths, max, the smallest values, the special codes) equal
  gfloat's ``format_info_p3109`` (the P3109 working group's reference code) for every K = 3..8
  and P, and a few wider formats;
* every code of every K <= 8 format decodes to gfloat's ``decode_float`` value and to the exact
  Fraction computed below, in this file, from the interim report v4.0's omega-DecodeAux
  (section 4.7.2), and re-encodes to itself in every rounding mode and saturation mode;
* every rounding mode fmtlab and gfloat share (TowardZero, TowardNegative, TowardPositive,
  TiesToEven, TiesToAway) agrees with gfloat's ``round_float`` + ``encode_float`` on Hypothesis
  float64 inputs and on the boundaries (max, the overflow threshold, the smallest subnormal and
  half of it, +-0, +-Inf, NaN), in every saturation mode: gfloat's sat=True is P3109's SatFinite
  (and, on gfloat's inputs, SatNone of the finite domain, and SatPropagate but for Inf inputs of
  extended formats, which follow sat=False), sat=False is fmtlab's saturate=False and SatNone of
  the extended domain; one gfloat 0.5.2 misrounding is
  recognised and checked against the exact reference instead (TiesToAway just below half the
  smallest subnormal, see _gfloat_misrounds_ties_to_away), and negative inputs to unsigned
  formats, which gfloat's round_float does not handle, are checked against the report;
* every saturation mode (SatFinite, SatPropagate, SatNone), with every deterministic mode
  including ToOdd, against the report's omega-Saturate table as transcribed in
  tests/reference.py, and against hand-worked cases written out here;
* the float32 fast path gives the float64 exact path's codes, and the pure-torch path the C
  path's bits, for P3109 formats under every saturation mode.
"""
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from gfloat import decode_float, encode_float, round_float
from gfloat.formats import format_info_p3109, p3109_binary8_formats
from gfloat.types import Domain, RoundMode, Signedness
from hypothesis import given, settings
from hypothesis import strategies as st

import fmtlab as fl
from fmtlab import _c, _torch_codec
from reference import (DETERMINISTIC_MODES, SATURATION_MODES, assert_codes_equal, format_id, layout,
                       p3109_saturate, reference_is_nan, reference_round, reference_round_all,
                       reference_stochastic_probability)

SATURATIONS = (None, False, True, "sat_finite", "sat_propagate", "sat_none")
GFLOAT_MODES = {"toward_zero": RoundMode.TowardZero, "down": RoundMode.TowardNegative,
                "up": RoundMode.TowardPositive, "nearest_even": RoundMode.TiesToEven,
                "nearest_away": RoundMode.TiesToAway}


def _p3109_parameters(max_k=8):
    """(K, P, signed, domain) of every P3109 format with 3 <= K <= max_k (report section 3.1)."""
    for k in range(3, max_k + 1):
        for signed in (True, False):
            for precision in range(1, k + (0 if signed else 1)):
                for domain in ("extended", "finite"):
                    yield k, precision, signed, domain


def _name(k, precision, signed, domain):
    return f"p3109_{k}p{precision}{'' if signed else '_unsigned'}{'_finite' if domain == 'finite' else ''}"


def _gfloat_info(k, precision, signed, domain):
    return format_info_p3109(k, precision, Signedness.Signed if signed else Signedness.Unsigned,
                             Domain.Extended if domain == "extended" else Domain.Finite)


ALL_K8 = list(_p3109_parameters(8))
FORMATS = [fl.format(_name(*parameters)) for parameters in ALL_K8]
INFO = {fmt: _gfloat_info(*parameters) for fmt, parameters in zip(FORMATS, ALL_K8)}
PARAMETERS = dict(zip(FORMATS, ALL_K8))
# wider formats (beyond float32, or 10..16 bits), checked on samples
WIDE = [(10, 4, True, "extended"), (11, 3, False, "finite"), (12, 1, True, "extended"), (12, 12, False, "extended"),
        (16, 11, True, "extended"), (16, 8, False, "extended"), (16, 6, False, "finite")]


def test_there_are_120_formats_up_to_8_bits():
    # signed: P = 1..K-1, unsigned: P = 1..K, two domains each, K = 3..8
    assert len(FORMATS) == 2 * sum((k - 1) + k for k in range(3, 9)) == 120
    assert len(set(FORMATS)) == 120


# ---- the P3109 definition, written out here (interim report v4.0) ----------------------------

def p3109_decode(k, precision, signed, domain, code):
    """omega-DecodeAux (section 4.7.2): the value of a code as a Fraction, "inf", "-inf" or "nan"."""
    extended = domain == "extended"
    bias = 2 ** (k - precision - 1) if signed else 2 ** (k - precision)  # section 3.1
    if signed and code == 2 ** (k - 1):
        return "nan"
    if not signed and code == 2 ** k - 1:
        return "nan"
    if signed and extended and code == 2 ** (k - 1) - 1:
        return "inf"
    if signed and extended and code == 2 ** k - 1:
        return "-inf"
    if not signed and extended and code == 2 ** k - 2:
        return "inf"
    if signed and code > 2 ** (k - 1):
        value = p3109_decode(k, precision, signed, domain, code - 2 ** (k - 1))
        return -value
    trailing = code % 2 ** (precision - 1)
    biased_exponent = code // 2 ** (precision - 1)
    if biased_exponent == 0:
        return (0 + trailing * Fraction(2) ** (1 - precision)) * Fraction(2) ** (1 - bias)
    return (1 + trailing * Fraction(2) ** (1 - precision)) * Fraction(2) ** (biased_exponent - bias)


def _as_float(value):
    return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}.get(value, value) if isinstance(value, str) \
        else float(value)


# ---- format parameters -----------------------------------------------------------------------

@pytest.mark.parametrize("parameters", ALL_K8 + WIDE, ids=lambda p: _name(*p))
def test_parameters_equal_gfloats(parameters):
    k, precision, signed, domain = parameters
    fmt, info = fl.format(_name(*parameters)), _gfloat_info(*parameters)
    assert fmt.name == _name(*parameters)
    assert fmt.bits == info.k == k
    assert fmt.man_bits == info.tSignificandBits == precision - 1
    assert fmt.exp_bits == info.expBits
    assert fmt.bias == info.bias
    assert fmt.signed is info.is_signed
    assert fmt.max == info.max
    assert fmt.min_subnormal == info.smallest
    assert fmt.min_normal == 2.0 ** (1 - info.bias)
    assert fmt.has_inf is (info.num_infs > 0) is (domain == "extended")
    assert fmt.has_nan and not fmt.has_negative_zero and fmt.has_zero
    assert fmt.max_magnitude_code == info.code_of_max
    assert fmt.num_finite == 2 ** k - info.num_nans - info.num_infs
    assert fmt.specials == ("p3109" if domain == "extended" else "fnuz" if signed else "fn")
    assert fmt.subnormals == "ieee"
    if domain == "extended":
        assert fmt.inf_magnitude_code == info.code_of_posinf
        if signed:
            assert fmt.inf_magnitude_code | (1 << (k - 1)) == info.code_of_neginf
    assert fmt.exact_value(info.code_of_nan) == "nan"


def test_bias_and_widths_from_the_report_written_out():
    # section 3.1: signed B = 2^(K-P-1), unsigned B = 2^(K-P); Binary8p3se is E5M2-like with bias 16
    assert (fl.format("p3109_8p3").exp_bits, fl.format("p3109_8p3").bias) == (5, 16)
    assert (fl.format("p3109_8p4").exp_bits, fl.format("p3109_8p4").bias) == (4, 8)
    assert (fl.format("p3109_8p1").exp_bits, fl.format("p3109_8p1").bias) == (7, 64)
    assert (fl.format("p3109_8p8_unsigned_finite").exp_bits, fl.format("p3109_8p8_unsigned_finite").bias) == (1, 1)
    assert (fl.format("p3109_8p1_unsigned").exp_bits, fl.format("p3109_8p1_unsigned").bias) == (8, 128)
    # the report's own example (section 3.1, NOTE 2): 2.0 in Binary8p4se is 0x48, Inf is 0x7F
    assert int(fl.encode(2.0, "p3109_8p4")) == 0x48
    assert int(fl.encode(np.inf, "p3109_8p4")) == 0x7F
    # Binary8p3se: max = 0x7E = 1.5 * 2^(31 - 16) = 49152; NaN 0x80; -Inf 0xFF
    fmt = fl.format("p3109_8p3")
    assert fmt.max == 49152.0 and fmt.exact_value(0x80) == "nan" and fmt.exact_value(0xFF) == "-inf"
    # unsigned extended Binary8p4ue (5 exponent bits, bias 16): NaN 0xFF, +Inf 0xFE, max 0xFD =
    # 0b11111_101 = (1 + 5/8) * 2^(31 - 16)
    unsigned = fl.format("p3109_8p4_unsigned")
    assert [unsigned.exact_value(c) for c in (0xFF, 0xFE)] == ["nan", "inf"]
    assert unsigned.exact_value(0xFD) == Fraction(13, 8) * 2 ** (31 - 16) == unsigned.max


def test_finite_domain_is_fnuz_or_fn_and_matches_ml_dtypes():
    """P3109's signed finite formats are fnuz formats: Binary8p4sf is ml_dtypes' float8_e4m3fnuz and
    Binary8p3sf float8_e5m2fnuz, code for code; unsigned finite formats are unsigned fn formats."""
    import ml_dtypes

    assert fl.format("p3109_8p4_finite") == fl.E4M3FNUZ
    assert fl.format("p3109_8p3_finite") == fl.E5M2FNUZ
    assert fl.format("p3109_8p4_finite").ml_dtype == np.dtype(ml_dtypes.float8_e4m3fnuz)
    assert fl.format("p3109_8p3_finite").ml_dtype == np.dtype(ml_dtypes.float8_e5m2fnuz)
    assert fl.format("p3109_8p3_unsigned_finite") == fl.Format(6, 2, 32, signed=False, specials="fn")
    assert fl.format("p3109_8p3").ml_dtype is None
    for name, info in (("p3109_8p4_finite", _gfloat_info(8, 4, True, "finite")),
                       ("p3109_8p3_finite", _gfloat_info(8, 3, True, "finite"))):
        codes = np.arange(256, dtype=np.uint8)
        theirs = codes.view(fl.format(name).ml_dtype).astype(np.float64)
        gfloat_values = np.array([decode_float(info, int(c)).fval for c in codes])
        assert np.array_equal(theirs, gfloat_values, equal_nan=True)


# ---- names -----------------------------------------------------------------------------------

def test_preset_names_list_gfloats_binary8_selection():
    """preset_names() lists the binary8 formats of gfloat's p3109_binary8_formats, no others."""
    listed = {name for name in fl.preset_names() if name.startswith("p3109")}
    expected = set()
    for info in p3109_binary8_formats:
        expected.add(_name(info.k, info.precision, info.is_signed,
                           "extended" if info.domain == Domain.Extended else "finite"))
    assert listed == expected and len(listed) == 12
    for name in listed:
        assert fl.format(name) is getattr(fl.formats, name.upper())


@pytest.mark.parametrize("spelling, canonical", [
    ("p3109_8p3", "p3109_8p3"), ("P3109_8P3", "p3109_8p3"), ("binary8p3se", "p3109_8p3"),
    ("Binary8p3sf", "p3109_8p3_finite"), ("binary8p4ue", "p3109_8p4_unsigned"),
    ("Binary8p1uf", "p3109_8p1_unsigned_finite"), ("p3109_k8p3se", "p3109_8p3"),  # gfloat's names
    ("p3109_k5p2uf", "p3109_5p2_unsigned_finite"), ("binary12p7se", "p3109_12p7"),
    ("p3109_6p2_unsigned_finite", "p3109_6p2_unsigned_finite"),
])
def test_every_spelling_gives_the_canonical_name(spelling, canonical):
    fmt = fl.format(spelling)
    assert fmt.name == canonical and repr(fmt) == canonical
    assert fl.format(canonical) == fmt
    assert fl.formats.format_spec(fmt) == canonical
    assert fl.formats.format_from_spec(canonical, fmt.bias) == fmt


@pytest.mark.parametrize("name, words", [
    ("p3109_2p1", "K > 2"),
    ("p3109_8p8", "1 <= P < K = 8"),
    ("p3109_8p9_unsigned", "1 <= P <= K = 8"),
    ("p3109_8p0", "precision=0"),
    ("p3109_13p1", "exact in float64"),
    ("p3109_40p20", "32 bits"),
    ("p3109_8p3_unsined", "did you mean 'p3109_8p3_unsigned'"),
    ("p3109_8p3_finite_unsigned", "p3109_8p3_unsigned_finite"),
    ("binary8p8se", "1 <= P < K = 8"),
])
def test_bad_names_say_why(name, words):
    with pytest.raises(ValueError) as error:
        fl.format(name)
    assert words in str(error.value)


def test_signed_p_equal_k_is_documented_as_not_covered():
    """gfloat accepts signed P = K (no exponent field); the report does not (section 3.1)."""
    info = format_info_p3109(8, 8, Signedness.Signed, Domain.Finite)
    assert info.expBits == 0  # what gfloat builds
    with pytest.raises(ValueError, match="gfloat"):
        fl.formats.p3109_format(8, 8)
    assert fl.formats.p3109_format(8, 8, signed=False, domain="finite").exp_bits == 1


def test_fixed_parameters_refuse_overrides():
    with pytest.raises(ValueError, match="bias"):
        fl.format("p3109_8p3", bias=15)
    with pytest.raises(ValueError, match="subnormals"):
        fl.format("p3109_5p2:subnormals=tesla")
    assert fl.format("p3109_8p3", bias=16) == fl.format("p3109_8p3")


def test_p3109_format_argument_errors():
    with pytest.raises(TypeError, match="k must be an int"):
        fl.formats.p3109_format(8.0, 3)
    with pytest.raises(ValueError, match="domain='extnded' is not allowed .did you mean 'extended'"):
        fl.formats.p3109_format(8, 3, domain="extnded")
    with pytest.raises(TypeError, match="signed"):
        fl.formats.p3109_format(8, 3, signed="yes")


# ---- every code ------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS, ids=format_id)
def test_every_code_decodes_to_gfloat_and_to_the_definition(fmt):
    k, precision, signed, domain = PARAMETERS[fmt]
    info = INFO[fmt]
    codes = np.arange(1 << k)
    ours = fl.decode(codes.astype(fmt.code_dtype), fmt).astype(np.float64)
    values = fmt.values()
    for code in range(1 << k):
        exact = p3109_decode(k, precision, signed, domain, code)
        theirs = decode_float(info, code).fval
        assert fmt.exact_value(code) == exact, (fmt, hex(code))
        expected = _as_float(exact)
        for got in (ours[code], values[code], theirs):
            if math.isnan(expected):
                assert math.isnan(got), (fmt, hex(code), got)
            else:
                assert got == expected and math.copysign(1, got) == math.copysign(1, expected), (fmt, hex(code), got)
        # gfloat's encode_float takes the value back to the code (its NaN to its one NaN code)
        assert encode_float(info, theirs) == code, (fmt, hex(code))


@pytest.mark.parametrize("fmt", FORMATS, ids=format_id)
def test_every_code_reencodes_to_itself_in_every_mode_and_saturation(fmt):
    values = fmt.values()
    codes = np.arange(1 << fmt.bits)
    for dtype in (np.float32, np.float64):
        x = values.astype(dtype)
        for mode in fl.ROUNDINGS:
            for saturate in SATURATIONS:
                got = fl.encode(x, fmt, mode, saturate=saturate, seed=3)
                # the one NaN re-encodes to itself; Inf stays Inf except under SatFinite
                expected = codes.copy()
                if saturate == "sat_finite" and fmt.has_inf:
                    inf = fmt.inf_magnitude_code
                    expected[inf] = fmt.max_magnitude_code
                    if fmt.signed:
                        expected[inf | 1 << (fmt.bits - 1)] = fmt.max_magnitude_code | 1 << (fmt.bits - 1)
                assert np.array_equal(got, expected), (fmt, mode, saturate, dtype)


@pytest.mark.parametrize("parameters", WIDE, ids=lambda p: _name(*p))
def test_wide_formats_sampled_against_gfloat(parameters):
    fmt, info = fl.format(_name(*parameters)), _gfloat_info(*parameters)
    rng = np.random.default_rng(fmt.bits)
    special = [0, 1, 2, fmt.max_magnitude_code, fmt.max_magnitude_code + 1, (1 << fmt.bits) - 1,
               1 << (fmt.bits - 1), (1 << (fmt.bits - 1)) + 1, (1 << (fmt.bits - 1)) - 1]
    codes = np.unique(np.concatenate([rng.integers(0, 1 << fmt.bits, 2000), special]))
    ours = fl.decode(codes.astype(fmt.code_dtype), fmt).astype(np.float64)
    for code, got in zip(codes, ours):
        exact = p3109_decode(*parameters, int(code))
        theirs = decode_float(info, int(code)).fval
        assert fmt.exact_value(int(code)) == exact
        if isinstance(exact, str) and exact == "nan":
            assert math.isnan(got) and math.isnan(theirs)
        else:
            assert got == _as_float(exact) == theirs
    for saturate in SATURATIONS:
        again = fl.encode(ours, fmt, saturate=saturate)
        nan = np.isnan(ours)
        keep = nan | (np.abs(ours) != np.inf) | (saturate != "sat_finite")
        assert np.array_equal(again[keep & ~nan], codes[keep & ~nan])
        assert all(reference_is_nan(fmt, int(c)) for c in again[nan])


# ---- rounding against gfloat -----------------------------------------------------------------

def _gfloat_codes(fmt, x, mode, gfloat_saturate):
    info = INFO.get(fmt) or _gfloat_info(*_params_of(fmt))
    return np.array([encode_float(info, round_float(info, float(v), GFLOAT_MODES[mode], gfloat_saturate))
                     for v in x], dtype=np.int64)


def _params_of(fmt):
    k = fmt.bits
    precision = fmt.man_bits + 1
    return k, precision, fmt.signed, "extended" if fmt.has_inf else "finite"


def _boundaries(fmt):
    """max, the overflow threshold and its neighbours, the smallest subnormal, half of it, 1, +-0, +-Inf, NaN."""
    lay = layout(fmt)
    maximum = float(lay.magnitude(lay.max_code))
    beyond = float(lay.magnitude(lay.max_code + 1))
    threshold = (maximum + beyond) / 2
    smallest = fmt.min_subnormal
    points = [maximum, beyond, threshold, np.nextafter(threshold, 0), np.nextafter(threshold, np.inf), 2 * beyond,
              smallest, smallest / 2, np.nextafter(smallest / 2, 0), np.nextafter(smallest / 2, 1),
              1.5 * smallest, fmt.min_normal, 1.0, 1e300, 5e-324, 0.0, np.inf, np.nan]
    points = np.array(points, dtype=np.float64)
    signed = np.concatenate([points, -points]) if fmt.signed else points
    return signed


def _gfloat_inputs_ok(fmt, x):
    """gfloat's round_float does not take negative inputs to unsigned formats (it computes with the
    sign dropped): those are checked against the report's definition instead."""
    x = np.asarray(x, dtype=np.float64)
    if fmt.signed:
        return x
    return x[~np.signbit(x) | np.isnan(x)]


def _gfloat_misrounds_ties_to_away(fmt, v):
    """Whether gfloat 0.5.2's round_float gets TiesToAway wrong for v: it tests ``delta + 0.5 >=
    1.0`` in float64, and for a delta in [0.5 - 2^-54, 0.5) the sum rounds up to 1.0.  (Such a
    delta has 53 bits below the binary point, so the integer part is 0: only inputs just below half
    the smallest subnormal.)  fmtlab rounds those toward zero, as the exact reference does."""
    a = abs(float(v))
    if not math.isfinite(a) or a == 0:
        return False
    exponent = max(math.frexp(a)[1] - 1, 1 - fmt.bias) - fmt.man_bits  # gfloat's expval
    significand = Fraction(a) / Fraction(2) ** exponent
    delta = significand - math.floor(significand)
    return delta < Fraction(1, 2) and float(delta) + 0.5 >= 1.0


def _compare_with_gfloat(fmt, x):
    """gfloat has one flag, sat: sat=True is SatFinite, sat=False is fmtlab's saturate=False (and
    SatNone in the extended domain).  On gfloat's inputs (no negatives to unsigned formats) SatNone
    in the finite domain is SatFinite, and SatPropagate is SatFinite except that an Inf input of an
    extended format stays Inf (gfloat's sat=False): every saturation mode has a gfloat twin."""
    x = _gfloat_inputs_ok(fmt, x)
    infinite = np.isinf(x)
    pairs = [(True, "sat_finite"), (False, False), (False, None), (not fmt.has_inf, "sat_none"),
             (~infinite if fmt.has_inf else True, "sat_propagate")]
    for mode in GFLOAT_MODES:
        for gfloat_saturate, ours in pairs:
            if isinstance(gfloat_saturate, np.ndarray):  # per element
                want = np.where(gfloat_saturate, _gfloat_codes(fmt, x, mode, True), _gfloat_codes(fmt, x, mode, False))
            else:
                want = _gfloat_codes(fmt, x, mode, bool(gfloat_saturate))
            if mode == "nearest_away":
                for index, value in enumerate(x):
                    if _gfloat_misrounds_ties_to_away(fmt, value):
                        want[index] = reference_round(value, fmt, mode, ours)
            got = fl.encode(x, fmt, mode, saturate=ours)
            assert_codes_equal(fmt, x, got, want, f"against gfloat, rounding={mode}, saturate={ours}")
            with np.errstate(over="ignore"):
                x32 = x.astype(np.float32)
            got32 = fl.encode(x32, fmt, mode, saturate=ours)
            exact32 = x32.astype(np.float64) == x
            assert_codes_equal(fmt, x[exact32], got32[exact32], want[exact32], f"float32, rounding={mode}")


@pytest.mark.parametrize("fmt", FORMATS, ids=format_id)
def test_boundaries_and_midpoints_against_gfloat(fmt):
    values = fmt.values()
    finite = np.unique(np.abs(values[np.isfinite(values)]))
    midpoints = (finite[1:] + finite[:-1]) / 2
    x = np.concatenate([_boundaries(fmt), finite, midpoints, np.nextafter(midpoints, 0),
                        np.nextafter(midpoints, np.inf), -midpoints, -finite])
    _compare_with_gfloat(fmt, x)


@st.composite
def _format_and_inputs(draw, formats):
    fmt = draw(st.sampled_from(formats))
    low, high = max(math.log2(fmt.min_subnormal) - 4, -1074), min(math.log2(fmt.max) + 3, 1022)
    magnitude = st.builds(lambda e, f: math.ldexp(1 + f, e), st.integers(int(low), int(high)),
                          st.floats(0, 1, exclude_max=True))
    any_float = st.floats(allow_nan=True, allow_infinity=True)
    values = draw(st.lists(st.one_of(magnitude, any_float), min_size=1, max_size=20))
    signs = draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    return fmt, np.array([-v if s else v for v, s in zip(values, signs)], dtype=np.float64)


@settings(max_examples=300, deadline=None)
@given(case=_format_and_inputs(FORMATS))
def test_random_float64_inputs_against_gfloat(case):
    fmt, x = case
    _compare_with_gfloat(fmt, x)


@pytest.mark.parametrize("parameters", WIDE, ids=lambda p: _name(*p))
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_random_inputs_of_wide_formats_against_gfloat(parameters, data):
    fmt = fl.format(_name(*parameters))
    _, x = data.draw(_format_and_inputs([fmt]))
    _compare_with_gfloat(fmt, np.concatenate([x, _boundaries(fmt)]))


# ---- the saturation modes against their definition -----------------------------------------

@pytest.mark.parametrize("fmt", FORMATS, ids=format_id)
def test_every_saturation_mode_against_the_reports_table(fmt):
    """Every deterministic mode (ToOdd included) and every saturation mode, on the boundaries,
    values, midpoints and their neighbours, both signs, against tests/reference.py (which
    rounds, then applies omega-Saturate rule by rule)."""
    values = fmt.values()
    finite = np.unique(np.abs(values[np.isfinite(values)]))
    midpoints = (finite[1:] + finite[:-1]) / 2
    x = np.concatenate([_boundaries(fmt), finite, midpoints, np.nextafter(midpoints, 0),
                        np.nextafter(midpoints, np.inf)])
    x = np.concatenate([x, -x])
    for saturate in SATURATION_MODES:
        expected = {mode: [] for mode in DETERMINISTIC_MODES}
        for value in x:
            for mode, code in reference_round_all(value, fmt, saturate).items():
                expected[mode].append(code)
        for mode in DETERMINISTIC_MODES:
            for dtype in (np.float64, np.float32):
                with np.errstate(over="ignore"):
                    inputs = x.astype(dtype)
                keep = np.isnan(x) | (inputs.astype(np.float64) == x)
                got = fl.encode(inputs[keep], fmt, mode, saturate=saturate)
                assert_codes_equal(fmt, inputs[keep], got, np.array(expected[mode])[keep],
                                   f"rounding={mode}, saturate={saturate}")


M_HI, M_LO = Fraction(7), Fraction(-7)


@pytest.mark.parametrize("sat, rounding, x, signed, extended, expected", [
    # in range: unchanged; NaN: NaN
    ("sat_none", "nearest_even", Fraction(3), True, True, Fraction(3)),
    ("sat_finite", "up", "nan", True, True, "nan"),
    # SatFinite clamps everything, Inf too
    ("sat_finite", "nearest_even", "+inf", True, True, M_HI),
    ("sat_finite", "nearest_even", "-inf", True, True, M_LO),
    ("sat_finite", "up", Fraction(9), True, True, M_HI),
    # SatPropagate keeps an Inf where the format has one
    ("sat_propagate", "nearest_even", "+inf", True, True, "+inf"),
    ("sat_propagate", "nearest_even", "+inf", True, False, M_HI),
    ("sat_propagate", "nearest_even", "-inf", True, True, "-inf"),
    ("sat_propagate", "nearest_even", Fraction(9), True, True, M_HI),
    ("sat_propagate", "nearest_even", Fraction(-9), True, True, M_LO),
    # SatNone: by the rounding direction
    ("sat_none", "nearest_even", Fraction(9), True, True, "+inf"),
    ("sat_none", "nearest_even", Fraction(9), True, False, M_HI),
    ("sat_none", "toward_zero", Fraction(9), True, True, M_HI),
    ("sat_none", "down", Fraction(9), True, True, M_HI),
    ("sat_none", "up", Fraction(9), True, True, "+inf"),
    ("sat_none", "up", Fraction(-9), True, True, M_LO),
    ("sat_none", "down", Fraction(-9), True, True, "-inf"),
    ("sat_none", "odd", Fraction(9), True, True, "+inf"),        # signed extended ToOdd: +Inf
    ("sat_none", "odd", Fraction(9), False, True, M_HI),         # unsigned extended ToOdd: M hi
    ("sat_none", "nearest_even", Fraction(-1), False, True, "nan"),   # unsigned: below 0 is NaN ...
    ("sat_none", "toward_zero", Fraction(-1), False, True, Fraction(0)),  # ... except TZ and TP
    ("sat_none", "up", Fraction(-1), False, False, Fraction(0)),
    ("sat_none", "nearest_even", "-inf", False, True, "nan"),
    ("sat_none", "toward_zero", "-inf", False, True, "nan"),
    ("sat_none", "nearest_even", "-inf", True, False, M_LO),
    ("sat_none", "nearest_even", Fraction(-9), True, False, M_LO),
    ("sat_finite", "nearest_even", Fraction(-1), False, True, Fraction(0)),
    ("sat_propagate", "nearest_even", "-inf", False, True, Fraction(0)),
])
def test_the_transcribed_saturation_table(sat, rounding, x, signed, extended, expected):
    """The reference's omega-Saturate, case by case from the report's table (section 4.7.5)."""
    m_lo = M_LO if signed else Fraction(0)
    assert p3109_saturate(sat, rounding, x, signed, extended, m_lo, M_HI) == expected


@pytest.mark.parametrize("name, x, mode, saturate, expected", [
    # Binary8p3se: max 49152 (0x7E), the next value would be 57344: the threshold is 53248
    ("p3109_8p3", 53248.0, "nearest_even", "sat_none", 0x7E),   # a tie goes to the even code: max
    ("p3109_8p3", 53249.0, "nearest_even", "sat_none", 0x7F),   # beyond: +Inf
    ("p3109_8p3", 53249.0, "nearest_even", "sat_propagate", 0x7E),
    ("p3109_8p3", 53249.0, "toward_zero", "sat_none", 0x7E),
    ("p3109_8p3", -53249.0, "up", "sat_none", 0xFE),
    ("p3109_8p3", -53249.0, "down", "sat_none", 0xFF),
    ("p3109_8p3", 49153.0, "odd", "sat_none", 0x7F),             # ToOdd leaves the even max: +Inf
    ("p3109_8p3", 49153.0, "odd", False, 0x7E),                  # fmtlab's own odd never overflows
    ("p3109_8p3", np.inf, "nearest_even", "sat_finite", 0x7E),
    ("p3109_8p3", -np.inf, "nearest_even", "sat_propagate", 0xFF),
    ("p3109_8p3", np.inf, "nearest_even", True, 0x7F),           # saturate=True keeps an Inf input
    ("p3109_8p3", -0.0, "nearest_even", "sat_none", 0x00),       # no -0: +0
    # Binary8p3ue: max 0xFD, Inf 0xFE, NaN 0xFF
    ("p3109_8p3_unsigned", 1e12, "odd", "sat_none", 0xFD),      # unsigned extended ToOdd: max
    ("p3109_8p3_unsigned", 1e12, "nearest_even", "sat_none", 0xFE),
    ("p3109_8p3_unsigned", -1.0, "nearest_even", "sat_none", 0xFF),
    ("p3109_8p3_unsigned", -1.0, "toward_zero", "sat_none", 0x00),
    ("p3109_8p3_unsigned", -1.0, "up", "sat_none", 0x00),
    ("p3109_8p3_unsigned", -1.0, "nearest_even", "sat_finite", 0x00),
    ("p3109_8p3_unsigned", -1.0, "nearest_even", False, 0xFF),  # fmtlab's own rule: NaN
    ("p3109_8p3_unsigned", -1e-30, "nearest_even", "sat_none", 0x00),  # rounds to zero first
    ("p3109_8p3_unsigned", -1e-30, "down", "sat_none", 0xFF),          # rounds to -min: NaN
    ("p3109_8p3_unsigned", -np.inf, "up", "sat_none", 0xFF),
    ("p3109_8p3_unsigned", -np.inf, "nearest_even", "sat_propagate", 0x00),
    # Binary8p3sf (finite domain): SatNone saturates; fmtlab's own rule gives NaN (gfloat sat=False)
    ("p3109_8p3_finite", 1e9, "nearest_even", "sat_none", 0x7F),
    ("p3109_8p3_finite", -1e9, "nearest_even", "sat_none", 0xFF),
    ("p3109_8p3_finite", 1e9, "nearest_even", False, 0x80),
    ("p3109_8p3_finite", np.inf, "nearest_even", "sat_none", 0x7F),
    ("p3109_8p3_finite", np.inf, "nearest_even", False, 0x80),
    # P = 1: ties go to the even code (P3109's CodeIsEven: IsEven(Q + B)); 3 * 2^-1 lies between
    # 1 (code 0x40, even) and 2 (0x41, odd)
    ("p3109_8p1", 1.5, "nearest_even", False, 0x40),
    ("p3109_8p1", 3.0, "nearest_even", False, 0x42),
])
def test_hand_worked_examples(name, x, mode, saturate, expected):
    fmt = fl.format(name)
    for dtype in (np.float64, np.float32):
        assert int(fl.encode(np.array([x], dtype=dtype), fmt, mode, saturate=saturate)[0]) == expected
    assert reference_round(x, fmt, mode, saturate) == expected


@pytest.mark.parametrize("name, x, mode, saturate, counts", [
    ("p3109_8p3", [1e6, -1e6], "nearest_even", "sat_none", {"overflow": 2, "inexact": 2}),
    ("p3109_8p3", [1e6, np.inf], "nearest_even", "sat_finite", {"overflow": 2, "inexact": 1}),
    ("p3109_8p3", [np.inf, -np.inf], "nearest_even", "sat_propagate", {}),
    ("p3109_8p3_unsigned", [-1.0], "nearest_even", "sat_none", {"invalid": 1}),
    ("p3109_8p3_unsigned", [-1.0, -np.inf], "nearest_even", "sat_finite", {"overflow": 2, "inexact": 1}),
    ("p3109_8p3_unsigned", [-1e-30], "nearest_even", "sat_none", {"underflow": 1, "inexact": 1}),
    ("p3109_8p3_unsigned", [-np.inf], "toward_zero", "sat_none", {"invalid": 1}),
    ("p3109_8p3_unsigned", [-1.0], "nearest_even", None, {"invalid": 1}),
    ("p3109_8p3", [np.nan], "nearest_even", "sat_finite", {"invalid": 1}),
])
def test_stats_under_the_saturation_modes(name, x, mode, saturate, counts):
    expected = {"invalid": 0, "overflow": 0, "underflow": 0, "denormal": 0, "inexact": 0, **counts}
    for dtype in (np.float32, np.float64):
        _, stats = fl.encode(np.array(x, dtype=dtype), name, mode, saturate=saturate, stats=True)
        assert {key: getattr(stats, key) for key in expected} == expected
        _, quantize_stats = fl.quantize(np.array(x, dtype=dtype), name, mode, saturate=saturate, stats=True)
        assert quantize_stats.as_dict() == stats.as_dict()


def test_saturation_argument():
    request = _c.rounding_request("up", saturate="sat_none")
    assert request.saturate == "sat_none"
    assert _c.rounding_request("up", saturate=None).saturate is False
    assert _c.rounding_request("up", saturate=np.bool_(True)).saturate is True
    with pytest.raises(TypeError, match="did you mean 'sat_finite'"):
        fl.encode(np.ones(2), "p3109_8p3", saturate="sat_finit")
    with pytest.raises(TypeError, match="saturate"):
        fl.quantize(np.ones(2), "p3109_8p3", saturate=2)


def test_saturation_enum_is_named_after_the_python_names():
    """fmtlab.h's enum fl_saturation: FL_SATURATE_OFF/ON for False/True, FL_SATURATE_<NAME> for the
    P3109 modes; the C core rejects any other value with FL_ERROR_SATURATION."""
    import pathlib
    import re

    header = (pathlib.Path(__file__).resolve().parents[1] / "csrc" / "fmtlab.h").read_text()
    body = re.search(r"enum fl_saturation\s*\{(.*?)\};", header, re.S).group(1)
    enum = {name: int(value) for name, value in re.findall(r"(FL_\w+)\s*=\s*(\d+)", body)}
    names = {False: "FL_SATURATE_OFF", True: "FL_SATURATE_ON",
             **{name: f"FL_SATURATE_{name.upper()}" for name in fl.formats.SATURATIONS}}
    assert {names[key]: code for key, code in _c.SATURATION_CODES.items()} == enum
    struct = _c.c_rounding(_c.rounding_request("nearest_even"))
    struct.saturate = 5
    x, codes = np.ones(4, np.float32), np.empty(4, np.uint8)
    status = _c.lib.fl_encode_f32(_c.pointer(x, "float"), 4, _c.c_format(fl.format("p3109_8p3")), struct,
                                  _c.pointer(codes, "void"), 1, 0, _c.ffi.NULL)
    assert status == _c.lib.FL_ERROR_SATURATION


# ---- stochastic rounding under the saturation modes ----------------------------------------

@pytest.mark.parametrize("name, x, saturate", [
    ("p3109_8p3", 50000.0, "sat_none"), ("p3109_8p3", 50000.0, "sat_finite"), ("p3109_8p3", -60000.0, "sat_none"),
    ("p3109_8p3_unsigned", -2.0 ** -40, "sat_none"), ("p3109_8p3_unsigned", -2.0 ** -40, "sat_propagate"),
    ("p3109_8p4_unsigned", 300.0, "sat_none"), ("p3109_8p3_finite", 60000.0, "sat_none"),
])
def test_stochastic_draws_are_the_two_candidates(name, x, saturate):
    fmt = fl.format(name)
    toward, away, probability = reference_stochastic_probability(x, fmt, None, saturate)
    codes = fl.encode(np.full(20000, x), fmt, "stochastic", saturate=saturate, seed=99)
    drawn = set(int(c) for c in np.unique(codes))
    assert drawn <= {toward, away}
    if 0 < probability < 1 and toward != away:
        share = float(np.mean(codes == away))
        assert abs(share - float(probability)) < 5 * math.sqrt(float(probability * (1 - probability)) / 20000)


# ---- one result whatever the path --------------------------------------------------------------

FAST_PATH_FORMATS = [fl.format(name) for name in ("p3109_8p3", "p3109_8p4_unsigned", "p3109_8p1", "p3109_8p1_unsigned",
                                                  "p3109_8p7_finite", "p3109_8p8_unsigned_finite", "p3109_5p2",
                                                  "p3109_3p3_unsigned", "p3109_16p11", "p3109_12p1")]


@pytest.mark.parametrize("fmt", FAST_PATH_FORMATS, ids=format_id)
def test_float32_path_equals_float64_path(fmt):
    """About 2^19 float32 patterns through all 2^32, every mode and saturation mode: the float32
    fast path gives the codes (and counts) of the float64 exact path."""
    bits = np.arange(777, 1 << 32, 8191, dtype=np.uint64).astype(np.uint32)
    x32 = bits.view(np.float32)
    with np.errstate(invalid="ignore"):
        x64 = x32.astype(np.float64)
    for mode in fl.ROUNDINGS:
        for saturate in SATURATIONS:
            codes32, stats32 = fl.encode(x32, fmt, mode, saturate=saturate, seed=5, stats=True)
            codes64, stats64 = fl.encode(x64, fmt, mode, saturate=saturate, seed=5, stats=True)
            assert np.array_equal(codes32, codes64), (mode, saturate)
            assert stats32 == stats64, (mode, saturate)


TORCH_FORMATS = FAST_PATH_FORMATS + [fl.format(name) for name in ("p3109_8p3_finite", "p3109_8p4_unsigned_finite",
                                                                  "p3109_4p1", "p3109_6p6_unsigned")]


@pytest.mark.parametrize("fmt", TORCH_FORMATS, ids=format_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_torch_path_equals_the_c_path(fmt, dtype):
    rng = np.random.default_rng(7)
    low, high = max(math.log2(fmt.min_subnormal) - 4, -1074), min(math.log2(fmt.max) + 4, 1023)
    x = rng.standard_normal(3000) * np.exp2(rng.uniform(low, high, 3000))
    values = fmt.values() if fmt.bits <= 16 else np.array([fmt.max])
    finite = np.unique(values[np.isfinite(values)])
    if finite.size > 1000:  # 16-bit formats: both ends of the range and a sample between
        keep = np.unique(np.concatenate([np.arange(200), np.arange(finite.size - 200, finite.size),
                                         rng.choice(finite.size, 600, replace=False)]))
        finite = finite[keep]
    midpoints = (finite[1:] + finite[:-1]) / 2
    with np.errstate(over="ignore"):
        x = np.concatenate([x, _boundaries(fmt), -_boundaries(fmt), finite, midpoints, -midpoints]).astype(dtype)
    for mode in fl.ROUNDINGS:
        for saturate in SATURATIONS:
            want = fl.quantize(x, fmt, mode, saturate=saturate, seed=13)
            got = _torch_codec.quantize(torch.from_numpy(x), fmt, mode, saturate=saturate, seed=13).numpy()
            integer = np.int64 if dtype is np.float64 else np.int32
            same = (got.view(integer) == want.view(integer)) | (np.isnan(got) & np.isnan(want))
            assert same.all(), (mode, saturate, x[~same][:4], got[~same][:4], want[~same][:4])


def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(300_001) * 2.0 ** rng.integers(-30, 30, 300_001)).astype(np.float32)
    for name, saturate in (("p3109_8p3", "sat_none"), ("p3109_8p4_unsigned", "sat_finite"), ("e8m0", None)):
        results = []
        for threads in (1, 2):
            try:
                fl.set_threads(threads)
                results.append(fl.encode(x, name, "stochastic", saturate=saturate, seed=5, stats=True))
            finally:
                fl.set_threads(None)
        assert np.array_equal(results[0][0], results[1][0]) and results[0][1] == results[1][1]
