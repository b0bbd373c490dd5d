"""Blackwell block-scaled MMA (fl.mma_model("b200", "mxfp8_e4m3" | ... | "nvfp4")) against the exact
rational reference (tests/mma_reference.py), bit for bit, plus the API checks and worked examples.

The operands are built straight from codes (fl.ScaledCodes), so every element code (NaN, Inf,
subnormals) and every scale code (E8M0 0x00 = 2^-127, 0xFE = 2^127, 0xFF = NaN; UE4M3 zero,
subnormal and sign-bit codes) comes up; the reference decodes them with ml_dtypes, not fmtlab.
"""
import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fmtlab as fl
from fmtlab.mma import mma_block_scaled_models
import mma_reference as reference

PRESETS = {model.name.split("-")[1]: model for model in mma_block_scaled_models() if model.name.startswith("b200")}
ELEMENT_DTYPES = {"e4m3fn": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2,
                  "e2m3fn": ml_dtypes.float6_e2m3fn, "e2m1fn": ml_dtypes.float4_e2m1fn}
CODE_COUNTS = {"e4m3fn": 256, "e5m2": 256, "e2m3fn": 64, "e2m1fn": 16}


def element_values(codes, fmt):
    return np.asarray(codes, np.uint8).view(ELEMENT_DTYPES[str(fmt)]).astype(np.float64)


def scale_values(codes, scale_format):
    codes = np.asarray(codes, np.int64)
    if str(scale_format) == "e8m0":
        return np.where(codes == 255, np.nan, np.ldexp(1.0, (codes - 127).astype(np.int32)))
    return (codes & 0x7F).astype(np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float64)  # ue4m3


def operands(name, a_codes, a_scales, b_codes, b_scales, tensor_scales=(None, None)):
    sf = fl.format(name)
    return (fl.ScaledCodes(np.asarray(a_codes, np.uint8), np.asarray(a_scales, np.uint8), tensor_scales[0], sf),
            fl.ScaledCodes(np.asarray(b_codes, np.uint8), np.asarray(b_scales, np.uint8), tensor_scales[1],
                           fl.format(name + ":axis=0")))


def reference_matmul(qa, qb, C, model):
    a = element_values(qa.codes, model.a_format)
    b = element_values(qb.codes, model.a_format)
    k = a.shape[1]
    blocks = np.arange(k) // model.scale_block
    sa = scale_values(qa.scales, model.scale_format)[:, blocks]
    sb = scale_values(qb.scales, model.scale_format)[blocks, :]
    tensor = None
    if qa.format.tensor_scale is not None:
        tensor = tuple(float(np.array([t], np.uint32).view(np.float32)[0]) for t in (qa.tensor_scale, qb.tensor_scale))
    out = np.empty((a.shape[0], b.shape[1]), np.float32)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            c = 0.0 if C is None else float(C[i, j])
            out[i, j] = reference.block_scaled_dot(a[i].tolist(), b[:, j].tolist(), sa[i].tolist(),
                                                   sb[:, j].tolist(), c, model, tensor)
    return out


def assert_same_bits(actual, expected):
    actual, expected = np.asarray(actual, np.float32), np.asarray(expected, np.float32)
    assert actual.shape == expected.shape
    nan = np.isnan(expected)
    assert np.array_equal(np.isnan(actual), nan), f"NaN positions differ:\n{actual}\n{expected}"
    assert np.all(actual.view(np.uint32)[nan] == 0x7FFFFFFF)
    assert np.array_equal(actual.view(np.uint32)[~nan], expected.view(np.uint32)[~nan]), f"\n{actual}\n{expected}"


@st.composite
def problems(draw, name, specials):
    model = PRESETS[name]
    m, n = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    k = draw(st.integers(1, 2 * model.block + 7))
    count = CODE_COUNTS[str(model.a_format)]
    elements = st.integers(0, count - 1)
    if not specials and str(model.a_format) == "e4m3fn":
        elements = elements.filter(lambda code: code & 0x7F != 0x7F)
    if not specials and str(model.a_format) == "e5m2":
        elements = elements.filter(lambda code: code & 0x7F < 0x7C)
    blocks = -(-k // model.scale_block)
    if str(model.scale_format) == "e8m0":
        near = st.integers(112, 142)  # scales close together, so the terms overlap ...
        scales = st.one_of(near, st.integers(0, 255 if specials else 254), st.sampled_from([0, 1, 253, 254]))
    else:
        scales = st.one_of(st.integers(0x30, 0x48), st.integers(0, 255 if specials else 254).filter(
            lambda code: specials or code & 0x7F != 0x7F))
    a_codes = draw(st.lists(elements, min_size=m * k, max_size=m * k))
    b_codes = draw(st.lists(elements, min_size=k * n, max_size=k * n))
    a_scales = draw(st.lists(scales, min_size=m * blocks, max_size=m * blocks))
    b_scales = draw(st.lists(scales, min_size=blocks * n, max_size=blocks * n))
    c_values = st.one_of(st.floats(width=32, allow_nan=specials, allow_infinity=specials),
                         st.sampled_from([0.0, -0.0, 1.0, -2.0 ** -140, 2.0 ** 100]))
    C = draw(st.none() | st.lists(c_values, min_size=m * n, max_size=m * n))
    tensor = (None, None)
    if model.scale_format == fl.E4M3FN:
        tensor_value = st.sampled_from([1.0, 0.5, 3.0, 2.0 ** -20, 1.0e-3, 7.5e5])
        tensor = tuple(int(np.array([draw(tensor_value)], np.float32).view(np.uint32)[0]) for _ in range(2))
    qa, qb = operands(name, np.reshape(a_codes, (m, k)), np.reshape(a_scales, (m, blocks)),
                      np.reshape(b_codes, (k, n)), np.reshape(b_scales, (blocks, n)), tensor)
    return qa, qb, None if C is None else np.reshape(np.asarray(C, np.float32), (m, n)), model


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("specials", [False, True])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_matches_reference(name, specials, data):
    qa, qb, C, model = data.draw(problems(name, specials))
    assert_same_bits(fl.matmul(qa, qb, C, model=model), reference_matmul(qa, qb, C, model))


@pytest.mark.parametrize("name", list(PRESETS))
def test_encoded_random_matrices(name):
    """fl.encode'd operands (K not a multiple of the block) against the reference, and close to
    the float64 product of the decoded values."""
    rng = np.random.default_rng(7)
    A = (rng.standard_normal((5, 150)) * np.exp2(rng.integers(-8, 8, (5, 1)))).astype(np.float32)
    B = rng.standard_normal((150, 4)).astype(np.float32)
    C = rng.standard_normal((5, 4)).astype(np.float32)
    model = fl.mma_model("b200", name)
    qa, qb = fl.encode(A, fl.format(name)), fl.encode(B, fl.format(name + ":axis=0"))
    D = fl.matmul(qa, qb, C, model=model)
    assert_same_bits(D, reference_matmul(qa, qb, C, model))
    exact = fl.decode(qa) @ fl.decode(qb) + C
    assert np.allclose(D, exact, rtol=1e-5, atol=1e-5 * np.abs(exact).max())


# ---- worked examples -------------------------------------------------------------------------------
def e8m0(exponent):
    return exponent + 127


def e4m3_code(value):
    return int(np.array([value], ml_dtypes.float8_e4m3fn).view(np.uint8)[0])


def test_mxf8f6f4_scales_enter_the_alignment_exponent():
    """MMA-Sim arithmetic.py fused_dot_add: a product's exponent is e_a + e_b + E(S_a) + E(S_b), the
    terms cut 25 bits (n_accum_fractional_bits, tcgen05 k = 32) below the largest.  1 * 1 with
    scales 2^20 * 2^0 and c = -2^-6: c is below 2^(20 - 25) and is dropped, D = 2^20 (the exact
    sum rounded toward zero would be 2^20 - 2^-4)."""
    model = fl.mma_model("b200", "mxfp8_e4m3")
    one = e4m3_code(1.0)
    qa, qb = operands("mxfp8_e4m3", [[one]], [[e8m0(20)]], [[one]], [[e8m0(0)]])
    assert fl.matmul(qa, qb, np.float32([[-2.0 ** -6]]), model=model)[0, 0] == 2.0 ** 20
    # without the scale, the same c is 2^-6 below a product of exponent 0: kept (2^-6 >= 2^-25)
    qa, qb = operands("mxfp8_e4m3", [[one]], [[e8m0(0)]], [[one]], [[e8m0(0)]])
    assert fl.matmul(qa, qb, np.float32([[-2.0 ** -6]]), model=model)[0, 0] == np.float32(1 - 2.0 ** -6)
    # 25 bits, not float32's 23: 1 - 2^-25 is kept by the cut and then rounded toward zero
    assert fl.matmul(qa, qb, np.float32([[-2.0 ** -25]]), model=model)[0, 0] == np.float32(1 - 2.0 ** -24)
    assert fl.matmul(qa, qb, np.float32([[-2.0 ** -26]]), model=model)[0, 0] == 1.0


def test_mxf4_groups_align_by_scale_exponents_only():
    """MMA-Sim arithmetic.py nv_fused_dot_add_with_block_scale: each 16-element sum is exact and its
    alignment exponent is E(S_a) + E(S_b) alone; 35 fraction bits (k = 64).  Groups 6 * 6 = 36 and
    -36 (scales 1) and c = 2^-34: M = 0, so c survives (a product-exponent alignment, M = 5,
    would drop it); c = 2^-36 is below 2^(0 - 35) and is dropped."""
    model = fl.mma_model("b200", "mxfp4")
    six, zero = 0b0111, 0
    a = [[six] + [zero] * 15 + [six] + [zero] * 15]
    b = [[six]] + [[zero]] * 15 + [[0b1111]] + [[zero]] * 15   # -6 at k = 16
    qa, qb = operands("mxfp4", a, [[e8m0(0)]], b, [[e8m0(0)]])
    assert fl.matmul(qa, qb, np.float32([[2.0 ** -34]]), model=model)[0, 0] == 2.0 ** -34
    assert fl.matmul(qa, qb, np.float32([[2.0 ** -36]]), model=model)[0, 0] == 0.0


def test_nan_scale_gives_nan_even_for_zero_elements():
    """E8M0 0xFF is NaN (OCP MX v1.0 §5.4, PTX ue8m0); MMA-Sim multiplies the scales into the
    products (and checks isnan on the scales for kind::mxf4), so even zero elements give NaN."""
    for name in ("mxfp8_e4m3", "mxfp4"):
        qa, qb = operands(name, [[0, 0]], [[255]], [[0], [0]], [[127]])
        d = fl.matmul(qa, qb, np.float32([[1.0]]), model=fl.mma_model("b200", name))
        assert d.view(np.uint32)[0, 0] == 0x7FFFFFFF


def test_ue4m3_sign_bit_ignored_and_zero_scale():
    """PTX's ue4m3 scale is unsigned; MMA-Sim takes abs() of it: code 0xB8 (-1.0 as e4m3fn) scales
    by 1.0.  A zero scale zeroes its block."""
    model = fl.mma_model("b200", "nvfp4")
    one = 0b0010
    unit = int(np.array([1.0], np.float32).view(np.uint32)[0])
    for code, expected in ((e4m3_code(1.0), 1.0), (0xB8, 1.0), (e4m3_code(2.0), 2.0), (0, 0.0)):
        qa, qb = operands("nvfp4", [[one]], [[code]], [[one]], [[e4m3_code(1.0)]], (unit, unit))
        assert fl.matmul(qa, qb, model=model)[0, 0] == expected


def test_e8m0_extremes():
    """2^127 * 2^127 * 448 * 448 overflows float32 to Inf; -1 * 1 * 2^-127 * 2^-127 is below
    float32's subnormals and rounds toward zero to -0 (a nonzero sum keeps its sign)."""
    model = fl.mma_model("b200", "mxfp8_e4m3")
    big, one = e4m3_code(448.0), e4m3_code(1.0)
    qa, qb = operands("mxfp8_e4m3", [[big]], [[254]], [[big]], [[254]])
    assert fl.matmul(qa, qb, model=model)[0, 0] == np.inf
    qa, qb = operands("mxfp8_e4m3", [[e4m3_code(-1.0)]], [[0]], [[one]], [[0]])
    d = fl.matmul(qa, qb, model=model)[0, 0]
    assert d == 0 and math.copysign(1, d) < 0  # the tiny negative product rounds to -0


def test_zero_products_do_not_set_the_alignment_exponent():
    """Where fmtlab departs from MMA-Sim (docs §9): zero elements with scales 2^127 do not raise M,
    so c = 2^100 survives (MMA-Sim's exponent -126 + 8 + 254 = 136 for the zero product would cut
    it to 0).  For the FP4 kinds, an infinite c gives Inf (MMA-Sim fails on it)."""
    model = fl.mma_model("b200", "mxfp8_e4m3")
    qa, qb = operands("mxfp8_e4m3", [[0]], [[254]], [[e4m3_code(448.0)]], [[254]])
    assert fl.matmul(qa, qb, np.float32([[2.0 ** 100]]), model=model)[0, 0] == 2.0 ** 100
    qa, qb = operands("mxfp4", [[0b0010]], [[127]], [[0b0010]], [[127]])
    assert fl.matmul(qa, qb, np.float32([[-np.inf]]), model=fl.mma_model("b200", "mxfp4"))[0, 0] == -np.inf


@pytest.mark.parametrize("name", list(PRESETS))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_c_kernel_matches_numpy_path(name, data):
    """The C kernel (csrc/mma_block_scaled.c) and the numpy path give the same bits."""
    from fmtlab.mma_block_scaled import block_scaled_matmul
    qa, qb, C, model = data.draw(problems(name, data.draw(st.booleans())))
    c_kernel = block_scaled_matmul(qa, qb, C, model)
    numpy_path = block_scaled_matmul(qa, qb, C, model, implementation="numpy")
    assert np.array_equal(c_kernel.view(np.uint32), numpy_path.view(np.uint32))


@pytest.mark.parametrize("name", ["mxfp8_e4m3", "nvfp4"])
def test_threads_do_not_change_bits(name):
    """Above the parallel threshold (m n K >= 65536) one and two threads give the same bits,
    equal to the numpy path's."""
    from fmtlab.mma_block_scaled import block_scaled_matmul
    rng = np.random.default_rng(3)
    A = (rng.standard_normal((48, 200)) * np.exp2(rng.integers(-20, 20, (48, 200)))).astype(np.float32)
    B = rng.standard_normal((200, 40)).astype(np.float32)
    model = fl.mma_model("b200", name)
    qa, qb = fl.encode(A, fl.format(name)), fl.encode(B, fl.format(name + ":axis=0"))
    before = fl.get_threads()
    try:
        fl.set_threads(1)
        one = fl.matmul(qa, qb, model=model)
        fl.set_threads(2)
        two = fl.matmul(qa, qb, model=model)
    finally:
        fl.set_threads(before)
    assert np.array_equal(one.view(np.uint32), two.view(np.uint32))
    assert np.array_equal(one.view(np.uint32), block_scaled_matmul(qa, qb, None, model, implementation="numpy")
                          .view(np.uint32))


def test_negative_zero_rule():
    model = fl.mma_model("b200", "mxfp8_e4m3")
    qa, qb = operands("mxfp8_e4m3", [[0x80]], [[127]], [[0x00]], [[127]])   # -0 * +0 = -0
    assert math.copysign(1, fl.matmul(qa, qb, np.float32([[-0.0]]), model=model)[0, 0]) < 0
    assert math.copysign(1, fl.matmul(qa, qb, np.float32([[0.0]]), model=model)[0, 0]) > 0


# ---- API ---------------------------------------------------------------------------------------------
def test_presets():
    m = fl.mma_model("b200", "mxfp8_e4m3")
    assert (m.name, m.block, m.frac_bits, m.scale_block, m.group_sum) == ("b200-mxfp8_e4m3-fp32", 32, 25, 32, None)
    n = fl.mma_model("B200", "nvfp4")
    assert (n.block, n.frac_bits, n.scale_block, n.group_sum, n.scale_format) == (64, 35, 16, 16, fl.E4M3FN)
    assert fl.mma_model("b200-mxfp4-fp32") == fl.mma_model("b200", "mxfp4")
    assert sorted(PRESETS) == sorted(["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp4", "nvfp4"])
    assert all(not model.is_block_scaled for model in fl.mma_models())
    with pytest.raises(ValueError, match="out='fp16' is not available"):
        fl.mma_model("b200", "mxfp4", out="fp16")
    with pytest.raises(ValueError, match="input='mxfp8_e4m3' is not available on h100"):
        fl.mma_model("h100", "mxfp8_e4m3")


def test_consumer_blackwell():
    """sm_120 (RTX 5090, RTX PRO 6000): MMA-Sim's 'RTX Blackwell' mma_block_scale has the tcgen05
    arithmetic, so the presets equal b200's apart from the name; no other inputs there."""
    for gpu in ("rtx5090", "rtx_pro_6000"):
        for name in PRESETS:
            model = fl.mma_model(gpu, name)
            assert model == fl.mma_model("b200", name) and model.name == f"{gpu}-{name}-fp32"
        assert fl.mma_model(f"{gpu}-nvfp4-fp32") == fl.mma_model("b200", "nvfp4")
        with pytest.raises(ValueError, match=f"input='fp16' is not available on {gpu}"):
            fl.mma_model(gpu, "fp16")
    assert len(mma_block_scaled_models()) == 15
    with pytest.raises(ValueError, match="rtx5090"):
        fl.mma_model("rtx5000", "nvfp4")


def test_bad_operands():
    model = fl.mma_model("b200", "mxfp8_e4m3")
    rng = np.random.default_rng(1)
    A, B = rng.standard_normal((4, 64)).astype(np.float32), rng.standard_normal((64, 3)).astype(np.float32)
    qa, qb = fl.encode(A, fl.format("mxfp8_e4m3")), fl.encode(B, fl.format("mxfp8_e4m3:axis=0"))
    with pytest.raises(TypeError, match="B must be the ScaledCodes"):
        fl.matmul(qa, B, model=model)
    with pytest.raises(TypeError, match="A must be the ScaledCodes"):
        fl.matmul(A, qb, model=model)
    with pytest.raises(TypeError, match="A is a ScaledCodes"):
        fl.matmul(qa, qb, model=fl.mma_model("b200", "e4m3fn"))
    with pytest.raises(ValueError, match="B=.*blocks must run along K"):
        fl.matmul(qa, fl.encode(B, fl.format("mxfp8_e4m3")), model=model)
    with pytest.raises(ValueError, match="A=.*blocks must run along K"):
        fl.matmul(fl.encode(A, fl.format("mxfp8_e4m3:axis=0")), qb, model=model)
    with pytest.raises(ValueError, match="element e5m2 \\(need e4m3fn\\)"):
        fl.matmul(fl.encode(A, fl.format("mxfp8_e5m2")), qb, model=model)
    with pytest.raises(ValueError, match="block 16 \\(need 32\\)"):
        fl.matmul(fl.encode(A, fl.format("mxfp8_e4m3:block=16")), qb, model=model)
    with pytest.raises(ValueError, match="scale e4m3fn \\(need e8m0\\)"):
        fl.matmul(fl.encode(A, fl.format("mxfp8_e4m3:scale=e4m3fn,rule=amax")), qb, model=model)
    with pytest.raises(ValueError, match="K must agree"):
        fl.matmul(qa, fl.encode(B[:32], fl.format("mxfp8_e4m3:axis=0")), model=model)
    with pytest.raises(ValueError, match="implementation='fortran' is not allowed"):
        from fmtlab.mma_block_scaled import block_scaled_matmul
        block_scaled_matmul(qa, qb, None, model, implementation="fortran")
    with pytest.raises(ValueError, match=r"C.shape=\(3, 4\) does not broadcast to the result's shape \(4, 3\)"):
        fl.matmul(qa, qb, np.zeros((3, 4), np.float32), model=model)
    with pytest.raises(TypeError, match="C has dtype int64"):
        fl.matmul(qa, qb, np.zeros((4, 3), np.int64), model=model)
    row = fl.matmul(qa, qb, np.ones(3, np.float32), model=model)       # C broadcasts
    assert np.array_equal(row, fl.matmul(qa, qb, np.ones((4, 3), np.float32), model=model))
    with pytest.raises(ValueError, match="2-D operands"):
        fl.matmul(fl.encode(A[0], fl.format("mxfp8_e4m3")), qb, model=model)


def test_model_parameter_checks():
    with pytest.raises(ValueError, match="scale_block=16 is not allowed without scale_format"):
        fl.MMAModel(fl.E4M3FN, block=32, frac_bits=25, scale_block=16)
    with pytest.raises(ValueError, match="scale_format=bf16 is not allowed"):
        fl.MMAModel(fl.E4M3FN, block=32, frac_bits=25, scale_format=fl.BF16, scale_block=32)
    with pytest.raises(ValueError, match="kind::mxf8f6f4 takes ue8m0 scales only"):
        fl.MMAModel(fl.E4M3FN, block=32, frac_bits=25, scale_format=fl.E4M3FN, scale_block=16)
    with pytest.raises(ValueError, match="frac_bits=None"):
        fl.MMAModel(fl.E4M3FN, block=32, scale_format="e8m0", scale_block=32)
