"""fmtlab.torch.emulate: emulated Linear / Conv2d layers and their policies.

* with the FP32 policy (every tensor rounded to fp32, which is exact for float32) an emulated
  Linear gives exactly nn.Linear's output and gradients, on both codec paths;
* with a BF16 / FP8 policy the forward pass and each backward product equal the formula
  in fmtlab.torch's docstring, computed by hand with fmtlab.torch.quantize;
* the swap keeps the Parameters, numbers the layers, and stochastic rounding inside layers
  is reproducible from the policy's seed.
"""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import fmtlab as fl
import fmtlab.torch as flt

FP32_EVERYWHERE = flt.Policy(**{role: "fp32" for role in flt.ROLES})


@pytest.fixture(params=["auto", "torch"])
def backend(request, monkeypatch):
    """Run the layer's roundings on the C core (auto, CPU) or force the pure-torch path."""
    if request.param == "torch":
        original = flt._quantize_values
        monkeypatch.setattr(flt, "_quantize_values",
                            lambda t, fmt, rounding, saturate, seed, sr_bits, _backend, *rule:
                            original(t, fmt, rounding, saturate, seed, sr_bits, "torch", *rule))
    return request.param


def _forward_backward(layer, x):
    x = x.clone().requires_grad_()
    y = layer(x)
    torch.manual_seed(1)
    (y * torch.randn_like(y)).sum().backward()
    grads = [x.grad] + [p.grad.clone() for p in layer.parameters()]
    for parameter in layer.parameters():
        parameter.grad = None
    return y.detach(), grads


@pytest.mark.parametrize("shape", [(64, 20), (3, 5, 20)])
def test_linear_with_the_fp32_policy_equals_nn_linear(shape, backend):
    torch.manual_seed(0)
    linear = nn.Linear(20, 7)
    x = torch.randn(*shape)
    want_y, want_grads = _forward_backward(linear, x)
    emulated = flt.emulate(nn.Sequential(linear), FP32_EVERYWHERE)[0]
    assert isinstance(emulated, flt.EmulatedLinear)
    got_y, got_grads = _forward_backward(emulated, x)
    assert torch.equal(got_y, want_y)
    for got, want in zip(got_grads, want_grads):
        assert torch.equal(got, want)


def test_linear_with_the_exact_policy_equals_nn_linear():
    torch.manual_seed(0)
    linear = nn.Linear(20, 7)
    x = torch.randn(16, 20)
    want_y, want_grads = _forward_backward(linear, x)
    got_y, got_grads = _forward_backward(flt.emulate(linear, flt.Policy()), x)
    assert torch.equal(got_y, want_y) and all(torch.equal(a, b) for a, b in zip(got_grads, want_grads))


def test_conv2d_with_the_fp32_policy_matches_nn_conv2d(backend):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, kernel_size=3, padding=1, stride=2)
    x = torch.randn(2, 3, 9, 9)
    want_y, want_grads = _forward_backward(conv, x)
    got_y, got_grads = _forward_backward(flt.EmulatedConv2d(conv, FP32_EVERYWHERE), x)
    assert torch.equal(got_y, want_y)
    for got, want in zip(got_grads, want_grads):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_bf16_policy_follows_the_documented_formula():
    torch.manual_seed(0)
    policy = flt.Policy(weight="bf16", activation="bf16", output="bf16", activation_grad="e5m2",
                        input_grad="fp16", weight_grad="bf16")
    linear = nn.Linear(12, 5)
    x = torch.randn(8, 12) * 3
    weight, bias = linear.weight.detach().clone(), linear.bias.detach().clone()
    emulated = flt.emulate(linear, policy)
    x_leaf = x.clone().requires_grad_()
    y = emulated(x_leaf)
    upstream = torch.randn_like(y)
    y.backward(upstream)

    def q(t, fmt):
        return flt.quantize(t, fmt)
    xq, wq = q(x, "bf16"), q(weight, "bf16")
    assert torch.equal(y.detach(), q(F.linear(xq, wq, bias), "bf16"))
    g = q(upstream, "e5m2")
    assert torch.equal(x_leaf.grad, q(g.mm(wq), "fp16"))
    assert torch.equal(linear.weight.grad, q(g.t().mm(xq), "bf16"))
    assert torch.equal(linear.bias.grad, q(g.sum(0), "bf16"))


def test_auto_scaling_rounds_each_tensor_with_its_own_bias():
    torch.manual_seed(0)
    policy = flt.Policy(activation=flt.TensorFormat(fl.CFLOAT8_1_4_3, scaling="auto", saturate=True))
    seen = []
    layer = flt.emulate(nn.Linear(4, 2), policy, observer=lambda role, before, after, fmt: seen.append(fmt))
    x = torch.tensor([[1e-3, -2e-3, 5e-4, 0.0]])
    layer(x)
    # 1.875 * 2^(15 - 24) = 0.00366 >= 0.002 > 1.875 * 2^(15 - 25)
    assert seen == [flt.auto_bias(fl.CFLOAT8_1_4_3, 2e-3)] and seen[0].bias == 24


def test_emulate_keeps_parameters_and_numbers_layers():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Sequential(nn.Linear(8, 4), nn.ReLU()),
                          nn.Linear(4, 3))
    parameters = list(model.parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    policy = flt.Policy(weight="bf16")
    same = flt.emulate(model, policy)
    assert same is model and list(model.parameters()) == parameters
    layers = [m for m in model.modules() if isinstance(m, flt._EmulatedLayer)]
    assert [type(m).__name__ for m in layers] == ["EmulatedConv2d", "EmulatedLinear", "EmulatedLinear"]
    assert [m.layer_index for m in layers] == [0, 1, 2]
    model(torch.randn(2, 1, 4, 4)).sum().backward()
    optimizer.step()  # the optimiser built before the swap still owns the parameters
    flt.emulate(model, flt.Policy())  # re-emulating replaces the policy, does not wrap twice
    assert all(m.policy.is_exact for m in layers)


def test_stochastic_rounding_in_layers_is_reproducible_from_the_seed():
    def run(seed):
        torch.manual_seed(0)
        layer = nn.Linear(16, 16)
        policy = flt.Policy(weight=flt.TensorFormat("e4m3fn", "stochastic", saturate=True), seed=seed)
        layer = flt.emulate(layer, policy)
        x = torch.randn(4, 16)
        return torch.cat([layer(x), layer(x)])
    first = run(1)
    assert torch.equal(first, run(1))
    assert not torch.equal(first, run(2))
    assert not torch.equal(first[:4], first[4:])  # each forward call draws afresh


def test_policy_and_tensor_format_validate_their_arguments():
    with pytest.raises(ValueError, match="scaling='per_row'.*none, auto"):
        flt.TensorFormat("bf16", scaling="per_row")
    with pytest.raises(ValueError, match="rounding='rne'"):
        flt.TensorFormat("bf16", "rne")
    with pytest.raises(TypeError, match="weight must be None, a TensorFormat"):
        flt.Policy(weight=16)
    with pytest.raises(TypeError, match="policy must be"):
        flt.emulate(nn.Linear(2, 2), "bf16")
