"""AMD CDNA matrix-core presets (docs/tensor-cores.md §3, "AMD") against the exact rational reference.

The presets: mi100 (CDNA1: an exact block sum with c, one nearest-even rounding; the
MATLAB-tensor-core project's MI100MC), mi210/mi250/mi250x (CDNA2: float32 products, a pairwise
float32 tree per block, subnormals flushed; MMA-Sim), mi300a/mi300x (CDNA3: products cut to 24
bits, c added late with both rounded down; odd/even grouping for FP8; MMA-Sim and the removed
MI300MC of MATLAB-tensor-core).  Hypothesis checks the C kernel against tests/mma_reference.py on
every code of the input formats (subnormals, huge exponent spreads, cancellation, Inf and NaN) and
on random parameter sets of the new model features; the directed tests are the behaviours the
sources describe, each computed by hand in its comment.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fmtlab as fl
import mma_reference as reference
from test_mma_reference import assert_same_bits, check, matrices

AMD_PRESETS = [model for model in fl.mma_models() if model.name.startswith("mi")]
FNUZ = [fl.E4M3FNUZ, fl.E5M2FNUZ]


def test_the_amd_presets_and_their_parameters():
    names = [model.name for model in AMD_PRESETS]
    assert {"mi100-fp16-fp32", "mi100-bf16-fp32", "mi250x-fp16-fp32", "mi250x-bf16-fp32", "mi300x-fp16-fp32",
            "mi300x-bf16-fp32", "mi300x-e4m3fnuz-fp32", "mi300x-e5m2fnuz-fp32"} <= set(names)
    mi100 = fl.mma_model("mi100", "fp16")
    assert (mi100.block, mi100.frac_bits, mi100.out_rounding, mi100.c_addition) == (4, None, "nearest_even", "fused")
    assert fl.mma_model("MI100", "bf16").block == 2
    mi250x = fl.mma_model("mi250x", "bf16")
    assert (mi250x.summation, mi250x.block, mi250x.flush_inputs, mi250x.flush_outputs) == ("pairwise", 4, True, True)
    mi300x = fl.mma_model("mi300x", "bf16")
    assert (mi300x.block, mi300x.frac_bits, mi300x.c_addition, mi300x.product_grouping) == (8, 24, "late", "none")
    fp8 = fl.mma_model("mi300x", "e4m3fnuz")
    assert (fp8.a_format, fp8.block, fp8.product_grouping) == (fl.E4M3FNUZ, 16, "odd_even")
    assert fl.mma_model("mi300x-e5m2fnuz-fp32") == fl.mma_model("MI300X", "e5m2fnuz")
    assert all(model.out_format == fl.FP32 and model.zero_sign == "ieee" for model in AMD_PRESETS)


def test_amd_preset_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"out='fp16' is not available for mi300x: .* FP32 output only"):
        fl.mma_model("mi300x", "fp16", "fp16")
    with pytest.raises(ValueError, match=r"input='e4m3fnuz' is not available on mi250x; it has fp16, bf16"):
        fl.mma_model("mi250x", "e4m3fnuz")
    with pytest.raises(ValueError, match=r"input='e4m3fn' is not available on mi300x"):
        fl.mma_model("mi300x", "e4m3fn")  # CDNA3 takes the FNUZ variants, not OCP's
    with pytest.raises(ValueError, match="did you mean 'mi300x'"):
        fl.mma_model("mi300", "fp16")


def test_new_parameters_are_checked():
    with pytest.raises(ValueError, match="flush_outputs=True is not allowed with summation='block_fma'"):
        fl.MMAModel("fp16", block=4, flush_outputs=True)
    with pytest.raises(TypeError, match="flush_inputs must be True or False, got 1"):
        fl.MMAModel("fp16", flush_inputs=1)
    with pytest.raises(ValueError, match="product_grouping='odd_even' is not allowed with c_addition='fused'"):
        fl.MMAModel("fp16", block=4, frac_bits=24, product_grouping="odd_even")
    with pytest.raises(ValueError, match=r"c_addition='late' is not allowed with frac_bits=None .*block=None"):
        fl.MMAModel("fp16", c_addition="late")
    with pytest.raises(ValueError, match=r"zero_sign='minus' is not allowed; choose one of ieee, positive"):
        fl.MMAModel("fp16", zero_sign="minus")
    with pytest.raises(ValueError, match=r"product_grouping='pairs' is not allowed; choose one of none, odd_even"):
        fl.MMAModel("fp16", product_grouping="pairs")


# ---- the C kernel against the rational reference -----------------------------------------------

@settings(max_examples=200)
@given(st.data())
def test_amd_presets_match_the_reference(data):
    model = data.draw(st.sampled_from(AMD_PRESETS))
    check(model, *data.draw(matrices(model, max_k=40)))


@settings(max_examples=100)
@given(st.data())
def test_amd_presets_with_inf_and_nan_match_the_reference(data):
    model = data.draw(st.sampled_from(AMD_PRESETS))
    check(model, *data.draw(matrices(model, specials=True, max_k=20)))


@st.composite
def amd_like_models(draw):
    """Random parameter sets of the new features: late c with or without odd/even grouping,
    pairwise blocks with flushing, flushed inputs and the +0 rule."""
    a_format = draw(st.sampled_from([fl.FP16, fl.BF16, fl.E4M3FN, fl.E5M2, fl.TF32] + FNUZ))
    b_format = draw(st.sampled_from([a_format, fl.FP16, fl.BF16] + FNUZ))
    common = dict(flush_inputs=draw(st.booleans()), zero_sign=draw(st.sampled_from(["ieee", "positive"])))
    if draw(st.booleans()):
        return fl.MMAModel(a_format, b_format, summation="pairwise", out_rounding="nearest_even",
                           block=draw(st.one_of(st.none(), st.integers(1, 9))),
                           flush_outputs=draw(st.booleans()), **common)
    return fl.MMAModel(a_format, b_format, block=draw(st.integers(1, 20)), frac_bits=draw(st.integers(0, 30)),
                       out_format=draw(st.sampled_from([fl.FP32, fl.FP16, fl.BF16])),
                       out_rounding=draw(st.sampled_from(["toward_zero", "nearest_even"])),
                       c_format=draw(st.sampled_from([None, fl.FP32])), c_addition="late",
                       product_grouping=draw(st.sampled_from(["none", "odd_even"])), **common)


@settings(max_examples=250)
@given(st.data())
def test_random_amd_like_models_match_the_reference(data):
    model = data.draw(amd_like_models())
    check(model, *data.draw(matrices(model, specials=data.draw(st.booleans()), max_k=30)))


@settings(max_examples=60)
@given(st.data())
def test_the_zero_sign_rule_for_tensor_core_models(data):
    # zero_sign="positive" on the NVIDIA presets (MMA-Sim's convention): every exact zero is +0.
    preset = data.draw(st.sampled_from([model for model in fl.mma_models() if not model.name.startswith("mi")]))
    model = preset.replace(zero_sign="positive")
    a, b, c = data.draw(matrices(model, max_k=12))
    check(model, a, b, c)
    zeros = np.zeros((1, 3), np.float32)
    assert np.signbit(fl.matmul(-zeros, zeros.T, np.float32(-0.0), model=preset.replace(zero_sign="ieee")))[0, 0]
    assert not np.signbit(fl.matmul(-zeros, zeros.T, np.float32(-0.0), model=model))[0, 0]


def test_long_k_and_wide_outputs_match_the_reference():
    rng = np.random.default_rng(9)
    for model in AMD_PRESETS:
        a = fl.quantize((rng.standard_normal((2, 45)) * 4).astype(np.float32), model.a_format)
        b = fl.quantize(rng.standard_normal((45, 19)).astype(np.float32), model.b_format)
        c = rng.standard_normal((2, 19)).astype(np.float32)
        check(model, a, b, c)


def test_thread_count_does_not_change_a_bit():
    rng = np.random.default_rng(3)
    for model in AMD_PRESETS:
        a = fl.quantize(rng.standard_normal((70, 96)).astype(np.float32), model.a_format)
        b = fl.quantize(rng.standard_normal((96, 40)).astype(np.float32), model.b_format)
        previous = fl.get_threads() if hasattr(fl, "get_threads") else None
        try:
            fl.set_threads(1)
            one = fl.matmul(a, b, model=model)
            fl.set_threads(2)
            two = fl.matmul(a, b, model=model)
        finally:
            fl.set_threads(previous or 0)
        assert np.array_equal(one.view(np.uint32), two.view(np.uint32)), model.name


# ---- behaviours the sources describe, worked by hand ---------------------------------------------

def _dot(model, a, b, c=0.0):
    a = np.array(a, np.float32)
    b = np.array(b, np.float32)
    result = float(fl.matmul(a[None, :], b[:, None], np.float32(c), model=model)[0, 0])
    expected = float(reference.dot(a.tolist(), b.tolist(), float(np.float32(c)), model))
    assert_same_bits(np.float32(result), np.float32(expected), model)
    return result


def test_cdna2_flushes_subnormal_inputs_and_outputs():
    # MMA-Sim (CDNA2) and MATLAB-tensor-core's MI210MC (in_subnormals = out_subnormals = 0).
    # fp16 2^-24 is subnormal: flushed on CDNA2, kept on CDNA1 and CDNA3.
    tiny = 2.0 ** -24
    assert _dot(fl.mma_model("mi250x", "fp16"), [tiny], [1.0]) == 0.0
    assert _dot(fl.mma_model("mi100", "fp16"), [tiny], [1.0]) == tiny
    assert _dot(fl.mma_model("mi300x", "fp16"), [tiny], [1.0]) == tiny
    # bf16 2^-100 * 2^-30 = 2^-130 is a float32 subnormal: flushed to -0 on CDNA2, and c (+0, as
    # every flushed input) + -0 is +0.
    low = fl.mma_model("mi250x", "bf16")
    result = _dot(low, [-(2.0 ** -100)], [2.0 ** -30], c=-0.0)
    assert result == 0.0 and not np.signbit(result)
    assert _dot(fl.mma_model("mi100", "bf16"), [-(2.0 ** -100)], [2.0 ** -30]) == -(2.0 ** -130)
    # a subnormal C is flushed to +0 too
    assert _dot(low, [0.0], [0.0], c=-(2.0 ** -127)) == 0.0


def test_pairwise_versus_one_rounding_per_block():
    # Products (1, 2^-24, 2^-24, 0): CDNA2's tree ((1 + 2^-24) + (2^-24 + 0)) rounds twice, each a tie
    # to even, and gives 1; CDNA1's exact block (MATLAB MI100MC) and CDNA3's 24-bit alignment keep
    # 1 + 2^-23.
    a = b = [1.0, 2.0 ** -12, 2.0 ** -12, 0.0]
    assert _dot(fl.mma_model("mi250x", "fp16"), a, b) == 1.0
    assert _dot(fl.mma_model("mi100", "fp16"), a, b) == 1.0 + 2.0 ** -23
    assert _dot(fl.mma_model("mi300x", "fp16"), a, b) == 1.0 + 2.0 ** -23
    # MMA-Sim's CDNA1 (the CDNA2 tree without flushing), as docs/tensor-cores.md spells it
    assert _dot(fl.mma_model("mi100", "fp16").replace(summation="pairwise", frac_bits=None), a, b) == 1.0


def test_cdna3_rounds_c_down_asymmetrically():
    # MMA-Sim's "asymmetric rounding on CDNA3": c is rounded down (toward -Inf) to 24 bits below
    # J = max(T, e_c).  1 * 1 + c with c = -2^-40: J = 0, c becomes -2^-24, D = 1 - 2^-24; with
    # c = +2^-40 it becomes 0 and D = 1.  One rounding of the exact sum (mi100) gives 1 both times.
    mi300x = fl.mma_model("mi300x", "fp16")
    assert _dot(mi300x, [1.0], [1.0], c=-(2.0 ** -40)) == 1.0 - 2.0 ** -24
    assert _dot(mi300x, [1.0], [1.0], c=2.0 ** -40) == 1.0
    assert _dot(fl.mma_model("mi100", "fp16"), [1.0], [1.0], c=-(2.0 ** -40)) == 1.0


def test_cdna3_product_sum_loses_its_sticky_bits():
    # c = 1, products 2^-24 and 2^-40: the exact sum 1 + 2^-24 + 2^-40 is above the tie and rounds
    # up to 1 + 2^-23; CDNA3 rounds the product sum down to 31 bits below J = 0 (2^-24 + 2^-40 ->
    # 2^-24), which leaves an exact tie, and nearest-even gives 1.
    a = [2.0 ** -12, 2.0 ** -20]
    b = [2.0 ** -12, 2.0 ** -20]
    assert _dot(fl.mma_model("mi300x", "fp16"), a, b, c=1.0) == 1.0
    assert _dot(fl.mma_model("mi100", "fp16"), a, b, c=1.0) == 1.0 + 2.0 ** -23


def test_cdna3_fp8_odd_even_grouping_depends_on_the_index():
    # e4m3fnuz, block 16.  p0 = 2^7 * 2^7 = 2^14 and a tiny negative product t = -2^-10 * 2^-10 = -2^-20.
    # t at an odd index is summed in its own group, then rounded down to 24 bits below 2^14: -2^-10,
    # and D = 2^14 - 2^-10 (exact in float32).  t at an even index is aligned with p0 and cut toward
    # zero to nothing: D = 2^14.  Without grouping (the fp16 path's rule) the index does not matter.
    fp8 = fl.mma_model("mi300x", "e4m3fnuz")
    a_odd, b_odd = [128.0, -(2.0 ** -10)] + [0.0] * 14, [128.0, 2.0 ** -10] + [0.0] * 14
    a_even, b_even = [128.0, 0.0, -(2.0 ** -10)] + [0.0] * 13, [128.0, 0.0, 2.0 ** -10] + [0.0] * 13
    assert _dot(fp8, a_odd, b_odd) == 2.0 ** 14 - 2.0 ** -10
    assert _dot(fp8, a_even, b_even) == 2.0 ** 14
    ungrouped = fp8.replace(product_grouping="none")
    assert _dot(ungrouped, a_odd, b_odd) == _dot(ungrouped, a_even, b_even) == 2.0 ** 14


def test_cdna3_bf16_products_beyond_float32_are_infinite():
    # A bf16 product of magnitude >= 2^128 counts as an Inf (MMA-Sim; MATLAB's prd_limit), even
    # when a later product would bring the exact sum back into range.
    mi300x = fl.mma_model("mi300x", "bf16")
    assert _dot(mi300x, [2.0 ** 100, 1.0], [2.0 ** 30, 1.0]) == np.inf
    assert np.isnan(_dot(mi300x, [2.0 ** 100, -(2.0 ** 100)], [2.0 ** 30, 2.0 ** 30]))
    assert _dot(fl.mma_model("exact", "bf16"), [2.0 ** 100, -(2.0 ** 100)], [2.0 ** 30, 2.0 ** 30]) == 0.0


def test_cdna3_zero_sign_choice():
    # IEEE (the default): -0 only when every term is -0.  MMA-Sim's simulator returns +0 for every
    # exact zero; zero_sign="positive" gives that.
    mi300x = fl.mma_model("mi300x", "fp16")
    negative = _dot(mi300x, [-0.0, 0.0], [1.0, -1.0], c=-0.0)
    assert negative == 0.0 and np.signbit(negative)
    positive = _dot(mi300x.replace(zero_sign="positive"), [-0.0, 0.0], [1.0, -1.0], c=-0.0)
    assert positive == 0.0 and not np.signbit(positive)
    cancelled = _dot(mi300x, [1.0, 1.0], [1.0, -1.0], c=-0.0)
    assert cancelled == 0.0 and not np.signbit(cancelled)


def test_reference_matches_on_a_zero_k_product():
    for model in AMD_PRESETS:
        a = np.zeros((2, 0), np.float32)
        b = np.zeros((0, 3), np.float32)
        c = np.array([[1.5, -0.0, 2.0], [np.inf, 3.0, -1.0]], np.float32)
        assert_same_bits(fl.matmul(a, b, c, model=model),
                         reference.matmul(a, b, fl.quantize(c, model.c_format), model), model)


def test_cdna3_fp8_drops_a_c_below_2_to_the_j_minus_25():
    # MMA-Sim's CDNA3 FP8 path keeps c only when e_c >= J - 25; a c kept is rounded down to 24 bits
    # below J.  With the product 1 (J = 0): c = -1.5 * 2^-25 is kept and becomes -2^-24, so
    # D = 1 - 2^-24; c = -1.5 * 2^-26 is dropped: D = 1.  The fp16 path has no such rule: both
    # become -2^-24.
    fp8 = fl.mma_model("mi300x", "e4m3fnuz")
    fp16 = fl.mma_model("mi300x", "fp16")
    one = [1.0] + [0.0] * 15
    assert _dot(fp8, one, one, c=-1.5 * 2.0 ** -25) == 1.0 - 2.0 ** -24
    assert _dot(fp8, one, one, c=-1.5 * 2.0 ** -26) == 1.0
    assert _dot(fp16, one[:8], one[:8], c=-1.5 * 2.0 ** -26) == 1.0 - 2.0 ** -24
