"""The C kernel against the exact rational reference (tests/mma_reference.py), bit for bit.

Hypothesis draws small matrices (K often not a multiple of the block) whose values are
drawn from every code of the input format, so huge, tiny and subnormal magnitudes and
exact cancellation come up, plus Inf and NaN in their own tests; and models both from
the presets and from random parameter sets.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fmtlab as fl
import mma_reference as reference

INPUT_FORMATS = [fl.FP16, fl.BF16, fl.TF32, fl.E4M3FN, fl.E5M2, fl.FP32]
OUT_FORMATS = [fl.FP32, fl.FP16, fl.BF16]
PRESETS = [model for model in fl.mma_models()]


def assert_same_bits(actual, expected, model):
    """Equal float32 bit patterns; a NaN must be the out format's canonical NaN."""
    actual = np.asarray(actual, dtype=np.float32)
    expected = np.asarray(expected, dtype=np.float32)
    assert actual.shape == expected.shape
    nan = np.isnan(expected)
    assert np.array_equal(np.isnan(actual), nan), f"NaN positions differ:\n{actual}\n{expected}"
    assert np.all(actual.view(np.uint32)[nan] == reference.canonical_nan_bits(model.out_format))
    same = actual.view(np.uint32)[~nan] == expected.view(np.uint32)[~nan]
    if not same.all():
        index = np.argwhere(~nan)[np.argmin(same)]
        raise AssertionError(f"{model!r}: element {tuple(index)} is {actual[tuple(index)]!r} "
                             f"(C) but {expected[tuple(index)]!r} (reference)")


def values_of(fmt, specials=False):
    """Values of fmt, drawn from all its codes (so every binade is as likely as any other)."""
    if fmt.bits <= 16:
        table = fmt.values()
        if not specials:
            table = table[np.isfinite(table)]
        return st.sampled_from(table.astype(np.float32).tolist())
    floats = st.floats(width=32, allow_nan=specials, allow_infinity=specials)
    return floats.map(lambda x: float(fl.quantize(np.float32(x), fmt, "toward_zero")))


@st.composite
def matrices(draw, model, specials=False, max_k=24, rows=(1, 3), columns=(1, 4)):
    m = draw(st.integers(*rows))
    n = draw(st.integers(*columns))
    k = draw(st.integers(0, max_k))
    a_values, b_values = values_of(model.a_format, specials), values_of(model.b_format, specials)
    a = np.array(draw(st.lists(a_values, min_size=m * k, max_size=m * k)), dtype=np.float32).reshape(m, k)
    b = np.array(draw(st.lists(b_values, min_size=k * n, max_size=k * n)), dtype=np.float32).reshape(k, n)
    if k >= 2 and draw(st.booleans()):
        # cancellation: the second half of K repeats the first half with the sign flipped
        half = k // 2
        a[:, half:2 * half] = a[:, :half]
        b[half:2 * half, :] = -b[:half, :]
    c = None
    if draw(st.booleans()):
        c_values = values_of(fl.FP32, specials) if draw(st.booleans()) else values_of(model.c_format, specials)
        c = np.array(draw(st.lists(c_values, min_size=m * n, max_size=m * n)), dtype=np.float32).reshape(m, n)
    return a, b, c


@st.composite
def random_models(draw):
    summation = draw(st.sampled_from(["block_fma", "block_fma", "block_fma", "pairwise"]))
    a_format = draw(st.sampled_from(INPUT_FORMATS))
    b_format = draw(st.sampled_from([a_format] + INPUT_FORMATS))
    if summation == "pairwise":
        return fl.MMAModel(a_format, b_format, out_format=fl.FP32, out_rounding="nearest_even",
                           summation="pairwise")
    block = draw(st.one_of(st.none(), st.integers(1, 9)))
    out_format = draw(st.sampled_from(OUT_FORMATS))
    promote_every = None
    if out_format == fl.FP32 and draw(st.booleans()):
        promote_every = (block or draw(st.integers(1, 9))) * draw(st.integers(1, 3))
    return fl.MMAModel(
        a_format, b_format, block=block,
        frac_bits=draw(st.one_of(st.none(), st.integers(0, 30), st.integers(31, 60))),
        out_format=out_format,
        out_rounding=draw(st.sampled_from(["toward_zero", "nearest_even"])),
        acc_frac_bits=draw(st.one_of(st.none(), st.integers(0, 23))),
        exp_floor=draw(st.one_of(st.none(), st.integers(-140, 10))),
        c_format=draw(st.sampled_from([None, fl.FP32, fl.FP16])),
        c_addition=draw(st.sampled_from(["fused", "separate"])),
        promote_every=promote_every)


def check(model, a, b, c):
    actual = fl.matmul(a, b, c, model=model)
    c_rounded = None if c is None else fl.quantize(c, model.c_format, "nearest_even")
    expected = reference.matmul(a, b, c_rounded, model)
    assert_same_bits(actual, expected, model)


@settings(max_examples=150)
@given(st.data())
def test_presets_match_the_reference(data):
    model = data.draw(st.sampled_from(PRESETS))
    check(model, *data.draw(matrices(model)))


@settings(max_examples=250)
@given(st.data())
def test_random_models_match_the_reference(data):
    model = data.draw(random_models())
    check(model, *data.draw(matrices(model)))


@settings(max_examples=120)
@given(st.data())
def test_inf_and_nan_match_the_reference(data):
    model = data.draw(st.one_of(st.sampled_from(PRESETS), random_models()))
    check(model, *data.draw(matrices(model, specials=True, max_k=10)))


@settings(max_examples=40)
@given(st.data())
def test_long_k_on_the_fast_path_matches_the_reference(data):
    # Wider outputs (a whole 16-column strip and a partial one) and K over several blocks.
    model = data.draw(st.sampled_from([fl.mma_model("h100", "fp16"), fl.mma_model("h100", "e4m3"),
                                       fl.mma_model("a100", "bf16"), fl.mma_model("b200", "e5m2"),
                                       fl.mma_model("ada", "e4m3", "fp16"), fl.mma_model("v100", "fp16", "fp16")]))
    k = data.draw(st.integers(1, 70))
    n = data.draw(st.sampled_from([16, 19]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    scale = 2.0 ** data.draw(st.integers(-20, 12))
    a = fl.quantize((rng.standard_normal((2, k)) * scale).astype(np.float32), model.a_format)
    b = fl.quantize(rng.standard_normal((k, n)).astype(np.float32), model.b_format)
    c = fl.quantize(rng.standard_normal((2, n)).astype(np.float32), model.c_format)
    check(model, a, b, c)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_row_groups_match_the_reference(data):
    # The AVX-512 kernel takes four rows of A at a time against one 16-column strip of B
    # (rows_block_avx512, docs/tensor-cores.md §8): 4 to 9 rows (whole groups and a remainder),
    # whole and partial strips, values from every binade, specials, cancellation, every preset
    # and random models, among them FP8 with fp16 output and its separate adder.
    model = data.draw(st.one_of(st.sampled_from(PRESETS), random_models()))
    specials = data.draw(st.booleans())
    check(model, *data.draw(matrices(model, specials=specials, max_k=40, rows=(4, 9), columns=(14, 18))))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_fp8_with_fp16_output_matches_the_reference_in_row_groups(data):
    # The vectorised separate adder: sums that overflow fp16, are subnormal, cancel to a signed zero.
    model = data.draw(st.sampled_from([m for m in PRESETS if m.out_format == fl.FP16]))
    check(model, *data.draw(matrices(model, specials=data.draw(st.booleans()), max_k=40, rows=(4, 8),
                                     columns=(15, 17))))


@pytest.mark.parametrize("model", [fl.mma_model("h100", "fp16"), fl.mma_model("h100", "e4m3"),
                                   fl.mma_model("a100", "tf32"), fl.mma_model("b200", "e4m3")],
                         ids=lambda model: model.name)
def test_overflow_and_subnormal_results(model):
    big = float(model.a_format.max)
    tiny = float(model.a_format.min_subnormal)
    a = np.array([[big, big, big, big], [tiny, tiny, -tiny, tiny], [big, -big, tiny, 0.0]], dtype=np.float32)
    b = np.array([[big, tiny, 1.0], [big, tiny, -1.0], [big, tiny, 1.0], [big, tiny, 1.0]], dtype=np.float32)
    b = fl.quantize(b, model.b_format)
    c = np.array([[0.0, -0.0, 1e-45], [-0.0, 3e38, -3e38], [1.0, float("inf"), -0.0]], dtype=np.float32)
    check(model, a, b, c)


def test_reference_rounding_helpers():
    assert reference.round_to(reference.Fraction(3, 2), fl.FP16, "nearest_even") == 1.5
    assert reference.round_to(reference.Fraction(65520), fl.FP16, "nearest_even") == math.inf
    assert reference.round_to(reference.Fraction(65520), fl.FP16, "toward_zero") == 65504.0
    assert reference.round_to(reference.Fraction(1, 2 ** 26), fl.FP16, "nearest_even") == 0.0
    assert reference.floor_log2(reference.Fraction(1, 3)) == -2


def test_separate_adder_rounds_a_subnormal_fp16_sum_in_row_groups():
    # c given in fp32 (not fp16) and block sums near fp16's subnormal range: c + the block result
    # is a subnormal fp16 value that needs rounding to a multiple of 2^-24, which the vectorised
    # separate adder must leave to the definition (its bit rounding is for normal sums only).
    model = fl.MMAModel(fl.format("e4m3fn"), fl.format("e4m3fn"), block=32, frac_bits=25, out_format=fl.FP16,
                        out_rounding="nearest_even", c_format=fl.FP32, c_addition="separate")
    rng = np.random.default_rng(5)
    a = np.zeros((6, 32), dtype=np.float32)
    a[:, 0] = 2.0 ** -9
    a[:, 1] = fl.quantize((rng.standard_normal(6) * 2.0 ** -8).astype(np.float32), model.a_format)
    b = np.zeros((32, 17), dtype=np.float32)
    b[:2] = fl.quantize((rng.standard_normal((2, 17)) * 2.0 ** -6).astype(np.float32), model.b_format)
    c = (rng.standard_normal((6, 17)) * 2.0 ** -17).astype(np.float32)
    check(model, a, b, c)
    # and the test is not vacuous: some sums are subnormal fp16 values off the 2^-24 grid
    exact = c.astype(np.float64) + fl.quantize((a.astype(np.float64) @ b.astype(np.float64)).astype(np.float32),
                                                fl.FP16)
    off_grid = (np.abs(exact) < 2.0 ** -14) & (exact * 2.0 ** 24 != np.round(exact * 2.0 ** 24))
    assert off_grid.sum() > 10
