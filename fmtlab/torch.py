"""PyTorch integration: quantize tensors with a straight-through gradient, and emulate layers.

``quantize(t, fmt, rounding, seed=...)`` rounds a tensor to any fmtlab format, bit for bit
as :func:`fmtlab.quantize` does (the exact rules are in :mod:`fmtlab.codec`'s docstring).
CPU tensors go through the C core, zero-copy (it reads and writes the tensors' memory); tensors on any other device go
through :mod:`fmtlab._torch_codec`, the same bit manipulation in torch integer ops.  The
gradient is straight-through: d quantize(x) / dx is taken as 1.

``emulate(module, policy)`` swaps every ``nn.Linear`` and ``nn.Conv2d`` of a module for an
emulated version that rounds, following a :class:`Policy`:

    forward:   Y  = Q_output( Q_activation(X) @ Q_weight(W)^T + b )
    backward:  G  = Q_activation_grad(dL/dY)
               dL/dX = Q_input_grad( G @ Q_weight(W) )
               dL/dW = Q_weight_grad( G^T @ Q_activation(X) ),   dL/db = Q_weight_grad( sum of G )

Each Q is a :class:`TensorFormat` (format, rounding, saturation and per-tensor scaling) or
None for "keep float32".  The three matmuls use torch's float32 matmul, or an MMA model
(``fl.matmul``) when the policy names one for the forward or the backward pass.  The bias
is added in float32 before the output rounding, as a fused GEMM epilogue does.

torch is imported only by this module and by :mod:`fmtlab.drift`.
"""
from __future__ import annotations

import dataclasses
import numbers

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import _c, _torch_codec
from .formats import Format, amax_bias, as_format

__all__ = ["quantize", "emulate", "Policy", "TensorFormat", "EmulatedLinear", "EmulatedConv2d", "EXACT",
           "auto_bias", "derive_seed", "as_tensor_format", "BACKENDS", "SCALINGS", "ROLES"]

BACKENDS = ("auto", "native", "torch")
SCALINGS = ("none", "auto")
ROLES = ("weight", "activation", "output", "activation_grad", "input_grad", "weight_grad")
_UINT64_MASK = (1 << 64) - 1


def derive_seed(seed: int, *keys: int) -> int:
    """A 64-bit seed for one stream, from a base seed and integer keys (SplitMix64 folding).

    h_0 = mix64(seed + golden);  h_{i+1} = mix64(h_i ^ (key_i + golden * (i + 1)))
    (golden = 0x9E3779B97F4A7C15, all modulo 2^64; mix64 is the C core's generator
    function).  Distinct key tuples give unrelated seeds, so each (step, layer, tensor)
    rounds with its own stochastic draws and a run is reproducible from its one base seed.
    """
    golden = 0x9E3779B97F4A7C15
    value = _c.mix64(int(seed) + golden)
    for position, key in enumerate(keys, start=1):
        value = _c.mix64(value ^ ((int(key) + golden * position) & _UINT64_MASK))
    return value


# ---- quantize with a straight-through gradient ----------------------------------------------

def _native_quantize_tensor(x: torch.Tensor, fmt: Format, request: _c.RoundingRequest) -> torch.Tensor:
    """The C core's fused quantize run on the tensor's own memory (contiguous float32/float64,
    CPU): no copy in, none out.  The same call as :func:`fmtlab.quantize` makes."""
    out = torch.empty_like(x)
    if x.dtype == torch.float32:
        function, pointer = _c.lib.fl_quantize_f32, "float *"
    else:
        function, pointer = _c.lib.fl_quantize_f64, "double *"
    status = function(_c.ffi.cast(pointer, x.data_ptr()), x.numel(), _c.c_format(fmt), _c.c_rounding(request),
                      _c.ffi.cast(pointer, out.data_ptr()), 0, _c.ffi.NULL)
    _c.check_status(status, "quantize")
    return out


def _quantize_values(t: torch.Tensor, fmt: Format, rounding: str, saturate, seed: int, sr_bits,
                     backend: str, sr_rule: str = _c.DEFAULT_SR_RULE) -> torch.Tensor:
    """The rounding itself, no autograd: same dtype and device as ``t``."""
    compute = t.detach()
    if compute.dtype in (torch.float16, torch.bfloat16):
        compute = compute.float()  # widening is exact; the result goes back to t's dtype
    use_native = backend == "native" or (backend == "auto" and compute.device.type == "cpu")
    if use_native:
        if compute.device.type != "cpu":
            raise ValueError(f"backend='native' runs on CPU tensors only; this tensor is on "
                             f"{compute.device}; use backend='auto' or 'torch'")
        request = _c.rounding_request(rounding, saturate, seed, sr_bits, sr_rule)
        result = _native_quantize_tensor(compute.contiguous(), fmt, request)
    else:
        result = _torch_codec.quantize(compute, fmt, rounding, saturate=saturate, seed=seed,
                                       sr_bits=0 if sr_bits is None else int(sr_bits), sr_rule=sr_rule)
    return result if result.dtype == t.dtype else result.to(t.dtype)


class _StraightThroughQuantize(torch.autograd.Function):
    """y = Q(x) forward; dL/dx = dL/dy backward (the straight-through estimator)."""

    @staticmethod
    def forward(ctx, t, fmt, rounding, saturate, seed, sr_bits, backend, sr_rule):
        return _quantize_values(t, fmt, rounding, saturate, seed, sr_bits, backend, sr_rule)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None, None, None, None, None, None, None


def quantize(t: torch.Tensor, fmt, rounding: str = "nearest_even", *, saturate=None, seed=None,
             sr_bits=None, sr_rule: str = _c.DEFAULT_SR_RULE, backend: str = "auto") -> torch.Tensor:
    """Round the tensor ``t`` to ``fmt`` and return the values in t's dtype, on t's device.

    ``t``: float32 or float64 (float16 and bfloat16 are widened exactly, rounded, and cast
    back).  ``rounding``, ``saturate``, ``seed``, ``sr_bits`` and ``sr_rule`` mean what they mean for
    :func:`fmtlab.quantize`; element i of ``t`` in row-major order is element i of the
    stochastic generator, so the same seed gives the same bits on every backend.
    ``backend``: "auto" (C core for CPU tensors, pure torch elsewhere), "native" (C core,
    CPU only) or "torch" (pure torch on any device; this is what GPUs run).
    The gradient passes straight through.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"t has dtype {t.dtype}: quantize takes float32, float64, float16 or bfloat16")
    fmt = as_format(fmt)
    # Checked once; a fresh seed per call when none is given, as the numpy codec does.
    request = _c.rounding_request(rounding, saturate, seed, sr_bits, sr_rule)
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not allowed; choose one of {', '.join(BACKENDS)}")
    return _StraightThroughQuantize.apply(t, fmt, request.mode, request.saturate, request.seed, request.sr_bits,
                                          backend, request.sr_rule)


# ---- per-tensor formats and the policy ----------------------------------------------------------

def auto_bias(fmt: Format, absolute_max: float) -> Format:
    """``fmt`` at the bias of the amax rule (:func:`fmtlab.formats.amax_bias`) for ``absolute_max``.

    The chosen bias is the largest whose max still covers ``absolute_max``: the tensor's
    largest magnitude lands in the top binade and as little as possible underflows.  Tesla's
    configurable formats (CFloat8, SHP) keep the bias in their 6-bit range 0..63 (a tensor
    too large for bias 0 then saturates); other formats take any bias, which is the same as
    a per-tensor power-of-two scale.  A zero or non-finite maximum keeps the format as it is.
    """
    bias = amax_bias(fmt, absolute_max)
    return fmt.replace(bias=bias) if bias != fmt.bias else fmt


@dataclasses.dataclass(frozen=True)
class TensorFormat:
    """How one tensor is rounded: format, rounding mode, saturation, per-tensor scaling.

    ``scaling="auto"`` picks the bias per tensor from its absolute maximum (:func:`auto_bias`),
    which for a format whose bias is fixed is a power-of-two scale; ``"none"`` keeps the
    format's bias.  A ``TensorFormat`` may be given as a format name or Format wherever one
    is expected: ``"bf16"`` means ``TensorFormat(fl.BF16)``.  ``sr_bits`` and ``sr_rule``:
    stochastic rounding with that many random bits and that rule (:mod:`fmtlab.codec`).
    """

    format: Format
    rounding: str = "nearest_even"
    saturate: bool | str | None = None
    scaling: str = "none"
    sr_bits: int | None = None
    sr_rule: str = _c.DEFAULT_SR_RULE

    def __post_init__(self):
        object.__setattr__(self, "format", as_format(self.format, "format"))
        _c.rounding_request(self.rounding, self.saturate, None, self.sr_bits, self.sr_rule,
                            draw_seed=False)  # checks only
        if self.scaling not in SCALINGS:
            raise ValueError(f"scaling={self.scaling!r} is not allowed; choose one of {', '.join(SCALINGS)}")

    def effective_format(self, t: torch.Tensor) -> Format:
        """The format used for ``t`` (its bias chosen from t when scaling is "auto")."""
        if self.scaling == "none":
            return self.format
        absolute_max = float(t.detach().abs().max()) if t.numel() else 0.0
        return auto_bias(self.format, absolute_max)

    def __str__(self):
        parts = [str(self.format)]
        if self.rounding != "nearest_even":
            parts.append(self.rounding)
        if self.scaling != "none":
            parts.append(f"scaling={self.scaling}")
        if self.saturate:
            parts.append("saturate" if self.saturate is True else f"saturate={self.saturate}")
        return "/".join(parts)


def as_tensor_format(value, argument="tensor format"):
    """None, a TensorFormat, a Format or a format name, as a TensorFormat (or None)."""
    if value is None or isinstance(value, TensorFormat):
        return value
    if isinstance(value, (Format, str)):
        return TensorFormat(as_format(value, argument))
    raise TypeError(f"{argument} must be None, a TensorFormat, a Format or a format name, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Policy:
    """Formats of the six tensors of an emulated layer, and optional MMA models.

    forward: ``weight`` (W), ``activation`` (X), ``output`` (Y);
    backward: ``activation_grad`` (dL/dY entering the layer), ``input_grad`` (dL/dX leaving
    it), ``weight_grad`` (dL/dW and dL/db).  None keeps that tensor in float32.
    ``forward_mma`` / ``backward_mma``: an MMA model (``fl.mma_model(...)``) for the forward
    matmul / the two backward matmuls, or None for torch's float32 matmul.
    ``seed``: base seed of the stochastic roundings inside the layers.
    """

    weight: TensorFormat | None = None
    activation: TensorFormat | None = None
    output: TensorFormat | None = None
    activation_grad: TensorFormat | None = None
    input_grad: TensorFormat | None = None
    weight_grad: TensorFormat | None = None
    forward_mma: object = None
    backward_mma: object = None
    seed: int = 0

    def __post_init__(self):
        for role in ROLES:
            object.__setattr__(self, role, as_tensor_format(getattr(self, role), role))
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise TypeError(f"seed must be an int, got {self.seed!r}")

    @property
    def is_exact(self) -> bool:
        """True when nothing is rounded and the matmuls are torch's own."""
        return all(getattr(self, role) is None for role in ROLES) and self.forward_mma is None \
            and self.backward_mma is None

    def with_seed(self, seed: int) -> "Policy":
        return dataclasses.replace(self, seed=seed)


EXACT = Policy()


# ---- the emulated layers ---------------------------------------------------------------------------

def _matmul(a: torch.Tensor, b: torch.Tensor, model, a_exponent: int = 0, b_exponent: int = 0) -> torch.Tensor:
    """a @ b in float32, or through the MMA model ``model`` (fl.matmul on the CPU).

    With per-tensor scaling an operand rounded to a format whose bias is b0 + k holds
    values of the model's format (bias b0) times 2^-k: the MMA model is given a * 2^k_a and
    b * 2^k_b (exact, values of its input formats) and its result is scaled back by
    2^-(k_a + k_b), as FP8 GEMMs apply their per-tensor scale factors.
    """
    if model is None:
        return a.mm(b)
    from .mma import matmul  # the tensor-core layer; imported only when a policy names a model
    a_scaled = a.detach().cpu().numpy() * np.float32(2.0 ** a_exponent) if a_exponent else a.detach().cpu().numpy()
    b_scaled = b.detach().cpu().numpy() * np.float32(2.0 ** b_exponent) if b_exponent else b.detach().cpu().numpy()
    result = matmul(a_scaled, b_scaled, model=model)
    if a_exponent + b_exponent:
        result = result * np.float32(2.0 ** -(a_exponent + b_exponent))
    return torch.from_numpy(np.ascontiguousarray(result, dtype=np.float32)).to(a.device)


class _EmulatedLayer:
    """Shared part of the emulated layers: policy, per-call seeds, the observer hook."""

    def _setup(self, policy: Policy, layer_index: int, observer):
        self.policy = policy
        self.layer_index = layer_index
        self.observer = observer
        self.calls = 0  # forward calls in training mode; part of the stochastic seeds

    def _round(self, role: str, t: torch.Tensor, call: int) -> torch.Tensor:
        return self._round_scaled(role, t, call)[0]

    def _round_scaled(self, role: str, t: torch.Tensor, call: int):
        """(Q_role(t), k): the rounded tensor and its per-tensor scale exponent, k = the bias
        used minus the format's own (0 without scaling)."""
        tensor_format = getattr(self.policy, role)
        if tensor_format is None:
            return t, 0
        fmt = tensor_format.effective_format(t)
        seed = 0
        if tensor_format.rounding == "stochastic":
            seed = derive_seed(self.policy.seed, self.layer_index, ROLES.index(role), call)
        result = _quantize_values(t, fmt, tensor_format.rounding, tensor_format.saturate, seed,
                                  tensor_format.sr_bits, "auto", tensor_format.sr_rule)
        if self.observer is not None and call >= 0:
            self.observer(role, t, result, fmt)
        return result, fmt.bias - tensor_format.format.bias

    def _next_call(self) -> int:
        if self.training:
            self.calls += 1
            return self.calls
        return -1  # evaluation passes use their own stream and leave the training one alone


class _LinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, layer, call):
        x2 = x.reshape(-1, x.shape[-1])
        xq, x_exponent = layer._round_scaled("activation", x2, call)
        wq, w_exponent = layer._round_scaled("weight", weight, call)
        model = layer.policy.forward_mma
        if model is None:
            y = F.linear(xq, wq, bias)
        else:
            y = _matmul(xq, wq.t(), model, x_exponent, w_exponent)
            if bias is not None:
                y = y + bias
        y = layer._round("output", y, call)
        ctx.save_for_backward(xq, wq)
        ctx.layer, ctx.call, ctx.has_bias = layer, call, bias is not None
        ctx.input_shape, ctx.exponents = x.shape, (x_exponent, w_exponent)
        return y.reshape(*x.shape[:-1], y.shape[-1])

    @staticmethod
    def backward(ctx, grad_output):
        xq, wq = ctx.saved_tensors
        layer, call, model = ctx.layer, ctx.call, ctx.layer.policy.backward_mma
        x_exponent, w_exponent = ctx.exponents
        g, g_exponent = layer._round_scaled("activation_grad", grad_output.reshape(-1, grad_output.shape[-1]),
                                            call)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = _matmul(g, wq, model, g_exponent, w_exponent)
            grad_x = layer._round("input_grad", grad_x, call).reshape(ctx.input_shape)
        if ctx.needs_input_grad[1]:
            # G^T @ X, the product torch's own Linear backward forms (so FP32 policies match it)
            grad_w = layer._round("weight_grad", _matmul(g.t(), xq, model, g_exponent, x_exponent), call)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = layer._round("weight_grad", g.sum(0), call)
        return grad_x, grad_w, grad_b, None, None


class EmulatedLinear(nn.Linear, _EmulatedLayer):
    """An ``nn.Linear`` whose matmuls round as its :class:`Policy` says (see the module docstring).

    It shares the original layer's ``weight`` and ``bias`` Parameters, so an optimiser built
    before :func:`emulate` keeps working.
    """

    def __init__(self, linear: nn.Linear, policy: Policy, layer_index: int = 0, observer=None):
        nn.Module.__init__(self)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight
        self.bias = linear.bias
        self.train(linear.training)
        self._setup(policy, layer_index, observer)

    def forward(self, x):
        if self.policy.is_exact:
            return F.linear(x, self.weight, self.bias)
        return _LinearFunction.apply(x, self.weight, self.bias, self, self._next_call())

    def extra_repr(self):
        return f"{super().extra_repr()}, policy={_policy_text(self.policy)}"


class _Conv2dFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, layer, call):
        xq, x_exponent = layer._round_scaled("activation", x, call)
        wq, w_exponent = layer._round_scaled("weight", weight, call)
        model = layer.policy.forward_mma
        ctx.exponents = (x_exponent, w_exponent)
        if model is None:
            y = F.conv2d(xq, wq, bias, layer.stride, layer.padding, layer.dilation, layer.groups)
        else:
            y = _conv2d_as_matmul(xq, wq, layer, model, x_exponent, w_exponent)
            if bias is not None:
                y = y + bias.reshape(1, -1, 1, 1)
        y = layer._round("output", y, call)
        ctx.save_for_backward(xq, wq)
        ctx.layer, ctx.call, ctx.has_bias = layer, call, bias is not None
        return y

    @staticmethod
    def backward(ctx, grad_output):
        xq, wq = ctx.saved_tensors
        layer, call, model = ctx.layer, ctx.call, ctx.layer.policy.backward_mma
        g, g_exponent = layer._round_scaled("activation_grad", grad_output, call)
        grad_x = grad_w = grad_b = None
        arguments = (layer.stride, layer.padding, layer.dilation, layer.groups)
        if model is None:
            if ctx.needs_input_grad[0]:
                grad_x = torch.nn.grad.conv2d_input(xq.shape, wq, g, *arguments)
            if ctx.needs_input_grad[1]:
                grad_w = torch.nn.grad.conv2d_weight(xq, wq.shape, g, *arguments)
        else:
            grad_x, grad_w = _conv2d_backward_as_matmul(xq, wq, g, layer, model, *ctx.exponents, g_exponent)
        if grad_x is not None and ctx.needs_input_grad[0]:
            grad_x = layer._round("input_grad", grad_x, call)
        else:
            grad_x = None
        if grad_w is not None and ctx.needs_input_grad[1]:
            grad_w = layer._round("weight_grad", grad_w, call)
        else:
            grad_w = None
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = layer._round("weight_grad", g.sum((0, 2, 3)), call)
        return grad_x, grad_w, grad_b, None, None


def _unfold(x, layer):
    return F.unfold(x, layer.kernel_size, layer.dilation, layer.padding, layer.stride)


def _conv2d_as_matmul(xq, wq, layer, model, x_exponent=0, w_exponent=0):
    """Convolution as W (O x CKK) @ columns (CKK x N*L): the im2col form, through the MMA model."""
    batch, out_channels = xq.shape[0], wq.shape[0]
    columns = _unfold(xq, layer)  # N x CKK x L
    locations = columns.shape[-1]
    columns = columns.permute(1, 0, 2).reshape(columns.shape[1], -1)
    y = _matmul(wq.reshape(out_channels, -1), columns, model, w_exponent, x_exponent)  # O x N*L
    height = (xq.shape[2] + 2 * layer.padding[0] - layer.dilation[0] * (layer.kernel_size[0] - 1) - 1) \
        // layer.stride[0] + 1
    width = locations // height
    return y.reshape(out_channels, batch, height, width).permute(1, 0, 2, 3).contiguous()


def _conv2d_backward_as_matmul(xq, wq, g, layer, model, x_exponent=0, w_exponent=0, g_exponent=0):
    """dL/dX and dL/dW of the im2col form; the column gradients are folded back in float32."""
    batch, out_channels = xq.shape[0], wq.shape[0]
    columns = _unfold(xq, layer)
    depth = columns.shape[1]
    columns = columns.permute(1, 0, 2).reshape(depth, -1)  # CKK x N*L
    g2 = g.reshape(batch, out_channels, -1).permute(1, 0, 2).reshape(out_channels, -1)  # O x N*L
    grad_w = _matmul(g2, columns.t(), model, g_exponent, x_exponent).reshape(wq.shape)
    grad_columns = _matmul(wq.reshape(out_channels, -1).t(), g2, model, w_exponent, g_exponent)  # CKK x N*L
    grad_columns = grad_columns.reshape(depth, batch, -1).permute(1, 0, 2)
    grad_x = F.fold(grad_columns, xq.shape[2:], layer.kernel_size, layer.dilation, layer.padding, layer.stride)
    return grad_x, grad_w


class EmulatedConv2d(nn.Conv2d, _EmulatedLayer):
    """An ``nn.Conv2d`` that rounds as its :class:`Policy` says; shares the original Parameters.

    With an MMA model the convolution runs as one im2col matmul (``groups=1`` and
    ``padding_mode="zeros"`` only); the backward pass's column gradients are folded back
    into dL/dX in float32.
    """

    def __init__(self, conv: nn.Conv2d, policy: Policy, layer_index: int = 0, observer=None):
        nn.Module.__init__(self)
        for name in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                     "transposed", "output_padding", "groups", "padding_mode"):
            setattr(self, name, getattr(conv, name))
        if isinstance(self.padding, str):
            raise ValueError(f"padding={self.padding!r} is not supported by EmulatedConv2d; "
                             "give the padding as numbers")
        if self.padding_mode != "zeros":
            raise ValueError(f"padding_mode={self.padding_mode!r} is not supported by EmulatedConv2d; "
                             "allowed: 'zeros'")
        if (policy.forward_mma is not None or policy.backward_mma is not None) and self.groups != 1:
            raise ValueError(f"groups={self.groups} is not supported with an MMA model; allowed: 1")
        self.weight = conv.weight
        self.bias = conv.bias
        self.train(conv.training)
        self._setup(policy, layer_index, observer)

    def forward(self, x):
        if self.policy.is_exact:
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return _Conv2dFunction.apply(x, self.weight, self.bias, self, self._next_call())

    def extra_repr(self):
        return f"{super().extra_repr()}, policy={_policy_text(self.policy)}"


def _policy_text(policy: Policy) -> str:
    parts = [f"{role}={getattr(policy, role)}" for role in ROLES if getattr(policy, role) is not None]
    for name in ("forward_mma", "backward_mma"):
        if getattr(policy, name) is not None:
            parts.append(f"{name}={getattr(policy, name)}")
    return "(" + ", ".join(parts) + ")" if parts else "exact"


def emulate(module: nn.Module, policy: Policy | None = None, *, observer=None) -> nn.Module:
    """Swap every ``nn.Linear`` and ``nn.Conv2d`` in ``module`` for its emulated version.

    The swap is in place and keeps the Parameters (an optimiser built before keeps
    working); the (possibly new) root module is returned.  Layers that are already
    emulated get the new policy.  ``observer``, if given, is called as
    ``observer(role, before, after, fmt)`` after every rounding inside the layers (the
    drift counters use it).  Layers are numbered in ``module.modules()`` order; the number
    keys their stochastic seeds.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    policy = EXACT if policy is None else policy
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be a fmtlab.torch.Policy, got {policy!r}")
    counter = iter(range(1 << 30))

    def convert(child):
        if isinstance(child, _EmulatedLayer):
            child._setup(policy, next(counter), observer)
            return child
        if type(child) is nn.Linear:
            return EmulatedLinear(child, policy, next(counter), observer)
        if type(child) is nn.Conv2d:
            return EmulatedConv2d(child, policy, next(counter), observer)
        return None

    root = convert(module)
    if root is not None:
        return root

    def walk(parent):
        for name, child in list(parent.named_children()):
            replacement = convert(child)
            if replacement is not None:
                setattr(parent, name, replacement)
            else:
                walk(child)

    walk(module)
    return module
