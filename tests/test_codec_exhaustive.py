"""Exhaustive: every code of every format of 16 bits or fewer.

* decodes to the value computed independently from its fields (tests/reference.py),
  bit for bit: NaN to NaN, Inf to Inf, the sign of zero kept;
* re-encodes to itself in every rounding mode, from float32 and from float64 (a NaN code
  to a NaN code of the format; an E = 0, M != 0 code of a subnormals="none" format to the
  zero of its sign);
* Format.exact_value agrees with the reference for every code.
Formats wider than 16 bits (tf32, fp32) are sampled.
"""
import math
from fractions import Fraction

import numpy as np
import pytest

import fmtlab as fl
from reference import (EXHAUSTIVE_FORMATS, WIDE_FORMATS, assert_codes_equal, format_id, layout,
                       reference_decode_table, reference_float, reference_value)

MODES = fl.ROUNDINGS  # every mode, stochastic included: exact values never move


def _reference_values(fmt):
    return np.array(reference_decode_table(fmt), dtype=np.float64)


def _assert_same_floats(fmt, codes, got, want):
    got = np.asarray(got, dtype=np.float64)
    nan_got, nan_want = np.isnan(got), np.isnan(want)
    problems = np.flatnonzero((nan_got != nan_want)
                              | (~nan_want & ((got != want) | (np.signbit(got) != np.signbit(want)))))
    if problems.size:
        lines = [f"{problems.size} codes of {fmt} decode wrongly:"]
        for index in problems[:8]:
            lines.append(f"  code {int(codes[index]):#x}: got {got[index]!r}, expected {want[index]!r}")
        raise AssertionError("\n".join(lines))


@pytest.mark.parametrize("fmt", EXHAUSTIVE_FORMATS, ids=format_id)
def test_decode_every_code(fmt):
    codes = np.arange(1 << fmt.bits, dtype=fmt.code_dtype)
    decoded = fl.decode(codes, fmt)
    assert decoded.shape == codes.shape
    assert decoded.dtype == fmt.decode_dtype
    _assert_same_floats(fmt, codes, decoded, _reference_values(fmt))


def _expected_reencoding(fmt):
    """Each code re-encodes to itself, except the subnormals="none" E = 0 codes (to a zero)."""
    lay = layout(fmt)
    codes = np.arange(1 << fmt.bits, dtype=np.int64)
    expected = codes.copy()
    if fmt.subnormals == "none":
        magnitude = codes & lay.magnitude_mask
        flushed = (magnitude >> fmt.man_bits == 0) & (magnitude != 0)
        negative = (codes & lay.sign_bit) != 0
        expected[flushed] = np.where(negative[flushed] & lay.has_negative_zero, lay.sign_bit, 0)
    return expected


@pytest.mark.parametrize("fmt", EXHAUSTIVE_FORMATS, ids=format_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_code_reencodes_to_itself(fmt, dtype):
    values = _reference_values(fmt)
    inputs = values.astype(dtype)
    finite = np.isfinite(values)
    # exact in float32 too (every format of 16 bits or fewer here fits float32)
    assert np.array_equal(inputs[finite].astype(np.float64), values[finite])
    expected = _expected_reencoding(fmt)
    for mode in MODES:
        for saturate in (False, True):
            got = fl.encode(inputs, fmt, mode, saturate=saturate, seed=5)
            assert got.dtype == fmt.code_dtype
            # NaN codes may come back as any NaN code; Inf stays Inf even when saturating
            # (an Inf input is not an overflow in an ieee format)
            assert_codes_equal(fmt, inputs, got, expected, f"re-encoding with rounding={mode}, saturate={saturate}")


def _exact_value_codes(fmt):
    """Every code of formats up to 12 bits; for wider ones (exact_value is slow Python) every
    11th code plus every code of the lowest two and the highest two exponent fields."""
    if fmt.bits <= 12:
        return range(1 << fmt.bits)
    lay = layout(fmt)
    chosen = set(range(0, 1 << fmt.bits, 11))
    for code in range(1 << fmt.bits):
        exponent_field = (code & lay.magnitude_mask) >> fmt.man_bits
        if exponent_field <= 1 or exponent_field >= lay.exponent_all_ones - 1:
            chosen.add(code)
    return sorted(chosen)


@pytest.mark.parametrize("fmt", EXHAUSTIVE_FORMATS, ids=format_id)
def test_exact_value_agrees_with_reference(fmt):
    for code in _exact_value_codes(fmt):
        expected = reference_value(fmt, code)
        got = fmt.exact_value(code)
        assert got == expected, f"{fmt} code {code:#x}: exact_value {got!r}, reference {expected!r}"
        as_float = reference_float(fmt, code)
        if isinstance(expected, Fraction):
            assert Fraction(as_float) == expected


@pytest.mark.parametrize("fmt", [fl.FP16, fl.E4M3FN, fl.UHP, fl.E2M1FN, fl.Format(6, 9, 31, subnormals="none"),
                                 fl.format("cfloat8_1_5_2", bias=63, subnormals="tesla")], ids=format_id)
def test_decode_large_arrays(fmt):
    """Large arrays (where the C core may use a value table and threads) decode like the reference."""
    rng = np.random.default_rng(fmt.bits)
    codes = rng.integers(0, 1 << fmt.bits, size=1_000_003, dtype=np.uint64).astype(fmt.code_dtype)
    want = _reference_values(fmt)[codes.astype(np.int64)]
    for threads in (1, 2):
        try:
            fl.set_threads(threads)
            got = fl.decode(codes, fmt)
        finally:
            fl.set_threads(None)
        assert got.dtype == fmt.decode_dtype
        _assert_same_floats(fmt, codes, got, want)
    # wider code dtypes holding in-range codes decode the same
    _assert_same_floats(fmt, codes, fl.decode(codes.astype(np.uint32), fmt), want)


@pytest.mark.parametrize("fmt", WIDE_FORMATS, ids=format_id)
def test_decode_wide_formats_sampled(fmt):
    lay = layout(fmt)
    rng = np.random.default_rng(20260101 + fmt.bits)
    codes = rng.integers(0, 1 << fmt.bits, size=20000, dtype=np.uint64)
    special = []
    for magnitude in (0, 1, 2, lay.mantissa_all_ones, lay.mantissa_all_ones + 1, lay.max_code,
                      lay.max_code + 1, lay.max_code + 2, lay.magnitude_mask):
        special += [magnitude, magnitude | lay.sign_bit]
    codes = np.concatenate([codes, np.array(special, dtype=np.uint64)]).astype(fmt.code_dtype)
    want = np.array([reference_float(fmt, int(code)) for code in codes])
    got = fl.decode(codes, fmt)
    assert got.dtype == fmt.decode_dtype
    _assert_same_floats(fmt, codes, got, want)
    # and back: every code re-encodes to itself (NaN to a NaN), from float64
    again = fl.encode(got.astype(np.float64), fmt)
    assert_codes_equal(fmt, got, again, codes, "re-encoding sampled codes")


@pytest.mark.parametrize("fmt", [f for f in EXHAUSTIVE_FORMATS if f.has_nan], ids=format_id)
def test_nan_codes_of_each_policy(fmt):
    """The NaN codes, counted from the spec's table (formats.md section 1)."""
    nan_codes = [code for code in range(1 << fmt.bits) if math.isnan(reference_decode_table(fmt)[code])]
    e, m = fmt.exp_bits, fmt.man_bits
    if fmt.specials == "ieee":
        assert len(nan_codes) == (2 if fmt.signed else 1) * ((1 << m) - 1)
    elif fmt.specials == "fn":
        assert nan_codes == ([(1 << (e + m)) - 1, (1 << (e + m + 1)) - 1] if fmt.signed else [(1 << (e + m)) - 1])
    elif fmt.specials == "p3109":  # signed: the negative-zero code; unsigned: every bit set
        assert nan_codes == ([1 << (e + m)] if fmt.signed else [(1 << (e + m)) - 1])
    else:  # fnuz: only the negative-zero code
        assert nan_codes == [1 << (e + m)]
