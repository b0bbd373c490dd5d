"""The strip kernels of the AMD CDNA1 and CDNA3 models (csrc/mma.c exact_strip_block: an exact
block sum accumulated in double with two-sum checks; late_strip_block: c_addition="late" without
grouping; late_grouped_strip_block: late c with odd/even grouping, CDNA3 FP8) against the exact
rational reference, against the C model's per-output definition (block_late), and against
themselves across thread counts and SIMD copies.

The shapes span several strips of 16 columns and a partial one, with rows of very different
exponents; the values are drawn with wide exponent spreads (so that some double sums are inexact
and go to the definition), subnormals of the input format, cancelling halves of K (zero totals),
scattered Inf and NaN, and c far above, far below, subnormal or a zero of either sign.
"""
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fmtlab as fl
from test_mma_reference import check

STRIP_MODELS = ["mi100-fp16-fp32", "mi100-bf16-fp32", "mi300x-fp16-fp32", "mi300x-bf16-fp32",
                "mi300x-e4m3fnuz-fp32", "mi300x-e5m2fnuz-fp32"]
LATE_MODELS = ["mi300x-fp16-fp32", "mi300x-bf16-fp32", "mi300x-e4m3fnuz-fp32", "mi300x-e5m2fnuz-fp32"]


@st.composite
def wide_matrices(draw, model, max_m=5, max_n=35, max_k=40):
    m, n, k = draw(st.integers(1, max_m)), draw(st.integers(1, max_n)), draw(st.integers(1, max_k))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    spread = draw(st.sampled_from([0, 4, 20, 60]))
    a = rng.standard_normal((m, k)) * np.exp2(rng.integers(-spread, spread + 1, (m, k)))
    b = rng.standard_normal((k, n)) * np.exp2(rng.integers(-spread, spread + 1, (k, n)))
    if draw(st.booleans()):  # subnormals of the input format
        tiny = 2.0 ** (model.a_format.emin - 2)
        a = np.where(rng.random((m, k)) < 0.3, rng.standard_normal((m, k)) * tiny, a)
    a = fl.quantize(a.astype(np.float32), model.a_format)
    b = fl.quantize(b.astype(np.float32), model.b_format)
    if k >= 2 and draw(st.booleans()):  # cancellation: the second half of K undoes the first
        half = k // 2
        a[:, half:2 * half] = a[:, :half]
        b[half:2 * half, :] = -b[:half, :]
        b = fl.quantize(b, model.b_format)  # -0 is +0 in the fnuz formats (no negative zero)
    if draw(st.booleans()):  # a few Inf and NaN
        for _ in range(draw(st.integers(1, 2))):
            target = a if draw(st.booleans()) else b
            fmt = model.a_format if target is a else model.b_format
            # the fnuz FP8 formats have no Inf (it rounds to their NaN): only NaN there
            has_inf = bool(np.isinf(fl.quantize(np.float32([np.inf]), fmt))[0])
            target[rng.integers(target.shape[0]), rng.integers(target.shape[1])] = rng.choice(
                np.float32([np.inf, -np.inf, np.nan] if has_inf else [np.nan]))
    c = None
    c_kind = draw(st.sampled_from(["none", "normal", "wide", "small"]))
    if c_kind != "none":
        c = rng.standard_normal((m, n)).astype(np.float32)
        if c_kind == "small":  # 2^-30 .. 2^-18 of the products: around late c's 2^(J - 24) floor and J - 25 drop
            c = (c * np.exp2(rng.integers(-30, -17, (m, n)).astype(np.float32))).astype(np.float32)
        if c_kind == "wide":
            c = (c * np.exp2(rng.integers(-149, 100, (m, n)).astype(np.float32))).astype(np.float32)
            c[rng.random((m, n)) < 0.2] = rng.choice(np.float32([0.0, -0.0, 2.0 ** -149, -2.0 ** -130]))
    return a, b, c


@pytest.mark.parametrize("name", STRIP_MODELS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_strip_kernels_match_the_reference(name, data):
    model = fl.mma_model(name)
    check(model, *data.draw(wide_matrices(model)))


@pytest.mark.parametrize("name", LATE_MODELS)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_late_strip_kernel_with_other_parameters(name, data):
    """The +0 rule, other block lengths (odd ones: a last even product without its odd partner)
    and cut widths, and c rounded to bf16 first."""
    model = fl.mma_model(name).replace(block=data.draw(st.sampled_from([1, 3, 8, 15, 16, 40, 64])),
                                       frac_bits=data.draw(st.sampled_from([0, 10, 24, 30])),
                                       zero_sign=data.draw(st.sampled_from(["ieee", "positive"])),
                                       c_format=data.draw(st.sampled_from([fl.FP32, fl.BF16])))
    check(model, *data.draw(wide_matrices(model, max_n=20)))


def test_late_strip_total_below_float32_range_is_plus_zero_under_the_positive_rule():
    """A nonzero block total below float32's range (a bf16 subnormal times 2^-29 at block 1: the
    kernel's cut keeps -2^-157) rounds to -0 in the final cast; zero_sign="positive" makes that
    zero result +0 (the strip kernels once stored -0: found by Hypothesis on FMTLAB_SIMD=portable)."""
    model = fl.mma_model("mi300x-bf16-fp32").replace(block=1, frac_bits=10, zero_sign="positive")
    a = fl.quantize(np.float32([[-1.561203e-39] * 3]), model.a_format)
    b = fl.quantize(np.float32([[2.386514e-09] * 17] * 3), model.b_format)
    assert a[0, 0] < 0 and b[0, 0] > 0  # bf16 holds both (a subnormal)
    d = fl.matmul(a, b, model=model)
    assert not np.signbit(d).any() and (d == 0).all(), d
    check(model, a, b, None)


@pytest.mark.parametrize("name", STRIP_MODELS)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_strip_kernels_match_the_per_output_definition(name, data):
    """Fast = the C model's own per-output definition (chain_step_general: block_late,
    block_general), bit for bit.  A tile of 16 rows with an Inf or NaN in any row goes through the
    definition for every row of it, so the same A with one such row appended (m <= 15: one tile)
    gives the definition's results in its other rows, on identical data."""
    model = fl.mma_model(name)
    a, b, c = data.draw(wide_matrices(model, max_m=15))
    fast = fl.matmul(a, b, c, model=model)
    poisoned = np.vstack([a, np.full((1, a.shape[1]), np.nan, np.float32)])
    c_poisoned = None if c is None else np.vstack([c, np.zeros((1, c.shape[1]), np.float32)])
    slow = fl.matmul(poisoned, b, c_poisoned, model=model)[:-1]
    assert np.array_equal(fast.view(np.uint32), slow.view(np.uint32))


def _operands(model, m=40, k=96, n=50, seed=4):
    rng = np.random.default_rng(seed)
    a = fl.quantize((rng.standard_normal((m, k)) * np.exp2(rng.integers(-12, 12, (m, 1)))).astype(np.float32),
                    model.a_format)
    b = fl.quantize((rng.standard_normal((k, n)) * np.exp2(rng.integers(-30, 30, (k, n)))).astype(np.float32),
                    model.b_format)
    c = rng.standard_normal((m, n)).astype(np.float32)
    a[3, 5] = np.inf if np.isinf(fl.quantize(np.float32([np.inf]), model.a_format))[0] else np.nan  # fnuz: no Inf
    return a, b, c


@pytest.mark.parametrize("name", STRIP_MODELS)
def test_thread_count_does_not_change_bits(name):
    model = fl.mma_model(name)
    a, b, c = _operands(model)
    before = fl.get_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            fl.set_threads(threads)
            results.append(fl.matmul(a, b, c, model=model))
    finally:
        fl.set_threads(before)
    for result in results[1:]:
        assert np.array_equal(results[0].view(np.uint32), result.view(np.uint32))


_DIGEST_SCRIPT = """
import hashlib, sys
sys.path.insert(0, {tests!r})
import fmtlab as fl
from test_mma_amd_fast import STRIP_MODELS, _operands
digests = []
for name in STRIP_MODELS:
    model = fl.mma_model(name)
    digests.append(hashlib.sha256(fl.matmul(*_operands(model), model=model).tobytes()).hexdigest())
print(" ".join(digests))
"""


def test_every_simd_copy_gives_the_same_bits():
    tests = os.path.dirname(os.path.abspath(__file__))
    outputs = []
    for variable, value in (("FMTLAB_MMA_SIMD", "sse2"), ("FMTLAB_MMA_SIMD", "avx2"), ("FMTLAB_MMA_SIMD", "native"),
                            ("FMTLAB_SIMD", "portable")):
        result = subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT.format(tests=tests)], capture_output=True,
                                text=True, env=dict(os.environ, **{variable: value}), timeout=300)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.split())
    assert len(outputs[0]) == len(STRIP_MODELS) and all(output == outputs[0] for output in outputs)
    here = [hashlib.sha256(fl.matmul(*_operands(fl.mma_model(name)), model=fl.mma_model(name)).tobytes()).hexdigest()
            for name in STRIP_MODELS]
    assert outputs[2] == here
