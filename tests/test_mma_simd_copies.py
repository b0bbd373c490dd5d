"""The SIMD copies of the matmul kernel (csrc/mma.c) against each other and the exact reference.

FMTLAB_MMA_SIMD is read by the C core at every matmul (prepare_model), so one process can run
each copy: "sse2" (strip_block_sse2, the kernel x86-64 always has), "avx2" (rows_block_avx2 with
its toward-zero float32-output block step rz_scales_avx2 / rz_finish_avx2, and the AVX2 product
loops) and "native" (the CPU's best: rows_block_avx512 where it has AVX-512).  On a CPU without
AVX2 the copies coincide and these tests compare the kernel with itself and the reference.

Two kinds of draws:
- small matrices whose values come from every code of the input formats, specials included, in
  row groups of four and partial strips, each copy against tests/mma_reference.py (Fractions);
- larger adversarial matrices (per-row exponent spreads up to the format's extremes, zero rows
  and columns, exact cancellation, c of every magnitude: subnormal, +-0, near float32's largest,
  sparse Inf and NaN), where the copies must agree bit for bit with the SSE2 one.
"""
import contextlib
import ctypes
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fmtlab as fl
from fmtlab import _native
from test_mma_reference import PRESETS, check, matrices, random_models

COPIES = ["native", "avx2", "sse2"]
FAST = ["h100-fp16-fp32", "h100-e4m3fn-fp32", "h100-e5m2-fp32", "h100-bf16-fp32", "a100-tf32-fp32",
        "b200-e5m2-fp32", "ada-e4m3fn-fp16", "v100-fp16-fp16", "h100-e4m3fn-fp16"]


@contextlib.contextmanager
def mma_simd(value):
    """FMTLAB_MMA_SIMD=value for the calls inside."""
    before = os.environ.get("FMTLAB_MMA_SIMD")
    os.environ["FMTLAB_MMA_SIMD"] = value
    try:
        yield
    finally:
        if before is None:
            del os.environ["FMTLAB_MMA_SIMD"]
        else:
            os.environ["FMTLAB_MMA_SIMD"] = before


def test_the_variable_selects_the_copy():
    level = ctypes.CDLL(_native.__file__).fl_mma_simd_level  # exported, outside the cffi cdef
    with mma_simd("native"):
        best = level()
    with mma_simd("avx2"):
        assert level() == min(best, 1)
    with mma_simd("sse2"):
        assert level() == 0


@pytest.mark.parametrize("simd", COPIES)
@settings(max_examples=60, deadline=None)
@given(st.data())
def test_row_groups_match_the_reference(simd, data):
    model = data.draw(st.one_of(st.sampled_from(PRESETS), random_models()))
    specials = data.draw(st.booleans())
    a, b, c = data.draw(matrices(model, specials=specials, max_k=40, rows=(4, 9), columns=(14, 18)))
    with mma_simd(simd):
        check(model, a, b, c)


def adversarial(model, rng, m, k, n):
    """A, B (in their formats) and C (float32) with the kernel's hard cases."""
    a_format, b_format = model.a_format, model.b_format
    top = int(np.floor(np.log2(float(a_format.max))))
    low = int(np.floor(np.log2(float(a_format.min_subnormal))))
    spread = rng.integers(low - 1, top + 1, (m, 1))  # rows from the subnormals to the largest binade
    a = fl.quantize((rng.standard_normal((m, k)) * np.exp2(spread)).astype(np.float32), a_format)
    b_top = int(np.floor(np.log2(float(b_format.max))))
    b = fl.quantize((rng.standard_normal((k, n)) * np.exp2(rng.integers(-8, min(8, b_top) + 1, (1, n))))
                    .astype(np.float32), b_format)
    a[rng.integers(m), :] = 0.0  # a row without a nonzero term
    b[:, rng.integers(n)] = 0.0
    if k >= 2 and rng.random() < 0.5:  # exact cancellation in some rows: zero and tiny totals
        half = k // 2
        rows = rng.random(m) < 0.5
        a[rows, half:2 * half] = a[rows, :half]
        b[half:2 * half, :] = -b[:half, :]
    c = (rng.standard_normal((m, n)) * np.exp2(rng.integers(-140, 120, (m, n)))).astype(np.float32)
    pick = rng.random((m, n))
    c[pick < 0.15] = 0.0
    c[(pick >= 0.15) & (pick < 0.25)] = -0.0
    c[(pick >= 0.25) & (pick < 0.3)] = np.float32(2.0 ** -149) * rng.integers(1, 5)
    c[(pick >= 0.3) & (pick < 0.33)] = np.float32(3.4e38) * np.sign(rng.standard_normal())
    if rng.random() < 0.3:  # sparse specials: whole tiles leave the fast path
        which = rng.integers(3)
        target, fmt = [(a, a_format), (b, b_format), (c, fl.FP32)][which]
        special = np.float32(rng.choice([np.nan, np.inf, -np.inf]))
        # in the format: e4m3fn has no Inf (its nearest is NaN)
        target[rng.integers(target.shape[0]), rng.integers(target.shape[1])] = fl.quantize(special, fmt)
    return a, b, c


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(FAST), seed=st.integers(0, 2 ** 32 - 1), m=st.integers(4, 13),
       k=st.integers(1, 100), n=st.integers(14, 40))
def test_copies_agree_on_adversarial_matrices(name, seed, m, k, n):
    model = fl.mma_model(name)
    a, b, c = adversarial(model, np.random.default_rng(seed), m, k, n)
    results = {}
    for simd in COPIES:
        with mma_simd(simd):
            results[simd] = fl.matmul(a, b, c, model=model).view(np.uint32)
    for simd in COPIES[:-1]:
        assert np.array_equal(results[simd], results["sse2"]), (name, simd)


@settings(max_examples=15, deadline=None)
@given(name=st.sampled_from(FAST), seed=st.integers(0, 2 ** 32 - 1), m=st.integers(4, 6),
       k=st.integers(1, 40), n=st.integers(14, 18))
def test_adversarial_matrices_match_the_reference(name, seed, m, k, n):
    model = fl.mma_model(name)
    a, b, c = adversarial(model, np.random.default_rng(seed), m, k, n)
    c = fl.quantize(c, model.c_format, "nearest_even")  # check() rounds c to C's format itself
    for simd in COPIES:
        with mma_simd(simd):
            check(model, a, b, c)
