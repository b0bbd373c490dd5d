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

**Scaled formats** (:class:`fmtlab.scaled.ScaledFormat`: MX, NVFP4, block and per-tensor FP8)
may be given for any role; their scaling is their own (``scaling="none"``; ``"auto"`` is
refused, ``"delayed"`` takes a per-tensor format's scale from an amax history, see
:class:`AmaxHistory`).  In a Linear layer the GEMM operands W, X and dL/dY are quantized
with their blocks along each GEMM's contraction dimension, as block-scaled GEMMs need and as
torchao's MX training, NVIDIA's NVFP4 recipe and DeepSeek-V3 do: 1-D blocks (and
``"channel"``) run along the format's axis for the first GEMM that uses the tensor (the
forward for W and X, dL/dX for dL/dY) and along the other axis of the 2-D tensor for the
second (dL/dX = G @ W re-quantizes W along its output axis; dL/dW = G^T @ X re-quantizes G and
X along the batch axis), each from the unrounded tensor.  Tiles and per-tensor scales are
quantized once and serve both GEMMs (a square tile is the same for W and W^T: NVFP4's 2-D
weight scaling).  ``Policy(wgrad_hadamard=16)`` multiplies both inputs of the dL/dW GEMM by
a random Hadamard transform along the batch axis before they are quantized (NVFP4's RHT;
dL/dW = (HG)^T (HX) = G^T X exactly, H orthogonal).  An MMA model with a scaled operand is
refused: block-scaled MMA (Blackwell) is not modelled yet.  Conv2d layers take scaled
formats with ``block="tensor"`` only for W, X and dL/dY (their GEMMs are im2col products
whose contraction axes are not a tensor axis).

torch is imported only by this module and by :mod:`fmtlab.drift`.
"""
from __future__ import annotations

import collections
import dataclasses
import math
import numbers

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import _c, _torch_codec, _torch_scaled, codec
from .formats import Format, amax_bias, as_format
from .integers import IntFormat
from .scaled import ScaledFormat, as_scaled_format, check_saturate

__all__ = ["quantize", "emulate", "Policy", "TensorFormat", "EmulatedLinear", "EmulatedConv2d", "EXACT",
           "auto_bias", "derive_seed", "as_tensor_format", "AmaxHistory", "BACKENDS", "SCALINGS", "ROLES"]

BACKENDS = ("auto", "native", "torch")
SCALINGS = ("none", "auto", "delayed")
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


def _native_quantize_scaled(x: torch.Tensor, fmt: ScaledFormat, rounding: str, seed: int, sr_bits,
                            sr_rule: str) -> torch.Tensor:
    """``fmtlab.quantize`` on the tensor's numpy view (contiguous float32/float64, CPU): no copy
    in, and the result array becomes the returned tensor (no copy out)."""
    out = codec.quantize(x.numpy(), fmt, rounding, saturate=True, seed=seed, sr_bits=sr_bits, sr_rule=sr_rule)
    return torch.from_numpy(out)


def _quantize_values(t: torch.Tensor, fmt, rounding: str, saturate, seed: int, sr_bits,
                     backend: str, sr_rule: str = _c.DEFAULT_SR_RULE) -> torch.Tensor:
    """The rounding itself, no autograd: same dtype and device as ``t``.  ``fmt``: a Format, or
    a ScaledFormat (its elements always saturate; ``saturate`` is then not used)."""
    compute = t.detach()
    if compute.dtype in (torch.float16, torch.bfloat16):
        compute = compute.float()  # widening is exact; the result goes back to t's dtype
    use_native = backend == "native" or (backend == "auto" and compute.device.type == "cpu")
    if use_native and compute.device.type != "cpu":
        raise ValueError(f"backend='native' runs on CPU tensors only; this tensor is on "
                         f"{compute.device}; use backend='auto' or 'torch'")
    if isinstance(fmt, ScaledFormat):
        if use_native:
            result = _native_quantize_scaled(compute.contiguous(), fmt, rounding, seed, sr_bits, sr_rule)
        else:
            result = _torch_scaled.quantize(compute, fmt, rounding, seed=seed,
                                            sr_bits=0 if sr_bits is None else int(sr_bits), sr_rule=sr_rule)
    elif use_native and isinstance(fmt, IntFormat):
        # integers: the codec's own path (their float format in C, then the clamp), on the numpy view
        result = torch.from_numpy(codec.quantize(compute.contiguous().numpy(), fmt, rounding, saturate=saturate,
                                                 seed=seed, sr_bits=sr_bits, sr_rule=sr_rule))
    elif use_native:
        request = _c.rounding_request(rounding, saturate, seed, sr_bits, sr_rule)
        result = _native_quantize_tensor(compute.contiguous(), fmt, request)
    else:
        result = _torch_codec.quantize(compute, fmt, rounding, saturate=saturate, seed=seed,
                                       sr_bits=0 if sr_bits is None else int(sr_bits), sr_rule=sr_rule)
    return result if result.dtype == t.dtype else result.to(t.dtype)


def _quantize_with_divisor(t: torch.Tensor, fmt: ScaledFormat, divisor: float, rounding: str, seed: int,
                           sr_bits, sr_rule: str) -> torch.Tensor:
    """A per-tensor scaled format rounded with a given scale (delayed scaling): the elements of
    t / divisor through the C core on CPU, the torch codec elsewhere; same dtype as ``t``."""
    compute = t.detach()
    if compute.dtype in (torch.float16, torch.bfloat16):
        compute = compute.float()
    element_quantize = None
    if compute.device.type == "cpu":
        element_request = _c.rounding_request(rounding, True, seed, sr_bits, sr_rule)

        def native_elements(quotients):
            return _native_quantize_tensor(quotients.contiguous(), fmt.element, element_request)
        element_quantize = native_elements
    result = _torch_scaled.quantize_with_divisor(compute, fmt, divisor, rounding, seed=seed,
                                                 sr_bits=0 if sr_bits is None else int(sr_bits), sr_rule=sr_rule,
                                                 element_quantize=element_quantize)
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
    ``fmt`` may be a scaled format (a :class:`fmtlab.scaled.ScaledFormat` or its name, e.g.
    ``"mxfp8_e4m3"``): fake quantization in t's shape, block scales included; ``saturate``
    must then be None, True or "sat_finite" (scaled elements always saturate).
    ``backend``: "auto" (C core for CPU tensors, pure torch elsewhere), "native" (C core,
    CPU only; a scaled format goes through :func:`fmtlab.quantize` on the tensor's numpy
    view) or "torch" (pure torch on any device: :mod:`fmtlab._torch_codec`, and
    :mod:`fmtlab._torch_scaled` for scaled formats; this is what GPUs run).
    The gradient passes straight through.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"t has dtype {t.dtype}: quantize takes float32, float64, float16 or bfloat16")
    scaled = as_scaled_format(fmt)
    if scaled is not None:
        fmt, saturate = scaled, check_saturate(saturate)
    else:
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

    ``format`` may be a scaled format (:class:`fmtlab.scaled.ScaledFormat` or its name, such
    as ``"mxfp8_e4m3"`` or ``"nvfp4"``): each tensor then gets the format's own block scales
    (``scaling="none"``), its elements always saturate (``saturate`` None, True or
    "sat_finite"), and ``scaling="auto"`` is refused (it chooses an element format's bias).
    ``scaling="delayed"`` (a per-tensor scaled format: ``block="tensor"``, no tensor scale)
    is TransformerEngine's delayed scaling: each layer keeps an :class:`AmaxHistory` of the
    tensor's last ``amax_history`` amaxes, and the format's scale rule is applied to their
    maximum times 2^``margin`` instead of to this tensor's own amax.  The defaults (1024, 0)
    are those of TE's ``DelayedScaling``.
    """

    format: Format | ScaledFormat
    rounding: str = "nearest_even"
    saturate: bool | str | None = None
    scaling: str = "none"
    sr_bits: int | None = None
    sr_rule: str = _c.DEFAULT_SR_RULE
    amax_history: int = 1024
    margin: int = 0

    def __post_init__(self):
        fmt = _any_format(self.format, "format")
        object.__setattr__(self, "format", fmt)
        saturate = self.saturate
        if isinstance(fmt, ScaledFormat):
            saturate = check_saturate(saturate)
        _c.rounding_request(self.rounding, saturate, None, self.sr_bits, self.sr_rule,
                            draw_seed=False)  # checks only
        if self.scaling not in SCALINGS:
            raise ValueError(f"scaling={self.scaling!r} is not allowed; choose one of {', '.join(SCALINGS)}")
        if isinstance(fmt, ScaledFormat) and self.scaling == "auto":
            raise ValueError(f"scaling='auto' is not allowed for the scaled format {fmt}: 'auto' chooses an element "
                             "format's bias per tensor, and a scaled format brings its own scales; allowed: 'none' "
                             "(the format's scaling) or, for a per-tensor format, 'delayed'")
        if self.scaling == "delayed" and not (isinstance(fmt, ScaledFormat) and fmt.block == "tensor"
                                              and fmt.tensor_scale is None):
            raise ValueError(f"scaling='delayed' is not allowed for {fmt}: delayed scaling replaces one per-tensor "
                             "scale, so it needs a scaled format with block='tensor' and no tensor_scale, such as "
                             "'fp8_tensor' or 'e5m2:block=tensor,scale=fp32,rule=amax'")
        for name, lowest, highest in (("amax_history", 1, 1 << 20), ("margin", -126, 126)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lowest <= value <= highest:
                raise ValueError(f"{name}={value!r} is not allowed: an int from {lowest} to {highest}")
        if self.scaling != "delayed" and (self.amax_history, self.margin) != (1024, 0):
            raise ValueError(f"amax_history={self.amax_history} and margin={self.margin} apply to "
                             f"scaling='delayed' only, not scaling={self.scaling!r}")

    @property
    def is_scaled(self) -> bool:
        """Whether the format is a scaled format (block scales of its own)."""
        return isinstance(self.format, ScaledFormat)

    def effective_format(self, t: torch.Tensor):
        """The format used for ``t`` (its bias chosen from t when scaling is "auto"; a scaled
        format is its own: its scales are chosen inside the rounding)."""
        if self.scaling != "auto":
            return self.format
        absolute_max = float(t.detach().abs().max()) if t.numel() else 0.0
        return auto_bias(self.format, absolute_max)

    def __str__(self):
        parts = [str(self.format)]
        if self.rounding != "nearest_even":
            parts.append(self.rounding)
        if self.scaling == "delayed":
            parts.append(f"scaling=delayed(history={self.amax_history},margin={self.margin})")
        elif self.scaling != "none":
            parts.append(f"scaling={self.scaling}")
        if self.saturate:
            parts.append("saturate" if self.saturate is True else f"saturate={self.saturate}")
        return "/".join(parts)


def _any_format(value, argument):
    """A Format or a ScaledFormat from either or a name (``fl.format``'s rule: scaled names --
    presets, or an element with scaling options -- give a ScaledFormat)."""
    scaled = as_scaled_format(value)
    if scaled is not None:
        return scaled
    if isinstance(value, (Format, str)):
        return as_format(value, argument)
    raise TypeError(f"{argument} must be a Format, a ScaledFormat or a format name, got {value!r} "
                    f"({type(value).__name__})")


def as_tensor_format(value, argument="tensor format"):
    """None, a TensorFormat, a Format, a ScaledFormat or a format name, as a TensorFormat (or None)."""
    if value is None or isinstance(value, TensorFormat):
        return value
    if isinstance(value, (Format, ScaledFormat, str)):
        return TensorFormat(_any_format(value, argument))
    raise TypeError(f"{argument} must be None, a TensorFormat, a Format, a ScaledFormat or a format name, "
                    f"got {value!r}")


class AmaxHistory:
    """Delayed scaling's state for one tensor of one layer (TransformerEngine's ``DelayedScaling``
    with ``amax_compute_algo="max"``): the amaxes of its last ``length`` steps and the scale they give.

    At training step t the tensor is rounded with the scale S_t of

        A_t = max(amax_s for the last ``length`` steps s < t that rounded it) * 2^margin,

    S_t being what ``fmt`` (a per-tensor ScaledFormat) computes for a tensor whose amax is A_t
    (for ``rule="amax"``: A_t / element.max rounded to nearest-even into the scale format);
    then amax_t = max |x| of this step's tensor is recorded.  Before the first step, and while
    A_t is 0 or not finite (a NaN or Inf in the history), the previous scale is kept, starting
    from S = 1 (TE's initial scale, and its ``_default_sf_compute``).  Several roundings of the
    tensor in one step share that step's scale and record the largest of their amaxes.
    Evaluation passes (step < 0) use the current scale and record nothing.

    TE computes the multiplier max / A_t in float32 and multiplies; this divides by the scale
    the format's rule gives (one rounding of the exact quotient), as ``fp8_tensor`` does.
    """

    def __init__(self, fmt: ScaledFormat, length: int, margin: int = 0):
        self.format, self.length, self.margin = fmt, int(length), int(margin)
        self.amaxes = collections.deque(maxlen=self.length)
        self.scale = 1.0
        self._step = None       # the step whose amax is being collected
        self._amax = None

    def scale_for(self, step: int) -> float:
        """The scale for a rounding at ``step``: from the amaxes recorded at earlier steps."""
        if step >= 0 and self._step is not None and step != self._step:
            self._close()
        return self.scale

    def record(self, step: int, amax: float) -> None:
        """Record this step's amax (the largest over roundings at the same step)."""
        if step < 0:
            return
        if self._step == step:
            self._amax = self._amax if math.isnan(self._amax) else amax if math.isnan(amax) else max(self._amax, amax)
            return
        if self._step is not None:
            self._close()
        self._step, self._amax = step, amax

    def _close(self) -> None:
        self.amaxes.append(self._amax)
        self._step = self._amax = None
        peak = float(np.max(np.array(self.amaxes, dtype=np.float64)))  # NaN when any is NaN
        if math.isfinite(peak) and peak > 0:
            target = float(np.ldexp(peak, self.margin))
            self.scale = float(_torch_scaled.scale_from_amax(self.format, torch.tensor([target],
                                                                                       dtype=torch.float64))[0])


@dataclasses.dataclass(frozen=True)
class Policy:
    """Formats of the six tensors of an emulated layer, and optional MMA models.

    forward: ``weight`` (W), ``activation`` (X), ``output`` (Y);
    backward: ``activation_grad`` (dL/dY entering the layer), ``input_grad`` (dL/dX leaving
    it), ``weight_grad`` (dL/dW and dL/db).  None keeps that tensor in float32.
    ``forward_mma`` / ``backward_mma``: an MMA model (``fl.mma_model(...)``) for the forward
    matmul / the two backward matmuls, or None for torch's float32 matmul.
    ``seed``: base seed of the stochastic roundings inside the layers.
    ``wgrad_hadamard``: None, or the size d (a power of two, 2..256) of the random Hadamard
    transform applied along the batch axis to both inputs of the dL/dW GEMM before they are
    rounded (NVFP4's RHT, Linear layers only; see the module docstring): blocks of d rows,
    each multiplied by H_d diag(s) / sqrt(d), H_d Sylvester's Hadamard matrix and s a fixed
    random sign vector per layer drawn from ``seed``.

    A scaled format (or delayed scaling) for an operand of an MMA model -- W or X with
    ``forward_mma``, dL/dY, W or X with ``backward_mma`` -- is refused (ValueError):
    block-scaled MMA (Blackwell's, scales applied inside the product) is not modelled yet,
    and dequantized block-scaled values are not values of an FP8 model's input formats.
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
    wgrad_hadamard: int | None = None

    def __post_init__(self):
        for role in ROLES:
            object.__setattr__(self, role, as_tensor_format(getattr(self, role), role))
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise TypeError(f"seed must be an int, got {self.seed!r}")
        for model_name, roles in (("forward_mma", ("weight", "activation")),
                                  ("backward_mma", ("activation_grad", "weight", "activation"))):
            if getattr(self, model_name) is None:
                continue
            for role in roles:
                tensor_format = getattr(self, role)
                if tensor_format is not None and tensor_format.is_scaled:
                    raise ValueError(
                        f"{role}={tensor_format} is not allowed with {model_name}={getattr(self, model_name)}: an "
                        "MMA model with a block-scaled operand is not modelled yet (block-scaled MMA applies the "
                        "scales inside the product); use an element format (scaling='auto' for per-tensor "
                        f"scales) or {model_name}=None (the float32 matmul of the dequantized values)")
        hadamard = self.wgrad_hadamard
        if hadamard is not None and (isinstance(hadamard, bool) or not isinstance(hadamard, numbers.Integral)
                                     or not 2 <= hadamard <= 256 or hadamard & (hadamard - 1)):
            raise ValueError(f"wgrad_hadamard={hadamard!r} is not allowed: None or a power of two from 2 to 256 "
                             "(NVFP4 uses 16)")

    @property
    def is_exact(self) -> bool:
        """True when nothing is rounded and the matmuls are torch's own."""
        return all(getattr(self, role) is None for role in ROLES) and self.forward_mma is None \
            and self.backward_mma is None and self.wgrad_hadamard is None

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


def _runs_along_an_axis(fmt) -> bool:
    """Whether a scaled format's blocks run along one axis (1-D blocks or 'channel')."""
    return isinstance(fmt, ScaledFormat) and (fmt.block == "channel" or isinstance(fmt.block, int))


def _sylvester_hadamard(size: int) -> torch.Tensor:
    """Sylvester's Hadamard matrix H_size (entries +-1; H_2k = [[H_k, H_k], [H_k, -H_k]])."""
    matrix = torch.ones(1, 1)
    while matrix.shape[0] < size:
        matrix = torch.cat([torch.cat([matrix, matrix], 1), torch.cat([matrix, -matrix], 1)], 0)
    return matrix


class _EmulatedLayer:
    """Shared part of the emulated layers: policy, per-call seeds, the observer hook, and the
    per-tensor state of delayed scaling."""

    def _setup(self, policy: Policy, layer_index: int, observer):
        self._check_policy(policy)
        self.policy = policy
        self.layer_index = layer_index
        self.observer = observer
        self.calls = 0  # forward calls in training mode; part of the stochastic seeds
        # scaling="delayed": one AmaxHistory per (role, stream, slot), started afresh with each policy
        self.amax_histories = {}
        self._hadamard_matrix = None

    def _check_policy(self, policy: Policy) -> None:
        """Refuse what this kind of layer cannot do with ``policy`` (ValueError)."""

    def _round(self, role: str, t: torch.Tensor, call: int, **keys) -> torch.Tensor:
        return self._round_scaled(role, t, call, **keys)[0]

    def _round_scaled(self, role: str, t: torch.Tensor, call: int, *, stream: int = 0, other_axis: bool = False,
                      slot: str | None = None):
        """(Q_role(t), k): the rounded tensor and its per-tensor scale exponent, k = the bias
        used minus the format's own (0 without scaling, and for scaled formats).

        ``stream``: 0 for a tensor's first rounding in a call, 1 for its re-quantization for a
        second GEMM (with its own stochastic draws and delayed-scaling history); ``other_axis``:
        a scaled format whose blocks run along an axis uses the 2-D tensor's other axis;
        ``slot``: which tensor of the role (the bias gradient has its own amax history).
        """
        tensor_format = getattr(self.policy, role)
        if tensor_format is None:
            return t, 0
        seed = 0
        if tensor_format.rounding == "stochastic":
            keys = (self.layer_index, ROLES.index(role), call) + ((stream,) if stream else ())
            seed = derive_seed(self.policy.seed, *keys)
        if tensor_format.is_scaled:
            return self._round_block_scaled(role, t, call, tensor_format, seed, (role, stream, slot), other_axis), 0
        fmt = tensor_format.effective_format(t)
        result = _quantize_values(t, fmt, tensor_format.rounding, tensor_format.saturate, seed,
                                  tensor_format.sr_bits, "auto", tensor_format.sr_rule)
        if self.observer is not None and call >= 0:
            self.observer(role, t, result, fmt)
        return result, fmt.bias - tensor_format.format.bias

    def _round_block_scaled(self, role, t, call, tensor_format, seed, key, other_axis):
        """Q_role(t) for a scaled format.  The observer sees the tensor in units of its scales:
        (x / S, Q(x) / S, the element format), S each element's block scale (float64), so that
        its counts (saturation: |x / S| > element max; underflow: Q(x) = 0) are the element
        format's.  Q(x) / S is the rounded element exactly for power-of-two scales, and to
        within the final rounding of element * S to t's dtype otherwise."""
        fmt = tensor_format.format
        if other_axis and _runs_along_an_axis(fmt):
            fmt = fmt.replace(axis=0 if fmt.axis in (-1, 1) else -1)
        divisor = None
        if tensor_format.scaling == "delayed":
            history = self.amax_histories.get(key)
            if history is None:
                history = self.amax_histories[key] = AmaxHistory(fmt, tensor_format.amax_history,
                                                                 tensor_format.margin)
            divisor = history.scale_for(call)
            result = _quantize_with_divisor(t, fmt, divisor, tensor_format.rounding, seed, tensor_format.sr_bits,
                                            tensor_format.sr_rule)
            history.record(call, float(t.detach().abs().max()) if t.numel() else 0.0)
        else:
            result = _quantize_values(t, fmt, tensor_format.rounding, True, seed, tensor_format.sr_bits, "auto",
                                      tensor_format.sr_rule)
        if self.observer is not None and call >= 0:
            scales = _torch_scaled.divisors(t, fmt) if divisor is None else divisor
            self.observer(role, t.detach().double() / scales, result.detach().double() / scales, fmt.element)
        return result

    def _requantizes(self, role: str) -> bool:
        """Whether the second GEMM that uses the tensor of ``role`` rounds it again from the
        unrounded tensor (blocks along the other axis, or the random Hadamard transform)."""
        tensor_format = getattr(self.policy, role)
        if self.policy.wgrad_hadamard is not None and role in ("activation", "activation_grad"):
            return True
        return tensor_format is not None and _runs_along_an_axis(tensor_format.format)

    def _hadamard(self, t: torch.Tensor) -> torch.Tensor:
        """The random Hadamard transform along axis 0 (Policy.wgrad_hadamard): rows padded with
        zeros to blocks of d, each block multiplied by H_d diag(s) / sqrt(d)."""
        size = self.policy.wgrad_hadamard
        if self._hadamard_matrix is None:
            generator = torch.Generator().manual_seed(derive_seed(self.policy.seed, self.layer_index, len(ROLES))
                                                      >> 1)
            signs = torch.randint(0, 2, (size,), generator=generator).float() * 2 - 1
            self._hadamard_matrix = _sylvester_hadamard(size) * signs / math.sqrt(size)
        matrix = self._hadamard_matrix.to(device=t.device, dtype=t.dtype)
        rows, columns = t.shape
        padded = F.pad(t, (0, 0, 0, (-rows) % size))
        return torch.matmul(matrix, padded.reshape(-1, size, columns)).reshape(-1, columns)

    def _wgrad_operands(self, g2, g, g_exponent, x2, xq, x_exponent, call):
        """((G', k_G), (X', k_X)): the inputs of dL/dW = G'^T X' -- the rounded G and X, or
        their re-quantization along the batch axis (1-D scaled formats), after the random
        Hadamard transform when the policy has one."""
        if self.policy.wgrad_hadamard is not None:
            g2, x2 = self._hadamard(g2), self._hadamard(x2)
        gradient = (self._round_scaled("activation_grad", g2, call, stream=1, other_axis=True)
                    if self._requantizes("activation_grad") else (g, g_exponent))
        activation = (self._round_scaled("activation", x2, call, stream=1, other_axis=True)
                      if self._requantizes("activation") else (xq, x_exponent))
        return gradient, activation

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
        # the unrounded X and W too when a backward GEMM re-quantizes them (see the module docstring)
        ctx.save_for_backward(xq, wq, x2 if layer._requantizes("activation") else None,
                              weight if layer._requantizes("weight") else None)
        ctx.layer, ctx.call, ctx.has_bias = layer, call, bias is not None
        ctx.input_shape, ctx.exponents = x.shape, (x_exponent, w_exponent)
        return y.reshape(*x.shape[:-1], y.shape[-1])

    @staticmethod
    def backward(ctx, grad_output):
        xq, wq, x2, weight = ctx.saved_tensors
        layer, call, model = ctx.layer, ctx.call, ctx.layer.policy.backward_mma
        x_exponent, w_exponent = ctx.exponents
        g2 = grad_output.reshape(-1, grad_output.shape[-1])
        g, g_exponent = layer._round_scaled("activation_grad", g2, call)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            if weight is not None:  # W along its output axis, the contraction axis of G @ W
                wq, w_exponent = layer._round_scaled("weight", weight, call, stream=1, other_axis=True)
            grad_x = _matmul(g, wq, model, g_exponent, w_exponent)
            grad_x = layer._round("input_grad", grad_x, call).reshape(ctx.input_shape)
        if ctx.needs_input_grad[1]:
            (g_w, g_w_exponent), (x_w, x_w_exponent) = layer._wgrad_operands(g2, g, g_exponent, x2, xq, x_exponent,
                                                                              call)
            # G^T @ X, the product torch's own Linear backward forms (so FP32 policies match it)
            grad_w = layer._round("weight_grad", _matmul(g_w.t(), x_w, model, g_w_exponent, x_w_exponent), call)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = layer._round("weight_grad", g.sum(0), call, slot="bias")
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
            grad_b = layer._round("weight_grad", g.sum((0, 2, 3)), call, slot="bias")
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

    def _check_policy(self, policy: Policy) -> None:
        for role in ("weight", "activation", "activation_grad"):
            tensor_format = getattr(policy, role)
            if tensor_format is not None and tensor_format.is_scaled and tensor_format.format.block != "tensor":
                raise ValueError(f"{role}={tensor_format} is not supported by EmulatedConv2d: the GEMMs of a "
                                 "convolution contract over channels x kernel positions, not a tensor axis, so "
                                 "only per-tensor scaled formats (block='tensor') are allowed for W, X and dL/dY")
        if policy.wgrad_hadamard is not None:
            raise ValueError(f"wgrad_hadamard={policy.wgrad_hadamard} is not supported by EmulatedConv2d; "
                             "it applies to Linear layers only")

    def forward(self, x):
        if self.policy.is_exact:
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return _Conv2dFunction.apply(x, self.weight, self.bias, self, self._next_call())

    def extra_repr(self):
        return f"{super().extra_repr()}, policy={_policy_text(self.policy)}"


def _policy_text(policy: Policy) -> str:
    parts = [f"{role}={getattr(policy, role)}" for role in ROLES if getattr(policy, role) is not None]
    for name in ("forward_mma", "backward_mma", "wgrad_hadamard"):
        if getattr(policy, name) is not None:
            parts.append(f"{name}={getattr(policy, name)}")
    return "(" + ", ".join(parts) + ")" if parts else "exact"


def emulate(module: nn.Module, policy: Policy | None = None, *, observer=None) -> nn.Module:
    """Swap every ``nn.Linear`` and ``nn.Conv2d`` in ``module`` for its emulated version.

    The swap is in place and keeps the Parameters (an optimiser built before keeps
    working); the (possibly new) root module is returned.  Layers that are already
    emulated get the new policy.  ``observer``, if given, is called as
    ``observer(role, before, after, fmt)`` after every rounding inside the layers (the
    drift counters use it); for a scaled format it is given the tensor in units of its
    scales: (x / S, Q(x) / S, the element format), S each element's block scale.  Layers
    are numbered in ``module.modules()`` order; the number keys their stochastic seeds.
    Delayed-scaling histories start afresh with each call.
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
