"""The named training configurations of ``fmtlab drift``.

A configuration is a layer :class:`~fmtlab.torch.Policy` plus the optimiser side: the weight
storage format, FP32 master weights or not, the update rounding and the loss scaling.

==========================  ===========================================================================
fp32                        the baseline: float32 everywhere
bf16_mixed                  BF16 GEMM operands and results, FP32 master weights, no loss scaling
bf16_pure_rne               BF16 compute, weights stored in BF16 and updated in BF16 with nearest-even,
                            no master copy
bf16_pure_sr                as bf16_pure_rne, the update rounded stochastically
fp16_mixed_noscale          FP16 GEMM operands and results, FP32 master weights, no loss scaling
fp16_mixed_dynscale         as fp16_mixed_noscale, with dynamic loss scaling (S0 = 2^16, x2 after 100
                            clean steps, x0.5 on overflow)
e4m3_e5m2                   OCP FP8: W, X in E4M3 (e4m3fn), dL/dY in E5M2, per-tensor scaling from
                            amax, saturating; FP32 GEMM results, FP32 master weights
cfloat8                     Tesla: W, X in CFloat8 1-4-3, dL/dY in CFloat8 1-5-2, bias chosen per
                            tensor from amax (0..63); FP32 GEMM results, FP32 master weights
h100_fp8                    as e4m3_e5m2, with the H100 FP8 tensor-core model in the three matmuls:
                            fl.mma_model("h100", "e4m3fn") forward; backward E5M2 x E4M3 with the same
                            parameters (block 32, 13-bit accumulator, fp32 output toward zero)
mxfp8                       MX training (torchao): W, X and dL/dY in MXFP8 E4M3 (blocks of 32, E8M0 scales,
                            rule rceil), each GEMM quantizing along its contraction axis; FP32 GEMM results,
                            FP32 master weights
nvfp4                       NVIDIA's NVFP4 recipe: W in 16x16 tiles (nvfp4_2d), X and dL/dY in 1x16 blocks
                            (nvfp4), E4M3 block scales and an FP32 tensor scale; dL/dY rounded
                            stochastically; a 16-point random Hadamard transform on both inputs of the
                            dL/dW GEMM; FP32 GEMM results, FP32 master weights
fp8_current                 TransformerEngine current scaling: one FP32 scale per tensor from this step's
                            amax (amax / max), W and X in E4M3 (fp8_tensor), dL/dY in E5M2
fp8_delayed                 TransformerEngine delayed scaling: as fp8_current, the scale from the largest
                            amax of the tensor's previous 16 steps (margin 0; scale 1 at the first step)
fp8_block128                DeepSeek-V3: X and dL/dY in 1x128 tiles (fp8_block128), W in 128x128 blocks
                            (fp8_block128x128), E4M3 everywhere, FP32 scales amax / 448
==========================  ===========================================================================

The growth interval is 100 steps rather than GradScaler's default 2000 because drift runs
are a few thousand steps long.

Sources of the scaled configurations (every Linear layer is emulated, the output head
included; the recipes keep some layers in BF16, which these small models do not separate):

* ``mxfp8``: torchao 0.18, ``torchao/prototype/moe_training/mxfp8_linear.py``
  (``_to_mxfp8_then_scaled_mm``: E4M3 for input, weight and grad_output, block 32; ``mx_mm``
  casts each operand along its GEMM's contraction dimension: dim0 for the forward, W^T and
  grad_output^T/input^T for the backward) and ``moe_training/config.py``
  (``MXFP8TrainingOpConfig.scale_calculation_mode = RCEIL``; the older ``MXLinearConfig`` of
  ``torchao/prototype/mx_formats/config.py`` also defaulted to E4M3 for all three, with
  FLOOR, and offered an E5M2 override for grad_output).
* ``nvfp4``: NVIDIA, "Pretraining Large Language Models with NVFP4" (arXiv 2509.25149):
  2-D 16x16 weight scaling (the same quantized W serves the forward and dL/dX), 1-D 16-element
  blocks for activations and gradients, stochastic rounding of gradients, round-to-nearest-even
  elsewhere, 16x16 random Hadamard transforms on the Wgrad inputs only; torchao 0.18's
  ``moe_training/nvfp4_training/nvfp4_linear.py`` does the same (rowwise X and dL/dY direct,
  columnwise RHT(X^T) and RHT(dL/dY^T) with their own tensor scales, stochastic dL/dY).
* ``fp8_current``: TransformerEngine ``recipe.Float8CurrentScaling(fp8_format=Format.HYBRID)``.
* ``fp8_delayed``: TransformerEngine ``recipe.DelayedScaling(margin=0, fp8_format=Format.HYBRID,
  amax_compute_algo="max")`` with ``amax_history_len=16``; TE's default history is 1024,
  longer than a quick run (fmtlab.torch.TensorFormat defaults to 1024, TE's value).
* ``fp8_block128``: DeepSeek-AI, "DeepSeek-V3 Technical Report" (arXiv 2412.19437), section
  3.3.2: 1x128 tiles for activations (128x1 for the Wgrad GEMM), 128x128 blocks for weights,
  E4M3 on all tensors, scales amax / 448 in FP32.  Its promotion of partial sums to FP32 every
  128 products is not modelled: the GEMMs are float32.
"""
from __future__ import annotations

import dataclasses

from .. import formats, mma
from .._choices import is_flag, not_allowed
from ..torch import EXACT, Policy
from .optimizer import EmulatedOptimizer, LossScaler
from .policy import block_scaled, eight_bit, mixed_precision

__all__ = ["Config", "CONFIGS", "parse_configs"]


@dataclasses.dataclass(frozen=True)
class Config:
    """One training configuration (see the module docstring for the presets)."""

    name: str
    description: str
    policy: Policy = EXACT
    storage: str | None = None
    master_weights: bool = True
    update_rounding: str = "nearest_even"
    loss_scaling: str = "none"
    init_scale: float = 2.0 ** 16
    growth_interval: int = 100
    mma_gpu: str | None = None  # the matmuls use fl.mma_model(mma_gpu, <operand format>)

    def build_policy(self, seed: int) -> Policy:
        """The layer policy, with its seed and (for tensor-core configurations) its MMA models."""
        policy = self.policy.with_seed(seed)
        if self.mma_gpu is None:
            return policy
        # Forward: X, W in E4M3 (e4m3fn).  Backward: dL/dY (E5M2) times W or X (e4m3fn), the mixed
        # FP8 product Hopper's wgmma offers; FP8 inputs share one model (block 32, 13-bit accumulator).
        backward = mma.mma_model(self.mma_gpu, "e5m2").replace(
            b_format=formats.E4M3FN, name=f"{self.mma_gpu}-e5m2xe4m3fn-fp32")
        return dataclasses.replace(policy, forward_mma=mma.mma_model(self.mma_gpu, "e4m3fn"),
                                   backward_mma=backward)

    def build_optimizer(self, optimizer, seed: int) -> EmulatedOptimizer:
        """Wrap a task's torch optimiser as this configuration says."""
        scaler = LossScaler(self.loss_scaling, init_scale=self.init_scale, growth_interval=self.growth_interval)
        return EmulatedOptimizer(optimizer, storage=self.storage, master_weights=self.master_weights,
                                 update_rounding=self.update_rounding, loss_scaler=scaler, seed=seed)


_BF16 = mixed_precision(formats.BF16)
_FP16 = mixed_precision(formats.FP16)
# per-tensor FP8 with FP32 scales amax / max: E4M3 (fp8_tensor) forward, E5M2 backward
_E5M2_TENSOR = "e5m2:block=tensor,scale=fp32,rule=amax"
_MXFP8 = "mxfp8_e4m3:rule=rceil"

CONFIGS = {config.name: config for config in [
    Config("fp32", "float32 everywhere (the baseline)", master_weights=False),
    Config("bf16_mixed", "BF16 compute, FP32 master weights", _BF16, storage="bf16"),
    Config("bf16_pure_rne", "BF16 compute and weights, updates rounded to nearest-even, no master copy",
           _BF16, storage="bf16", master_weights=False),
    Config("bf16_pure_sr", "BF16 compute and weights, updates rounded stochastically, no master copy",
           _BF16, storage="bf16", master_weights=False, update_rounding="stochastic"),
    Config("fp16_mixed_noscale", "FP16 compute, FP32 master weights, no loss scaling", _FP16, storage="fp16"),
    Config("fp16_mixed_dynscale", "FP16 compute, FP32 master weights, dynamic loss scaling", _FP16,
           storage="fp16", loss_scaling="dynamic"),
    Config("e4m3_e5m2", "OCP FP8: E4M3 forward, E5M2 backward, per-tensor scaling, FP32 master",
           eight_bit(formats.E4M3FN, formats.E5M2)),
    Config("cfloat8", "Tesla CFloat8: 1-4-3 forward, 1-5-2 backward, auto bias per tensor, FP32 master",
           eight_bit(formats.CFLOAT8_1_4_3, formats.CFLOAT8_1_5_2)),
    Config("h100_fp8", "as e4m3_e5m2, with the H100 FP8 tensor-core model in the matmuls",
           eight_bit(formats.E4M3FN, formats.E5M2), mma_gpu="h100"),
    Config("mxfp8", "MXFP8 E4M3 (blocks of 32, E8M0 scales, rceil) for W, X and dL/dY, FP32 master",
           block_scaled(_MXFP8, _MXFP8, _MXFP8)),
    Config("nvfp4", "NVFP4: W 16x16, X and dL/dY 1x16 (dL/dY stochastic), RHT on Wgrad, FP32 master",
           block_scaled("nvfp4_2d", "nvfp4", "nvfp4", gradient_rounding="stochastic", wgrad_hadamard=16)),
    Config("fp8_current", "per-tensor FP8 from this step's amax: E4M3 forward, E5M2 backward, FP32 master",
           block_scaled("fp8_tensor", "fp8_tensor", _E5M2_TENSOR)),
    Config("fp8_delayed", "per-tensor FP8 from a 16-step amax history: E4M3 forward, E5M2 backward, FP32 master",
           block_scaled("fp8_tensor", "fp8_tensor", _E5M2_TENSOR, scaling="delayed", amax_history=16)),
    Config("fp8_block128", "DeepSeek-V3 block FP8: X, dL/dY 1x128, W 128x128, E4M3, FP32 scales, FP32 master",
           block_scaled("fp8_block128x128", "fp8_block128", "fp8_block128")),
]}


def parse_configs(text, argument: str = "configs") -> list[str]:
    """Configuration names from "all" (or None), a comma-separated list, or a list of names.

    ``argument`` names the argument in messages: a Python name (``configs='bf8' is not
    allowed ...``) or the command-line flag (``--configs bf8 is not allowed (did you mean
    'bf16_mixed'?); allowed: ...``).
    """
    if text is None or (isinstance(text, str) and text.strip().lower() == "all"):
        return list(CONFIGS)
    flag = is_flag(argument)
    listed = ", ".join(CONFIGS)
    allowed = f"all, or a comma-separated list of {listed}" if flag else f"'all', or a list of {listed}"
    if isinstance(text, str):
        names = [name.strip() for name in text.split(",") if name.strip()]
    else:
        try:
            names = [name.strip() if isinstance(name, str) else name for name in text]
        except TypeError:
            raise TypeError(f"{argument}={text!r} is not allowed; allowed: {allowed}") from None
        names = [name for name in names if name != ""]
    if not names:
        raise ValueError(not_allowed(argument, text if flag or isinstance(text, str) else names, allowed))
    for name in names:
        if name not in CONFIGS:
            raise ValueError(not_allowed(argument, name, allowed, list(CONFIGS) + ["all"]))
    return list(dict.fromkeys(names))
