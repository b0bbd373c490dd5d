"""Training-loss drift: train a small network with emulated number formats and compare with FP32.

Modules, one concern each:

* :mod:`~fmtlab.drift.tasks` -- the digits MLP and the tiny character-level transformer;
* :mod:`~fmtlab.drift.policy` -- layer policies (mixed precision, FP8-style);
* :mod:`~fmtlab.drift.optimizer` -- optimiser wrapper (storage format, master weights, update
  rounding) and the loss scaler;
* :mod:`~fmtlab.drift.counters` -- per-step counters (underflow, saturation, cancelled updates);
* :mod:`~fmtlab.drift.configs` -- the named configurations (fp32, bf16_mixed, ...);
* :mod:`~fmtlab.drift.runner` -- one run and the fan-out over configurations and seeds;
* :mod:`~fmtlab.drift.summary`, :mod:`~fmtlab.drift.plots` -- outputs;
* :mod:`~fmtlab.drift.cli` -- ``fmtlab drift``.

The package itself holds only names, so that ``fmtlab --help`` and the command's argument
parser do not import torch; the optimiser classes are imported from
:mod:`~fmtlab.drift.optimizer` (and torch with them) on first use.

See docs/drift.md for the experiment and its measured results.
"""
__all__ = ["TASK_NAMES", "CONFIG_NAMES", "EmulatedOptimizer", "LossScaler", "StepReport"]

# Copies of the registries' keys (tasks.TASKS, configs.CONFIGS), which import torch; a test
# checks that they match.
TASK_NAMES = ("digits", "charlm")
CONFIG_NAMES = ("fp32", "bf16_mixed", "bf16_pure_rne", "bf16_pure_sr", "fp16_mixed_noscale",
                "fp16_mixed_dynscale", "e4m3_e5m2", "cfloat8", "h100_fp8", "mxfp8", "nvfp4", "fp8_current",
                "fp8_delayed", "fp8_block128")

_FROM_OPTIMIZER = ("EmulatedOptimizer", "LossScaler", "StepReport")


def __getattr__(name):
    if name in _FROM_OPTIMIZER:
        from . import optimizer
        return getattr(optimizer, name)
    raise AttributeError(f"module 'fmtlab.drift' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_FROM_OPTIMIZER))
