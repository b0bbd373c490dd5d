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
:func:`run_experiment` fans the runs out over ``jobs`` worker processes with fmtlab's one
pool (:mod:`fmtlab._pool`, shared with the sweeps): each run reports its training steps to
the parent as it takes them, Ctrl-C stops every worker at once
(``fmtlab._pool.Interrupted``) and a dead worker is named (``fmtlab._pool.WorkerDied``);
both carry ``.partial``, the :class:`RunResult` of every run that had finished.
"""
from __future__ import annotations

import dataclasses
import math
import time

from .._pool import Interrupted, WorkerDied, available_cpus, report_progress, run_tasks
from .configs import CONFIGS
from .tasks import make_task

__all__ = ["RUN_COLUMNS", "RunResult", "train", "run_experiment"]

# Imported once by the forkserver before it forks the workers, instead of once per worker
# (seconds each on 2 cores): this module with torch, and torch._dynamo, which the first
# torch.optim optimiser of a process imports (Optimizer.__init__ is wrapped to disable dynamo).
_PRELOAD = ("fmtlab.drift.runner", "torch._dynamo")

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


def train(task_name: str, config_name: str, seed: int, steps: int, eval_every: int, *,
          threads: int = 1) -> RunResult:
    """Train one run (see the module docstring) and return its record.

    torch and the C loops use ``threads`` threads (1: runs are compared bit for bit, and
    the parallelism comes from runs side by side).  Each step taken is reported with
    ``fmtlab._pool.report_progress`` (a no-op outside a pool).
    """
    import torch

    from .. import codec
    from ..torch import emulate
    from .counters import Counters

    torch.set_num_threads(threads)
    codec.set_threads(threads)
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
            report_progress(1)  # counted as it starts: a run that diverges here has taken the step
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


def run_experiment(task_name: str, config_names, seeds, steps: int, eval_every: int, *, jobs: int | None = 1,
                   progress=None, executor=None) -> list[RunResult]:
    """Every (configuration, seed) run, in (configuration, seed) order whatever order they
    finish in.

    ``jobs``: worker processes (None: every available CPU); 1 runs in this process.
    ``executor``: a ``distributed.Client`` or a ``concurrent.futures.Executor`` to run the runs
    on instead (through the same pool helper; progress then counts finished runs' steps).
    ``progress(done, total)``, if given, is called as training steps are taken, with
    total = runs x steps (a run that diverges counts its remaining steps when it stops).
    Raises ``fmtlab._pool.Interrupted`` (Ctrl-C) or ``fmtlab._pool.WorkerDied`` with
    ``.partial``, the list of the runs that had finished, and ``.planned``, the number of runs.
    """
    work = [(task_name, name, seed, steps, eval_every) for name in config_names for seed in seeds]
    # The slow tensor-core runs first, so that they do not finish last on their own.
    order = sorted(range(len(work)), key=lambda i: CONFIGS[work[i][1]].mma_gpu is None)
    jobs = available_cpus() if jobs is None else jobs
    inline = executor is None and (jobs <= 1 or len(work) <= 1)

    def in_work_order(results):
        ordered = [None] * len(work)
        for position, index in enumerate(order):
            ordered[index] = results[position]
        return ordered

    try:
        results = run_tasks(train, [work[i] for i in order], executor, inline=inline, workers=jobs, progress=progress,
                            labels=[f"{work[i][1]} seed {work[i][2]}" for i in order],
                            units=[steps] * len(work), preload=_PRELOAD)
    except (Interrupted, WorkerDied) as stopped:
        stopped.partial = [result for result in in_work_order(stopped.results) if result is not None]
        stopped.planned = len(work)
        raise
    return in_work_order(results)
