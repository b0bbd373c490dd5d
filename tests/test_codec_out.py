"""``out=`` of fl.encode and fl.quantize: the result written into a caller's array.

Expected codes come from the exact rational reference (tests/reference.py) or, for stochastic
rounding, from the same call without ``out`` (the claim under test is that ``out`` changes where
the result goes and nothing else: its values are proven elsewhere).  Each path of the code is
exercised: the direct write (C-contiguous, no overlap), the copy (strided or overlapping ``out``,
``out=x`` in place), narrow-float inputs, integer and scaled formats, and every refusal.
"""
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fmtlab as fl
from reference import reference_float, reference_round

E4M3FN = fl.format("e4m3fn")


def adversarial(n=1500, seed=0):
    """Standard normals with many outliers, subnormal results and specials per 512-block."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n).astype(np.float32) * np.float32(8.0)
    x[::7] *= np.float32(1e3)          # overflow
    x[3::11] *= np.float32(1e-4)       # subnormal and zero results
    x[5::97] = np.nan
    x[6::101] = -np.inf
    return x


def reference_codes(x, fmt, mode="nearest_even"):
    return np.array([reference_round(float(v), fmt, mode) for v in x.ravel()], dtype=np.int64).reshape(x.shape)


@pytest.mark.parametrize("fmt", ["e4m3fn", "bf16", "cfloat8_1_5_2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_encode_into_out_gives_the_reference_codes_and_returns_out(fmt, dtype):
    fmt = fl.format(fmt)
    x = adversarial().astype(dtype).reshape(3, 500)
    out = np.full(x.shape, 0xAB, dtype=fmt.code_dtype)
    result = fl.encode(x, fmt, out=out)
    assert result is out
    assert np.array_equal(out.astype(np.int64), reference_codes(x, fmt))


@pytest.mark.parametrize("fmt", ["e4m3fn", "bf16", "fp16"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_into_out_gives_the_reference_values(fmt, dtype):
    fmt = fl.format(fmt)
    x = adversarial().astype(dtype)
    out = np.full(x.shape, 7.0, dtype=dtype)
    assert fl.quantize(x, fmt, out=out) is out
    expected = np.array([reference_float(fmt, int(c)) for c in reference_codes(x, fmt).ravel()], dtype=dtype)
    assert np.array_equal(out, expected, equal_nan=True)
    numbers = ~np.isnan(expected)  # (the reference's NaN carries no sign; NaN signs are tested elsewhere)
    assert np.array_equal(np.signbit(out[numbers]), np.signbit(expected[numbers]))


@pytest.mark.parametrize("rounding, kwargs", [("stochastic", {}), ("stochastic", {"sr_bits": 8}),
                                              ("toward_zero", {}), ("odd", {})])
def test_quantize_and_encode_with_out_equal_the_calls_without(rounding, kwargs):
    x = adversarial(4096, seed=3)
    quantized, q_stats = fl.quantize(x, E4M3FN, rounding, seed=11, stats=True, index_offset=5, **kwargs)
    out = np.empty_like(x)
    result, stats = fl.quantize(x, E4M3FN, rounding, seed=11, stats=True, index_offset=5, out=out, **kwargs)
    assert result is out and stats == q_stats
    assert np.array_equal(out, quantized, equal_nan=True)
    codes = fl.encode(x, E4M3FN, rounding, seed=11, index_offset=5, **kwargs)
    code_out = np.empty(x.shape, np.uint8)
    fl.encode(x, E4M3FN, rounding, seed=11, index_offset=5, out=code_out, **kwargs)
    assert np.array_equal(code_out, codes)


def test_quantize_in_place_rounds_x_itself():
    x = adversarial()
    expected = np.array([reference_float(E4M3FN, int(c)) for c in reference_codes(x, E4M3FN)], dtype=np.float32)
    assert fl.quantize(x, E4M3FN, out=x) is x
    assert np.array_equal(x, expected, equal_nan=True)


def test_overlapping_and_strided_out_get_the_same_values():
    x = adversarial(2000)
    expected = fl.quantize(x, E4M3FN)
    buffer = np.zeros(4000, np.float32)
    strided = buffer[::2]
    fl.quantize(x, E4M3FN, out=strided)
    assert np.array_equal(strided, expected, equal_nan=True)
    assert not buffer[1::2].any()  # the gaps are left alone
    code_buffer = np.zeros((2000, 3), np.uint8)
    fl.encode(x, E4M3FN, out=code_buffer[:, 1])
    assert np.array_equal(code_buffer[:, 1].astype(np.int64), reference_codes(x, E4M3FN))
    assert not code_buffer[:, ::2].any()
    # out overlapping x shifted by one element: the input must be read before it is overwritten
    shared = np.concatenate([x, np.zeros(1, np.float32)])
    source, target = shared[:-1], shared[1:]
    fl.quantize(source, E4M3FN, out=target)
    assert np.array_equal(target, expected, equal_nan=True)


def test_narrow_float_input_writes_its_own_dtype():
    x = adversarial(600).astype(np.float16)
    expected = fl.quantize(x, E4M3FN)
    assert expected.dtype == np.float16
    out = np.empty(x.shape, np.float16)
    assert fl.quantize(x, E4M3FN, out=out) is out
    assert np.array_equal(out, expected, equal_nan=True)
    with pytest.raises(TypeError, match="out has dtype float32; the result has dtype float16"):
        fl.quantize(x, E4M3FN, out=np.empty(x.shape, np.float32))
    bf = adversarial(600).astype(ml_dtypes.bfloat16)
    bf_out = np.empty(bf.shape, ml_dtypes.bfloat16)
    fl.quantize(bf, E4M3FN, out=bf_out)
    assert np.array_equal(bf_out.astype(np.float32), fl.quantize(bf, E4M3FN).astype(np.float32), equal_nan=True)


def test_scalar_input_takes_a_zero_dimensional_out():
    out = np.empty((), np.float64)
    assert fl.quantize(3.3, E4M3FN, out=out) is out and out[()] == 3.25
    codes = np.empty((), np.uint8)
    assert fl.encode(np.float32(3.3), E4M3FN, out=codes) is codes and codes[()] == 0x45


def test_integer_and_scaled_formats_take_out():
    x = np.array([-130.0, 2.5, 99.7, 3.5], np.float32)
    out = np.empty(4, np.float32)
    assert fl.quantize(x, "int8", out=out) is out and out.tolist() == [-128, 2, 100, 4]
    codes = np.empty(4, np.uint8)  # two's complement bit patterns
    assert fl.encode(x, "int8", out=codes) is codes and codes.tolist() == [128, 2, 100, 4]
    y = adversarial(256)
    scaled_out = np.empty_like(y)
    assert fl.quantize(y, "mxfp8_e4m3", out=scaled_out) is scaled_out
    assert np.array_equal(scaled_out, fl.quantize(y, "mxfp8_e4m3"), equal_nan=True)
    with pytest.raises(TypeError, match="out= is not supported for the scaled format"):
        fl.encode(y, "mxfp8_e4m3", out=np.empty(256, np.uint8))


@pytest.mark.parametrize("out, error, message", [
    ([0.0] * 4, TypeError, "out must be a numpy array, got list"),
    (np.empty(5, np.float32), ValueError, r"out has shape \(5,\); the result has shape \(4,\)"),
    (np.empty((2, 2), np.float32), ValueError, r"out has shape \(2, 2\)"),
    (np.empty(4, np.float64), TypeError, "out has dtype float64; the result has dtype float32"),
])
def test_bad_out_is_refused_naming_what_is_wrong(out, error, message):
    with pytest.raises(error, match=message):
        fl.quantize(np.ones(4, np.float32), E4M3FN, out=out)


def test_read_only_out_and_wrong_code_dtype_are_refused():
    frozen = np.empty(4, np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        fl.quantize(np.ones(4, np.float32), E4M3FN, out=frozen)
    with pytest.raises(TypeError, match="out has dtype uint16; the result has dtype uint8"):
        fl.encode(np.ones(4, np.float32), E4M3FN, out=np.empty(4, np.uint16))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2000), st.integers(0, 3), st.sampled_from(["e4m3fn", "e5m2", "bf16", "fp16", "cfloat8_1_4_3"]),
       st.sampled_from(["nearest_even", "stochastic"]), st.integers(0, 2**32))
def test_out_equals_a_fresh_result_for_random_sizes_and_offsets(n, offset, fmt, rounding, seed):
    """Random lengths (partial 512-blocks) and a buffer offset of 0-3 elements (unaligned out)."""
    x = adversarial(n, seed=seed % 1000)
    buffer = np.empty(n + offset, np.float32)
    out = buffer[offset:]
    fl.quantize(x, fmt, rounding, seed=seed, out=out)
    assert np.array_equal(out, fl.quantize(x, fmt, rounding, seed=seed), equal_nan=True)


def test_direct_out_allocates_no_result_array():
    """numpy reports its data allocations to tracemalloc: a 4 MiB float32 result shows up in the
    peak without out= and not with it (a few KiB of Python objects either way)."""
    import tracemalloc
    x = adversarial(1 << 20)
    out = np.empty_like(x)
    fl.quantize(x, E4M3FN, out=out)  # first call: imports and caches outside the measurement
    peaks = {}
    for label, keywords in (("fresh", {}), ("out", {"out": out})):
        tracemalloc.start()
        fl.quantize(x, E4M3FN, **keywords)
        peaks[label] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peaks["fresh"] >= x.nbytes
    assert peaks["out"] < x.nbytes // 16
