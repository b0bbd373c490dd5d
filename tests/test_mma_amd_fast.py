"""The strip kernels of the AMD CDNA1 and CDNA3 models (csrc/mma.c exact_strip_block: an exact
block sum accumulated in double with two-sum checks; late_strip_block: c_addition="late" without
grouping) against the exact rational reference, and against themselves across thread counts and
SIMD copies.

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

STRIP_MODELS = ["mi100-fp16-fp32", "mi100-bf16-fp32", "mi300x-fp16-fp32", "mi300x-bf16-fp32"]


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
    if draw(st.booleans()):  # a few Inf and NaN
        for _ in range(draw(st.integers(1, 2))):
            target = a if draw(st.booleans()) else b
            target[rng.integers(target.shape[0]), rng.integers(target.shape[1])] = rng.choice(
                np.float32([np.inf, -np.inf, np.nan]))
    c = None
    c_kind = draw(st.sampled_from(["none", "normal", "wide"]))
    if c_kind != "none":
        c = rng.standard_normal((m, n)).astype(np.float32)
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


@pytest.mark.parametrize("name", ["mi300x-fp16-fp32", "mi300x-bf16-fp32"])
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_late_strip_kernel_with_other_parameters(name, data):
    """The +0 rule, other block lengths and cut widths, and c rounded to bf16 first."""
    model = fl.mma_model(name).replace(block=data.draw(st.sampled_from([1, 3, 8, 16, 40])),
                                       frac_bits=data.draw(st.sampled_from([0, 10, 24, 30])),
                                       zero_sign=data.draw(st.sampled_from(["ieee", "positive"])),
                                       c_format=data.draw(st.sampled_from([fl.FP32, fl.BF16])))
    check(model, *data.draw(wide_matrices(model, max_n=20)))


def _operands(model, m=40, k=96, n=50, seed=4):
    rng = np.random.default_rng(seed)
    a = fl.quantize((rng.standard_normal((m, k)) * np.exp2(rng.integers(-12, 12, (m, 1)))).astype(np.float32),
                    model.a_format)
    b = fl.quantize((rng.standard_normal((k, n)) * np.exp2(rng.integers(-30, 30, (k, n)))).astype(np.float32),
                    model.b_format)
    c = rng.standard_normal((m, n)).astype(np.float32)
    a[3, 5] = np.inf
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
