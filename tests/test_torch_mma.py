"""Emulated layers with a tensor-core model in their matmuls (fl.matmul inside the autograd function).

The forward product and both backward products of an emulated Linear equal fl.matmul on the
rounded operands, per-tensor scales included (operands brought back to the model's formats,
result scaled back); an im2col Conv2d under the exact model matches torch's convolution.
"""
import numpy as np
import pytest
import torch
from torch import nn

import fmtlab as fl
import fmtlab.torch as flt

mma = pytest.importorskip("fmtlab.mma")


def _fp8_policy(scaling):
    forward = flt.TensorFormat(fl.E4M3FN, saturate=True, scaling=scaling)
    backward = flt.TensorFormat(fl.E5M2, saturate=True, scaling=scaling)
    return flt.Policy(weight=forward, activation=forward, activation_grad=backward,
                      forward_mma=mma.mma_model("h100", "e4m3"),
                      backward_mma=mma.mma_model("h100", "e5m2").replace(b_format=fl.E4M3FN))


@pytest.mark.parametrize("scaling", ["none", "auto"])
def test_linear_products_go_through_the_mma_model(scaling):
    torch.manual_seed(0)
    linear = nn.Linear(40, 6)
    weight, bias = linear.weight.detach().clone(), linear.bias.detach().clone()
    policy = _fp8_policy(scaling)
    layer = flt.emulate(linear, policy)
    x = (torch.randn(5, 40) * 0.3).requires_grad_()
    y = layer(x)
    upstream = torch.randn_like(y) * 1e-2
    y.backward(upstream)

    def rounded(t, tensor_format):
        fmt = tensor_format.effective_format(t)
        q = flt.quantize(t.detach(), fmt, saturate=True)
        k = fmt.bias - tensor_format.format.bias
        return q.numpy() * np.float32(2.0 ** k), k  # the values in the model's own format

    xs, kx = rounded(x, policy.activation)
    ws, kw = rounded(weight, policy.weight)
    gs, kg = rounded(upstream, policy.activation_grad)
    if scaling == "none":
        assert kx == kw == kg == 0
    want_y = fl.matmul(xs, ws.T, model=policy.forward_mma) * np.float32(2.0 ** -(kx + kw)) + bias.numpy()
    assert np.array_equal(y.detach().numpy(), want_y)
    want_grad_x = fl.matmul(gs, ws, model=policy.backward_mma) * np.float32(2.0 ** -(kg + kw))
    assert np.array_equal(x.grad.numpy(), want_grad_x)
    want_grad_w = fl.matmul(gs.T, xs, model=policy.backward_mma) * np.float32(2.0 ** -(kg + kx))
    assert np.array_equal(linear.weight.grad.numpy(), want_grad_w)


def test_conv2d_under_the_exact_model_matches_torch():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, kernel_size=3, padding=1)
    x = torch.randn(2, 2, 5, 5, requires_grad=True)
    y_want = conv(x)
    y_want.sum().backward()
    want = [x.grad.clone(), conv.weight.grad.clone()]
    x.grad = None
    conv.weight.grad = None
    exact = mma.mma_model("exact", "fp32")
    layer = flt.EmulatedConv2d(conv, flt.Policy(forward_mma=exact, backward_mma=exact))
    y = layer(x)
    y.sum().backward()
    torch.testing.assert_close(y, y_want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x.grad, want[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(conv.weight.grad, want[1], rtol=1e-5, atol=1e-6)


def test_an_operand_outside_the_model_format_is_an_error():
    layer = flt.emulate(nn.Linear(4, 2), flt.Policy(forward_mma=mma.mma_model("h100", "e4m3")))
    with pytest.raises(ValueError, match="not representable in the model's format"):
        layer(torch.randn(3, 4))
