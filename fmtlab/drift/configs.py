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
==========================  ===========================================================================

The growth interval is 100 steps rather than GradScaler's default 2000 because drift runs
are a few thousand steps long.
"""
from __future__ import annotations

import dataclasses

from .. import formats, mma
from .._choices import is_flag, not_allowed
from ..torch import EXACT, Policy
from .optimizer import EmulatedOptimizer, LossScaler
from .policy import eight_bit, mixed_precision

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
