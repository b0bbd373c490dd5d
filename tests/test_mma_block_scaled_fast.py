"""The fast path of the block-scaled kernel (csrc/mma_block_scaled.c, AVX-512, and its AVX2 + FMA
copy in csrc/mma_block_scaled_avx2.h: four rows of A against strips of 16 columns of B,
float32/double arithmetic) against the definition.

Three peers give the same bits on every draw: the C file's definition for every element
(implementation="c_reference"), the numpy path, and on the smaller draws the exact rational
reference of tests/mma_reference.py.  The shapes cover one to three row groups of four and a
partial one, one to three strips of 16 columns and a partial one, and K of any length (tails
of the instruction block and of the scale block).  Specials are sparse, so that most lanes stay
on the fast path while their neighbours go to the definition.  On a CPU without AVX-512 the
kernel runs the definition throughout and these tests compare it with itself and the references.
The differential tests run once per SIMD copy of the fast path (FMTLAB_MMA_SIMD, read by the C
core at every call): the CPU's best and AVX2.
"""
import contextlib
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fmtlab as fl
from fmtlab.mma_block_scaled import block_scaled_matmul
from test_mma_block_scaled import PRESETS, CODE_COUNTS, element_values, operands, reference_matmul, assert_same_bits

SIGN_BITS = {"e4m3fn": 0x80, "e5m2": 0x80, "e2m3fn": 0x20, "e2m1fn": 0x8}
# NaN and Inf codes of the element formats that have them (e5m2: +-Inf and NaNs; e4m3fn: NaNs)
SPECIAL_CODES = {"e4m3fn": [0x7F, 0xFF], "e5m2": [0x7C, 0xFC, 0x7E, 0xFF], "e2m3fn": [], "e2m1fn": []}


def finite_codes(fmt):
    """The codes of the element format that are finite values (decoded by ml_dtypes)."""
    codes = np.arange(CODE_COUNTS[fmt], dtype=np.uint8)
    return codes[np.isfinite(element_values(codes, fmt))]


@st.composite
def fast_problems(draw, name, max_m=9, max_n=35):
    model = PRESETS[name]
    fmt = str(model.a_format)
    m, n = draw(st.integers(1, max_m)), draw(st.integers(1, max_n))
    k = draw(st.integers(1, 3 * model.block + 5))
    blocks = -(-k // model.scale_block)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    codes = finite_codes(fmt)
    kind = draw(st.sampled_from(["uniform", "small", "cancel"]))
    a = rng.choice(codes, (m, k))
    b = rng.choice(codes, (k, n))
    if kind == "small":  # subnormal and zero elements (the lowest codes of each sign)
        low = codes[(codes & (SIGN_BITS[fmt] - 1)) < 4]
        a = np.where(rng.random((m, k)) < 0.5, rng.choice(low, (m, k)), a)
        b = np.where(rng.random((k, n)) < 0.5, rng.choice(low, (k, n)), b)
    if kind == "cancel":  # pairs a_2t b_2t = -a_2t+1 b_2t+1: exact cancellation, zero totals
        a[:, 1::2] = a[:, 0:k - k % 2:2]
        b[1::2, :] = b[0:k - k % 2:2, :] ^ SIGN_BITS[fmt]
    special = draw(st.booleans()) and SPECIAL_CODES[fmt]
    if special:  # a few NaN / Inf elements, scattered
        for _ in range(draw(st.integers(1, 3))):
            target = a if draw(st.booleans()) else b
            i, j = rng.integers(target.shape[0]), rng.integers(target.shape[1])
            target[i, j] = rng.choice(SPECIAL_CODES[fmt])
    if str(model.scale_format) == "e8m0":
        spread = draw(st.sampled_from([(126, 129), (100, 154), (0, 254)]))
        a_scales = rng.integers(spread[0], spread[1] + 1, (m, blocks))
        b_scales = rng.integers(spread[0], spread[1] + 1, (blocks, n))
        extremes = np.array([0, 1, 253, 254])
    else:  # ue4m3: codes 0 (zero scale) to 0x7E, sign bits set on some (ignored)
        spread = draw(st.sampled_from([(0x30, 0x48), (0x00, 0x7E)]))
        a_scales = rng.integers(spread[0], spread[1] + 1, (m, blocks)) | (rng.integers(0, 2, (m, blocks)) << 7)
        b_scales = rng.integers(spread[0], spread[1] + 1, (blocks, n))
        extremes = np.array([0x00, 0x01, 0x7E, 0xFE])
    if draw(st.booleans()):  # scale extremes mixed in, each its own
        for scales in (a_scales, b_scales):
            chosen = rng.random(scales.shape) < draw(st.sampled_from([0.2, 0.6]))
            scales[chosen] = rng.choice(extremes, scales.shape)[chosen]
    if special and draw(st.booleans()):  # one NaN scale
        a_scales[rng.integers(m), rng.integers(blocks)] = 0xFF if str(model.scale_format) == "e8m0" else 0x7F
    C = None
    c_kind = draw(st.sampled_from(["none", "normal", "wide", "special"]))
    if c_kind != "none":
        C = rng.standard_normal((m, n)).astype(np.float32)
        if c_kind == "wide":  # c far above and far below the products, subnormal, zeros of both signs
            C = (C * np.exp2(rng.integers(-149, 127, (m, n)).astype(np.float32))).astype(np.float32)
            C[rng.random((m, n)) < 0.2] = rng.choice(np.float32([0.0, -0.0, 2.0 ** -149, -2.0 ** -140]))
        if c_kind == "special":
            C.flat[rng.integers(m * n)] = rng.choice(np.float32([np.nan, np.inf, -np.inf]))
    tensor = (None, None)
    if model.scale_format == fl.E4M3FN:
        tensor = tuple(int(np.array([value], np.float32).view(np.uint32)[0]) for value in
                       draw(st.sampled_from([(1.0, 1.0), (0.5, 3.0), (2.0 ** -20, 7.5e5)])))
    qa, qb = operands(name, a, a_scales, b, b_scales, tensor)
    return qa, qb, C, model


# The fast path's copies: "native" (the CPU's best: AVX-512 here when it has it) and "avx2".
SIMD_COPIES = ["native", "avx2"]


@contextlib.contextmanager
def mma_simd(value):
    """FMTLAB_MMA_SIMD=value for the calls inside (the C core reads it at every matmul)."""
    before = os.environ.get("FMTLAB_MMA_SIMD")
    os.environ["FMTLAB_MMA_SIMD"] = value
    try:
        yield
    finally:
        if before is None:
            del os.environ["FMTLAB_MMA_SIMD"]
        else:
            os.environ["FMTLAB_MMA_SIMD"] = before


def test_the_avx2_copy_is_selected():
    """FMTLAB_MMA_SIMD=avx2 reaches the C core from inside this process (so the differential
    tests below do run the AVX2 copy on a CPU with AVX2), and sse2 goes below it."""
    import ctypes
    from fmtlab import _native
    level = ctypes.CDLL(_native.__file__).fl_mma_simd_level  # exported, outside the cffi cdef
    with mma_simd("native"):
        best = level()
    with mma_simd("avx2"):
        assert level() == min(best, 1)
    with mma_simd("sse2"):
        assert level() == 0


@pytest.mark.parametrize("simd", SIMD_COPIES)
@pytest.mark.parametrize("name", list(PRESETS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_fast_path_equals_the_definition(name, simd, data):
    """Fast path (this SIMD copy) = the C definition = the numpy path, bit for bit."""
    qa, qb, C, model = data.draw(fast_problems(name))
    with mma_simd(simd):
        fast = block_scaled_matmul(qa, qb, C, model)
    assert_same_bits(fast, block_scaled_matmul(qa, qb, C, model, implementation="c_reference"))
    assert_same_bits(fast, block_scaled_matmul(qa, qb, C, model, implementation="numpy"))


@pytest.mark.parametrize("simd", SIMD_COPIES)
@pytest.mark.parametrize("name", list(PRESETS))
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_fast_path_equals_the_exact_reference(name, simd, data):
    """Fast path = the exact rational reference (Fractions), on draws with up to 5 x 18 outputs
    (two row groups' worth of rows and a partial strip beyond the first)."""
    qa, qb, C, model = data.draw(fast_problems(name, max_m=5, max_n=18))
    with mma_simd(simd):
        fast = fl.matmul(qa, qb, C, model=model)
    assert_same_bits(fast, reference_matmul(qa, qb, C, model))


def _large(name, m=40, k=300, n=50, seed=5):
    """Operands above the kernel's threshold for threads, with K a partial block and exponent
    spreads across rows; a NaN element and an Inf in C for good measure."""
    rng = np.random.default_rng(seed)
    A = (rng.standard_normal((m, k)) * np.exp2(rng.integers(-30, 30, (m, 1)))).astype(np.float32)
    B = (rng.standard_normal((k, n)) * np.exp2(rng.integers(-10, 10, (1, n)))).astype(np.float32)
    C = rng.standard_normal((m, n)).astype(np.float32)
    C[3, 7] = np.inf
    A[5, 17] = np.nan
    return fl.encode(A, fl.format(name)), fl.encode(B, fl.format(name + ":axis=0")), C


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("simd", SIMD_COPIES)
def test_thread_count_does_not_change_bits(name, simd):
    model = PRESETS[name]
    qa, qb, C = _large(name)
    before = fl.get_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            fl.set_threads(threads)
            with mma_simd(simd):
                results.append(fl.matmul(qa, qb, C, model=model))
    finally:
        fl.set_threads(before)
    for result in results[1:]:
        assert np.array_equal(results[0].view(np.uint32), result.view(np.uint32))
    assert_same_bits(results[0], block_scaled_matmul(qa, qb, C, model, implementation="c_reference"))


_DIGEST_SCRIPT = """
import hashlib, sys
import numpy as np
sys.path.insert(0, {tests!r})
import fmtlab as fl
from test_mma_block_scaled_fast import PRESETS, _large
digests = []
for name in PRESETS:
    qa, qb, C = _large(name)
    digests.append(hashlib.sha256(fl.matmul(qa, qb, C, model=PRESETS[name]).tobytes()).hexdigest())
print(" ".join(digests))
"""


def test_every_simd_copy_gives_the_same_bits():
    """FMTLAB_MMA_SIMD=sse2 and FMTLAB_SIMD=portable run the definition, FMTLAB_MMA_SIMD=avx2 and
    FMTLAB_SIMD=avx2 the AVX2 copy of the fast path; the CPU's best (native: AVX-512 where it has
    it) must give the same bits, and so must this process."""
    tests = os.path.dirname(os.path.abspath(__file__))
    outputs = []
    for variable, value in (("FMTLAB_MMA_SIMD", "sse2"), ("FMTLAB_MMA_SIMD", "avx2"), ("FMTLAB_MMA_SIMD", "native"),
                            ("FMTLAB_SIMD", "portable"), ("FMTLAB_SIMD", "avx2")):
        result = subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT.format(tests=tests)], capture_output=True,
                                text=True, env=dict(os.environ, **{variable: value}), timeout=300)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.split())
    assert len(outputs[0]) == len(PRESETS) and all(output == outputs[0] for output in outputs)
    here = [hashlib.sha256(fl.matmul(*_large(name)[:2], _large(name)[2], model=PRESETS[name]).tobytes()).hexdigest()
            for name in PRESETS]
    assert outputs[2] == here
