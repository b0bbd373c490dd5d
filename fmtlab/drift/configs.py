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
                            fl.mma_model("h100", "e4m3") forward; backward E5M2 x E4M3 with the same
                            parameters (block 32, 13-bit accumulator, fp32 output toward zero)
==========================  ===========================================================================

The growth interval is 100 steps rather than GradScaler's default 2000 because drift runs
are a few thousand steps long.
"""
from __future__ import annotations

import dataclasses
import importlib

from .. import formats
from ..torch import EXACT, Policy
from .optimizer import EmulatedOptimizer, LossScaler
from .policy import eight_bit, mixed_precision


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

    def unavailable_reason(self) -> str | None:
        """None when this configuration can run in this installation, else why not."""
        if self.mma_gpu is None:
            return None
        try:
            importlib.import_module("fmtlab.mma")
        except ImportError as error:
            return (f"configuration {self.name!r} needs the tensor-core model (fmtlab.mma: fl.matmul, "
                    f"fl.mma_model), which this installation does not have ({error})")
        return None

    def build_policy(self, seed: int) -> Policy:
        """The layer policy, with its seed and (for tensor-core configurations) its MMA models."""
        policy = self.policy.with_seed(seed)
        if self.mma_gpu is None:
            return policy
        reason = self.unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        mma = importlib.import_module("fmtlab.mma")
        # Forward: X, W in E4M3.  Backward: dL/dY (E5M2) times W or X (E4M3), the mixed FP8
        # product Hopper's wgmma offers; FP8 inputs share one model (block 32, 13-bit accumulator).
        backward = mma.mma_model(self.mma_gpu, "e5m2").replace(
            b_format=formats.E4M3FN, name=f"{self.mma_gpu}-e5m2xe4m3-fp32")
        return dataclasses.replace(policy, forward_mma=mma.mma_model(self.mma_gpu, "e4m3"), backward_mma=backward)

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


def parse_configs(text) -> list[str]:
    """Configuration names from "all", a comma-separated list, or a list of names."""
    if text is None or text == "all":
        return list(CONFIGS)
    names = [name.strip() for name in (text.split(",") if isinstance(text, str) else text) if name.strip()]
    if not names:
        raise ValueError(f"configs={text!r} is empty; give 'all' or a comma-separated list of "
                         f"{', '.join(CONFIGS)}")
    for name in names:
        if name not in CONFIGS:
            raise ValueError(f"configuration {name!r} is unknown; choose from {', '.join(CONFIGS)} (or 'all')")
    return list(dict.fromkeys(names))
