"""Scaled formats in emulated layers and the scaled drift configurations.

* delayed scaling (fmtlab.torch.AmaxHistory) against its definition, computed here in exact
  rationals: the scale used at step t comes from the largest amax of the previous N steps
  (times 2^margin), scale 1 before any, the previous scale kept while that amax is 0 or not
  finite, one scale per step however often the tensor is rounded in it, evaluation passes
  neither recording nor advancing; a delayed Linear layer's output is that of the
  exactly-rounded activation;
* each GEMM quantizes its operands along its own contraction axis (1-D blocks), tiles and
  per-tensor formats once; the random Hadamard transform of the dL/dW inputs is orthogonal,
  leaves the product unchanged without rounding, and is what the layer applies;
* the observer sees scaled tensors in units of their scales;
* the errors (MMA models with scaled operands, scaling='auto' or 'delayed' where they do
  not apply, Conv2d, bad histories, margins and Hadamard sizes);
* every new drift configuration builds and trains a few steps on both tasks and through
  the command line.
"""
import bisect
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import fmtlab as fl
from fmtlab.drift import configs, runner
from fmtlab.drift.counters import Counters
from fmtlab.torch import AmaxHistory, Policy, TensorFormat, emulate
from reference import layout, magnitude_value, sorted_magnitudes

NEW_CONFIGS = ("mxfp8", "nvfp4", "fp8_current", "fp8_delayed", "fp8_block128")


# ---- an exact reference: saturating nearest-even rounding of a rational -----------------------
def round_fraction(a: Fraction, fmt) -> Fraction:
    """sign(a) * the nearest value of |a| in ``fmt`` (ties to the even code), saturating at max."""
    magnitudes = sorted_magnitudes(fmt)
    top = layout(fmt).max_code
    size = abs(a)
    lo = bisect.bisect_right(magnitudes, size) - 1
    if lo >= top:
        code = top
    elif magnitudes[lo] == size:
        code = lo
    else:
        below, above = size - magnitudes[lo], magnitudes[lo + 1] - size
        code = lo if below < above or (below == above and lo % 2 == 0) else lo + 1
        code = min(code, top)
    value = magnitude_value(fmt, code)
    return -value if a < 0 else value


def reference_scale(sf, amax: float) -> float:
    """The scale ``sf`` (a per-tensor format) gives a tensor of amax ``amax`` (> 0, finite):
    "amax" -- amax / element.max rounded to nearest-even into the scale format, at least its
    smallest positive value; "floor" with E8M0 -- 2^(floor(log2 amax) - emax), clamped."""
    element_max = Fraction(sf.element.max)
    if sf.rule == "amax":
        value = round_fraction(Fraction(amax) / element_max, sf.scale)
        return float(value) if value > 0 else sf.scale.min_subnormal
    assert sf.rule == "floor" and sf.scale == fl.E8M0
    exponent = math.frexp(amax)[1] - 1 - sf.element.emax
    return math.ldexp(1.0, min(max(exponent, -127), 127))


def reference_delayed(amaxes, sf, length, margin):
    """Scale used at each step t = 0, 1, ... for per-step amaxes (lists: every rounding's amax)."""
    used, current, history = [], 1.0, []
    for step_amaxes in amaxes:
        window = history[-length:]
        if window:
            peak = math.nan if any(math.isnan(a) for a in window) else max(window)
            if math.isfinite(peak) and peak > 0:
                current = reference_scale(sf, math.ldexp(peak, margin))
        used.append(current)
        history.append(math.nan if any(math.isnan(a) for a in step_amaxes) else max(step_amaxes))
    return used


@pytest.mark.parametrize("name", ["fp8_tensor", "e5m2:block=tensor,scale=fp32,rule=amax",
                                  "e4m3fn:block=tensor,scale=e8m0,rule=floor"])
@pytest.mark.parametrize("length, margin", [(1, 0), (3, 0), (3, 2), (16, -1)])
def test_amax_history_follows_its_definition(name, length, margin):
    sf = fl.format(name)
    rng = np.random.default_rng(length * 10 + margin)
    amaxes = []
    for step in range(40):
        count = 1 + int(rng.integers(0, 3))  # a tensor rounded up to 3 times in a step
        amaxes.append([float(np.float32(np.exp2(rng.uniform(-30, 30)))) for _ in range(count)])
    amaxes[5] = [0.0]
    amaxes[6] = [0.0, 0.0]
    amaxes[12] = [math.nan, 1.0]
    amaxes[20] = [math.inf]
    amaxes[30] = [3.0e38]
    history = AmaxHistory(sf, length, margin)
    used = []
    for step, step_amaxes in enumerate(amaxes, start=1):
        scales = set()
        for amax in step_amaxes:
            scales.add(history.scale_for(step))
            history.record(step, amax)
            # an evaluation pass in between neither records nor advances
            assert history.scale_for(-1) in scales
            history.record(-1, 1e30)
        assert len(scales) == 1, "one scale per step"
        used.append(scales.pop())
    assert used == reference_delayed(amaxes, sf, length, margin)
    assert used[0] == 1.0


def test_the_scale_at_a_step_ignores_that_steps_own_amax():
    history = AmaxHistory(fl.format("fp8_tensor"), 4)
    assert history.scale_for(1) == 1.0
    history.record(1, 448.0 * 8)
    assert history.scale_for(2) == 8.0
    history.record(2, 448.0 * 1e6)  # a jump: step 2 still used 8, step 3 sees it
    assert history.scale_for(3) == 1e6 * np.float32(1)  # RN32(1e6) = 1e6
    for step in (3, 4, 5):
        history.record(step, 448.0)
        history.scale_for(step + 1)
    assert history.scale_for(6) == 1e6  # step 2 is still among the last 4 (2, 3, 4, 5)
    history.record(6, 448.0)
    assert history.scale_for(7) == 1.0  # now it has left the window


def _exact_delayed_quantize(x: torch.Tensor, sf, scale: float) -> torch.Tensor:
    """x rounded with a given per-tensor scale, in exact rationals: element = RNE(x / S)
    saturating, value = element * S rounded once to float32."""
    values = [float(np.float32(float(round_fraction(Fraction(float(v)) / Fraction(scale), sf.element)
                                     * Fraction(scale)))) for v in x.reshape(-1).tolist()]
    return torch.tensor(values, dtype=torch.float32).reshape(x.shape)


def test_a_delayed_linear_layer_rounds_its_activation_with_the_previous_steps_scale():
    torch.manual_seed(0)
    sf = fl.format("fp8_tensor")
    linear = nn.Linear(8, 3)
    policy = Policy(activation=TensorFormat(sf, scaling="delayed", amax_history=2))
    layer = emulate(linear, policy)
    weight, bias = linear.weight.detach().clone(), linear.bias.detach().clone()
    amaxes, scales = [], []
    for step, magnitude in enumerate([1.0, 100.0, 0.01, 1000.0, 1.0, 3.0]):
        x = torch.randn(4, 8) * magnitude
        scales.append(reference_delayed([[a] for a in amaxes] + [[0.0]], sf, 2, 0)[-1])
        y = layer(x)
        xq = _exact_delayed_quantize(x, sf, scales[-1])
        assert torch.equal(y, F.linear(xq, weight, bias)), f"step {step + 1}"
        amaxes.append(float(x.abs().max()))
        layer.eval()
        layer(x * 1e6)  # an evaluation pass records nothing
        layer.train()
    # step 4 (amax ~1000) used the scale of steps 2-3 (amax ~100): it saturated at 448 * S
    assert scales[3] == reference_scale(sf, max(amaxes[1:3]))


# ---- GEMM operands along their contraction axes -------------------------------------------------
def _q(t, name, axis=None):
    sf = fl.format(name)
    if axis is not None:
        sf = sf.replace(axis=axis)
    return torch.from_numpy(fl.quantize(t.detach().contiguous().numpy(), sf))


def _run_layer(policy, batch=20, features_in=64, features_out=48, seed=0):
    torch.manual_seed(seed)
    linear = nn.Linear(features_in, features_out)
    with torch.no_grad():  # magnitudes that vary along both axes, so that the blocking shows
        linear.weight.mul_(torch.exp2(torch.randint(-6, 6, (features_out, 1)).float())
                           * torch.exp2(torch.randint(-6, 6, (1, features_in)).float()))
    weight, bias = linear.weight.detach().clone(), linear.bias.detach().clone()
    layer = emulate(linear, policy)
    x = (torch.randn(batch, features_in) * torch.exp2(torch.randint(-6, 6, (1, features_in)).float())
         ).requires_grad_()
    upstream = torch.randn(batch, features_out) * torch.exp2(torch.randint(-6, 6, (1, features_out)).float())
    y = layer(x)
    y.backward(upstream)
    return layer, x.detach(), weight, bias, upstream, y.detach(), x.grad, linear.weight.grad, linear.bias.grad


def test_one_dimensional_blocks_follow_each_gemms_contraction_axis():
    name = "mxfp8_e4m3:rule=rceil"
    layer, x, w, b, g, y, grad_x, grad_w, grad_b = _run_layer(Policy(weight=name, activation=name,
                                                                      activation_grad=name))
    assert torch.equal(y, F.linear(_q(x, name), _q(w, name), b))                # blocks along in_features
    assert torch.equal(grad_x, _q(g, name).mm(_q(w, name, axis=0)))             # W along out_features
    assert torch.equal(grad_w, _q(g, name, axis=0).t().mm(_q(x, name, axis=0)))  # G and X along the batch
    assert torch.equal(grad_b, _q(g, name).sum(0))
    # not the same as reusing the forward quantization
    assert not torch.equal(grad_x, _q(g, name).mm(_q(w, name)))


def test_tiles_and_tensor_scales_are_quantized_once():
    layer, x, w, b, g, y, grad_x, grad_w, grad_b = _run_layer(Policy(weight="nvfp4_2d", activation="fp8_tensor",
                                                                      activation_grad="fp8_tensor"))
    wq = _q(w, "nvfp4_2d")
    assert torch.equal(y, F.linear(_q(x, "fp8_tensor"), wq, b))
    assert torch.equal(grad_x, _q(g, "fp8_tensor").mm(wq))
    assert torch.equal(grad_w, _q(g, "fp8_tensor").t().mm(_q(x, "fp8_tensor")))


def test_random_hadamard_transform_of_the_weight_gradient_inputs():
    # without rounding the transform changes dL/dW only by float32 rounding (H is orthogonal)
    exact = _run_layer(Policy(), batch=20)
    transformed = _run_layer(Policy(wgrad_hadamard=16), batch=20)
    layer = transformed[0]
    matrix = layer._hadamard_matrix
    assert torch.equal(matrix @ matrix.t(), torch.eye(16))
    assert set(matrix.abs().reshape(-1).tolist()) == {0.25}
    assert torch.equal(transformed[6], exact[6])            # dL/dX untouched
    assert torch.allclose(transformed[7], exact[7], rtol=1e-5, atol=1e-5)
    assert not torch.equal(transformed[7], exact[7])        # it was applied
    # with NVFP4 roles: the rounded transforms, blocks along the batch axis (20 rows padded to 32)
    policy = Policy(weight="nvfp4_2d", activation="nvfp4", activation_grad="nvfp4", wgrad_hadamard=16)
    layer, x, w, b, g, y, grad_x, grad_w, grad_b = _run_layer(policy, batch=20)
    h = layer._hadamard_matrix

    def transform(t):
        padded = torch.cat([t, torch.zeros(12, t.shape[1])])
        return torch.matmul(h, padded.reshape(2, 16, -1)).reshape(32, -1)

    assert torch.equal(grad_w, _q(transform(g), "nvfp4", axis=0).t().mm(_q(transform(x), "nvfp4", axis=0)))
    assert torch.equal(grad_x, _q(g, "nvfp4").mm(_q(w, "nvfp4_2d")))


def test_the_observer_sees_scaled_tensors_in_units_of_their_scales():
    seen = []

    def observer(role, before, after, fmt):
        seen.append((role, before, after, fmt))

    torch.manual_seed(1)
    layer = emulate(nn.Linear(64, 16), Policy(weight="mxfp4", activation="nvfp4"), observer=observer)
    x = torch.randn(8, 64)
    layer(x).sum().backward()
    roles = [entry[0] for entry in seen]
    # X again along the batch axis for dL/dW; W is not re-quantized (x needs no gradient: no dL/dX GEMM)
    assert roles == ["activation", "weight", "activation"]
    for role, before, after, fmt in seen:
        assert fmt == fl.E2M1FN
        assert float(before.abs().max()) <= 2 * fmt.max          # floor and amax rules: amax / S < 2 max
        elements = torch.from_numpy(fl.quantize(before.numpy(), fmt, saturate=True))
        if role == "weight":   # MX: power-of-two scales, Q(x) / S is the element exactly
            assert torch.equal(after, elements)
        else:                  # NVFP4: Q(x) = RN32(element * S), so Q(x) / S is the element to float32 precision
            assert torch.allclose(after, elements, rtol=2.0 ** -23, atol=0) and torch.equal(after == 0, elements == 0)
    # the counters then count element-format saturation: MX floor saturates the block maxima above 6
    counters = Counters()
    layer = emulate(nn.Linear(64, 16), Policy(activation="mxfp4"), observer=counters)
    layer(torch.full((1, 64), 7.5)).sum().backward()        # 7.5 / 2^(2 - 2) = 7.5 > 6
    assert counters.finish_step(_Report())["saturated"] == 1.0


class _Report:
    cancelled_fraction, loss_scale, nonfinite, skipped = 0.0, 1.0, False, False


# ---- errors ---------------------------------------------------------------------------------------
def test_scaled_formats_are_refused_where_they_do_not_apply():
    model = fl.mma_model("h100", "e4m3fn")
    with pytest.raises(ValueError, match=r"weight=mxfp8_e4m3 is not allowed with forward_mma=.*not modelled"):
        Policy(weight="mxfp8_e4m3", forward_mma=model)
    with pytest.raises(ValueError, match="activation_grad=nvfp4 is not allowed with backward_mma"):
        Policy(activation_grad="nvfp4", backward_mma=model)
    Policy(output="mxfp8_e4m3", forward_mma=model)              # a result, not an operand: allowed
    with pytest.raises(ValueError, match="scaling='auto' is not allowed for the scaled format mxfp4"):
        TensorFormat("mxfp4", scaling="auto")
    with pytest.raises(ValueError, match="scaling='delayed' is not allowed for mxfp8_e4m3.*block='tensor'"):
        TensorFormat("mxfp8_e4m3", scaling="delayed")
    with pytest.raises(ValueError, match="scaling='delayed' is not allowed for e4m3fn"):
        TensorFormat("e4m3fn", scaling="delayed")
    with pytest.raises(ValueError, match="amax_history=0 is not allowed"):
        TensorFormat("fp8_tensor", scaling="delayed", amax_history=0)
    with pytest.raises(ValueError, match="margin=1.5 is not allowed"):
        TensorFormat("fp8_tensor", scaling="delayed", margin=1.5)
    with pytest.raises(ValueError, match="apply to scaling='delayed' only"):
        TensorFormat("fp8_tensor", amax_history=16)
    with pytest.raises(ValueError, match="saturate=False is not allowed for a scaled format"):
        TensorFormat("nvfp4", saturate=False)
    for size in (12, 1, 512, True):
        with pytest.raises(ValueError, match="wgrad_hadamard=.* is not allowed"):
            Policy(wgrad_hadamard=size)
    with pytest.raises(TypeError, match="must be None, a TensorFormat, a Format, a ScaledFormat"):
        Policy(weight=3)


def test_conv2d_takes_per_tensor_scaled_formats_only():
    with pytest.raises(ValueError, match="weight=mxfp8_e4m3 is not supported by EmulatedConv2d"):
        emulate(nn.Conv2d(2, 4, 3), Policy(weight="mxfp8_e4m3"))
    with pytest.raises(ValueError, match="wgrad_hadamard=16 is not supported by EmulatedConv2d"):
        emulate(nn.Conv2d(2, 4, 3), Policy(wgrad_hadamard=16))
    conv = emulate(nn.Conv2d(2, 4, 3), Policy(weight="fp8_tensor", activation="fp8_tensor",
                                              activation_grad=TensorFormat("fp8_tensor", scaling="delayed"),
                                              output="mxfp8_e4m3"))
    y = conv(torch.randn(2, 2, 6, 6, requires_grad=True))
    y.sum().backward()
    assert torch.isfinite(conv.weight.grad).all()


def test_tensor_format_text():
    assert str(TensorFormat("fp8_tensor", scaling="delayed", amax_history=16)) == \
        "fp8_tensor/scaling=delayed(history=16,margin=0)"
    assert str(TensorFormat("nvfp4", "stochastic")) == "nvfp4/stochastic"
    assert "wgrad_hadamard=16" in repr(emulate(nn.Linear(2, 2), configs.CONFIGS["nvfp4"].build_policy(0)))


# ---- the drift configurations ----------------------------------------------------------------------
@pytest.mark.parametrize("name", NEW_CONFIGS)
def test_every_scaled_configuration_trains_a_few_steps(name):
    config = configs.CONFIGS[name]
    assert name in configs.__doc__ and config.description
    for task, steps in (("digits", 3), ("charlm", 2)):
        result = runner.train(task, name, 0, steps, steps)
        assert not result.diverged and math.isfinite(result.final_loss)
        assert [row["step"] for row in result.rows] == list(range(steps + 1))
        if task == "digits":
            again = runner.train(task, name, 0, steps, steps)
            assert again.rows == result.rows  # deterministic (stochastic roundings are seeded)


def test_the_scaled_configurations_run_from_the_command_line(tmp_path, capsys):
    from fmtlab.cli import main
    status = main(["drift", "--configs", ",".join(NEW_CONFIGS), "--steps", "2", "--seeds", "1", "--jobs", "1",
                   "--no-plots", "--quiet", "--out", str(tmp_path)])
    assert status == 0
    summary = (tmp_path / "summary.csv").read_text()
    assert all(name in summary for name in NEW_CONFIGS)


def test_the_bias_gradient_has_its_own_delayed_history():
    layer = emulate(nn.Linear(8, 4), Policy(weight_grad=TensorFormat("fp8_tensor", scaling="delayed")))
    layer(torch.randn(3, 8)).sum().backward()
    histories = layer.amax_histories
    assert set(histories) == {("weight_grad", 0, None), ("weight_grad", 0, "bias")}
    assert histories[("weight_grad", 0, "bias")]._amax == float(layer.bias.grad.abs().max())
