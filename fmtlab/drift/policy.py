"""Building blocks for the layer policies of the drift configurations.

A :class:`fmtlab.torch.Policy` names the format of each of the six tensors of an emulated
layer (W, X, Y forward; dL/dY, dL/dX, dL/dW backward).  Two shapes cover the usual recipes:

* :func:`mixed_precision` -- every GEMM operand and result in one 16-bit format (BF16 or
  FP16 autocast): all six tensors rounded to it with nearest-even, no saturation (an
  overflow gives Inf, which is what a loss scaler detects);
* :func:`eight_bit` -- FP8-style training: W and X in a forward format, dL/dY in a backward
  format, each with its own per-tensor bias chosen from the tensor's absolute maximum
  (``scaling="auto"``; a per-tensor power-of-two scale for formats whose bias is fixed),
  saturating; the GEMM results stay in float32 (they are accumulated and output in FP32);
* :func:`block_scaled` -- training with scaled formats (:class:`fmtlab.scaled.ScaledFormat`:
  MX, NVFP4, block and per-tensor FP8): W, X and dL/dY each in its own scaled format, with
  the format's own scales (or TransformerEngine's delayed per-tensor scaling), the GEMM
  results in float32.  In Linear layers each GEMM quantizes its operands along its own
  contraction axis (fmtlab.torch's module docstring), as the recipes do.
"""
from __future__ import annotations

from ..torch import Policy, TensorFormat

__all__ = ["mixed_precision", "eight_bit", "block_scaled"]


def mixed_precision(fmt, rounding: str = "nearest_even") -> Policy:
    """All six tensors of every emulated layer rounded to ``fmt``."""
    tensor_format = TensorFormat(fmt, rounding)
    return Policy(weight=tensor_format, activation=tensor_format, output=tensor_format,
                  activation_grad=tensor_format, input_grad=tensor_format, weight_grad=tensor_format)


def eight_bit(forward, backward, *, scaling: str = "auto", forward_mma=None, backward_mma=None) -> Policy:
    """W and X in ``forward``, dL/dY in ``backward``; results in float32 (see the module docstring)."""
    forward_format = TensorFormat(forward, saturate=True, scaling=scaling)
    backward_format = TensorFormat(backward, saturate=True, scaling=scaling)
    return Policy(weight=forward_format, activation=forward_format, activation_grad=backward_format,
                  forward_mma=forward_mma, backward_mma=backward_mma)


def block_scaled(weight, activation, gradient, *, gradient_rounding: str = "nearest_even", scaling: str = "none",
                 amax_history: int = 1024, margin: int = 0, wgrad_hadamard: int | None = None) -> Policy:
    """W in ``weight``, X in ``activation``, dL/dY in ``gradient`` (scaled formats or their names);
    results in float32 (see the module docstring).

    ``gradient_rounding``: dL/dY's rounding mode (NVFP4 rounds gradients stochastically);
    ``scaling="delayed"`` with ``amax_history`` and ``margin``: TransformerEngine's delayed
    scaling for all three (per-tensor formats only); ``wgrad_hadamard``: the random Hadamard
    transform of the dL/dW GEMM's inputs (:class:`fmtlab.torch.Policy`).
    """
    history = dict(amax_history=amax_history, margin=margin) if scaling == "delayed" else {}
    return Policy(weight=TensorFormat(weight, scaling=scaling, **history),
                  activation=TensorFormat(activation, scaling=scaling, **history),
                  activation_grad=TensorFormat(gradient, gradient_rounding, scaling=scaling, **history),
                  wgrad_hadamard=wgrad_hadamard)
