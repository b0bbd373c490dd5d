"""fmtlab.torch.quantize with scaled formats: the pure-torch path against the numpy/C one.

* ``backend="torch"`` (fmtlab/_torch_scaled.py, the path every non-CPU device takes) gives
  the same bits as ``backend="native"`` (``fmtlab.quantize`` on the tensor's numpy view,
  itself tested against the exact rational reference in tests/test_scaled.py) for every
  scaled preset and option variant, every rounding mode, stochastic rounding with and without
  sr_bits and every sr_rule, float32 and float64, and blocks that hold zeros, NaN, Inf,
  partial blocks and values near both ends of float32 and float64; Hypothesis draws more;
* float16/bfloat16 tensors widen exactly and come back in their own dtype;
* the gradient is straight through, on both backends; the CPU path does not copy its input;
* the errors name the argument (saturate, shapes, backend, names).

No GPU here: the torch path runs on the CPU, which exercises the same code a CUDA tensor
runs (it is written in device-agnostic torch ops); a GPU run is left to a machine with one.
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import fmtlab as fl
from fmtlab import scaled
from fmtlab import torch as fl_torch

MODES = ("nearest_even", "nearest_away", "toward_zero", "up", "down", "odd", "stochastic")
PRESETS = scaled.preset_names()
VARIANTS = ("mxfp4:rule=ceil", "mxfp4:rule=even", "mxfp8_e4m3:rule=rceil", "mxfp8_e5m2:rule=rceil",
            "nvfp4:tensor_scale=none", "e4m3fn:block=64,scale=e8m0,rule=amax",
            "e5m2:block=channel,scale=fp32,rule=amax,axis=0", "e4m3fn:block=16x8,scale=bf16,rule=floor",
            "e2m1fn:block=tensor,scale=e8m0,rule=rceil", "e5m2:block=tensor,scale=fp32,rule=amax",
            "e3m2fn:block=7,scale=e4m3fn,rule=amax,axis=1", "mxfp6_e2m3:rule=rceil", "mxfp6_e3m2:rule=even",
            "e2m1fn:block=16,scale=e8m0,rule=amax", "e4m3fn:block=16,scale=e8m0,rule=amax")


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view({4: np.uint32, 8: np.uint64, 2: np.uint16}[a.dtype.itemsize])


def assert_same_bits(got: torch.Tensor, want: torch.Tensor, what=""):
    assert got.dtype == want.dtype and got.shape == want.shape, what
    g, w = got.numpy(), want.numpy()
    differ = _bits(g) != _bits(w)
    assert not differ.any(), (f"{what}: {int(differ.sum())} of {differ.size} differ, first at "
                              f"{np.argwhere(differ)[0].tolist()}: {g[differ][:3]} vs {w[differ][:3]}")


def special_array(dtype, seed=0, shape=(3, 37, 70)):
    """Values over a wide range per row, with special blocks: zeros, NaN, +-Inf, tiny, huge."""
    rng = np.random.default_rng(seed)
    low, high = (-30, 30) if dtype == np.float32 else (-600, 600)
    x = rng.standard_normal(shape) * np.exp2(rng.uniform(low, high, shape[:-1] + (1,)))
    x = x.astype(dtype)
    x[0, 0, :40] = 0                       # a zero block (and a partial one)
    x[0, 1, 3] = np.nan                    # a NaN block
    x[0, 2, 5], x[0, 3, 7] = np.inf, -np.inf
    x[1, 0, :] = np.finfo(dtype).smallest_subnormal * rng.integers(-3, 4, shape[-1])
    x[1, 1, :] = np.finfo(dtype).max * rng.uniform(-1, 1, shape[-1])
    x[2, 0, :5] = np.finfo(dtype).tiny
    return x


def boundary_array(dtype, seed=0):
    """Rows of 64 whose every 16-element block has its amax at a rule boundary: a power of
    two, an element format's max (or 1.5 x max, an E8M0 rounding tie of amax / max) times a
    power of two, and the floats just below and above each."""
    rng = np.random.default_rng(seed)
    bases = [1.0, 1.5]
    for name in ("e4m3fn", "e5m2", "e2m1fn", "e2m3fn", "e3m2fn"):
        bases += [fl.format(name).max, 1.5 * fl.format(name).max]
    rows = []
    for base in bases:
        for k in range(-12, 13, 4):
            v = dtype(np.ldexp(base, k))
            for amax in (v, np.nextafter(v, dtype(0)), np.nextafter(v, dtype(np.inf))):
                row = (rng.uniform(-0.9, 0.9, 64) * amax).astype(dtype)
                row[0::16] = amax * rng.choice([-1, 1], 4)
                rows.append(row)
    return np.stack(rows)


def both_backends(x: np.ndarray, fmt, mode, **options):
    t = torch.from_numpy(x)
    native = fl_torch.quantize(t, fmt, mode, backend="native", **options)
    pure = fl_torch.quantize(t, fmt, mode, backend="torch", **options)
    return native, pure


@pytest.mark.parametrize("name", PRESETS + VARIANTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_backend_gives_the_native_bits_in_every_mode(name, dtype):
    x = special_array(dtype)
    for mode in MODES:
        native, pure = both_backends(x, name, mode, seed=12345)
        assert_same_bits(pure, native, f"{name} {mode} {np.dtype(dtype).name}")
        # and the native path is fl.quantize itself
        want = fl.quantize(x, name, mode, seed=12345)
        assert_same_bits(native, torch.from_numpy(want), f"{name} {mode} native vs fl.quantize")


@pytest.mark.parametrize("name", PRESETS + VARIANTS)
def test_amax_at_every_rule_boundary_matches(name):
    for dtype in (np.float32, np.float64):
        x = boundary_array(dtype)
        for mode in ("nearest_even", "toward_zero", "stochastic"):
            native, pure = both_backends(x, name, mode, seed=1)
            assert_same_bits(pure, native, f"{name} {mode} {np.dtype(dtype).name} boundaries")


@pytest.mark.parametrize("name", ["mxfp4", "nvfp4", "fp8_block128", "nvfp4_2d", "fp8_tensor"])
@pytest.mark.parametrize("sr_bits, sr_rule", [(1, "truncate"), (3, "nearest_even"), (8, "nearest_away"),
                                              (13, "nearest_odd"), (32, "truncate")])
def test_limited_precision_stochastic_rounding_matches(name, sr_bits, sr_rule):
    x = special_array(np.float32, seed=3)
    native, pure = both_backends(x, name, "stochastic", seed=99, sr_bits=sr_bits, sr_rule=sr_rule)
    assert_same_bits(pure, native, f"{name} sr_bits={sr_bits} {sr_rule}")


def test_stochastic_rounding_is_reproducible_and_keyed_by_the_seed():
    x = torch.from_numpy(special_array(np.float32, seed=4))
    for backend in ("native", "torch"):
        first = fl_torch.quantize(x, "mxfp4", "stochastic", seed=7, backend=backend)
        again = fl_torch.quantize(x, "mxfp4", "stochastic", seed=7, backend=backend)
        other = fl_torch.quantize(x, "mxfp4", "stochastic", seed=8, backend=backend)
        assert_same_bits(first, again)
        assert not torch.equal(torch.nan_to_num(first), torch.nan_to_num(other))


def test_stochastic_draws_use_the_global_element_index():
    """Element i in C order is element i of the generator: the second half of a tensor does
    not round like the same values quantized on their own (index 0 onwards)."""
    x = torch.full((2, 64), 1.3)
    whole = fl_torch.quantize(x, "mxfp4", "stochastic", seed=5, backend="torch")
    alone = fl_torch.quantize(x[1:].contiguous(), "mxfp4", "stochastic", seed=5, backend="torch")
    assert torch.equal(whole[0], alone[0])
    assert not torch.equal(whole[1], alone[0])
    assert torch.equal(whole, fl_torch.quantize(x, "mxfp4", "stochastic", seed=5, backend="native"))


@given(seed=st.integers(0, 2 ** 32 - 1), rows=st.integers(1, 40), columns=st.integers(1, 70),
       name=st.sampled_from(PRESETS + VARIANTS), mode=st.sampled_from(MODES),
       dtype=st.sampled_from([np.float32, np.float64]))
@settings(max_examples=60)
def test_random_shapes_and_values_match(seed, rows, columns, name, mode, dtype):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, columns)) * np.exp2(rng.uniform(-20, 20, (rows, 1)))).astype(dtype)
    x[rng.random((rows, columns)) < 0.05] = 0
    native, pure = both_backends(x, name, mode, seed=seed)
    assert_same_bits(pure, native, f"{name} {mode} {x.shape}")


@pytest.mark.parametrize("shape", [(5,), (2, 3, 33, 17), (0, 40), (4, 0)])
def test_other_shapes_match(shape):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    for name in ("mxfp8_e4m3", "fp8_tensor", "mxfp8_e5m2:block=channel"):
        native, pure = both_backends(x, name, "nearest_even")
        assert_same_bits(pure, native, f"{name} {shape}")
    if len(shape) >= 2:
        native, pure = both_backends(x, "nvfp4_2d", "stochastic", seed=2)
        assert_same_bits(pure, native, f"nvfp4_2d {shape}")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("backend", ["native", "torch"])
def test_half_precision_tensors_widen_and_come_back(dtype, backend):
    t = torch.randn(4, 64).to(dtype)
    got = fl_torch.quantize(t, "mxfp8_e4m3", backend=backend)
    assert got.dtype == dtype
    want = fl.quantize(t.float().numpy(), "mxfp8_e4m3")
    assert torch.equal(got, torch.from_numpy(want).to(dtype))


@pytest.mark.parametrize("backend", ["native", "torch", "auto"])
def test_gradient_is_straight_through(backend):
    t = torch.randn(8, 32, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(8, 32, dtype=torch.float64)
    y = fl_torch.quantize(t, "nvfp4", "stochastic", seed=3, backend=backend)
    assert not torch.equal(y.detach(), t.detach())  # it did round
    y.backward(upstream)
    assert torch.equal(t.grad, upstream)


def test_names_and_formats_are_the_same_and_options_apply():
    t = torch.randn(16, 64)
    for name in ("nvfp4", "mxfp4:rule=ceil", "e4m3fn:block=64,scale=e8m0"):
        assert torch.equal(fl_torch.quantize(t, name), fl_torch.quantize(t, fl.format(name)))
    assert not torch.equal(fl_torch.quantize(t, "mxfp4"), fl_torch.quantize(t, "mxfp4:rule=ceil"))


def test_the_native_path_reads_the_tensor_memory_without_a_copy(monkeypatch):
    t = torch.randn(16, 64)
    seen = []
    original = fl_torch.codec.quantize

    def spy(x, *args, **kwargs):
        seen.append(x)
        return original(x, *args, **kwargs)

    monkeypatch.setattr(fl_torch.codec, "quantize", spy)
    out = fl_torch.quantize(t, "mxfp8_e4m3", backend="native")
    assert seen and np.shares_memory(seen[0], t.numpy())  # the first call is ours (then the elements)
    assert torch.equal(out, torch.from_numpy(fl.quantize(t.numpy(), "mxfp8_e4m3")))


def test_scaled_saturation_arguments():
    t = torch.randn(4, 32)
    for saturate in (None, True, "sat_finite"):
        assert torch.equal(fl_torch.quantize(t, "mxfp4", saturate=saturate), fl_torch.quantize(t, "mxfp4"))
    for saturate in (False, "sat_none", "sat_propagate"):
        with pytest.raises(ValueError, match="saturate=.*not allowed for a scaled format"):
            fl_torch.quantize(t, "mxfp4", saturate=saturate)


@pytest.mark.parametrize("backend", ["native", "torch"])
def test_shape_errors_are_those_of_fl_quantize(backend):
    with pytest.raises(ValueError, match="0-dimensional"):
        fl_torch.quantize(torch.tensor(1.5), "mxfp4", backend=backend)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        fl_torch.quantize(torch.ones(32), "nvfp4_2d", backend=backend)
    with pytest.raises(ValueError, match="axis=3 is out of range"):
        fl_torch.quantize(torch.ones(4, 32), "mxfp4:axis=3", backend=backend)
    # a per-tensor format takes a scalar
    assert fl_torch.quantize(torch.tensor(3.0), "fp8_tensor", backend=backend).item() == 3.0


def test_other_errors_name_the_argument():
    with pytest.raises(ValueError, match="backend='native' runs on CPU tensors only"):
        fl_torch.quantize(torch.ones(4, 32, device="meta"), "mxfp4", backend="native")
    with pytest.raises(ValueError, match="backend='gpu' is not allowed"):
        fl_torch.quantize(torch.ones(4, 32), "mxfp4", backend="gpu")
    with pytest.raises(ValueError, match="nvfp5"):
        fl_torch.quantize(torch.ones(4, 32), "nvfp5")
    with pytest.raises(ValueError, match="rounding="):
        fl_torch.quantize(torch.ones(4, 32), "mxfp4", "sideways")
    with pytest.raises(TypeError, match="dtype torch.int64"):
        fl_torch.quantize(torch.ones(4, 32, dtype=torch.int64), "mxfp4")


@pytest.mark.parametrize("name", ["fp8_tensor", "e5m2:block=tensor,scale=fp32,rule=amax",
                                  "e2m1fn:block=tensor,scale=e8m0,rule=rceil"])
@pytest.mark.parametrize("mode", MODES)
def test_a_given_per_tensor_scale_rounds_like_the_format_itself(name, mode):
    """Delayed scaling's rounding (a scale given from outside): with the scale the format
    computes from the tensor's own amax it is fl.quantize; the C element path (CPU) and the
    torch one agree for any scale."""
    from fmtlab import _torch_scaled
    sf = fl.format(name)
    x = special_array(np.float32, seed=6)
    x = np.where(np.isfinite(x), x, 1.0).astype(np.float32)
    t = torch.from_numpy(x)
    own_scale = float(_torch_scaled.scale_from_amax(sf, t.abs().max().double().reshape(1))[0])
    for scale in (own_scale, own_scale * 0.37, 2.0 ** -20, 3.0e30):
        native = fl_torch._quantize_with_divisor(t, sf, scale, mode, 11, None, "truncate")
        pure = _torch_scaled.quantize_with_divisor(t, sf, scale, mode, seed=11)
        assert_same_bits(pure, native, f"{name} {mode} scale {scale}")
    want = torch.from_numpy(fl.quantize(x, sf, mode, seed=11))
    assert_same_bits(fl_torch._quantize_with_divisor(t, sf, own_scale, mode, 11, None, "truncate"), want, name)
