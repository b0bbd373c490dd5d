"""Properties of the MMA models that hold whatever the data: determinism, special cases, worked examples."""
from fractions import Fraction

import numpy as np
import pytest

import fmtlab as fl
import mma_reference as reference


def _random(shape, fmt, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return fl.quantize((rng.standard_normal(shape) * scale).astype(np.float32), fmt)


def _bits(x):
    return np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)


@pytest.mark.parametrize("name", ["h100-fp16-fp32", "h100-e4m3-fp32", "a100-bf16-fp32", "b200-e4m3-fp32",
                                  "v100-fp16-fp16", "fp32_pairwise", "exact-fp16-fp32", "h100-e4m3fn-fp16",
                                  "b200-e5m2-fp16"])
def test_results_do_not_depend_on_threads_or_tiling(name):
    model = fl.mma_model(name)
    a = _random((37, 70), model.a_format, 1)
    b = _random((70, 45), model.b_format, 2)
    c = _random((37, 45), fl.FP32, 3)
    a[5, 7] = np.nan if model.a_format.has_nan else 0.0  # one row and one column on the general path
    b[3, 40] = np.inf if model.b_format.has_inf else b[3, 40]
    results = []
    try:
        for threads in (1, 2, 3):
            fl.set_threads(threads)
            results.append(fl.matmul(a, b, c, model=model))
    finally:
        fl.set_threads(None)
    assert all(np.array_equal(_bits(results[0]), _bits(other)) for other in results[1:])
    # a sub-matrix computed on its own (other tiles and strips) gives the same bits
    part = fl.matmul(a[3:20], b[:, 17:41], c[3:20, 17:41], model=model)
    assert np.array_equal(_bits(part), _bits(results[0][3:20, 17:41]))


def test_block_of_one_with_exact_sum_is_sequential_fma():
    # block = 1 and no cut: each step is c <- fl32(a_k b_k + c), a float32 fused multiply-add.
    fma = fl.mma_model("fp32_fma")
    a = _random((3, 40), fl.FP32, 4, scale=8.0)
    b = _random((40, 5), fl.FP32, 5)
    c = _random((3, 5), fl.FP32, 6)
    expected = np.empty((3, 5), np.float32)
    for i in range(3):
        for j in range(5):
            value = float(c[i, j])
            for k in range(40):  # one rounding per step, in exact rationals
                value = reference.round_to(Fraction(float(a[i, k])) * Fraction(float(b[k, j])) + Fraction(value),
                                           fl.FP32, "nearest_even")
            expected[i, j] = value
    assert np.array_equal(_bits(fl.matmul(a, b, c, model=fma)), _bits(expected))


def test_block_of_one_with_a_wide_cut_equals_fma():
    # F = 200 keeps every bit of fp16 products and float32 c (the wide-accumulator path),
    # so it must agree with the fmaf path of fp32_fma everywhere.
    wide = fl.MMAModel(fl.FP16, block=1, frac_bits=200, out_format=fl.FP32, out_rounding="nearest_even")
    a = _random((8, 64), fl.FP16, 7, scale=100.0)
    b = _random((64, 8), fl.FP16, 8, scale=0.01)
    c = _random((8, 8), fl.FP32, 9)
    assert np.array_equal(_bits(fl.matmul(a, b, c, model=wide)),
                          _bits(fl.matmul(a, b, c, model=fl.mma_model("fp32_fma", "fp16"))))


@pytest.mark.parametrize("out", ["fp32", "fp16"])
def test_exact_is_the_correctly_rounded_dot_product(out):
    model = fl.mma_model("exact", "fp32", out=out)
    rng = np.random.default_rng(10)
    a = (rng.standard_normal((4, 300)) * 2.0 ** rng.integers(-30, 30, (4, 300))).astype(np.float32)
    b = (rng.standard_normal((300, 3)) * 2.0 ** rng.integers(-30, 30, (300, 3))).astype(np.float32)
    b[:150] = -b[150:]  # heavy cancellation
    d = fl.matmul(a, b, model=model)
    fmt = fl.FP32 if out == "fp32" else fl.FP16
    for i in range(4):
        for j in range(3):
            total = sum(Fraction(float(x)) * Fraction(float(y)) for x, y in zip(a[i], b[:, j]))
            assert d[i, j] == reference.round_to(total, fmt, "nearest_even")


def test_worked_example_small_terms_and_non_monotonicity():
    # docs/tensor-cores.md, "A worked example".
    ones = np.array([[1.0, 2.0 ** -12, 2.0 ** -12, 2.0 ** -12]], np.float32)
    column = np.array([[1.0], [2.0 ** -12], [2.0 ** -12], [2.0 ** -12]], np.float32)
    above_one = {name: (float(fl.matmul(ones, column, model=name)[0, 0]) - 1) / 2.0 ** -24
                 for name in ("v100-fp16-fp32", "a100-fp16-fp32", "h100-fp16-fp32", "exact-fp16-fp32")}
    assert above_one == {"v100-fp16-fp32": 0, "a100-fp16-fp32": 2, "h100-fp16-fp32": 2, "exact-fp16-fp32": 4}
    a = np.full((1, 4), 1.5 * 2.0 ** -12, np.float32)
    b = np.full((4, 1), 2.0 ** -11, np.float32)
    below, at_two = np.float32(2 - 2.0 ** -23), np.float32(2.0)
    v100, h100 = fl.mma_model("v100", "fp16"), fl.mma_model("h100", "fp16")
    # V100: raising c from 2 - 2^-23 to 2 raises M, and the four products are cut to nothing
    assert fl.matmul(a, b, below, model=v100)[0, 0] == 2 + 2.0 ** -22
    assert fl.matmul(a, b, at_two, model=v100)[0, 0] == 2.0
    assert fl.matmul(a, b, below, model=h100)[0, 0] == 2 + 2.0 ** -21
    assert fl.matmul(a, b, at_two, model=h100)[0, 0] == 2 + 3 * 2.0 ** -22


def test_promotion_repairs_the_fp8_accumulator():
    # DeepSeek-V3 §3.3.2: without promotion the 13-bit accumulator loses the small products
    # of a long K; promoting to float32 every 128 elements restores about float32 accuracy.
    model = fl.mma_model("h100", "e4m3")
    rng = np.random.default_rng(11)
    k = 4096
    a = fl.quantize(rng.uniform(0.5, 1.0, (4, k)).astype(np.float32), fl.E4M3FN)
    b = fl.quantize(rng.uniform(0.5, 1.0, (k, 4)).astype(np.float32), fl.E4M3FN)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    plain = fl.matmul(a, b, model=model)
    promoted = fl.matmul(a, b, model=model.replace(promote_every=128))
    error_plain = np.max(np.abs(plain - exact) / exact)
    error_promoted = np.max(np.abs(promoted - exact) / exact)
    assert error_plain > 2.0 ** -6 and error_promoted < 2.0 ** -13
    # promoting once, after all of K, is the plain chain when C = 0
    assert np.array_equal(_bits(fl.matmul(a, b, model=model.replace(promote_every=k))), _bits(plain))


def test_nan_and_inf_rules():
    model = fl.mma_model("h100", "fp16")
    inf, nan = np.float32(np.inf), np.float32(np.nan)
    a = np.array([[inf, 1.0], [inf, 1.0], [inf, 0.0], [nan, 1.0], [1.0, 1.0]], np.float32)
    b = np.array([[1.0, 0.0, -1.0], [1.0, 1.0, 1.0]], np.float32)
    d = fl.matmul(a, b, model=model)
    assert d[0, 0] == inf and np.isnan(d[0, 1]) and d[0, 2] == -inf  # Inf * 0 is NaN
    assert np.isnan(d[3]).all()
    c = np.array([[0.0, 0.0, 0.0]] * 4 + [[-inf, inf, nan]], np.float32)
    d = fl.matmul(a, b, c, model=model)
    assert d[4, 0] == -inf and d[4, 1] == inf and np.isnan(d[4, 2])
    assert (_bits(d)[np.isnan(d)] == 0x7FFFFFFF).all()  # the canonical NaN
    # Inf - Inf inside one block is NaN
    assert np.isnan(fl.matmul(np.array([[inf, inf]], np.float32), np.array([[1.0], [-1.0]], np.float32),
                              model=model)[0, 0])


def test_overflow_is_inf_even_toward_zero_and_subnormals_are_produced():
    model = fl.mma_model("h100", "bf16")
    big = np.float32(2.0 ** 127)
    assert fl.matmul(np.array([[big, big]], np.float32), np.array([[1.0], [1.0]], np.float32),
                     model=model)[0, 0] == np.inf
    tiny = np.array([[2.0 ** -70]], np.float32)
    assert fl.matmul(tiny, tiny, model=model)[0, 0] == 2.0 ** -140  # a float32 subnormal, kept
    # an exponent floor above the terms cuts them: M = -120, quantum 2^(-120 - 10)
    floored = fl.MMAModel(fl.BF16, block=4, frac_bits=10, exp_floor=-120)
    assert fl.matmul(tiny, tiny, model=floored)[0, 0] == 0.0
    assert fl.matmul(tiny, tiny, model=floored.replace(exp_floor=None))[0, 0] == 2.0 ** -140


def test_results_do_not_depend_on_the_callers_flush_to_zero_setting():
    # torch.set_flush_denormal(True) sets FTZ/DAZ for the calling thread; fmtlab must not be
    # affected (subnormal float32 values of c and of the results must survive).
    torch = pytest.importorskip("torch")
    model = fl.mma_model("h100", "fp16")
    a = np.array([[0.0, 1.0], [2.0 ** -14, 2.0 ** -24]], np.float32)
    b = np.array([[1.0, 0.0], [0.0, 0.0]], np.float32)
    c = np.array([[2.0 ** -140, -3 * 2.0 ** -149], [2.0 ** -130, 0.0]], np.float32)
    expected = fl.matmul(a, b, c, model=model)
    assert expected[0, 0] == 2.0 ** -140 and expected[0, 1] == -3 * 2.0 ** -149  # float32 subnormals
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush denormals")
    try:
        for threads in (1, 2):
            fl.set_threads(threads)
            assert np.array_equal(_bits(fl.matmul(a, b, c, model=model)), _bits(expected))
    finally:
        torch.set_flush_denormal(False)
        fl.set_threads(None)
