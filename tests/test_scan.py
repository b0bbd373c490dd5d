"""The sweep's scan pass (csrc/scan.c through fmtlab._binades.scan) against an exact reference:
binades from math.frexp of each value, amaxes from Python's max over the values, the counts of
zeros, NaN and Inf by classification; float32, float64 and widened dtypes; subnormals, the
extremes of each type, every tail length; pieces add up to the whole."""
import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fmtlab._binades import merge_histograms, scan


def reference(values) -> dict:
    binades, zeros, nonfinite = {}, 0, 0
    finite = []
    for value in values:
        if math.isnan(value) or math.isinf(value):
            nonfinite += 1
            continue
        finite.append(abs(value))
        if value == 0:
            zeros += 1
            continue
        _mantissa, exponent = math.frexp(value)  # |value| = m 2^exponent, 1/2 <= m < 1
        binades[exponent - 1] = binades.get(exponent - 1, 0) + 1
    if any(math.isnan(value) for value in values):
        tensor_amax = math.nan
    elif any(math.isinf(value) for value in values):
        tensor_amax = math.inf
    else:
        tensor_amax = max(finite, default=0.0)
    return {"binades": binades, "zeros": zeros, "nonfinite": nonfinite, "n": len(values),
            "amax": max(finite) if finite else math.nan, "tensor_amax": tensor_amax}


def as_reference(result) -> dict:
    histogram = result["histogram"]
    binades = {histogram["low"] + index: count for index, count in enumerate(histogram["counts"]) if count}
    if histogram["counts"]:
        assert histogram["counts"][0] and histogram["counts"][-1]  # trimmed to the used binades
    return {"binades": binades, "zeros": histogram["zeros"], "nonfinite": histogram["nonfinite"],
            "n": histogram["n"], "amax": result["amax"], "tensor_amax": result["tensor_amax"]}


def same(first, second) -> bool:
    def key(value):
        return "nan" if isinstance(value, float) and math.isnan(value) else value
    return {k: key(v) for k, v in first.items()} == {k: key(v) for k, v in second.items()}


SPECIAL32 = [0.0, -0.0, math.inf, -math.inf, math.nan, float(np.finfo(np.float32).max),
             float(np.finfo(np.float32).smallest_subnormal), float(np.finfo(np.float32).tiny),
             float(np.float32(np.finfo(np.float32).tiny) * np.float32(0.75)), 1.0, -2.0, 3.0]
SPECIAL64 = [0.0, -0.0, math.inf, -math.inf, math.nan, float(np.finfo(np.float64).max), 5e-324,
             float(np.finfo(np.float64).tiny), 2.0 ** -1070 * 3, 1.0, -0.5, 0.75]


def magnitudes(low, high):
    return st.builds(lambda sign, exponent, fraction: sign * fraction * 2.0 ** exponent,
                     st.sampled_from([1.0, -1.0]), st.integers(low, high), st.floats(1.0, 2.0, exclude_max=True))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(SPECIAL32), magnitudes(-160, 127)), max_size=600))
def test_float32_scan_is_exact(values):
    x = np.array(values, dtype=np.float32)
    assert same(as_reference(scan(x)), reference([float(v) for v in x]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(SPECIAL64), magnitudes(-1080, 1023)), max_size=600))
def test_float64_scan_is_exact(values):
    x = np.array(values, dtype=np.float64)
    assert same(as_reference(scan(x)), reference(values))


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.int32])
def test_other_dtypes_are_widened_exactly(dtype):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(1000) * 50).astype(dtype)
    assert same(as_reference(scan(x)), reference([float(v) for v in x.astype(np.float64)]))


@pytest.mark.parametrize("n", range(0, 10))
def test_every_tail_length_and_nan_beside_inf(n):
    values = [1.5 * 2.0 ** (k - 4) for k in range(n)] + [math.inf, math.nan, -0.0]
    for dtype in (np.float32, np.float64):
        x = np.array(values, dtype=dtype)
        assert same(as_reference(scan(x)), reference(values))


def test_an_empty_tensor_and_one_with_no_finite_value():
    assert same(as_reference(scan(np.zeros(0, np.float32))), reference([]))
    assert math.isnan(scan(np.array([math.inf], np.float32))["amax"])
    assert scan(np.array([math.inf], np.float32))["tensor_amax"] == math.inf


def test_pieces_add_up_to_the_whole():
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(10_001) * np.exp2(rng.integers(-140, 120, 10_001))).astype(np.float32)
    x[::97] = 0
    whole = scan(x)["histogram"]
    merged = scan(x[:3])["histogram"]
    for start in range(3, x.size, 1234):
        merged = merge_histograms(merged, scan(x[start:start + 1234])["histogram"])
    assert merged == whole
