"""Building blocks for the layer policies of the drift configurations.

A :class:`fmtlab.torch.Policy` names the format of each of the six tensors of an emulated
layer (W, X, Y forward; dL/dY, dL/dX, dL/dW backward).  Two shapes cover the usual recipes:

* :func:`mixed_precision` -- every GEMM operand and result in one 16-bit format (BF16 or
  FP16 autocast): all six tensors rounded to it with nearest-even, no saturation (an
  overflow gives Inf, which is what a loss scaler detects);
* :func:`eight_bit` -- FP8-style training: W and X in a forward format, dL/dY in a backward
  format, each with its own per-tensor bias chosen from the tensor's absolute maximum
  (``scaling="auto"``; a per-tensor power-of-two scale for formats whose bias is fixed),
  saturating; the GEMM results stay in float32 (they are accumulated and output in FP32).
"""
from __future__ import annotations

from ..torch import Policy, TensorFormat


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
