"""Format model: presets' limits against hand-derived facts, the Tesla whitepaper's ranges,
parsing, printing, errors, hashing and the ml_dtypes mapping.

Every expected number here is written out by hand (or is a power of two derived from the
spec's formula in the test), never taken from fmtlab itself.
"""
import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

import fmtlab as fl
from reference import (EXHAUSTIVE_FORMATS, PRESETS, format_id, reference_decode_table, reference_value)

# name: (bits, signed, max, min_normal, min_subnormal, eps, has_inf, has_nan, num_finite)
HAND_DERIVED = {
    "fp32": (32, True, (2 - 2**-23) * 2.0**127, 2.0**-126, 2.0**-149, 2.0**-23, True, True,
             2 * (255 * 2**23)),
    "tf32": (19, True, (2 - 2**-10) * 2.0**127, 2.0**-126, 2.0**-136, 2.0**-10, True, True, 2 * 255 * 2**10),
    "fp16": (16, True, 65504.0, 2.0**-14, 2.0**-24, 2.0**-10, True, True, 63488),
    "bf16": (16, True, 3.3895313892515355e38, 2.0**-126, 2.0**-133, 2.0**-7, True, True, 2 * 255 * 128),
    "cfloat8_1_4_3": (8, True, 480.0, 2.0**-6, 2.0**-9, 2.0**-3, False, False, 256),
    "cfloat8_1_5_2": (8, True, 114688.0, 2.0**-14, 2.0**-16, 2.0**-2, False, False, 256),
    "shp": (16, True, 131008.0, 2.0**-14, 2.0**-24, 2.0**-10, False, False, 65536),
    # UHP: no sign, E field 1..62 normal, no subnormals: max = 2^(62-31) * (2 - 2^-10)
    "uhp": (16, False, 4292870144.0, 2.0**-30, 2.0**-30, 2.0**-10, True, True, 63 * 1024),
    "e4m3fn": (8, True, 448.0, 2.0**-6, 2.0**-9, 2.0**-3, False, True, 254),
    "e5m2": (8, True, 57344.0, 2.0**-14, 2.0**-16, 2.0**-2, True, True, 2 * 31 * 4),
    "e4m3fnuz": (8, True, 240.0, 2.0**-7, 2.0**-10, 2.0**-3, False, True, 255),
    "e5m2fnuz": (8, True, 57344.0, 2.0**-15, 2.0**-17, 2.0**-2, False, True, 255),
    "e4m3b11fnuz": (8, True, 30.0, 2.0**-10, 2.0**-13, 2.0**-3, False, True, 255),
    "e4m3": (8, True, 240.0, 2.0**-6, 2.0**-9, 2.0**-3, True, True, 2 * 15 * 8),
    "e3m4": (8, True, 15.5, 2.0**-2, 2.0**-6, 2.0**-4, True, True, 2 * 7 * 16),
    "e2m3fn": (6, True, 7.5, 1.0, 0.125, 2.0**-3, False, False, 64),
    "e3m2fn": (6, True, 28.0, 0.25, 2.0**-4, 2.0**-2, False, False, 64),
    "e2m1fn": (4, True, 6.0, 1.0, 0.5, 0.5, False, False, 16),
    # E8M0: no sign, no mantissa, E = 0 is 2^-127 (no zero), 0xFF NaN: max = 2^(254 - 127)
    "e8m0": (8, False, 2.0**127, 2.0**-127, 2.0**-127, 1.0, False, True, 255),
    # P3109 Binary8p{P}{s,u}{e,f}: signed bias 2^(7 - P), unsigned 2^(8 - P); extended: max one code
    # below +Inf (signed 0x7E, unsigned 0xFD); finite: signed = fnuz (max 0x7F), unsigned = fn (0xFE)
    "p3109_8p1": (8, True, 2.0**62, 2.0**-63, 2.0**-63, 1.0, True, True, 253),
    "p3109_8p1_unsigned": (8, False, 2.0**125, 2.0**-127, 2.0**-127, 1.0, True, True, 254),
    "p3109_8p3": (8, True, 49152.0, 2.0**-15, 2.0**-17, 0.25, True, True, 253),
    "p3109_8p3_finite": (8, True, 57344.0, 2.0**-15, 2.0**-17, 0.25, False, True, 255),
    "p3109_8p3_unsigned": (8, False, 2684354560.0, 2.0**-31, 2.0**-33, 0.25, True, True, 254),
    "p3109_8p3_unsigned_finite": (8, False, 3221225472.0, 2.0**-31, 2.0**-33, 0.25, False, True, 255),
    "p3109_8p4": (8, True, 224.0, 2.0**-7, 2.0**-10, 0.125, True, True, 253),
    "p3109_8p4_finite": (8, True, 240.0, 2.0**-7, 2.0**-10, 0.125, False, True, 255),
    "p3109_8p4_unsigned": (8, False, 53248.0, 2.0**-15, 2.0**-18, 0.125, True, True, 254),
    "p3109_8p4_unsigned_finite": (8, False, 57344.0, 2.0**-15, 2.0**-18, 0.125, False, True, 255),
    "p3109_8p7_finite": (8, True, 1.984375, 1.0, 2.0**-6, 2.0**-6, False, True, 255),
    "p3109_8p8_unsigned_finite": (8, False, 1.984375, 1.0, 2.0**-7, 2.0**-7, False, True, 255),
}


def test_every_preset_is_checked():
    assert set(HAND_DERIVED) == set(fl.preset_names())


@pytest.mark.parametrize("name", sorted(HAND_DERIVED))
def test_preset_limits(name):
    bits, signed, maximum, min_normal, min_subnormal, eps, has_inf, has_nan, num_finite = HAND_DERIVED[name]
    fmt = fl.format(name)
    assert fmt.bits == bits
    assert fmt.signed is signed
    assert fmt.max == maximum
    assert fmt.min_normal == min_normal
    assert fmt.min_subnormal == min_subnormal
    assert fmt.eps == eps
    assert fmt.has_inf is has_inf
    assert fmt.has_nan is has_nan
    assert fmt.num_finite == num_finite
    assert fmt.code_dtype == np.dtype(np.uint8 if bits <= 8 else np.uint16 if bits <= 16 else np.uint32)
    # has_negative_zero: signed formats with a zero, except fnuz and P3109
    assert fmt.has_negative_zero is (signed and fmt.specials not in ("fnuz", "p3109") and fmt.has_zero)


def test_preset_constants_are_the_named_formats():
    assert fl.FP16 is fl.format("fp16")
    assert fl.BF16 == fl.Format(8, 7, 127)
    assert fl.E4M3FN == fl.Format(4, 3, 7, specials="fn")
    assert fl.E4M3FNUZ == fl.Format(4, 3, 8, specials="fnuz")
    assert fl.UHP == fl.Format(6, 10, 31, signed=False, subnormals="none")
    assert fl.CFLOAT8_1_4_3 == fl.Format(4, 3, 7, specials="finite")
    assert fl.CFLOAT8_1_5_2 == fl.Format(5, 2, 15, specials="finite")
    assert fl.SHP == fl.Format(5, 10, 15, specials="finite")
    assert fl.TF32 == fl.Format(8, 10, 127)


def test_uhp_has_no_sign_and_flushes_denormals():
    assert not fl.UHP.signed
    assert fl.UHP.bits == 16 and fl.UHP.exp_bits == 6 and fl.UHP.man_bits == 10 and fl.UHP.bias == 31
    assert fl.UHP.subnormals == "none"
    assert not fl.UHP.has_negative_zero
    # Inf = E all ones, M = 0: 0b111111_0000000000
    assert fl.UHP.exact_value(0xFC00) == "inf"
    assert fl.UHP.exact_value(0xFE00) == "nan"
    # E = 0, M != 0 is flushed: zero
    assert fl.UHP.exact_value(0x0001) == 0


def test_special_codes_by_hand():
    assert fl.E4M3FN.exact_value(0x7F) == "nan" and fl.E4M3FN.exact_value(0xFF) == "nan"
    assert fl.E4M3FN.exact_value(0x7E) == 448
    assert fl.E4M3FNUZ.exact_value(0x80) == "nan"
    assert fl.E4M3FNUZ.exact_value(0x7F) == 240
    assert fl.E5M2.exact_value(0x7C) == "inf" and fl.E5M2.exact_value(0xFC) == "-inf"
    assert fl.FP16.exact_value(0x7BFF) == 65504
    assert fl.FP16.exact_value(0x0001) == Fraction(1, 2**24)
    assert fl.CFLOAT8_1_4_3.exact_value(0x7F) == 480
    assert fl.CFLOAT8_1_4_3.exact_value(0xFF) == -480
    assert fl.E2M1FN.exact_value(0b0111) == 6 and fl.E2M1FN.exact_value(0b0001) == Fraction(1, 2)


# ---- the Tesla whitepaper ----------------------------------------------------------------

@pytest.mark.parametrize("bias", range(64))
def test_cfloat8_1_4_3_whitepaper_range(bias):
    fmt = fl.format("cfloat8_1_4_3", bias=bias)
    assert fmt.bias == bias
    assert fmt.min_normal == 2.0 ** (1 - bias)
    assert fmt.max == 1.875 * 2.0 ** (15 - bias)
    assert fmt.specials == "finite" and not fmt.has_inf and not fmt.has_nan
    # the same from the fields, independently of Format's own properties
    assert reference_value(fmt, 0x7F) == Fraction(15, 8) * Fraction(2) ** (15 - bias)
    assert reference_value(fmt, 0x08) == Fraction(2) ** (1 - bias)
    tesla = fl.format("cfloat8_1_4_3", bias=bias, subnormals="tesla")
    assert tesla.max == fmt.max and tesla.min_normal == fmt.min_normal
    assert tesla.min_subnormal == 2.0 ** (-bias - 3)  # 2^-bias * 0.001b
    assert fmt.min_subnormal == 2.0 ** (1 - bias - 3)


@pytest.mark.parametrize("bias", range(64))
def test_cfloat8_1_5_2_whitepaper_range(bias):
    fmt = fl.format("cfloat8_1_5_2", bias=bias)
    assert fmt.bias == bias
    assert fmt.min_normal == 2.0 ** (1 - bias)
    assert fmt.max == 1.75 * 2.0 ** (31 - bias)
    assert fmt.specials == "finite"
    assert reference_value(fmt, 0x7F) == Fraction(7, 4) * Fraction(2) ** (31 - bias)
    assert reference_value(fmt, 0x04) == Fraction(2) ** (1 - bias)
    tesla = fl.format("cfloat8_1_5_2", bias=bias, subnormals="tesla")
    assert tesla.min_subnormal == 2.0 ** (-bias - 2)
    assert fmt.min_subnormal == 2.0 ** (1 - bias - 2)


def test_whitepaper_spot_values():
    assert fl.format("cfloat8_1_4_3", bias=0).max == 61440.0
    assert fl.format("cfloat8_1_4_3", bias=7).max == 480.0
    assert fl.format("cfloat8_1_5_2", bias=15).max == 114688.0
    assert fl.CFLOAT8_1_4_3.bias == 7 and fl.CFLOAT8_1_5_2.bias == 15 and fl.SHP.bias == 15


@pytest.mark.parametrize("name, low, high", [("cfloat8_1_4_3", -62, 15), ("cfloat8_1_5_2", -62, 31)])
def test_whitepaper_exponent_coverage(name, low, high):
    covered = set()
    for bias in range(64):
        fmt = fl.format(name, bias=bias)
        low_exponent = math.frexp(fmt.min_normal)[1] - 1
        high_exponent = math.frexp(fmt.max)[1] - 1
        assert (low_exponent, high_exponent) == (fmt.emin, fmt.emax)
        covered.update(range(low_exponent, high_exponent + 1))
    assert covered == set(range(low, high + 1))


# ---- parsing, printing, errors ---------------------------------------------------------------

def test_format_parsing():
    assert fl.format("cfloat8_1_4_3:bias=10") == fl.format("cfloat8_1_4_3", bias=10)
    assert fl.format("cfloat8_1_4_3:bias=10").bias == 10
    parsed = fl.format("cfloat8_1_4_3:bias=10,subnormals=tesla")
    assert parsed.bias == 10 and parsed.subnormals == "tesla"
    assert fl.format("cfloat8_1_5_2", subnormals="tesla").subnormals == "tesla"
    assert fl.format("shp:bias=3").bias == 3
    assert fl.format("float8_e4m3fn") == fl.E4M3FN
    assert fl.format("bfloat16") == fl.BF16
    assert fl.format("FP16") == fl.FP16
    assert fl.format(fl.E5M2) is fl.E5M2
    assert fl.format(fl.CFLOAT8_1_4_3, bias=3).bias == 3


def test_repr_is_the_canonical_name():
    assert repr(fl.format("cfloat8_1_4_3", bias=10)) == "cfloat8_1_4_3(bias=10)"
    assert str(fl.format("cfloat8_1_4_3:bias=10")) == "cfloat8_1_4_3(bias=10)"
    assert repr(fl.format("cfloat8_1_4_3", bias=7)) == "cfloat8_1_4_3"
    assert repr(fl.format("cfloat8_1_5_2", subnormals="tesla")) == "cfloat8_1_5_2(subnormals='tesla')"
    assert repr(fl.FP16) == "fp16" and str(fl.E4M3FN) == "e4m3fn"
    assert "exp_bits=3" in repr(fl.Format(3, 2, 3))


@pytest.mark.parametrize("call, argument", [
    (lambda: fl.format("cfloat8_1_4_3", bias=64), "bias=64"),
    (lambda: fl.format("cfloat8_1_4_3", bias=-1), "bias=-1"),
    (lambda: fl.format("cfloat8_1_5_2:bias=64"), "bias=64"),
    (lambda: fl.format("fp16", bias=10), "bias=10"),
    (lambda: fl.format("e4m3fn", subnormals="tesla"), "subnormals"),
    (lambda: fl.format("cfloat8_1_4_3", subnormals="sometimes"), "subnormals"),
    (lambda: fl.format("fp17"), "fp17"),
    (lambda: fl.format("cfloat8_1_4_3", colour=3), "colour"),
    (lambda: fl.Format(9, 23, 127), "33 bits"),
    (lambda: fl.Format(16, 16, 127, signed=True), "exp_bits=16"),
    (lambda: fl.Format(0, 3, 1), "exp_bits=0"),
    (lambda: fl.Format(4, -1, 7), "man_bits=-1"),
    (lambda: fl.Format(4, 3, 7, specials="weird"), "specials"),
    (lambda: fl.Format(4, 3, 7, subnormals="weird"), "subnormals"),
    (lambda: fl.Format(4, 0, 7, specials="ieee"), "man_bits"),
    (lambda: fl.Format(4, 3, 7, signed=False, specials="fnuz"), "fnuz"),
])
def test_bad_arguments_are_value_errors_naming_the_argument(call, argument):
    with pytest.raises(ValueError) as error:
        call()
    assert argument in str(error.value)


def test_unknown_name_lists_the_presets():
    with pytest.raises(ValueError) as error:
        fl.format("cfloat9")
    assert "cfloat9" in str(error.value) and "e4m3fn" in str(error.value)


def test_bad_types_are_type_errors():
    with pytest.raises(TypeError):
        fl.Format(4.0, 3, 7)
    with pytest.raises(TypeError):
        fl.Format(4, 3, True)
    with pytest.raises(TypeError):
        fl.format(3)


def test_hashable_and_equal_by_parameters():
    a = fl.format("cfloat8_1_4_3", bias=10)
    b = fl.format("cfloat8_1_4_3:bias=10")
    c = fl.Format(4, 3, 10, specials="finite")  # same parameters, no name
    assert a == b == c
    assert hash(a) == hash(b) == hash(c)
    assert len({a, b, c}) == 1
    assert a != fl.format("cfloat8_1_4_3", bias=11)
    assert a != fl.format("cfloat8_1_4_3", bias=10, subnormals="tesla")
    table = {fl.FP16: "half", fl.BF16: "brain"}
    assert table[fl.Format(5, 10, 15)] == "half"
    with pytest.raises(Exception):
        fl.FP16.bias = 3  # frozen


ML_DTYPES = {
    "fp32": np.float32, "fp16": np.float16, "bf16": ml_dtypes.bfloat16,
    "e4m3fn": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2,
    "e4m3fnuz": ml_dtypes.float8_e4m3fnuz, "e5m2fnuz": ml_dtypes.float8_e5m2fnuz,
    "e4m3b11fnuz": ml_dtypes.float8_e4m3b11fnuz, "e4m3": ml_dtypes.float8_e4m3,
    "e3m4": ml_dtypes.float8_e3m4, "e2m3fn": ml_dtypes.float6_e2m3fn,
    "e3m2fn": ml_dtypes.float6_e3m2fn, "e2m1fn": ml_dtypes.float4_e2m1fn,
    "e8m0": ml_dtypes.float8_e8m0fnu,
    # P3109's signed finite binary8 formats are ml_dtypes' fnuz types (same parameters)
    "p3109_8p3_finite": ml_dtypes.float8_e5m2fnuz, "p3109_8p4_finite": ml_dtypes.float8_e4m3fnuz,
}


@pytest.mark.parametrize("name", fl.preset_names())
def test_ml_dtype_mapping(name):
    fmt = fl.format(name)
    expected = ML_DTYPES.get(name)
    if expected is None:
        assert fmt.ml_dtype is None
        return
    assert fmt.ml_dtype == np.dtype(expected)
    info = ml_dtypes.finfo(expected)
    assert float(info.max) == fmt.max
    assert float(info.smallest_normal) == fmt.min_normal
    assert float(info.smallest_subnormal) == fmt.min_subnormal
    assert float(info.eps) == fmt.eps


def test_ml_dtype_of_changed_formats():
    assert fl.Format(4, 3, 7, specials="fn").ml_dtype == np.dtype(ml_dtypes.float8_e4m3fn)
    assert fl.format("cfloat8_1_4_3", bias=0).ml_dtype is None
    assert fl.Format(4, 3, 6, specials="fn").ml_dtype is None


@pytest.mark.parametrize("fmt", [f for f in EXHAUSTIVE_FORMATS], ids=format_id)
def test_num_finite_and_values(fmt):
    table = reference_decode_table(fmt)
    finite = [v for v in table if math.isfinite(v)]
    assert fmt.num_finite == len(finite)
    values = fmt.values()
    assert values.dtype == np.float64 and values.shape == (1 << fmt.bits,)
    np.testing.assert_array_equal(values, np.array(table))
    assert float(np.nanmax(values[np.isfinite(values)])) == fmt.max
    positive = [v for v in finite if v > 0]
    assert min(positive) == fmt.min_subnormal
    normal_minimum = min(v for v in positive if v >= fmt.min_normal)
    assert normal_minimum == fmt.min_normal


def test_values_refuses_wide_formats():
    with pytest.raises(ValueError):
        fl.FP32.values()


@pytest.mark.parametrize("fmt", PRESETS, ids=format_id)
def test_decode_dtype(fmt):
    wide_exponent = fmt.emax > 127 or fmt.min_subnormal_exponent < -149
    expected = np.float64 if (fmt.man_bits > 23 or wide_exponent) else np.float32
    assert fmt.decode_dtype == np.dtype(expected)


@pytest.mark.parametrize("name", [name for name in ML_DTYPES])
def test_numpy_finfo_names_agree_with_ml_dtypes_finfo(name):
    """Users come from numpy and ml_dtypes: the finfo names mean what they mean there."""
    fmt, info = fl.format(name), ml_dtypes.finfo(ML_DTYPES[name])
    assert fmt.smallest_normal == float(info.smallest_normal) == fmt.min_normal
    assert fmt.smallest_subnormal == float(info.smallest_subnormal) == fmt.min_subnormal
    assert fmt.tiny == float(info.tiny)
    assert fmt.nmant == info.nmant == fmt.man_bits
    assert fmt.nexp == info.nexp == fmt.exp_bits
    assert fmt.minexp == info.minexp == fmt.emin
    assert fmt.maxexp == info.maxexp


@pytest.mark.parametrize("fmt", [f for f in EXHAUSTIVE_FORMATS if f.has_zero and (f.has_negative_zero or not f.signed)],
                         ids=format_id)
def test_values_keep_the_sign_of_zero(fmt):
    table = reference_decode_table(fmt)
    values = fmt.values()
    zeros = [code for code, value in enumerate(table) if value == 0]
    assert zeros and all(np.signbit(values[code]) == (math.copysign(1.0, table[code]) < 0) for code in zeros)


def test_formats_module_does_not_import_the_codec():
    """Format.values() is computed from the fields: formats.py depends on nothing of fmtlab's."""
    import ast
    import pathlib
    source = pathlib.Path(fl.formats.__file__).read_text()
    imported = {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    assert not {module.lstrip(".") for module in imported if module} & {"codec", "_c", "_native"}, imported
