"""Every repro of issue 11, as a test that failed before the fix.

The float32 fast path (csrc/codec_fast.c) gave silent wrong results for valid custom formats
whose codes or bias do not fit its 32-bit lanes, whose range lies outside float32's, or whose
subnormal scaling is not exact in float32; the C entry points had undefined behaviour for
extreme parameters; set_threads could kill the process; decode chose float32 for a format not
exact in it; NaN signs and input coercion differed between the functions.  Each expected value
here comes from the exact rational reference (tests/reference.py) or from arithmetic stated in
the test, never from the code under test.
"""
import math
import os
from fractions import Fraction

import numpy as np
import pytest

import fmtlab as fl
from fmtlab import _c
from fmtlab.codec import MAX_THREADS
from reference import reference_float, reference_round, reference_value

#: the adversarial block of the issue: 100 zeros then 412 values of [1, 100], so that a 512-element
#: block has far more than 16 elements outside the format's normal range (the full kernel)
BLOCK = np.array([0.0] * 100 + list(np.linspace(1, 100, 412)), dtype=np.float32)


def reference_codes(values, fmt, mode="nearest_even", saturate=False):
    return np.array([reference_round(v, fmt, mode, saturate) for v in np.asarray(values).ravel()],
                    dtype=np.int64)


def assert_matches_reference(values, fmt, mode="nearest_even", saturate=False):
    """float32 input (the fast path), float64 input (encode_one alone) and the exact reference
    give the same codes; quantize gives the reference value rounded to the input's dtype."""
    values = np.asarray(values, dtype=np.float32)
    want = reference_codes(values, fmt, mode, saturate)
    for x in (values, values.astype(np.float64)):
        got = fl.encode(x, fmt, mode, saturate=saturate).astype(np.int64)
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, (fmt, x.dtype, mode, saturate, values[bad[:3]], got[bad[:3]], want[bad[:3]])
        quantized = fl.quantize(x, fmt, mode, saturate=saturate)
        expected = np.array([reference_float(fmt, int(code)) for code in want]).astype(x.dtype)
        same = (quantized == expected) | (np.isnan(quantized) & np.isnan(expected))
        assert same.all(), (fmt, x.dtype, mode, values[~same][:3], quantized[~same][:3], expected[~same][:3])


# ---- the float32 fast path's range reasoning ----------------------------------------------------

@pytest.mark.parametrize("kwargs", [dict(saturate=True), dict(specials="finite")],
                         ids=["saturate", "finite"])
def test_32_bit_unsigned_format_max_code_does_not_wrap(kwargs):
    """max_code = 4290772991 became -1 through an int32_t cast: 1.0 encoded to 4290772991."""
    saturate = kwargs.pop("saturate", False)
    fmt = fl.Format(10, 22, 511, signed=False, **kwargs)
    assert fmt.bits == 32
    assert fl.encode(BLOCK, fmt, saturate=saturate)[100] == 511 << 22  # 1.0 = 2^(511 - 511)
    assert_matches_reference(BLOCK, fmt, saturate=saturate)


def test_large_bias_rebias_does_not_overflow_int32():
    """(127 - bias) << m overflows int32: float32 1.0 encoded to 4194304000 instead of +Inf."""
    fmt = fl.Format(9, 22, 1000)
    inf_code = ((1 << 9) - 1) << 22
    assert inf_code == 2143289344
    assert fl.encode(np.float32(1.0), fmt) == inf_code
    assert fl.encode(np.full(512, 1.0, np.float32), fmt).tolist() == [inf_code] * 512
    assert_matches_reference(BLOCK, fmt)


def test_format_entirely_below_float32_range_quantizes_to_its_max():
    """Every value of e7m5 bias 616 lies below FLT_MIN: 1.0 saturates to max (about 2^-489), which
    is 0 in float32; the fast path returned 1.65e7."""
    fmt = fl.Format(7, 5, 616, specials="finite")
    assert fmt.max < 2.0 ** -400
    quantized = fl.quantize(BLOCK, fmt)
    assert quantized[100] == 0.0 and not np.signbit(quantized[100])
    assert fl.quantize(BLOCK.astype(np.float64), fmt)[100] == fmt.max
    assert_matches_reference(BLOCK, fmt)


@pytest.mark.parametrize("mode", ["up", "odd"])
def test_negative_bias_subnormals_are_not_scaled_out_of_float32(mode):
    """emin = 123 > 0: 1.6e-25 * 2^(m - emin) underflows in float32, so the subnormal kernel saw
    an exact zero; up and odd must give the smallest subnormal 2^103 (code 1)."""
    fmt = fl.Format(2, 20, -122)
    x = np.full(512, 1.6e-25, np.float32)
    assert fl.encode(x, fmt, mode).tolist() == [1] * 512
    assert fl.quantize(x, fmt, mode)[0] == np.float32(2.0 ** 103)
    assert_matches_reference(np.concatenate([x[:100], np.ones(412, np.float32)]), fmt, mode)


def test_unsigned_p3109_subnormal_rounding_up_past_max_is_not_fast():
    """Unsigned P3109 e1m1: max is the subnormal 1 and code 2 (min normal's) is +Inf; 1.77 rounds
    up past max, which the subnormal kernel took for a fast result (code 2 = +Inf instead of the
    overflow rule's answer).  Found by the fuzz test with FMTLAB_FUZZ_SEED=1."""
    fmt = fl.Format(1, 1, 0, signed=False, specials="p3109")
    assert fmt.max == 1.0
    x = np.concatenate([np.full(100, 1.7664583, np.float32), np.linspace(0, 1.9, 412, dtype=np.float32)])
    for mode in ("nearest_even", "nearest_away", "up", "odd", "toward_zero", "down"):
        for saturate in (False, True, "sat_finite", "sat_propagate", "sat_none"):
            assert_matches_reference(x, fmt, mode, saturate)
            # and the counts: those lanes were counted inexact twice (kernel and encode_one)
            _, stats32 = fl.encode(x, fmt, mode, saturate=saturate, stats=True)
            _, stats64 = fl.encode(x.astype(np.float64), fmt, mode, saturate=saturate, stats=True)
            assert stats32 == stats64, (mode, saturate, stats32, stats64)


def test_a_format_whose_lowest_binade_is_finer_than_float64_is_never_decoded_wrong():
    """e1m25 fn, subnormals='none', bias 1063: min normal 2^-1062 but steps of 2^-1087, below
    float64's 2^-1074, so its values are not float64 values and decode returned rounded ones.  The
    C core refuses such formats (FL_ERROR_FORMAT), and fmtlab.Format checks the step as the C core
    does: a ValueError naming the range."""
    assert _c_encode(np.ones(2, np.float32), _struct(1, 25, 1063, 1, 1, 2))[0] == _c.lib.FL_ERROR_FORMAT
    with pytest.raises(ValueError, match=r"spans 2\^-1087\.\.2\^-1062 .*exact in float64"):
        fl.Format(1, 25, 1063, specials="fn", subnormals="none")
    # one bias lower the steps are 2^-1074 and every value is a float64
    ok = fl.Format(1, 25, 1050, specials="fn", subnormals="none")
    value = fl.decode(np.array([(1 << 25) + 3], np.uint32), ok)[0]
    assert Fraction(float(value)) == reference_value(ok, (1 << 25) + 3)


# ---- C entry points check every parameter --------------------------------------------------------

def _c_encode(x, fmt_struct, rounding=None, n=None, index_offset=0, code_bytes=4):
    codes = np.zeros(max(len(x), 1), np.uint32)
    rounding = rounding if rounding is not None else _c.c_rounding(_c.rounding_request("nearest_even"))
    stats = _c.ffi.new("fl_stats *")
    status = _c.lib.fl_encode_f32(_c.pointer(x, "float"), len(x) if n is None else n, fmt_struct, rounding,
                                  _c.pointer(codes, "void"), code_bytes, index_offset, stats)
    return status, codes


def _struct(exp_bits, man_bits, bias, signed=1, specials=0, subnormals=0):
    struct = _c.ffi.new("fl_format *")
    struct.exp_bits, struct.man_bits, struct.bias = exp_bits, man_bits, bias
    struct.is_signed, struct.specials, struct.subnormals = signed, specials, subnormals
    return struct


@pytest.mark.parametrize("bias", [2**31 - 1, -2**31, 2**30, -2**30, 1151, -1100])
def test_c_rejects_biases_whose_values_leave_float64(bias):
    """The Python Format refuses these; a C caller gets FL_ERROR_FORMAT, not undefined behaviour."""
    with pytest.raises(ValueError):
        fl.Format(8, 7, bias)
    x = np.ones(4, np.float32)
    assert _c_encode(x, _struct(8, 7, bias))[0] == _c.lib.FL_ERROR_FORMAT
    out = np.zeros(4, np.float64)
    codes = np.ones(4, np.uint16)
    assert _c.lib.fl_decode_f64(_c.pointer(codes, "void"), 2, 4, _struct(8, 7, bias),
                                _c.pointer(out, "double")) == _c.lib.FL_ERROR_FORMAT


def test_c_accepts_the_extreme_biases_the_python_format_accepts():
    """e8m10 (ieee): emax = 254 - bias <= 1023 and 1 - bias - 10 >= -1074, so -769 <= bias <= 1065."""
    for bias in (1065, -769):
        fmt = fl.Format(8, 10, bias)
        x = np.array([1.0, 2.0**-1000, 2.0**1000, 2.0**-1074, 1.5 * 2.0**1023, -3.0], np.float64)
        assert fl.encode(x, fmt).tolist() == reference_codes(x, fmt).tolist()
        x32 = np.array([1.0, 2.0**-149, 3.0e38, -2.0**-126, 0.0], np.float32)
        assert fl.encode(x32, fmt).tolist() == reference_codes(x32, fmt).tolist()
    for bias in (1066, -770):
        with pytest.raises(ValueError):
            fl.Format(8, 10, bias)
        assert _c_encode(np.ones(2, np.float32), _struct(8, 10, bias))[0] == _c.lib.FL_ERROR_FORMAT


def test_c_rejects_negative_lengths_and_null_pointers():
    x = np.ones(4, np.float32)
    fmt = _c.c_format(fl.FP16)
    assert _c_encode(x, fmt, n=-1)[0] == _c.lib.FL_ERROR_ARGUMENT
    rounding = _c.c_rounding(_c.rounding_request("nearest_even"))
    codes = np.zeros(4, np.uint16)
    assert _c.lib.fl_encode_f32(_c.ffi.NULL, 4, fmt, rounding, _c.pointer(codes, "void"), 2, 0,
                                _c.ffi.NULL) == _c.lib.FL_ERROR_ARGUMENT
    assert _c.lib.fl_encode_f32(_c.pointer(x, "float"), 4, _c.ffi.NULL, rounding, _c.pointer(codes, "void"), 2,
                                0, _c.ffi.NULL) == _c.lib.FL_ERROR_FORMAT
    assert _c.lib.fl_encode_f32(_c.pointer(x, "float"), 4, fmt, _c.ffi.NULL, _c.pointer(codes, "void"), 2,
                                0, _c.ffi.NULL) == _c.lib.FL_ERROR_ROUNDING_MODE
    out = np.zeros(4, np.float32)
    assert _c.lib.fl_decode_f32(_c.pointer(codes, "void"), 2, -5, fmt, _c.pointer(out, "float")) == \
        _c.lib.FL_ERROR_ARGUMENT
    assert _c.lib.fl_quantize_f64(_c.ffi.NULL, 0, fmt, rounding, _c.ffi.NULL, 0, _c.ffi.NULL) == _c.lib.FL_OK


def test_index_offset_wraps_modulo_2_to_64():
    """The stochastic key is (index_offset + i) mod 2^64: near 2^63 it used to overflow int64 (UB)."""
    x = np.full(2, 1.0 + 2.0**-12, np.float32)  # a quarter of an fp16 ulp above 1: stochastic decides
    request = _c.rounding_request("stochastic", seed=12345)
    fmt = _c.c_format(fl.FP16)
    top = 2**63 - 1
    status, high = _c_encode(x, fmt, _c.c_rounding(request), index_offset=top, code_bytes=4)
    assert status == _c.lib.FL_OK
    status, low = _c_encode(x[:1], fmt, _c.c_rounding(request), index_offset=-2**63, code_bytes=4)
    assert status == _c.lib.FL_OK
    assert high[1] == low[0]  # both elements have the global index 2^63
    # and the decision is the documented one: nu = 1/4 of an fp16 ulp, away iff U < 1/4, U the draw
    word = int(_c.lib.fl_random_word(12345, 2**63, 0))
    assert high[1] == 0x3C00 + int(word < (1 << 62))


def test_c_set_threads_is_bounded():
    assert _c.lib.fl_set_threads(_c.lib.FL_MAX_THREADS + 1) == _c.lib.FL_ERROR_ARGUMENT
    assert _c.lib.fl_set_threads(-1) == _c.lib.FL_ERROR_ARGUMENT
    assert _c.lib.fl_set_threads(0) == _c.lib.FL_OK


# ---- set_threads ---------------------------------------------------------------------------------

@pytest.mark.parametrize("threads", [40000, 100000, 2**31, 2**80])
def test_set_threads_refuses_absurd_counts(threads):
    """set_threads(40000) killed the process (libgomp: Thread creation failed); 100000 segfaulted."""
    before = fl.get_threads()
    with pytest.raises(ValueError) as error:
        fl.set_threads(threads)
    assert "threads" in str(error.value) and str(threads) in str(error.value)
    assert str(MAX_THREADS) in str(error.value)
    assert fl.get_threads() == before
    assert fl.encode(np.ones(3), fl.FP16).tolist() == [0x3C00] * 3


def test_max_threads_is_64_per_cpu_at_most_4096():
    assert MAX_THREADS == min(4096, 64 * (os.cpu_count() or 1))
    fl.set_threads(MAX_THREADS)
    try:
        assert fl.get_threads() == MAX_THREADS
    finally:
        fl.set_threads(None)


# ---- decode's dtype -------------------------------------------------------------------------------

def test_decode_dtype_is_float64_when_the_smallest_step_is_below_float32s():
    """Format(4, 20, 133, unsigned, subnormals='none'): min normal 2^-132 but its step is 2^-152, so
    code 0x100001 = 2^-132 (1 + 2^-20) is not a float32; decode gave a rounded float32."""
    fmt = fl.Format(4, 20, 133, signed=False, subnormals="none")
    value = fl.decode(np.array([0x100001], np.uint32), fmt)
    assert value.dtype == np.float64
    assert Fraction(float(value[0])) == reference_value(fmt, 0x100001) == Fraction(2) ** -132 * (1 + Fraction(1, 2**20))
    assert fl.decode(np.uint32(0x100001), fmt) == value[0]


@pytest.mark.parametrize("fmt, expected", [
    (fl.Format(4, 20, 133, signed=False, subnormals="none"), np.float64),
    (fl.Format(4, 20, 129, signed=False, subnormals="none"), np.float32),   # step 2^-148
    (fl.Format(4, 20, 130, signed=False, subnormals="none"), np.float32),   # step 2^-149
    (fl.Format(4, 20, 131, signed=False, subnormals="none"), np.float64),   # step 2^-150
    (fl.Format(8, 0, 127, signed=False, specials="fn", subnormals="normal"), np.float32),  # e8m0
    (fl.Format(3, 20, 130, subnormals="tesla"), np.float64),                # tesla step 2^-150
    (fl.Format(3, 20, 129, subnormals="tesla"), np.float32),
    (fl.FP32, np.float32), (fl.BF16, np.float32), (fl.E4M3FN, np.float32),
])
def test_decode_dtype_by_exactness(fmt, expected):
    """float32 exactly when every finite value of the format is a float32 (checked here by the
    smallest step and the largest value, in exact arithmetic)."""
    assert fl.decode(np.zeros(1, fmt.code_dtype), fmt).dtype == expected
    step = Fraction(2) ** min(fmt.min_subnormal_exponent, fmt.emin - fmt.man_bits)
    exact = fmt.man_bits <= 23 and fmt.emax <= 127 and step >= Fraction(2) ** -149
    assert exact == (expected == np.float32)


# ---- NaN signs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", [fl.FP32, fl.FP16, fl.BF16, fl.E5M2, fl.E4M3FN])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_nan_keeps_its_sign_in_encode_quantize_and_decode(fmt, dtype):
    """Formats with NaN codes of both signs keep a NaN's sign everywhere (docs/formats.md)."""
    x = np.array([np.nan, -np.nan] * 300, dtype=dtype)
    assert np.signbit(x[1]) and not np.signbit(x[0])
    codes = fl.encode(x, fmt)
    sign_bit = 1 << (fmt.bits - 1)
    assert (codes[1::2] & sign_bit).all() and not (codes[0::2] & sign_bit).any()
    decoded = fl.decode(codes, fmt)
    quantized = fl.quantize(x, fmt)
    for values in (decoded, quantized):
        assert np.isnan(values).all()
        assert np.signbit(values[1::2]).all() and not np.signbit(values[0::2]).any()
    assert np.signbit(fl.quantize(dtype(-np.nan), fmt)) and np.signbit(fl.decode(codes[1], fmt))


@pytest.mark.parametrize("fmt", [fl.E4M3FNUZ, fl.E5M2FNUZ, fl.format("p3109_8p3"),
                                 fl.Format(5, 2, 15, signed=False, specials="fn")])
def test_a_single_nan_code_decodes_to_a_positive_nan(fmt):
    """Formats with one NaN code (fnuz, P3109, unsigned) cannot keep the sign: +NaN everywhere."""
    x = np.array([np.nan, -np.nan], np.float32)
    codes = fl.encode(x, fmt)
    assert codes[0] == codes[1]
    for values in (fl.decode(codes, fmt), fl.quantize(x, fmt), fl.quantize(x.astype(np.float64), fmt)):
        assert np.isnan(values).all() and not np.signbit(values).any()


# ---- one input coercion -------------------------------------------------------------------------

def test_python_ints_beyond_int64_are_exact_floats():
    """encode(2**70) failed with "dtype object"; 2^70 is a float64 value."""
    assert fl.encode(2**70, fl.FP32) == fl.encode(float(2**70), fl.FP32) == (127 + 70) << 23
    assert fl.quantize(2**70, fl.FP32) == 2.0**70
    assert fl.quantize(-(2**70), fl.BF16) == -(2.0**70)
    for bad in (2**70 + 1, 2**1100):
        with pytest.raises(ValueError) as error:
            fl.encode(bad, fl.FP32)
        assert str(bad)[:20] in str(error.value) and "x" in str(error.value)


@pytest.mark.parametrize("bad", [True, np.bool_(False), np.array([True, False]), np.array(True)])
def test_bools_are_type_errors_everywhere(bad):
    for function in (fl.encode, fl.quantize):
        with pytest.raises(TypeError) as error:
            function(bad, fl.FP16)
        assert "x" in str(error.value) and "bool" in str(error.value)
    with pytest.raises(TypeError) as error:
        fl.decode(bad, fl.FP16)
    assert "codes" in str(error.value) and "bool" in str(error.value)
    model = fl.mma_model("exact", "fp32")
    with pytest.raises(TypeError) as error:
        fl.matmul(np.asarray(bad).reshape(-1)[:1].reshape(1, 1), np.ones((1, 1), np.float32), model=model)
    assert "A" in str(error.value) and "bool" in str(error.value)


@pytest.mark.parametrize("dtype", [">f2", ">f4", ">f8"])
def test_big_endian_inputs_everywhere(dtype):
    """matmul refused big-endian float16 (">f2") that encode accepts."""
    values = np.array([[1.0, 2.5], [-0.5, 3.0]])
    swapped = values.astype(dtype)
    assert not swapped.dtype.isnative
    model = fl.mma_model("exact", "fp32")
    want = fl.matmul(values.astype(np.float32), values.astype(np.float32), model=model)
    np.testing.assert_array_equal(fl.matmul(swapped, swapped, model=model), want)
    np.testing.assert_array_equal(fl.encode(swapped, fl.FP16), fl.encode(values, fl.FP16))
    np.testing.assert_array_equal(fl.quantize(swapped, fl.BF16), fl.quantize(values, fl.BF16).astype(
        np.dtype(dtype).newbyteorder("=")).astype(fl.quantize(swapped, fl.BF16).dtype))
    codes = fl.encode(values, fl.FP16)
    np.testing.assert_array_equal(fl.decode(codes.astype(">u2"), fl.FP16), fl.decode(codes, fl.FP16))


def test_matmul_takes_big_endian_float16():
    """matmul refused big-endian float16 (">f2") that encode accepts."""
    values = np.array([[1.0, 2.5], [-0.5, 3.0]])
    model = fl.mma_model("exact", "fp32")
    want = fl.matmul(values.astype(np.float32), values.astype(np.float32), model=model)
    np.testing.assert_array_equal(fl.matmul(values.astype(">f2"), values.astype(">f2"), model=model), want)


def test_decode_python_ints_beyond_int64_are_value_errors():
    with pytest.raises(ValueError) as error:
        fl.decode(2**70, fl.FP16)
    assert "codes" in str(error.value) and str(2**70) in str(error.value)
    assert fl.decode(0x3C00, fl.FP16) == 1.0
    assert math.isnan(fl.decode(0x7E00, fl.FP16))
