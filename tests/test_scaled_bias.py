"""``cfloat8_1_4_3:bias=auto``: the per-tensor bias as a scaled format (rule "bias").

The reference bias is written here from Tesla's numbers (max(b) = the format's largest value at
bias b, a 6-bit unsigned bias) without fmtlab.formats.amax_bias; the element rounding is then the
plain codec at that bias, which tests/test_codec_reference.py holds to the exact reference.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fmtlab as fl
from fmtlab import scaled

# the largest value at the default bias, exactly: 1.111b * 2^(15 - 7) = 480; 1.11b * 2^(31 - 15) = 114688;
# SHP: (2 - 2^-10) * 2^(31 - 15) = 131008
TOPS = {"cfloat8_1_4_3": (Fraction(15, 8) * 2 ** 8, 7), "cfloat8_1_5_2": (Fraction(7, 4) * 2 ** 16, 15),
        "shp": ((2 - Fraction(1, 1024)) * 2 ** 16, 15)}


def reference_bias(name: str, x: np.ndarray) -> int:
    """The largest b in 0..63 with amax <= max(b) = top * 2^(default - b); amax over the finite
    elements; no finite nonzero element: the default bias; amax above max(0): 0."""
    top, default = TOPS[name]
    finite = [abs(Fraction(float(v))) for v in x.reshape(-1) if math.isfinite(float(v))]
    amax = max(finite, default=Fraction(0))
    if amax == 0:
        return default
    fitting = [b for b in range(64) if amax <= top * Fraction(2) ** (default - b)]
    return max(fitting) if fitting else 0


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(TOPS)), exponent=st.integers(-70, 25), size=st.integers(1, 300),
       mode=st.sampled_from(["nearest_even", "toward_zero", "up", "down", "odd", "stochastic"]),
       specials=st.booleans(), data=st.data())
def test_the_bias_and_the_values_match_the_reference(name, exponent, size, mode, specials, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = (rng.standard_normal(size) * 2.0 ** exponent).astype(np.float32)
    if specials:
        x[rng.integers(0, size)] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf, 0.0]))
    fmt = fl.format(f"{name}:bias=auto")
    bias = reference_bias(name, x)
    result = fl.encode(x, fmt, mode, seed=3)
    assert int(result.scales) == bias and result.scales.shape == () and result.tensor_scale is None
    element = fl.format(name, bias=bias)
    assert np.array_equal(result.codes, fl.encode(x, element, mode, seed=3))
    values = fl.quantize(x, fmt, mode, seed=3)
    assert np.array_equal(values.view(np.uint32), fl.quantize(x, element, mode, seed=3).view(np.uint32))
    decoded = fl.decode(result)
    assert np.array_equal(decoded.astype(np.float32).view(np.uint32), values.view(np.uint32))


def test_the_sweeps_rule_bias_is_the_same_rule():
    rng = np.random.default_rng(4)
    tensors = {"w": (rng.standard_normal(4096) * 3e-3).astype(np.float32),
               "big": (rng.standard_normal(4096) * 2e4).astype(np.float32)}
    result = fl.sweep(tensors, formats=["cfloat8_1_4_3", "cfloat8_1_4_3:bias=auto"], biases="all")
    for name, x in tensors.items():
        rows = [r for r in result if r.tensor == name]
        rule = next(r for r in rows if r.format == "cfloat8_1_4_3" and r.is_rule_bias)
        auto = next(r for r in rows if r.format == "cfloat8_1_4_3:bias=auto")
        assert int(fl.encode(x, "cfloat8_1_4_3:bias=auto").scales) == rule.bias == reference_bias("cfloat8_1_4_3", x)
        # the same quantized values; the sums behind SQNR run in different orders (element formats:
        # exact block sums; scaled formats: numpy's), so equal to rounding
        assert auto.sqnr_db == pytest.approx(rule.sqnr_db, rel=1e-12) and auto.bits_per_value == 8 + 6 / x.size


def test_block_counts():
    fmt = fl.format("cfloat8_1_4_3:bias=auto")
    _, zero = fl.encode(np.zeros(8, np.float32), fmt, stats=True)
    assert (zero.blocks, zero.zero_blocks, zero.scale_underflow, zero.scale_overflow) == (1, 1, 0, 0)
    _, big = fl.encode(np.array([1e9, 1.0]), fmt, stats=True)    # beyond 480 * 2^7 = 61440 at bias 0
    assert (big.scale_overflow, big.elements.overflow) == (1, 1)
    _, tiny = fl.encode(np.array([1e-30, 0.0]), fmt, stats=True)  # below every bias's reach: bias 63
    assert tiny.scale_underflow == 1 and tiny.elements.underflow == 1
    _, nan = fl.encode(np.array([np.nan, 1.0, np.inf]), fmt, stats=True)
    assert nan.nan_blocks == 0 and nan.elements.invalid == 1    # a bias has no NaN: CFloat8 rounds NaN to +max
    assert fl.quantize(np.array([np.nan, 1.0, np.inf]), fmt).tolist() == [1.875, 1.0, 1.875]


def test_names_and_errors():
    fmt = fl.format("cfloat8_1_4_3:bias=auto")
    assert (fmt.block, fmt.rule, fmt.scale) == ("tensor", "bias", scaled.BIAS_SCALE)
    assert str(fmt) == "cfloat8_1_4_3:bias=auto" and fl.format(str(fmt)) == fmt
    tesla = fl.format("cfloat8_1_5_2:subnormals=tesla,bias=auto")
    assert tesla.element.subnormals == "tesla" and fl.format(str(tesla)) == tesla
    assert fl.format("cfloat8_1_4_3:block=tensor,scale=uint6,rule=bias") == fmt
    for bad, message in [("e4m3fn:bias=auto", "its bias is fixed"),
                         ("cfloat8_1_4_3:bias=auto,block=32", "block=32 is not allowed"),
                         ("cfloat8_1_4_3:bias=auto,rule=floor", "rule=floor is not allowed"),
                         ("cfloat8_1_4_3:block=32,scale=uint6,rule=bias", "one per tensor"),
                         ("cfloat8_1_4_3:block=tensor,scale=e8m0,rule=bias", "scale must be uint6"),
                         ("cfloat8_1_4_3:block=tensor,scale=uint6,rule=floor", "scale=uint6 is not allowed")]:
        with pytest.raises(ValueError, match=message):
            fl.format(bad)


@pytest.mark.parametrize("mode", ["nearest_even", "stochastic"])
def test_fmtlab_torch_on_both_backends(mode):
    torch = pytest.importorskip("torch")
    import fmtlab.torch as ft

    x = torch.randn(5000, generator=torch.Generator().manual_seed(1)) * 1e-3
    x[7] = float("nan")
    want = torch.from_numpy(fl.quantize(x.numpy(), "cfloat8_1_4_3:bias=auto", mode, seed=2)).view(torch.int32)
    for backend in ("native", "torch"):
        got = ft.quantize(x, "cfloat8_1_4_3:bias=auto", mode, backend=backend, seed=2)
        assert torch.equal(got.view(torch.int32), want), backend


def test_block_and_rule_axes_skip_it_with_one_note():
    from fmtlab.sweep import scaled_variants

    formats = [fl.format("cfloat8_1_4_3:bias=auto"), fl.format("mxfp8_e4m3")]
    variants, notes = scaled_variants(formats, blocks=[16, 32], rules=["floor", "rceil"],
                                      block_argument="--block", rule_argument="--rule")
    assert fl.format("cfloat8_1_4_3:bias=auto") in variants and len(variants) == 1 + 4
    assert notes == ["--block 16,32 and --rule floor,rceil skipped for cfloat8_1_4_3:bias=auto: its bias is one "
                     "per tensor (block tensor, rule bias)"]
    with pytest.raises(ValueError, match="its bias is one per tensor"):
        scaled_variants(formats[:1], blocks=[16], block_argument="--block")
