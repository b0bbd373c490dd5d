"""Run the drift experiment: every (configuration, seed) pair trains the task once.

One run (:func:`train`) builds the task's model after ``torch.manual_seed(seed)``, emulates
its layers with the configuration's policy, wraps the task's optimiser and takes ``steps``
steps on the task's batches for ``seed``.  Per step it records the training loss (of that
step's mini-batch, computed in the configuration's arithmetic) and the counters; every
``eval_every`` steps, and at steps 0 and ``steps``, the loss on the task's fixed evaluation
batch (``eval_loss``, also in the configuration's arithmetic).

A run has **diverged** when its training loss, its evaluation loss or a weight becomes
non-finite; it stops there and is recorded as diverged (its rows so far are kept).

Runs are independent and deterministic: torch uses one thread per run and the C core's
results do not depend on threads, so the numbers are the same whatever ``jobs`` is.
:func:`run_experiment` fans the runs out over ``jobs`` worker processes.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import multiprocessing
import os
import time

from .configs import CONFIGS
from .tasks import make_task

RUN_COLUMNS = ("config", "seed", "step", "loss", "eval_loss", "grad_underflow", "saturated",
               "update_cancelled", "loss_scale", "nonfinite", "skipped")


@dataclasses.dataclass
class RunResult:
    """The record of one (configuration, seed) run."""
    config: str
    seed: int
    rows: list
    diverged: bool
    diverged_step: int | None
    final_loss: float
    seconds: float


def _all_finite(parameters) -> bool:
    from .optimizer import any_nonfinite
    return not any_nonfinite([p.detach() for p in parameters])


def train(task_name: str, config_name: str, seed: int, steps: int, eval_every: int) -> RunResult:
    """Train one run (see the module docstring) and return its record."""
    import torch

    from .. import codec
    from ..torch import emulate
    from .counters import Counters

    torch.set_num_threads(1)
    codec.set_threads(1)
    start = time.perf_counter()
    task = make_task(task_name)
    config = CONFIGS[config_name]
    torch.manual_seed(seed)
    model = task.build_model()
    counters = Counters()
    model = emulate(model, config.build_policy(seed), observer=counters)
    optimizer = config.build_optimizer(task.build_optimizer(model.parameters()), seed)
    evaluation_inputs, evaluation_targets = task.evaluation_batch()

    def evaluate():
        model.eval()
        with torch.no_grad():
            value = float(task.loss(model, evaluation_inputs, evaluation_targets))
        model.train()
        return value

    rows = []
    initial = evaluate()
    rows.append(dict(config=config_name, seed=seed, step=0, loss=math.nan, eval_loss=initial))
    diverged_step = None if math.isfinite(initial) else 0
    final_loss = initial
    if diverged_step is None:
        for step, (inputs, targets) in enumerate(task.batches(seed, steps), start=1):
            optimizer.zero_grad()
            loss = task.loss(model, inputs, targets)
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                rows.append(dict(config=config_name, seed=seed, step=step, loss=loss_value, eval_loss=math.nan))
                diverged_step = step
                break
            optimizer.backward(loss)
            report = optimizer.step()
            row = dict(config=config_name, seed=seed, step=step, loss=loss_value, eval_loss=math.nan)
            row.update(counters.finish_step(report))
            evaluated = step % eval_every == 0 or step == steps
            if evaluated:
                row["eval_loss"] = final_loss = evaluate()
            rows.append(row)
            if (evaluated and not math.isfinite(final_loss)) or not _all_finite(model.parameters()):
                diverged_step = step
                break
    diverged = diverged_step is not None
    return RunResult(config_name, seed, rows, diverged, diverged_step,
                     math.nan if diverged else final_loss, time.perf_counter() - start)


def _train_job(arguments):
    return train(*arguments)


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def run_experiment(task_name: str, config_names, seeds, steps: int, eval_every: int, *, jobs: int = 1,
                   progress=None) -> list[RunResult]:
    """Every (configuration, seed) run; ``progress``, if given, is called once per finished run.

    ``jobs`` > 1 runs them in that many spawned worker processes.  The results come back
    in (configuration, seed) order whatever order they finish in.
    """
    work = [(task_name, name, seed, steps, eval_every) for name in config_names for seed in seeds]
    # The slow tensor-core runs first, so that they do not finish last on their own.
    order = sorted(range(len(work)), key=lambda i: CONFIGS[work[i][1]].mma_gpu is None)
    results = [None] * len(work)
    if jobs <= 1 or len(work) <= 1:
        for i in order:
            results[i] = train(*work[i])
            if progress:
                progress(results[i])
        return results
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=min(jobs, len(work)), mp_context=context) as pool:
        futures = {pool.submit(_train_job, work[i]): i for i in order}
        for future in concurrent.futures.as_completed(futures):
            results[futures[future]] = future.result()
            if progress:
                progress(results[futures[future]])
    return results
