"""The optimiser side of emulated training: a wrapper around any torch optimiser, and loss scaling.

:class:`EmulatedOptimizer` wraps a built ``torch.optim.Optimizer`` and adds three things:

* **weight storage format**: the model's parameters hold values of ``storage`` (e.g. BF16);
* **master weights**: with ``master_weights=True`` an FP32 copy w of every parameter is kept;
  the inner optimiser updates w in float32 and the parameter is set to Q_storage(w) with
  nearest-even.  With ``master_weights=False`` there is no copy: the inner optimiser
  computes w' = w + u in float32 from the stored w, and the stored weight becomes
  Q_storage(w') rounded with ``update_rounding`` ("nearest_even" or "stochastic"); an update
  |u| below half an ulp of w is then lost under nearest-even, while stochastic rounding keeps
  it in expectation: E[Q(w')] = w'.
* **loss scaling** (:class:`LossScaler`): the loss is multiplied by S before backward, the
  gradients are divided by S before the update, and a step whose gradients are not finite
  is skipped.

The optimiser state (momentum, Adam moments) stays in float32.  Each step returns a
:class:`StepReport` with the counts the drift counters record.
"""
from __future__ import annotations

import dataclasses
import math
import numbers

import torch

from .. import torch as fl_torch

LOSS_SCALINGS = ("none", "static", "dynamic")
UPDATE_ROUNDINGS = ("nearest_even", "stochastic")


class LossScaler:
    """Loss scaling with the state machine of ``torch.amp.GradScaler``.

    ``mode``: "none" (S = 1, gradients are not checked), "static" (S fixed; a step with
    non-finite gradients is skipped) or "dynamic":

    * gradients not finite  ->  skip the step, S <- S * backoff_factor, clean count <- 0;
    * gradients finite      ->  take the step, clean count += 1; when it reaches
      ``growth_interval``: S <- S * growth_factor, clean count <- 0.

    Powers of two for S and both factors keep scaling and unscaling exact.
    """

    def __init__(self, mode: str = "dynamic", init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000):
        if mode not in LOSS_SCALINGS:
            raise ValueError(f"mode={mode!r} is not allowed; choose one of {', '.join(LOSS_SCALINGS)}")
        for name, value, low in (("init_scale", init_scale, 0.0), ("growth_factor", growth_factor, 1.0)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
                    or value <= low:
                raise ValueError(f"{name}={value!r} is not allowed: a finite number above {low}")
        if isinstance(backoff_factor, bool) or not isinstance(backoff_factor, numbers.Real) \
                or not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"backoff_factor={backoff_factor!r} is not allowed: a number in (0, 1)")
        if isinstance(growth_interval, bool) or not isinstance(growth_interval, numbers.Integral) \
                or growth_interval < 1:
            raise ValueError(f"growth_interval={growth_interval!r} is not allowed: a positive int")
        self.mode = mode
        self.scale = 1.0 if mode == "none" else float(init_scale)
        self.growth_factor = float(growth_factor)
        self.backoff_factor = float(backoff_factor)
        self.growth_interval = int(growth_interval)
        self.clean_steps = 0

    @property
    def checks_gradients(self) -> bool:
        """Whether a step with non-finite gradients is skipped."""
        return self.mode != "none"

    def update(self, found_nonfinite: bool) -> None:
        """Advance the state machine after one step (see the class docstring)."""
        if self.mode != "dynamic":
            return
        if found_nonfinite:
            self.scale *= self.backoff_factor
            self.clean_steps = 0
            return
        self.clean_steps += 1
        if self.clean_steps == self.growth_interval:
            self.scale *= self.growth_factor
            self.clean_steps = 0

    def state_dict(self) -> dict:
        return {"mode": self.mode, "scale": self.scale, "clean_steps": self.clean_steps}

    def __repr__(self):
        return (f"LossScaler(mode={self.mode!r}, scale={self.scale:g}, growth_factor={self.growth_factor:g}, "
                f"backoff_factor={self.backoff_factor:g}, growth_interval={self.growth_interval})")


@dataclasses.dataclass
class StepReport:
    """What one optimiser step did.

    ``loss_scale``: the S the step's gradients were scaled by; ``nonfinite``: its gradients
    were not all finite; ``skipped``: the update was not applied; ``updates_requested``:
    weight elements with a nonzero (unscaled) gradient; ``updates_cancelled``: those among
    them whose stored weight (the master copy when there is one) did not change.
    """
    loss_scale: float
    nonfinite: bool
    skipped: bool
    updates_requested: int = 0
    updates_cancelled: int = 0

    @property
    def cancelled_fraction(self) -> float:
        return self.updates_cancelled / self.updates_requested if self.updates_requested else 0.0


def _unscale_and_check(gradients, scale: float) -> bool:
    """Divide the gradients by ``scale`` in place (exact for a power of two) and say whether
    any value is not finite.  GradScaler's fused kernel where torch has it."""
    if not gradients:
        return False
    fused = getattr(torch, "_amp_foreach_non_finite_check_and_unscale_", None)
    if fused is not None and all(g.dtype == torch.float32 and g.device == gradients[0].device for g in gradients):
        found = torch.zeros(1, device=gradients[0].device)
        fused(gradients, found, torch.full((1,), 1.0 / scale, device=gradients[0].device))
        return bool(found.item())
    if scale != 1.0:  # pragma: no cover - torch without the fused kernel
        for gradient in gradients:
            gradient.div_(scale)
    return any_nonfinite(gradients)


def any_nonfinite(tensors) -> bool:
    """Whether any element of the float32 ``tensors`` is Inf or NaN.

    Their sum in float64 cannot overflow (float32 values are below 2^128), so it is
    non-finite exactly when some element is; one reduction per tensor instead of isfinite.
    """
    return not math.isfinite(sum(float(t.sum(dtype=torch.float64)) for t in tensors))


class EmulatedOptimizer:
    """Wrap ``optimizer`` with a weight storage format, optional FP32 master weights and loss scaling.

    Parameters
    ----------
    optimizer : a built torch optimiser over float32 parameters.
    storage : None (float32 weights), or the format the parameters are stored in
        (a format name, Format or :class:`fmtlab.torch.TensorFormat`).
    master_weights : keep an FP32 master copy (True) or update the stored weights directly.
    update_rounding : "nearest_even" or "stochastic": how w + u is rounded to ``storage`` when
        there is no master copy (with a master copy the stored weight is Q(w) to nearest-even).
    loss_scaler : a :class:`LossScaler`, or None for no loss scaling.
    seed : base seed of the stochastic update rounding (keyed by step and parameter).

    Use: ``optimizer.zero_grad(); optimizer.backward(loss); report = optimizer.step()``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, storage=None, master_weights: bool = True,
                 update_rounding: str = "nearest_even", loss_scaler: LossScaler | None = None, seed: int = 0):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if not isinstance(master_weights, bool):
            raise TypeError(f"master_weights must be True or False, got {master_weights!r}")
        if update_rounding not in UPDATE_ROUNDINGS:
            raise ValueError(f"update_rounding={update_rounding!r} is not allowed; choose one of "
                             f"{', '.join(UPDATE_ROUNDINGS)}")
        if loss_scaler is not None and not isinstance(loss_scaler, LossScaler):
            raise TypeError(f"loss_scaler must be a LossScaler or None, got {loss_scaler!r}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.optimizer = optimizer
        self.storage = fl_torch.as_tensor_format(storage, "storage")
        if self.storage is not None and self.storage.scaling != "none":
            raise ValueError(f"storage scaling={self.storage.scaling!r} is not allowed; allowed: 'none'")
        self.master_weights = master_weights
        self.update_rounding = update_rounding
        self.loss_scaler = loss_scaler if loss_scaler is not None else LossScaler("none")
        self.seed = int(seed)
        self.step_count = 0
        self.parameters = [p for group in optimizer.param_groups for p in group["params"]]
        for index, parameter in enumerate(self.parameters):
            if parameter.dtype != torch.float32:
                raise TypeError(f"parameter {index} has dtype {parameter.dtype}; EmulatedOptimizer takes "
                                "float32 parameters (the storage format is emulated in float32)")
        self.master = {}
        with torch.no_grad():
            for parameter in self.parameters:
                if master_weights:
                    self.master[parameter] = parameter.detach().clone()
                parameter.copy_(self._store(parameter, "nearest_even", 0, 0))

    # ---- the two calls of a training step ------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def backward(self, loss: torch.Tensor) -> None:
        """Back-propagate ``loss * S`` (S the current loss scale)."""
        scale = self.loss_scaler.scale
        (loss * scale if scale != 1.0 else loss).backward()

    @torch.no_grad()
    def step(self) -> StepReport:
        """Unscale, check, update and round (see the module docstring); returns a StepReport."""
        self.step_count += 1
        scale = self.loss_scaler.scale
        gradients = [p.grad for p in self.parameters if p.grad is not None]
        nonfinite = _unscale_and_check(gradients, scale)
        if nonfinite and self.loss_scaler.checks_gradients:
            self.loss_scaler.update(True)
            return StepReport(scale, True, True)
        requested = {p: p.grad != 0 for p in self.parameters if p.grad is not None}
        before = {}
        for parameter in requested:
            reference = self.master[parameter] if self.master_weights else parameter
            before[parameter] = reference.detach().clone()
        if self.master_weights:
            for parameter in self.parameters:
                parameter.copy_(self.master[parameter])
            self.optimizer.step()
            for parameter in self.parameters:
                self.master[parameter].copy_(parameter)
                parameter.copy_(self._store(parameter, "nearest_even", 0, 0))
        else:
            self.optimizer.step()
            for index, parameter in enumerate(self.parameters):
                parameter.copy_(self._store(parameter, self.update_rounding, self.step_count, index))
        updates_requested = updates_cancelled = 0
        for parameter, mask in requested.items():
            after = self.master[parameter] if self.master_weights else parameter
            updates_requested += int(mask.sum())
            updates_cancelled += int((mask & (after == before[parameter])).sum())
        self.loss_scaler.update(nonfinite)
        return StepReport(scale, nonfinite, False, updates_requested, updates_cancelled)

    def _store(self, parameter: torch.Tensor, rounding: str, step: int, index: int) -> torch.Tensor:
        """Q_storage(parameter) with ``rounding`` (the parameter itself when storage is float32)."""
        if self.storage is None:
            return parameter.detach()
        seed = fl_torch.derive_seed(self.seed, step, index) if rounding == "stochastic" else 0
        return fl_torch.quantize(parameter.detach(), self.storage.format, rounding,
                                 saturate=self.storage.saturate, seed=seed, sr_bits=self.storage.sr_bits,
                                 sr_rule=self.storage.sr_rule)

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "loss_scaler": self.loss_scaler.state_dict(),
                "step_count": self.step_count}

    def __repr__(self):
        return (f"EmulatedOptimizer({type(self.optimizer).__name__}, storage={self.storage}, "
                f"master_weights={self.master_weights}, update_rounding={self.update_rounding!r}, "
                f"loss_scaler={self.loss_scaler})")
