"""Per-step counters of an emulated training run.

:class:`Counters` is the observer given to :func:`fmtlab.torch.emulate`; it sees every
rounding inside the emulated layers as (role, x before, q after, format), and
:meth:`Counters.finish_step` turns one step's counts and the optimiser's
:class:`~fmtlab.drift.optimizer.StepReport` into one row of ``drift.csv``:

=================  ===================================================================
grad_underflow     among the nonzero gradient values rounded in the backward pass
                   (activation_grad, input_grad, weight_grad), the fraction whose result is 0
saturated          among all values rounded in the step (forward and backward), the fraction
                   with |x| > max of the format in use (per-tensor bias included), i.e. whose
                   result is +-max, +-Inf or NaN instead of a rounding of x (+-Inf inputs count)
update_cancelled   among weight elements with a nonzero gradient, the fraction whose stored
                   weight (the FP32 master copy when there is one) did not change in the step
loss_scale         the loss scale S the step's gradients were computed with
nonfinite          1 when the step's gradients were not all finite, else 0
skipped            1 when the step was skipped (non-finite gradients under loss scaling)
=================  ===================================================================

Steps that are skipped still count their roundings.  Fractions with an empty denominator
are 0.
"""
from __future__ import annotations

import functools

import torch

GRADIENT_ROLES = ("activation_grad", "input_grad", "weight_grad")
COLUMNS = ("grad_underflow", "saturated", "update_cancelled", "loss_scale", "nonfinite", "skipped")


@functools.lru_cache(maxsize=None)
def _largest(fmt) -> float:
    return fmt.max


class Counters:
    """Accumulates one step's rounding counts; call it as an observer, then ``finish_step``."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.gradient_nonzero = 0
        self.gradient_underflow = 0
        self.values = 0
        self.saturated = 0

    @torch.no_grad()
    def __call__(self, role: str, before: torch.Tensor, after: torch.Tensor, fmt) -> None:
        if role in GRADIENT_ROLES:
            # Rounding keeps zeros zero and takes a nonzero value to zero only by underflow,
            # so the underflowed count is the drop in the number of nonzeros.
            nonzero_before = int(torch.count_nonzero(before))
            self.gradient_nonzero += nonzero_before
            self.gradient_underflow += nonzero_before - int(torch.count_nonzero(after))
        self.values += before.numel()
        if before.numel():
            # Every value above max rounds to +-max, +-Inf or NaN, so |x| > max is the test;
            # one min/max reduction rules it out in the usual case.
            largest = _largest(fmt)
            low, high = torch.aminmax(before)
            if not (float(high) <= largest and float(low) >= -largest):  # also when NaN is present
                self.saturated += int(torch.count_nonzero(before.abs() > largest))

    def finish_step(self, report) -> dict:
        """The counter columns of this step (see the module docstring), then reset."""
        row = {
            "grad_underflow": self.gradient_underflow / self.gradient_nonzero if self.gradient_nonzero else 0.0,
            "saturated": self.saturated / self.values if self.values else 0.0,
            "update_cancelled": report.cancelled_fraction,
            "loss_scale": report.loss_scale,
            "nonfinite": int(report.nonfinite),
            "skipped": int(report.skipped),
        }
        self.reset()
        return row
