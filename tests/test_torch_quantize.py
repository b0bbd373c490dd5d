"""fmtlab.torch.quantize against the numpy codec, bit for bit, on both torch paths.

For every preset format (plus Tesla-subnormal variants and custom formats), every rounding
mode (stochastic with several sr_bits, same seed), float32 and float64 inputs, with and
without saturation: ``fmtlab.torch.quantize`` on a CPU tensor (the C core, zero-copy) and
the pure-torch path forced on the same CPU tensor (``backend="torch"``, what GPUs run)
give exactly the bits of ``fmtlab.quantize`` on the numpy array.  The inputs cover random
magnitudes over the whole range, every value of the format and the midpoints between
neighbours (a sample of them for 16-bit formats) and one float ulp either side of them, max
and the overflow threshold, zeros, infinities and NaN.
"""
import math

import numpy as np
import pytest
import torch

import fmtlab as fl
import fmtlab.torch as flt
from reference import CUSTOM_FORMATS, PRESETS, TESLA_VARIANTS, format_id

FORMATS = PRESETS + TESLA_VARIANTS[::4] + CUSTOM_FORMATS + [fl.Format(10, 20, 1000)]
STOCHASTIC_BITS = (None, 1, 7, 32)
SEED = 20240607


def _inputs(fmt, dtype):
    rng = np.random.default_rng(1234)
    span = max(8, min(60, fmt.dynamic_range_binades // 2 + 4))
    centre = math.log2(fmt.max) - fmt.dynamic_range_binades / 2
    parts = [rng.standard_normal(1000) * np.exp2(rng.uniform(centre - span, centre + span, 1000)),
             np.array([0.0, -0.0, np.inf, -np.inf, np.nan, fmt.max, -fmt.max, fmt.min_subnormal,
                       -fmt.min_subnormal, fmt.min_normal, fmt.max * (1 + fmt.eps / 2),
                       fmt.max * (1 + fmt.eps / 2 + 2 ** -40), fmt.max * 2, 1e300, 1e-300, 5e-324])]
    if fmt.bits <= 16:
        values = np.unique(fmt.values()[np.isfinite(fmt.values())])
        midpoints = (values[1:] + values[:-1]) / 2
        if values.size > 600:  # 16-bit formats: a sample, with both ends of the range
            keep = np.unique(np.concatenate([np.arange(100), np.arange(values.size - 101, values.size - 1),
                                             rng.choice(values.size - 1, 400, replace=False)]))
            values, midpoints = values[keep], midpoints[keep]
        parts += [values, midpoints, np.nextafter(midpoints, np.inf), np.nextafter(midpoints, -np.inf)]
    with np.errstate(over="ignore"):
        return np.concatenate(parts).astype(dtype)


def _bits(array):
    array = np.asarray(array)
    return array.view(np.int64 if array.dtype == np.float64 else np.int32)


def _cases():
    for mode in fl.ROUNDINGS:
        for sr_bits in (STOCHASTIC_BITS if mode == "stochastic" else (None,)):
            yield mode, sr_bits


@pytest.mark.parametrize("fmt", FORMATS, ids=format_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_torch_quantize_matches_numpy_codec_bit_for_bit(fmt, dtype):
    x = _inputs(fmt, dtype)
    tensor = torch.from_numpy(x)
    for mode, sr_bits in _cases():
        for saturate in (None, True):
            want = _bits(fl.quantize(x, fmt, mode, saturate=saturate, seed=SEED, sr_bits=sr_bits))
            for backend in ("auto", "torch"):
                got = flt.quantize(tensor, fmt, mode, saturate=saturate, seed=SEED, sr_bits=sr_bits,
                                   backend=backend)
                assert got.dtype == tensor.dtype
                mismatch = np.flatnonzero(_bits(got.numpy()) != want)
                assert mismatch.size == 0, (
                    f"{fmt} {mode} sr_bits={sr_bits} saturate={saturate} backend={backend}: "
                    f"{mismatch.size} mismatches, first inputs {x[mismatch[:4]]}")


@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_stochastic_draws_follow_the_element_index(backend):
    """A shape change or a non-contiguous view draws by row-major element index, like numpy."""
    x = torch.randn(40, 30, dtype=torch.float32)
    want = fl.quantize(x.t().contiguous().numpy(), fl.E4M3FN, "stochastic", seed=5)
    got = flt.quantize(x.t(), fl.E4M3FN, "stochastic", seed=5, backend=backend)
    assert np.array_equal(_bits(got.numpy()), _bits(want))


def test_stochastic_rounding_is_reproducible_and_seed_dependent():
    x = torch.rand(10000) + 1
    first = flt.quantize(x, "bf16", "stochastic", seed=1)
    assert torch.equal(first, flt.quantize(x, "bf16", "stochastic", seed=1))
    assert not torch.equal(first, flt.quantize(x, "bf16", "stochastic", seed=2))
    assert not torch.equal(flt.quantize(x, "bf16", "stochastic"), flt.quantize(x, "bf16", "stochastic"))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_half_precision_tensors_are_widened_and_cast_back(dtype, backend):
    x = (torch.randn(500) * 3).to(dtype)
    got = flt.quantize(x, fl.E4M3FN, backend=backend)
    want = torch.from_numpy(fl.quantize(x.float().numpy(), fl.E4M3FN)).to(dtype)
    assert got.dtype == dtype
    assert torch.equal(got, want)


@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_gradient_passes_straight_through(backend):
    x = (torch.randn(64, dtype=torch.float64) * 1000).requires_grad_()
    weights = torch.randn(64, dtype=torch.float64)
    y = flt.quantize(x, fl.E4M3FN, "stochastic", seed=3, saturate=True, backend=backend)
    (y * weights).sum().backward()
    assert torch.equal(x.grad, weights)


def test_scalar_and_empty_tensors():
    assert flt.quantize(torch.tensor(1.1), "bf16").item() == fl.quantize(np.float32(1.1), fl.BF16).item()
    assert flt.quantize(torch.empty(0, 3), "e5m2", backend="torch").shape == (0, 3)


@pytest.mark.parametrize("call, error, words", [
    (lambda: flt.quantize(torch.ones(2), "bf16", "nearest"), ValueError, ["rounding", "nearest", "nearest_even"]),
    (lambda: flt.quantize(torch.ones(2), "bf16", backend="gpu"), ValueError, ["backend", "gpu", "torch"]),
    (lambda: flt.quantize(torch.ones(2), "bf17"), ValueError, ["bf17"]),
    (lambda: flt.quantize(torch.ones(2, dtype=torch.int32), "bf16"), TypeError, ["dtype", "int32"]),
    (lambda: flt.quantize([1.0], "bf16"), TypeError, ["torch.Tensor"]),
    (lambda: flt.quantize(torch.ones(2), "bf16", "stochastic", sr_bits=0), ValueError, ["sr_bits", "0"]),
    (lambda: flt.quantize(torch.ones(2), "bf16", seed=1.5), TypeError, ["seed", "1.5"]),
    (lambda: flt.quantize(torch.ones(2, device="meta"), "bf16", backend="native"), ValueError,
     ["native", "meta"]),
])
def test_bad_arguments_name_the_argument_and_the_allowed_values(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value)


def test_auto_bias_picks_the_largest_bias_that_still_covers_the_maximum():
    for amax in (1e-6, 0.01, 1.0, 448.0, 449.0, 3e4):
        fmt = flt.auto_bias(fl.E4M3FN, amax)
        assert fmt.max >= amax and fmt.replace(bias=fmt.bias + 1).max < amax
    assert flt.auto_bias(fl.CFLOAT8_1_4_3, 1.0).bias == 15  # 1.875 * 2^(15 - 15) >= 1 > 0.9375
    assert flt.auto_bias(fl.CFLOAT8_1_4_3, 1e9).bias == 0     # clamped to Tesla's 0..63
    assert flt.auto_bias(fl.CFLOAT8_1_4_3, 1e-30).bias == 63
    assert flt.auto_bias(fl.E5M2, 0.0) == fl.E5M2
    assert flt.auto_bias(fl.E5M2, math.inf) == fl.E5M2
