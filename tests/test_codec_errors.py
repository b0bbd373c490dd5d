"""Bad arguments raise TypeError/ValueError naming the argument; every array layout works."""
import numpy as np
import pytest

import fmtlab as fl
from reference import reference_round


# ---- bad inputs ----------------------------------------------------------------------------

@pytest.mark.parametrize("x", [
    np.arange(5),                                  # int64
    np.arange(5, dtype=np.uint8),
    np.array([True, False]),
    np.array([1 + 2j, 3j]),                        # complex
    np.array([1.0, "a"], dtype=object),
    np.array([1.0, 2.0], dtype=object),
    np.zeros(3, dtype=np.longdouble) if np.dtype(np.longdouble).itemsize > 8 else np.array([1j]),
    1 + 2j,
    "1.0",
])
@pytest.mark.parametrize("function", [fl.encode, fl.quantize], ids=["encode", "quantize"])
def test_non_float_inputs_are_type_errors(function, x):
    with pytest.raises(TypeError) as error:
        function(x, fl.FP16)
    assert "x" in str(error.value)


def test_python_int_scalars_are_accepted():
    code = fl.encode(3, fl.FP16)
    assert np.ndim(code) == 0
    assert int(code) == 0x4200


def test_python_int_scalars_must_be_exact_in_float64():
    with pytest.raises(ValueError) as error:
        fl.encode(2**60 + 1, fl.FP16)
    assert str(2**60 + 1) in str(error.value)


@pytest.mark.parametrize("fmt, bad", [(fl.E4M3FN, 256), (fl.E2M1FN, 16), (fl.E3M2FN, 64), (fl.FP16, 65536),
                                      (fl.TF32, 1 << 19), (fl.Format(6, 9, 31, signed=False, subnormals="none"), 1 << 15)])
def test_codes_wider_than_the_format_are_value_errors(fmt, bad):
    codes = np.array([0, 1, bad], dtype=np.uint32)
    with pytest.raises(ValueError) as error:
        fl.decode(codes, fmt)
    assert str(bad) in str(error.value)


def test_negative_codes_are_value_errors():
    with pytest.raises(ValueError) as error:
        fl.decode(np.array([1, -3]), fl.E4M3FN)
    assert "-3" in str(error.value)


def test_float_codes_are_type_errors():
    with pytest.raises(TypeError) as error:
        fl.decode(np.array([1.0, 2.0]), fl.E4M3FN)
    assert "codes" in str(error.value)


def test_decode_accepts_any_unsigned_or_signed_integer_dtype_in_range():
    expected = fl.decode(np.array([0x38, 0x7E], dtype=np.uint8), fl.E4M3FN)
    for dtype in (np.uint16, np.uint32, np.uint64, np.int32, np.int64):
        np.testing.assert_array_equal(fl.decode(np.array([0x38, 0x7E], dtype=dtype), fl.E4M3FN), expected)
    np.testing.assert_array_equal(expected, np.array([1.0, 448.0], dtype=np.float32))


@pytest.mark.parametrize("function", [fl.encode, fl.quantize], ids=["encode", "quantize"])
def test_unknown_rounding_lists_the_allowed(function):
    with pytest.raises(ValueError) as error:
        function(np.ones(3), fl.FP16, "nearest")
    message = str(error.value)
    assert "nearest" in message and "rounding" in message
    for mode in ("nearest_even", "nearest_away", "toward_zero", "up", "down", "odd", "stochastic"):
        assert mode in message
    with pytest.raises(ValueError):
        function(np.ones(3), fl.FP16, rounding="rne")
    with pytest.raises(ValueError):
        function(np.ones(3), fl.FP16, rounding=1)


@pytest.mark.parametrize("sr_bits", [0, 33, -1, True, False, 2.0, 64])
def test_bad_sr_bits_are_value_errors(sr_bits):
    with pytest.raises(ValueError) as error:
        fl.encode(np.ones(3), fl.FP16, "stochastic", seed=1, sr_bits=sr_bits)
    assert "sr_bits" in str(error.value)


@pytest.mark.parametrize("sr_bits", [1, 16, 32, np.int64(8)])
def test_good_sr_bits(sr_bits):
    codes = fl.encode(np.ones(3), fl.FP16, "stochastic", seed=1, sr_bits=sr_bits)
    assert (codes == 0x3C00).all()


def test_bad_seed_and_saturate_are_type_errors():
    with pytest.raises(TypeError) as error:
        fl.encode(np.ones(3), fl.FP16, "stochastic", seed=1.5)
    assert "seed" in str(error.value)
    with pytest.raises(TypeError) as error:
        fl.encode(np.ones(3), fl.FP16, saturate="yes")
    assert "saturate" in str(error.value)


def test_bad_formats():
    with pytest.raises(TypeError) as error:
        fl.encode(np.ones(3), 16)
    assert "fmt" in str(error.value)
    with pytest.raises(ValueError) as error:
        fl.encode(np.ones(3), "fp17")
    assert "fp17" in str(error.value)
    # a format given by name works like the preset
    np.testing.assert_array_equal(fl.encode(np.ones(3), "cfloat8_1_4_3:bias=10"),
                                  fl.encode(np.ones(3), fl.format("cfloat8_1_4_3", bias=10)))


def test_set_threads_rejects_bad_values():
    for bad in (0, -2, True, 1.5):
        with pytest.raises(ValueError) as error:
            fl.set_threads(bad)
        assert "threads" in str(error.value)
    fl.set_threads(None)


# ---- layouts: shapes, strides, scalars -----------------------------------------------------

def _expected(values, fmt, mode="nearest_even"):
    return np.array([reference_round(v, fmt, mode) for v in np.asarray(values).ravel()],
                    dtype=fmt.code_dtype).reshape(np.shape(values))


LAYOUTS = {
    "strided": lambda a: a[::3],
    "reversed": lambda a: a[::-1],
    "2d_transposed": lambda a: a[:120].reshape(10, 12).T,
    "3d": lambda a: a[:120].reshape(2, 3, 20),
    "3d_sliced": lambda a: a[:240].reshape(4, 6, 10)[1:3, ::2, 5:],
    "fortran": lambda a: np.asfortranarray(a[:120].reshape(8, 15)),
    "0d": lambda a: np.array(a[7]),
    "empty": lambda a: a[:0],
    "empty_2d": lambda a: a[:0].reshape(0, 5),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layouts_keep_shape_and_values(layout, dtype):
    base = (np.random.default_rng(4).standard_normal(400) * 100).astype(dtype)
    x = LAYOUTS[layout](base)
    for fmt in (fl.FP16, fl.E4M3FN, fl.TF32):
        codes = fl.encode(x, fmt)
        assert isinstance(codes, np.ndarray)
        assert codes.shape == x.shape and codes.dtype == fmt.code_dtype
        np.testing.assert_array_equal(codes, _expected(x, fmt))
        quantized = fl.quantize(x, fmt)
        assert isinstance(quantized, np.ndarray)
        assert quantized.shape == x.shape and quantized.dtype == x.dtype
        decoded = fl.decode(codes, fmt)
        assert decoded.shape == x.shape
        np.testing.assert_array_equal(quantized, decoded.astype(dtype))
        # decode also takes strided code arrays
        if codes.ndim:
            np.testing.assert_array_equal(fl.decode(codes[::-1], fmt), decoded[::-1])


def test_input_arrays_are_not_modified():
    x = np.array([1.1, 2.2, np.nan, -np.inf])
    copy = x.copy()
    fl.encode(x, fl.E4M3FN)
    fl.quantize(x, fl.E4M3FN, "stochastic", seed=1)
    np.testing.assert_array_equal(x, copy)


@pytest.mark.parametrize("scalar, dtype", [(1.1, np.float64), (np.float32(1.1), np.float32),
                                           (np.float64(-3.5), np.float64), (2, np.float64)])
def test_scalars(scalar, dtype):
    code = fl.encode(scalar, fl.FP16)
    assert np.ndim(code) == 0 and not isinstance(code, np.ndarray)
    assert code.dtype == np.uint16
    assert int(code) == reference_round(dtype(scalar), fl.FP16)
    value = fl.quantize(scalar, fl.FP16)
    assert np.ndim(value) == 0 and not isinstance(value, np.ndarray)
    assert value.dtype == np.dtype(dtype)
    back = fl.decode(code, fl.FP16)
    assert np.ndim(back) == 0 and not isinstance(back, np.ndarray)
    assert float(back) == float(value)
    assert float(fl.decode(int(code), fl.FP16)) == float(value)


def test_stats_with_layouts():
    x = np.array([[1e6, np.nan], [1.0, 2.0**-30]]).T
    _, stats = fl.encode(x, fl.FP16, stats=True)
    assert (stats.invalid, stats.overflow, stats.underflow, stats.total) == (1, 1, 1, 4)
