"""The C hot loop of scaled formats (csrc/scaled.c) against the numpy implementation, bit for bit.

fmtlab.scaled keeps its numpy implementation (_encode_numpy, _quantize_numpy: numpy around the
element codec) beside the C path (_run_c, which fl.encode / fl.quantize take for every
non-empty array).  tests/test_scaled.py holds the public path to the exact rational reference,
gfloat and torchao; this file holds the C path to the numpy one on everything the C core
decides itself: codes, scale codes, the tensor scale, every count, and the quantized values'
bits (NaN payloads included), for every preset and rounding mode, every block kind, partial
blocks, zero / NaN / Inf blocks, extreme amax, float32 and float64 input, and any thread count.

The formats below are picked to reach each of the C core's element paths: the float32 kernel
on x's bits (float32 input, scales 2^e with |e| <= 127), the float32 kernel on quotients
rounded to odd (float64 input, scales that are not powers of two, scale formats wider than
E8M0), the float64 kernel (elements of more than 21 fraction bits), the stochastic kernel, and
exact_element alone (Tesla and flushing subnormals, no zero, unsigned and P3109 elements).
"""
import re
import pathlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fmtlab as fl
from fmtlab import _c, scaled
from fmtlab.formats import Format

HEADER = (pathlib.Path(__file__).resolve().parents[1] / "csrc" / "fmtlab.h").read_text()
MODES = ("nearest_even", "nearest_away", "toward_zero", "up", "down", "odd", "stochastic")
# a block wider than the kernels' chunk (256) and a tensor wider than a piece (4096 columns)
BIG_BLOCKS = (300, 5000)


def bits(values: np.ndarray) -> np.ndarray:
    """The raw bits of a float array (NaN payloads and signs of zero included; a NaN's sign is
    not: the element codec keeps a NaN's sign (issue 11), and the value of a NaN block is then a
    NaN times a NaN, whose sign depends on the operand order numpy and C happen to use)."""
    values = np.where(np.isnan(values), np.abs(values), values).astype(values.dtype, copy=False)
    return values.view(np.uint32 if values.dtype == np.float32 else np.uint64)


def run_both(x, sf, mode="nearest_even", seed=0, sr_bits=None, sr_rule="truncate"):
    """(C, numpy) results of encode and quantize, each with its stats."""
    request = _c.rounding_request(mode, True, seed, sr_bits, sr_rule)
    c = (scaled._run_c(x, sf, request, True, quantize=False), scaled._run_c(x, sf, request, True, quantize=True))
    n = (scaled._encode_numpy(x, sf, request, True), scaled._quantize_numpy(x, sf, request, True))
    return c, n


def assert_same(x, sf, mode="nearest_even", seed=0, sr_bits=None, sr_rule="truncate"):
    """The C path gives the numpy path's bits: codes, scales, tensor scale, stats, values."""
    ((c_codes, c_stats), (c_values, c_qstats)), ((n_codes, n_stats), (n_values, n_qstats)) = \
        run_both(x, sf, mode, seed, sr_bits, sr_rule)
    where = f"{sf} {mode} sr_bits={sr_bits} sr_rule={sr_rule} {x.dtype} {x.shape}"
    assert c_codes.codes.dtype == n_codes.codes.dtype and c_codes.codes.shape == n_codes.codes.shape, where
    assert c_codes.scales.dtype == n_codes.scales.dtype and c_codes.scales.shape == n_codes.scales.shape, where
    different = np.flatnonzero(c_codes.codes.reshape(-1) != n_codes.codes.reshape(-1))
    assert different.size == 0, (where, different[:5], x.reshape(-1)[different[:5]],
                                 c_codes.codes.reshape(-1)[different[:5]], n_codes.codes.reshape(-1)[different[:5]])
    np.testing.assert_array_equal(c_codes.scales, n_codes.scales, err_msg=where)
    assert c_codes.tensor_scale == n_codes.tensor_scale, where
    assert c_stats == n_stats, (where, c_stats, n_stats)
    assert c_values.dtype == n_values.dtype == x.dtype and c_values.shape == x.shape, where
    different = np.flatnonzero(bits(c_values).reshape(-1) != bits(n_values).reshape(-1))
    assert different.size == 0, (where, different[:5], x.reshape(-1)[different[:5]],
                                 c_values.reshape(-1)[different[:5]], n_values.reshape(-1)[different[:5]])
    assert c_qstats == n_qstats == c_stats, (where, c_qstats, n_qstats)
    # without stats the C kernels skip the counts: the same codes, scales and values
    request = _c.rounding_request(mode, True, seed, sr_bits, sr_rule)
    quiet_codes = scaled._run_c(x, sf, request, False, quantize=False)
    quiet_values = scaled._run_c(x, sf, request, False, quantize=True)
    np.testing.assert_array_equal(quiet_codes.codes, n_codes.codes, err_msg=where)
    np.testing.assert_array_equal(quiet_codes.scales, n_codes.scales, err_msg=where)
    assert quiet_codes.tensor_scale == n_codes.tensor_scale, where
    np.testing.assert_array_equal(bits(quiet_values), bits(n_values), err_msg=where)
    return c_codes, c_stats


def awkward_array(shape, dtype, seed=0):
    """Standard normal values with per-row magnitudes from 2^-140 to 2^120 and, at fixed places,
    zero rows, NaN, +-Inf, float32 subnormals, an all-Inf row and values at float32's extremes."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    rows = x.reshape(-1, shape[-1]) if x.ndim > 1 else x.reshape(1, -1)
    scales = np.exp2(rng.integers(-140, 120, size=(rows.shape[0], 1))).astype(np.float64)
    rows *= np.where(rng.random((rows.shape[0], 1)) < 0.6, 1.0, scales)
    flat = rows.reshape(-1)
    n = flat.size
    if n > 40:
        flat[rng.integers(0, n, 3)] = np.nan
        flat[rng.integers(0, n, 3)] = np.inf
        flat[rng.integers(0, n, 3)] = -np.inf
        flat[rng.integers(0, n, 5)] = 0.0
        flat[rng.integers(0, n, 5)] = -0.0
        flat[rng.integers(0, n, 5)] = rng.choice([1e-45, -1e-45, 1.1e-38, 3.4e38, -3.4e38, 1e-41], 5)
    if rows.shape[0] > 3:
        rows[1] = 0.0
        rows[2] = -0.0
        rows[3] = np.inf
    return np.ascontiguousarray(rows.reshape(shape).astype(dtype))


# ---- every preset, every mode ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", scaled.preset_names())
def test_every_preset_and_mode(name, mode, dtype):
    sf = fl.format(name)
    x = awkward_array((40, 300), dtype)        # partial blocks of 16, 32, 128 and 128x128 tiles
    assert_same(x, sf, mode, seed=11)
    # the same preset with its blocks along the first axis (1-D presets) or in a 3-D array
    if isinstance(sf.block, int):
        assert_same(awkward_array((70, 9), dtype, seed=1), sf.replace(axis=0), mode, seed=12)
    assert_same(awkward_array((3, 33, 20), dtype, seed=2), sf, mode, seed=13)


@pytest.mark.parametrize("sr_rule", _c.SR_RULES)
@pytest.mark.parametrize("sr_bits", [1, 3, 8, 23, 32])
@pytest.mark.parametrize("name", ["mxfp8_e4m3", "mxfp4", "nvfp4", "fp8_block128"])
def test_limited_precision_stochastic_rounding(name, sr_bits, sr_rule):
    for dtype in (np.float32, np.float64):
        assert_same(awkward_array((20, 200), dtype), fl.format(name), "stochastic", seed=5, sr_bits=sr_bits,
                    sr_rule=sr_rule)


# ---- every element path ------------------------------------------------------------------------
ELEMENTS = {
    "e4m3fn": fl.E4M3FN, "e5m2": fl.E5M2, "e2m1fn": fl.E2M1FN, "e3m2fn": fl.E3M2FN, "e2m3fn": fl.E2M3FN,
    "e4m3fnuz (no -0)": fl.format("e4m3fnuz"), "e3m4": fl.format("e3m4"), "bf16": fl.BF16, "fp16": fl.FP16,
    "tf32": fl.format("tf32"),
    "fp32 (float64 kernel)": fl.FP32,
    "tesla subnormals": fl.format("cfloat8_1_4_3", subnormals="tesla"),
    "flushed subnormals": Format(4, 3, 7, True, "finite", "none"),
    "no zero": Format(4, 3, 7, False, "finite", "normal"),
    "unsigned P3109": fl.format("p3109_8p3_unsigned"),
    "signed P3109": fl.format("p3109_8p3"),
    "finite": fl.format("cfloat8_1_4_3"),
    "m = 0": Format(4, 0, 7, True, "fn"),
    "wide exponent": Format(6, 2, 31, True, "ieee"),
}
SCALINGS = {
    "e8m0 floor": dict(scale="e8m0", rule="floor"),
    "e8m0 ceil": dict(scale="e8m0", rule="ceil"),
    "e8m0 even": dict(scale="e8m0", rule="even"),
    "e8m0 rceil": dict(scale="e8m0", rule="rceil"),
    "e8m0 amax": dict(scale="e8m0", rule="amax"),
    "fp32 floor (2^-149..2^127)": dict(scale=fl.FP32, rule="floor"),
    "e4m3fn floor": dict(scale=fl.E4M3FN, rule="floor"),
    "bf16 amax": dict(scale=fl.BF16, rule="amax"),
    "e4m3fn amax + fp32 tensor": dict(scale=fl.E4M3FN, rule="amax", tensor_scale=fl.FP32),
    "fp16 amax + bf16 tensor": dict(scale=fl.FP16, rule="amax", tensor_scale=fl.BF16),
}


def scaled_or_skip(element, **options):
    try:
        return scaled.ScaledFormat(element, **options)
    except ValueError as error:  # the combination does not fit float64 (ScaledFormat says why)
        pytest.skip(str(error))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scaling", list(SCALINGS))
@pytest.mark.parametrize("element", list(ELEMENTS))
def test_every_element_path(element, scaling, dtype):
    sf = scaled_or_skip(ELEMENTS[element], block=16, **SCALINGS[scaling])
    x = awkward_array((24, 100), dtype, seed=3)
    for mode in MODES:
        assert_same(x, sf, mode, seed=7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("block, axis", [(1, -1), (7, -1), (300, -1), (5000, -1), ("channel", -1), ("channel", 0),
                                         ((16, 16), -1), ((1, 64), -1), ((64, 1), -1), ((3, 5), -1), ("tensor", -1),
                                         (32, 0), (4, 1)])
def test_every_block_kind(block, axis, dtype):
    x = awkward_array((2, 50, 130), dtype, seed=4)
    for name in ("mxfp8_e4m3", "nvfp4"):
        preset = fl.format(name)
        no_tensor = {"tensor_scale": None} if block == "tensor" else {}  # the block scale is the tensor's
        sf = preset.replace(block=block, axis=axis, **no_tensor)
        for mode in ("nearest_even", "up", "stochastic"):
            assert_same(x, sf, mode, seed=3)


def test_scalars_single_elements_and_empty_arrays():
    for dtype in (np.float32, np.float64):
        for value in (0.0, -0.0, 1.5, -3e-41, np.nan, -np.inf, 6e30):
            x = np.array(value, dtype)
            assert_same(x, fl.format("fp8_tensor"), "nearest_even")
            assert_same(x.reshape(1, 1), fl.format("mxfp4"), "down")
        assert_same(np.full((1,), 2.0, dtype), fl.format("nvfp4"), "stochastic", seed=1)
    # empty arrays stay on the numpy path (a tensor block of no element still has a scale)
    empty = np.zeros((0, 8), np.float32)
    assert not scaled._c_covers(empty)
    assert fl.encode(empty, "fp8_tensor").scales.shape == ()
    assert fl.encode(empty, "mxfp4").scales.shape == (0, 1)


def test_special_blocks_and_extreme_amax():
    """Whole blocks of zeros, -0, NaN, Inf, one NaN among finite values, amax beyond every scale
    range (both ends), float32 subnormals only, a NaN tensor (NVFP4), an Inf tensor."""
    rows = [np.zeros(32), -np.zeros(32), np.full(32, np.nan), np.full(32, np.inf), np.full(32, -np.inf),
            np.r_[np.nan, np.arange(31.0)], np.r_[np.inf, -np.arange(31.0)], np.full(32, 1e-45),
            np.linspace(-1e-40, 1e-40, 32), np.full(32, 3.4e38), np.linspace(-3.4e38, 3.4e38, 32),
            np.r_[1e-45, np.zeros(31)], np.ldexp(1.0, np.arange(-16, 16)), np.ldexp(1.0, np.arange(100, 132)) * 1.5]
    x = np.array(rows)
    for dtype in (np.float32, np.float64):
        with np.errstate(over="ignore"):  # 1.5 * 2^131 is Inf in float32, as meant
            data = x.astype(dtype)
        for name in scaled.preset_names():
            for mode in MODES:
                assert_same(data, fl.format(name), mode, seed=2)
        finite = data.copy()
        finite[~np.isfinite(finite)] = 1.0
        for name in ("nvfp4", "nvfp4_2d"):
            assert_same(finite, fl.format(name), "nearest_even")        # no NaN: a finite tensor scale
    # float64 input far beyond float32: huge and tiny amax, float64 subnormals
    wide = np.array([[1e300] * 16 + [1e-300] * 16, [5e-324] * 32, [1e-310, -2e-308] * 16, [1e200, 1e-200] * 16])
    for name in scaled.preset_names():
        for mode in MODES:
            assert_same(wide, fl.format(name), mode, seed=4)


def dyadic_rows(rows, columns, seed=0):
    """Multiples of 2^-3 up to +-6 (then times 2^j per row): with a power-of-two scale (and with
    amax 448 * 2^j or 6 * 2^j, an amax scale that is one), many elements are exact ties."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-48, 49, size=(rows, columns)) / 8.0
    x[:, 0] = 6.0
    x[::3, 1] = 448.0
    return x * np.exp2(rng.integers(-20, 20, size=(rows, 1)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", MODES[:-1])
@pytest.mark.parametrize("name", scaled.preset_names())
def test_ties(name, mode, dtype):
    sf = fl.format(name)
    x = dyadic_rows(48, 160).astype(dtype)
    assert_same(x, sf, mode)
    x[:, :] = dyadic_rows(48, 160, seed=1)[0] * 2.0 ** -7   # one tensor-wide binade: the tensor scale is 2^j
    assert_same(x.astype(dtype), sf, mode)


def rule_boundaries(element):
    """Block maxima at each rule's boundaries and one float64 ulp either side: powers of two (floor,
    ceil), 2^k (2 - 2^-(m + 1)) (even's carry), element.max * 2^k (rceil), amax rule quotients
    at scale values and their midpoints."""
    m = element.man_bits
    centres = [1.0, 2.0 - 2.0 ** -(m + 1), element.max, element.max * 1.5, 448.0 * 1.0625, 6.0 * 1.75]
    values = []
    for k in (-130, -40, -3, 0, 5, 60, 126):
        for centre in centres:
            value = centre * 2.0 ** k
            values += [np.nextafter(value, 0), value, np.nextafter(value, np.inf)]
    return np.array(values)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("element", [fl.E4M3FN, fl.E5M2, fl.E2M1FN, fl.E3M2FN, fl.E2M3FN, fl.BF16], ids=str)
def test_scale_rule_boundaries(element, dtype):
    amax = rule_boundaries(element)
    with np.errstate(over="ignore"):
        x = (np.outer(amax, np.linspace(1.0, -0.5, 16))).astype(dtype)  # each row: amax first
    for rule in _c.SCALE_RULE_CODES:  # the rules the C block loop computes ("bias" is per tensor, in Python)
        for scale in ("e8m0", fl.E4M3FN, fl.FP32):
            sf = scaled_or_skip(element, scale=scale, block=16, rule=rule)
            assert_same(x, sf, "nearest_even")
            assert_same(x, sf, "toward_zero")


# ---- random shapes, blocks and values -----------------------------------------------------------
FORMATS = [fl.format(name) for name in scaled.preset_names()] + [
    scaled.ScaledFormat(fl.E5M2, "e8m0", 8, "rceil"), scaled.ScaledFormat(fl.E3M2FN, fl.BF16, 12, "amax"),
    scaled.ScaledFormat(fl.BF16, "e8m0", 4, "even"), scaled.ScaledFormat(fl.E2M1FN, "e8m0", 5, "amax"),
    scaled.ScaledFormat(fl.FP32, "e8m0", 3, "ceil"), scaled.ScaledFormat(fl.format("p3109_8p3_unsigned"), "e8m0", 9),
]


@st.composite
def cases(draw):
    sf = draw(st.sampled_from(FORMATS))
    ndim = draw(st.integers(1 if isinstance(sf.block, int) or sf.block in ("tensor", "channel") else 2, 3))
    shape = tuple(draw(st.lists(st.integers(1, 40), min_size=ndim, max_size=ndim)))
    if np.prod(shape) > 6000:
        shape = shape[:1] + (1,) * (ndim - 1)
    kind = draw(st.sampled_from(["preset", "int", "tile", "tensor", "channel"]))
    if kind == "int":
        sf = sf.replace(block=draw(st.integers(1, 50)), axis=draw(st.integers(-ndim, ndim - 1)))
    elif kind == "tile" and ndim >= 2:
        sf = sf.replace(block=(draw(st.integers(1, 20)), draw(st.integers(1, 20))), axis=-1)
    elif kind == "tensor":
        sf = sf.replace(block="tensor", axis=-1, tensor_scale=None)
    elif kind == "channel":
        sf = sf.replace(block="channel", axis=draw(st.integers(-ndim, ndim - 1)))
    if isinstance(sf.block, tuple) and ndim < 2:
        sf = sf.replace(block=4)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    size = int(np.prod(shape))
    # drawn values (specials, float32 or float64 extremes, tiny ones), spread over the array by a
    # drawn seed among standard normals of drawn binades
    specials = st.sampled_from([0.0, -0.0, np.nan, np.inf, -np.inf, 1e-45, -1e-40, 3.4e38, 6.0, 448.0, 0.25])
    finite = st.floats(-1e6, 1e6, allow_nan=False, width=32) if dtype == np.float32 else \
        st.floats(allow_nan=False, allow_infinity=False)
    pool = draw(st.lists(st.one_of(finite, specials, finite.map(lambda v: v * 2.0 ** -60)), min_size=1, max_size=40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    binade = draw(st.integers(-150, 120 if dtype == np.float32 else 1000))
    values = rng.standard_normal(size) * 2.0 ** binade
    chosen = rng.random(size) < draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    values[chosen] = rng.choice(np.array(pool, dtype=np.float64), chosen.sum())
    with np.errstate(over="ignore"):
        x = values.astype(dtype).reshape(shape)
    return x, sf


@settings(max_examples=300)
@given(cases(), st.sampled_from(MODES), st.integers(0, 2**64 - 1), st.sampled_from([None, 2, 7]),
       st.sampled_from(_c.SR_RULES))
def test_random_shapes_blocks_and_values(case, mode, seed, sr_bits, sr_rule):
    x, sf = case
    if sr_bits is None:
        sr_rule = "truncate"
    assert_same(x, sf, mode, seed, sr_bits, sr_rule)


# ---- threads --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, shape, block", [
    ("mxfp8_e4m3", (128, 520), None),           # many block rows: one item per block row
    ("mxfp4", (3, 40000), None),                # few rows: ranges of column blocks
    ("nvfp4", (600, 80), None),
    ("nvfp4_2d", (260, 200), None),
    ("fp8_block128x128", (256, 256), None),     # one tile: every thread on one block row
    ("fp8_tensor", (300, 150), None),           # one block
    ("mxfp8_e5m2", (1, 50000), "channel"),
    ("nvfp4", (2, 40000), "channel"),            # a tensor scale with every thread on each block row
    ("mxfp6_e2m3", (64, 700), 5000),
    ("mxfp6_e3m2", (200, 300), (64, 1)),
])
def test_results_do_not_depend_on_threads(name, shape, block):
    sf = fl.format(name)
    if block is not None:
        sf = sf.replace(block=block)
    rng = np.random.default_rng(9)
    # finite data whose largest magnitudes sit in the last rows and columns (the last thread's
    # share), and the awkward data with its NaN and Inf blocks
    finite = rng.standard_normal(shape) * np.exp2(rng.integers(-30, 30, size=shape[:-1] + (1,)))
    finite[..., -1, -1] = 1e30
    finite = finite.astype(np.float32)
    awkward = awkward_array(shape, np.float32, seed=9)
    assert finite.size >= 32768  # large enough for the C core's parallel loops
    results = {}
    try:
        for threads in (1, 2, 3):
            fl.set_threads(threads)
            for data_name, x in (("finite", finite), ("awkward", awkward)):
                for mode in ("nearest_even", "stochastic"):
                    codes, stats = assert_same(x, sf, mode, seed=21)
                    results.setdefault((data_name, mode), []).append((codes.codes.copy(), codes.scales.copy(), stats))
    finally:
        fl.set_threads(None)
    for runs in results.values():
        for codes, scales, stats in runs[1:]:
            np.testing.assert_array_equal(codes, runs[0][0])
            np.testing.assert_array_equal(scales, runs[0][1])
            assert stats == runs[0][2]


# ---- the public path takes C --------------------------------------------------------------------
def test_public_encode_and_quantize_take_the_c_path(monkeypatch):
    x = awkward_array((8, 64), np.float32)
    expected_codes = fl.encode(x, "nvfp4", "up")
    expected_values = fl.quantize(x, "mxfp4", "stochastic", seed=3)

    def refuse(*args, **kwargs):
        raise AssertionError("the numpy path was taken for a non-empty array")

    monkeypatch.setattr(scaled, "_encode_numpy", refuse)
    monkeypatch.setattr(scaled, "_quantize_numpy", refuse)
    codes = fl.encode(x, "nvfp4", "up")
    np.testing.assert_array_equal(codes.codes, expected_codes.codes)
    np.testing.assert_array_equal(bits(fl.quantize(x, "mxfp4", "stochastic", seed=3)), bits(expected_values))


def test_c_path_ignores_flush_to_zero():
    torch = pytest.importorskip("torch")
    x = awkward_array((30, 96), np.float32, seed=5)
    x[:4] = np.float32(1e-40) * np.arange(96, dtype=np.float32)    # float32 subnormals
    names = ("mxfp8_e4m3", "mxfp4", "nvfp4", "fp8_block128")
    expected = {name: (fl.encode(x, name).codes, bits(fl.quantize(x, name))) for name in names}
    fl.set_threads(1)  # the setting is per thread
    try:
        assert torch.set_flush_denormal(True)
        assert np.float32(1e-40) * np.float32(1.0) == 0.0  # the environment really flushes
        got = {name: (fl.encode(x, name).codes, bits(fl.quantize(x, name))) for name in names}
    finally:
        torch.set_flush_denormal(False)
        fl.set_threads(None)
    for name in names:
        np.testing.assert_array_equal(got[name][0], expected[name][0])
        np.testing.assert_array_equal(got[name][1], expected[name][1])


# ---- the C boundary ---------------------------------------------------------------------------------
def test_scale_rule_codes_are_the_headers_enum_by_name():
    body = re.search(r"enum fl_scale_rule\s*\{(.*?)\};", HEADER, re.S).group(1)
    enum = {constant: int(value) for constant, value in re.findall(r"(FL_\w+)\s*=\s*(-?\d+)", body)}
    assert {f"FL_SCALE_{name.upper()}": code for name, code in _c.SCALE_RULE_CODES.items()} == enum
    # every rule but "bias" (one bias per tensor, chosen in Python by fmtlab.formats.amax_bias)
    assert tuple(_c.SCALE_RULE_CODES) + (scaled.BIAS_RULE,) == scaled.RULES


def test_the_c_core_returns_the_documented_codes():
    x = np.ones((2, 32), np.float32)
    codes = np.empty(x.shape, np.uint8)
    scales = np.empty((2, 1), np.uint8)
    sf = fl.format("mxfp8_e4m3")
    rounding = _c.c_rounding(_c.rounding_request("nearest_even"))
    lib, ffi = _c.lib, _c.ffi

    def call(layout=(2, 1, 32, 1, 32), format_struct=None, rounding_struct=rounding, code_bytes=1, scale_bytes=1):
        return lib.fl_scaled_encode_f32(_c.pointer(x, "float"), _c.c_block_layout(*layout),
                                        format_struct or _c.c_scaled_format(sf), rounding_struct,
                                        _c.pointer(codes, "void"), code_bytes, _c.pointer(scales, "void"), scale_bytes,
                                        ffi.NULL, ffi.NULL)

    assert call() == lib.FL_OK
    assert call(layout=(2, 1, 32, 0, 32)) == lib.FL_ERROR_SCALED_FORMAT
    assert call(layout=(-1, 1, 32, 1, 32)) == lib.FL_ERROR_SCALED_FORMAT
    assert call(code_bytes=3) == lib.FL_ERROR_CODE_BYTES
    assert call(scale_bytes=8) == lib.FL_ERROR_CODE_BYTES
    bad_rule = ffi.new("fl_scaled_format *", _c.c_scaled_format(sf)[0])
    bad_rule.rule = 9
    assert call(format_struct=bad_rule) == lib.FL_ERROR_SCALED_FORMAT
    tensor_without_amax = ffi.new("fl_scaled_format *", _c.c_scaled_format(sf)[0])
    tensor_without_amax.has_tensor_scale = 1
    tensor_without_amax.tensor_scale = _c.c_format(fl.FP32)[0]
    tensor_without_amax.tensor_scale_max = fl.FP32.max
    assert call(format_struct=tensor_without_amax) == lib.FL_ERROR_SCALED_FORMAT
    bad_element = ffi.new("fl_scaled_format *", _c.c_scaled_format(sf)[0])
    bad_element.element.exp_bits = 0
    assert call(format_struct=bad_element) == lib.FL_ERROR_FORMAT
    bad_mode = ffi.new("fl_rounding *", rounding[0])
    bad_mode.mode = 42
    assert call(rounding_struct=bad_mode) == lib.FL_ERROR_ROUNDING_MODE
    # the rounding's saturation is ignored: elements always saturate
    unsaturated = _c.c_rounding(_c.rounding_request("nearest_even", saturate=False))
    big = np.full((2, 32), 1e30, np.float32)
    big[:, 0] = 1.0
    x[...] = big
    assert call(rounding_struct=unsaturated) == lib.FL_OK
    np.testing.assert_array_equal(codes, fl.encode(big, sf).codes)
