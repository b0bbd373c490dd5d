"""Integer element formats (fmtlab.integers): the exact reference, exhaustive codes, peers.

The reference here is written from the definition in docs/formats.md section 2.3 with
Python integers and Fractions: round x / 2^s to an integer k in the mode, clamp k to the
range rounding may give, value k 2^s, code = k's two's complement pattern.  It calls no
fmtlab codec function.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fmtlab as fl
from fmtlab.integers import IntFormat

MODES = ("nearest_even", "nearest_away", "toward_zero", "up", "down", "odd")
FORMATS = ["int8", "int4", "int2", "uint8", "uint4", "uint2", "int8:symmetric=true", "int8:step_exponent=-6",
           "int4:symmetric=true,step_exponent=3", "int16", "uint16", "int24", "int3", "uint1"]


def reference_integer(fmt: IntFormat, x: float, mode: str) -> int:
    """The integer k that ``x`` rounds to in ``fmt`` (exact rationals; from the docs' rule)."""
    bits, signed = fmt.bits, fmt.signed
    high = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    low = (-high if fmt.symmetric else -(1 << (bits - 1))) if signed else 0
    if math.isnan(x):
        return high  # a NaN gives +max, as in every finite format
    if math.isinf(x):
        return high if x > 0 else low
    t = Fraction(x) / Fraction(2) ** fmt.step_exponent
    floor = math.floor(t)
    if t == floor:
        k = floor
    else:
        ceil = floor + 1
        fraction = t - floor
        if mode == "nearest_even":
            k = floor if fraction < Fraction(1, 2) else ceil if fraction > Fraction(1, 2) else \
                (floor if floor % 2 == 0 else ceil)
        elif mode == "nearest_away":
            k = floor if fraction < Fraction(1, 2) else ceil if fraction > Fraction(1, 2) else \
                (ceil if t > 0 else floor)
        elif mode == "toward_zero":
            k = floor if t > 0 else ceil
        elif mode == "up":
            k = ceil
        elif mode == "down":
            k = floor
        elif mode == "odd":
            k = floor if floor % 2 else ceil
        else:
            raise AssertionError(mode)
    return min(high, max(low, k))


def reference_integers(fmt: IntFormat, x: np.ndarray, mode: str) -> np.ndarray:
    """:func:`reference_integer` for a float64 array, vectorised.  Every operation is exact, so
    this is rational arithmetic: t = x 2^-s is a power-of-two scaling (the inputs stay far from
    float64's subnormals), floor(t) and t - floor(t) are exact for |t| < 2^52, and the
    comparisons with 1/2 are of exact values."""
    bits, signed = fmt.bits, fmt.signed
    high = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    low = (-high if fmt.symmetric else -(1 << (bits - 1))) if signed else 0
    finite = np.isfinite(x)
    t = np.ldexp(np.where(finite, x, 0.0), -fmt.step_exponent)
    assert np.all(np.abs(t) < 2.0 ** 52)
    floor = np.floor(t)
    fraction = t - floor
    ceil = floor + 1
    even_floor = np.mod(floor, 2) == 0
    exact = fraction == 0
    if mode == "nearest_even":
        k = np.where(fraction < 0.5, floor, np.where(fraction > 0.5, ceil, np.where(even_floor, floor, ceil)))
    elif mode == "nearest_away":
        k = np.where(fraction < 0.5, floor, np.where(fraction > 0.5, ceil, np.where(t > 0, ceil, floor)))
    elif mode == "toward_zero":
        k = np.where(t > 0, floor, ceil)
    elif mode == "up":
        k = ceil
    elif mode == "down":
        k = floor
    else:
        k = np.where(even_floor, ceil, floor)
    k = np.where(exact, floor, k)
    k = np.where(np.isnan(x), high, np.where(x == np.inf, high, np.where(x == -np.inf, low, k)))
    return np.clip(k, low, high).astype(np.int64)


def reference_code(fmt: IntFormat, k: int) -> int:
    return k & ((1 << fmt.bits) - 1)


def _inputs():
    """Every float16 value (ties, both signs, zeros, Inf, NaN, far out of range), spread over
    the integer range of the widest format by 2^-2, 1 and 2^8, as float32."""
    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)
    with np.errstate(invalid="ignore"):
        return np.concatenate([halves * np.float32(0.25), halves, halves * np.float32(256)])


INPUTS = _inputs()


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_every_mode_matches_the_exact_reference(name, mode):
    fmt = fl.format(name)
    with np.errstate(invalid="ignore"):
        x32 = INPUTS * np.float32(fmt.step)  # the same ties and ranges on the format's own grid
    for x in (x32, x32.astype(np.float64)):
        values = fl.quantize(x, fmt, mode)
        codes = fl.encode(x, fmt, mode)
        expected_k = reference_integers(fmt, x.astype(np.float64), mode)
        assert np.array_equal(codes, (expected_k & ((1 << fmt.bits) - 1)).astype(codes.dtype)), (name, mode)
        expected_values = np.ldexp(expected_k.astype(np.float64), fmt.step_exponent)
        assert np.array_equal(values.astype(np.float64), expected_values), (name, mode)
        assert not np.signbit(values[values == 0]).any(), "integers have no -0"
        assert values.dtype == x.dtype


@pytest.mark.parametrize("name", [n for n in FORMATS if fl.format(n).bits <= 16])
def test_every_code_decodes_to_its_integer_and_round_trips(name):
    fmt = fl.format(name)
    codes = np.arange(1 << fmt.bits, dtype=np.int64)
    k = np.where(codes >= (1 << (fmt.bits - 1)), codes - (1 << fmt.bits), codes) if fmt.signed else codes
    values = fl.decode(codes.astype(fmt.code_dtype), fmt)
    assert np.array_equal(values.astype(np.float64), np.ldexp(k.astype(np.float64), fmt.step_exponent))
    assert np.array_equal(fmt.values(), np.ldexp(k.astype(np.float64), fmt.step_exponent))
    assert all(fmt.exact_value(int(c)) == int(kk) * Fraction(2) ** fmt.step_exponent for c, kk in zip(codes, k))
    again = fl.encode(values, fmt)
    if fmt.symmetric:  # the most negative code decodes, but rounding never gives it
        expected = codes.copy()
        expected[codes == (1 << (fmt.bits - 1))] = (1 << (fmt.bits - 1)) + 1
        assert np.array_equal(again, expected)
    else:
        assert np.array_equal(again, codes)


def test_limits_and_names():
    int8 = fl.format("int8")
    assert (int8.min, int8.max, int8.step, int8.bits, int8.code_dtype) == (-128.0, 127.0, 1.0, 8, np.uint8)
    assert int8.ml_dtype == np.int8 and fl.format("uint8").ml_dtype == np.uint8
    import ml_dtypes
    assert fl.format("int4").ml_dtype == np.dtype(ml_dtypes.int4)
    assert fl.format("uint4").ml_dtype == np.dtype(ml_dtypes.uint4)
    assert fl.format("int8:step_exponent=-6").ml_dtype is None
    mx = fl.format("int8:step_exponent=-6")
    assert (mx.min, mx.max, mx.step, mx.emax) == (-2.0, 127 / 64, 2.0 ** -6, 0)
    symmetric = fl.format("int8:symmetric=true")
    assert (symmetric.min, symmetric.max) == (-127.0, 127.0)
    assert symmetric != int8 and hash(symmetric) != hash(int8)
    assert fl.format("uint4").min == 0.0 and fl.format("uint4").max == 15.0
    assert fl.format("INT8") is fl.format("int8") or fl.format("INT8") == int8
    assert int8.num_finite == 256 and not int8.has_nan and not int8.has_inf and not int8.has_negative_zero
    assert repr(mx) == "int8:step_exponent=-6" and fl.format(repr(mx)) == mx
    assert fl.formats.format_from_spec(fl.formats.format_spec(mx), mx.bias) == mx
    assert IntFormat(8, step_exponent=-6) == mx
    assert isinstance(int8, fl.Format)


@pytest.mark.parametrize("bad, message", [
    ("int1", "bits=1 is not allowed for a signed"), ("int25", "2..24"), ("uint0", "1..24"),
    ("uint8:symmetric=true", "symmetric=True is not allowed with signed=False"),
    ("int8:bias=3", "option 'bias' is unknown"), ("int8:symmetric=maybe", "symmetric='maybe'"),
    ("int8:step_exponent=big", "step_exponent='big'"), ("int8:step_exponent=-1100", "exact in float64"),
])
def test_bad_integer_formats_are_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        fl.format(bad)


def test_type_errors():
    with pytest.raises(TypeError, match="bits must be an int"):
        IntFormat(8.0)
    with pytest.raises(TypeError, match="step_exponent must be an int"):
        IntFormat(8, step_exponent=1.5)


def test_counts():
    x = np.array([-130.0, -128.4, -127.6, -0.25, 0.25, 1.5, 127.6, 300.0, np.inf, -np.inf, np.nan, 5.0, -128.0])
    _, stats = fl.quantize(x, "int8", stats=True)
    # overflow: -130, 127.6 (-> 128 -> 127), 300, +-Inf; -128.4 and -127.6 round to -128, in range
    assert (stats.invalid, stats.overflow, stats.underflow, stats.denormal) == (1, 5, 2, 0)
    # inexact: every finite input but 5 and -128 (NaN and Inf are not finite)
    assert stats.inexact == 8 and stats.total == 13
    _, codes_stats = fl.encode(x, "int8", stats=True)
    assert codes_stats == stats
    _, symmetric = fl.quantize(x, "int8:symmetric=true", stats=True)
    # symmetric: -128.4, -127.6 and -128 overflow too (the range ends at -127); -128 is now inexact
    assert (symmetric.overflow, symmetric.inexact) == (8, 9)


def test_stochastic_rounding_is_unbiased_reproducible_and_clamped():
    fmt = fl.format("int4")
    x = np.full(200_000, 2.25)
    first = fl.quantize(x, fmt, "stochastic", seed=7)
    assert set(np.unique(first)) == {2.0, 3.0}
    p = np.mean(first == 3.0)
    assert abs(p - 0.25) < 4 * math.sqrt(0.25 * 0.75 / x.size)
    assert np.array_equal(first, fl.quantize(x, fmt, "stochastic", seed=7))
    assert not np.array_equal(first, fl.quantize(x, fmt, "stochastic", seed=8))
    # -8.5: -9 or -8 before the clamp, always -8 after; 7.5: 7 or 8, always 7
    assert np.all(fl.quantize(np.full(1000, -8.5), fmt, "stochastic", seed=1) == -8.0)
    assert np.all(fl.quantize(np.full(1000, 7.5), fmt, "stochastic", seed=1) == 7.0)
    # sr_bits=2: a fraction of 0.25 is exact in two bits, P(up) = 1/4 exactly in distribution
    two_bits = fl.quantize(x, fmt, "stochastic", seed=3, sr_bits=2)
    assert abs(np.mean(two_bits == 3.0) - 0.25) < 4 * math.sqrt(0.25 * 0.75 / x.size)
    codes = fl.encode(x, fmt, "stochastic", seed=7)
    assert np.array_equal(fl.decode(codes, fmt), first.astype(np.float32))


def test_results_do_not_depend_on_threads():
    rng = np.random.default_rng(5)
    x = rng.normal(0, 60, 1 << 18).astype(np.float32)
    outputs = []
    for threads in (1, 2):
        fl.set_threads(threads)
        try:
            outputs.append((fl.encode(x, "int8", "stochastic", seed=11), fl.quantize(x, "int8", "nearest_even")))
        finally:
            fl.set_threads(None)
    assert np.array_equal(outputs[0][0], outputs[1][0]) and np.array_equal(outputs[0][1], outputs[1][1])


def test_torch_round_and_clamp_agree_on_int8():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 100, 100_000), np.arange(-300, 300) + 0.5]).astype(np.float32)
    expected = torch.round(torch.from_numpy(x)).clamp(-128, 127).numpy()  # ties to even
    assert np.array_equal(fl.quantize(x, "int8"), expected)


def test_gfloat_ocp_int8_matches_the_mxint8_element():
    gfloat = pytest.importorskip("gfloat")
    from gfloat.formats import format_info_ocp_int8

    fmt = fl.format("int8:step_exponent=-6")
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 1.2, 20_000), (np.arange(-140, 140) + 0.5) / 64.0, [2.5, -2.5, 0.0]])
    modes = {"nearest_even": gfloat.RoundMode.TiesToEven, "nearest_away": gfloat.RoundMode.TiesToAway,
             "toward_zero": gfloat.RoundMode.TowardZero, "up": gfloat.RoundMode.TowardPositive,
             "down": gfloat.RoundMode.TowardNegative}
    for mode, rnd in modes.items():
        theirs = gfloat.round_ndarray(format_info_ocp_int8, x, rnd, sat=True)
        assert np.array_equal(fl.quantize(x, fmt, mode), theirs + 0.0), mode
        assert np.array_equal(fl.encode(x, fmt, mode), gfloat.encode_ndarray(format_info_ocp_int8, theirs)), mode


@settings(max_examples=200, deadline=None)
@given(bits=st.integers(2, 24), signed=st.booleans(), symmetric=st.booleans(), step=st.integers(-30, 30),
       data=st.data())
def test_random_formats_and_inputs(bits, signed, symmetric, step, data):
    fmt = IntFormat(bits, signed=signed, symmetric=symmetric and signed, step_exponent=step)
    scale = math.ldexp(1.0, step + bits)
    xs = data.draw(st.lists(st.floats(-2 * scale, 2 * scale)
                            | st.sampled_from([math.nan, math.inf, -math.inf, fmt.max, fmt.min, fmt.max + fmt.step / 2, fmt.min - fmt.step / 2,
                                               fmt.step / 2, -fmt.step / 2, 0.0, -0.0]), min_size=1, max_size=40))
    mode = data.draw(st.sampled_from(MODES))
    x = np.array(xs, dtype=np.float64)
    codes = fl.encode(x, fmt, mode)
    expected = [reference_code(fmt, reference_integer(fmt, v, mode)) for v in xs]
    assert codes.tolist() == expected


# ---- integer elements of scaled formats ------------------------------------------------------------
SCALED_INTEGERS = ["mxint8", "mxint8:symmetric=true", "int8:block=32,scale=e8m0", "uint4:block=16,scale=e4m3fn,rule=amax",
                   "int4:block=16,scale=e4m3fn,rule=amax", "int8:block=4x8,scale=fp32,rule=amax",
                   "int8:block=32,scale=e8m0,rule=even", "int16:block=32,scale=bf16,rule=amax",
                   "int2:block=8,scale=e8m0,rule=ceil", "int8:block=tensor,scale=fp32,rule=amax",
                   "int8:block=512,scale=e8m0,rule=rceil"]


def _scaled_inputs(dtype, rng):
    x = rng.normal(0, 1, (8, 1024)) * np.exp2(rng.integers(-20, 20, (8, 1)))
    x[0, :3] = [np.nan, 1, 2]
    x[1, 5] = np.inf
    x[2] = 0
    x[3, 4] = -1e-40
    x[4, :32] = -np.arange(32)          # -31 is the amax: the two's complement end is reached
    x[5, ::7] *= 1e4                    # many outliers in every 512-element block
    return x.astype(dtype)


@pytest.mark.parametrize("name", SCALED_INTEGERS)
@pytest.mark.parametrize("mode", MODES + ("stochastic",))
def test_scaled_integer_c_path_equals_the_numpy_path(name, mode):
    """csrc/scaled.c (its limits by sign, +0 for zero, codes converted) against numpy around
    the integer codec, which the exact reference above holds: codes, scales, values, counts."""
    from fmtlab import _c, scaled

    sf = fl.format(name)
    rng = np.random.default_rng(abs(hash((name, mode))) % 2**32)
    request = _c.rounding_request(mode, True, 5, None, "truncate")
    for dtype in (np.float32, np.float64):
        x = _scaled_inputs(dtype, rng)
        values, value_stats = scaled.quantize_array(x, sf, request, True)
        want_values, want_value_stats = scaled._quantize_numpy(x, sf, request, True)
        codes, code_stats = scaled.encode_array(x, sf, request, True)
        want_codes, want_code_stats = scaled._encode_numpy(x, sf, request, True)
        assert np.array_equal(values.view(np.uint8), want_values.view(np.uint8)), (name, mode, dtype)
        assert np.array_equal(codes.codes, want_codes.codes) and codes.codes.dtype == sf.element.code_dtype
        assert np.array_equal(codes.scales, want_codes.scales)
        assert value_stats == want_value_stats and code_stats == want_code_stats
        assert value_stats.elements.denormal == 0


def test_mxint8_blocks_reach_minus_two_and_match_the_definition():
    """A block whose amax is 31 (floor rule: scale 2^(4 - 0) = 16): -31/16 = -1.9375 is an element
    value, and -32 in another block (scale 32) gives -1.0; -2 * scale appears when a negative
    element rounds to -128 units."""
    x = np.zeros((1, 64))
    x[0, :32] = -np.arange(32)
    x[0, 32] = 1.0
    x[0, 33] = -1.99609375  # -1.99609375 / 1 = -127.75 units: rounds to -128, inside two's complement
    result = fl.encode(x, "mxint8")
    assert result.scales.tolist() == [[127 + 4, 127 + 0]]
    k = fl.format("int8:step_exponent=-6").integers_of_codes(result.codes)
    assert k[0, 31] == -124 and k[0, 33] == -128 and k[0, 32] == 64
    symmetric = fl.encode(x, "mxint8:symmetric=true")
    assert fl.format("int8").integers_of_codes(symmetric.codes)[0, 33] == -127


def test_every_mxint8_code_times_every_scale_decodes_exactly():
    """All 256 element codes (8 blocks of 32) under each of the 256 E8M0 scale codes: k 2^-6 2^(c-127),
    and NaN for the scale's NaN code 0xFF."""
    sf = fl.format("mxint8")
    element_codes = np.arange(256, dtype=np.uint8).reshape(1, 256)
    k = np.where(np.arange(256) >= 128, np.arange(256) - 256, np.arange(256)).astype(np.float64)
    for c in range(256):
        values = fl.decode(fl.ScaledCodes(element_codes, np.full((1, 8), c, np.uint8), None, sf))[0]
        if c == 0xFF:
            assert np.isnan(values).all()
        else:
            assert np.array_equal(values, np.ldexp(k, -6 + c - 127)), c


def test_integer_scales_are_refused():
    with pytest.raises(ValueError, match="scale=int8 is not allowed"):
        fl.ScaledFormat("e4m3fn", "int8", 32)


@pytest.mark.parametrize("name", ["int8", "int8:symmetric=true", "uint4", "int4:step_exponent=2", "mxint8",
                                  "int8:block=16,scale=e4m3fn,rule=amax"])
@pytest.mark.parametrize("mode", ["nearest_even", "stochastic", "down", "odd"])
def test_fmtlab_torch_gives_the_codec_bits_on_both_backends(name, mode):
    torch = pytest.importorskip("torch")
    import fmtlab.torch as ft

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(20_000, generator=generator) * 100
    x[:5] = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.3, -128.4])
    want = torch.from_numpy(fl.quantize(x.numpy(), name, mode, seed=3)).view(torch.int32)
    for backend in ("native", "torch"):
        got = ft.quantize(x, name, mode, backend=backend, seed=3)
        assert torch.equal(got.view(torch.int32), want), backend


def test_the_float_core_refuses_an_integer_format_it_would_misread():
    from fmtlab import _c

    with pytest.raises(TypeError, match="integer format"):
        _c.c_format(fl.INT8)


@pytest.mark.parametrize("name", ["int8", "e4m3fn", "cfloat8_1_4_3:bias=20"])
def test_index_offset_makes_a_piece_round_as_inside_the_whole(name):
    x = np.random.default_rng(9).normal(0, 30 if name == "int8" else 1e-3, 10_000).astype(np.float32)
    whole_values = fl.quantize(x, name, "stochastic", seed=5)
    whole_codes = fl.encode(x, name, "stochastic", seed=5)
    for start in (0, 1, 4097, 9999):
        piece = x[start:]
        assert np.array_equal(fl.quantize(piece, name, "stochastic", seed=5, index_offset=start), whole_values[start:])
        assert np.array_equal(fl.encode(piece, name, "stochastic", seed=5, index_offset=start), whole_codes[start:])
    assert not np.array_equal(fl.quantize(x[1:], name, "stochastic", seed=5), whole_values[1:])


def test_index_offset_errors():
    with pytest.raises(TypeError, match="index_offset must be an int"):
        fl.quantize(np.ones(3), "int8", index_offset=1.5)
    with pytest.raises(ValueError, match="0 <= index_offset < 2\\^63"):
        fl.encode(np.ones(3), "e4m3fn", index_offset=-1)
    with pytest.raises(ValueError, match="not allowed for the scaled format mxfp4"):
        fl.quantize(np.ones((1, 32)), "mxfp4", index_offset=32)


def test_a_sweep_takes_integer_formats_and_shows_no_bias(tmp_path):
    from fmtlab import cli

    out = tmp_path / "sweep"
    assert cli.main(["sweep", "--formats", "int8,int4:step_exponent=-4,mxint8", "--size", "4096", "--quiet",
                     "--no-plots", "--no-report", "--out", str(out)]) == 0  # no matplotlib: the sanitizer job runs this
    rows = [line.split() for line in (out / "summary.txt").read_text().splitlines()
            if line.split()[:1] in (["normal"], ["lognormal"])]
    assert {row[1] for row in rows} == {"int8", "int4:step_exponent=-4", "mxint8"}
    for row in rows:
        assert row[4:6] == ["-", "-"], row   # biases, best bias: an integer has a step, not a bias
    # mxint8 (a scale per 32) beats both fixed-step integers; int4 with a step of 2^-4 (max 7/16)
    # saturates much of the sweep's data (its overflow column), int8 with a step of 1 flushes it
    sqnr = {(row[0], row[1], row[2]): float(row[6]) for row in rows}
    overflow = {(row[0], row[1], row[2]): float(row[10]) for row in rows}
    for dist in ("normal", "lognormal"):
        key = (dist, "mxint8", "nearest_even")
        assert sqnr[key] > sqnr[(dist, "int8", "nearest_even")] + 15
        assert sqnr[key] > sqnr[(dist, "int4:step_exponent=-4", "nearest_even")] + 15
        assert overflow[(dist, "int4:step_exponent=-4", "nearest_even")] > 50
