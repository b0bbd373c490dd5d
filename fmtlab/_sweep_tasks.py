"""How a sweep is cut into tasks, and whether it pays to run them on workers (threads or processes).

The work of a sweep is a set of *groups*: one (tensor, format, rounding) with its bias axis (the
biases evaluated; one for a fixed or scaled format).  A task is a row range of one tensor and
whole groups on it: the bias axis of a group is never split across tasks, so the one-pass bias
axis (fmtlab._bias_axis, docs/sweep.md "The bias axis in one pass") sees every bias of the group
on the rows it reads.  Tasks are sized by cost, in element evaluations:

    cost(group on rows r) = elements(r) x group_cost(biases(group), scaled)

(one evaluation per bias up to BIAS_AXIS_WEIGHT, since the bias axis runs in one pass; SCALED_WEIGHT
for scaled formats; both measured), so that a sweep becomes
about TASKS_PER_WORKER tasks per worker of near-equal cost, and never tasks smaller than
MIN_TASK_EVALUATIONS (below which a task's fixed cost -- sending it, reading its rows, the float64
copy and the exact signal sum -- is a visible share).  Within a row range of at most ``chunk``
elements (the memory bound), groups are packed first-fit decreasing into tasks of at most the
target cost; a group whose cost on the range alone exceeds the target has its rows cut into the
fewest whole-row (whole-block) sub-ranges that bring each under it.  The results do not depend on
the cut: every piece's statistics are exact and merge exactly (docs/sweep.md).

Inline (``parallel_pays`` says no, or one worker) the same layout is made for INLINE_TASKS tasks
(tasks are where Ctrl-C stops and where progress moves), except that the groups of one row range of
at most ``chunk`` elements are not cut into several tasks below INLINE_TASK_EVALUATIONS (about
0.8 s of work): each would read the rows and sum their signal again, for nothing.
"""
from __future__ import annotations

import dataclasses
import math

from ._sweep_scaled import row_ranges

__all__ = ["Task", "plan_tasks", "group_cost", "parallel_pays", "SECONDS_PER_EVALUATION", "WORKER_START_SECONDS",
           "THREAD_START_SECONDS", "BIAS_AXIS_WEIGHT", "INLINE_TASK_EVALUATIONS", "TASKS_PER_WORKER", "INLINE_TASKS", "MIN_TASK_EVALUATIONS",
           "SCALED_WEIGHT"]

# The cost model, in fused element evaluations (one element rounded to one format and bias and
# its metrics accumulated: 5-6 ns for the 8- and 16-bit formats, measured on 2026-12-02 at 17:45 on
# the shared 2-core machine of docs/performance.md, load about 1.5, with 2^20-value tensors).
# The one-pass bias axis (csrc/bias_axis.c) costs far less than one evaluation per bias: relative
# to one e4m3fn evaluation, 2 biases measured 1.7-1.9 (nearest) and 4.2-6.4 (stochastic), 64
# biases 2.9-4.4 and 6.3-9.9; so an axis of b biases counts min(b, BIAS_AXIS_WEIGHT).  A scaled
# format's fused evaluation measured 2.0-7.4 (mxfp8_e4m3, mxfp4, fp8_block128, nvfp4): SCALED_WEIGHT.
# Starting the workers: worker processes (forkserver, fmtlab imported once in the server, the rows
# sent to each) cost 0.3 s and more; threads of this process (the sweep's pool by default: the C
# loops release the GIL) cost well under a millisecond, THREAD_START_SECONDS with margin.
SECONDS_PER_EVALUATION = 6e-9
WORKER_START_SECONDS = 0.3
THREAD_START_SECONDS = 0.002
BIAS_AXIS_WEIGHT = 6
SCALED_WEIGHT = 4

TASKS_PER_WORKER = 4          # tasks per worker: near-equal tasks, few enough to be cheap
INLINE_TASKS = 16             # tasks of an inline run: where Ctrl-C stops and progress moves
MIN_TASK_EVALUATIONS = 1 << 20  # element evaluations below which a task is not cut further (~6 ms)
INLINE_TASK_EVALUATIONS = 1 << 27  # inline, a chunk's groups stay one task up to this cost (~0.8 s)


def parallel_pays(work: int, workers: int, pool: str = "processes") -> bool:
    """Whether ``work`` element evaluations finish sooner on ``workers`` workers than inline:
    with c = work x SECONDS_PER_EVALUATION, c / workers + start < c, where start is
    WORKER_START_SECONDS for worker processes and THREAD_START_SECONDS for threads."""
    compute = work * SECONDS_PER_EVALUATION
    start = THREAD_START_SECONDS if pool == "threads" else WORKER_START_SECONDS
    return workers > 1 and compute / workers + start < compute


def group_cost(biases: int, scaled: bool) -> int:
    """Element evaluations per element of a group of ``biases`` biases evaluated in one pass
    (min(biases, BIAS_AXIS_WEIGHT)); a scaled format: SCALED_WEIGHT."""
    return SCALED_WEIGHT if scaled else max(1, min(int(biases), BIAS_AXIS_WEIGHT))


@dataclasses.dataclass
class Task:
    """One task: rows ``start:stop`` of tensor ``name`` and the evaluations ``items`` ((group
    key, bias) pairs, whole groups) on them; ``cost`` in element evaluations."""
    name: str
    start: int
    stop: int
    items: list
    cost: int
    label: str


def plan_tasks(tensors, chunk: int, workers: int, inline: bool) -> list:
    """The tasks of a sweep, tensor by tensor (a tensor's tasks together, largest first, so that
    its records are complete early: ``on_records``, resumable runs).

    ``tensors``: [(name, rows, row_size, groups)] with groups = [(key, biases, quantum, per_element)]:
    the group's key, its biases (sorted), the rows its pieces must be a multiple of (a scaled
    format whose blocks span rows; 1 otherwise) and its cost per element (:func:`group_cost`).
    ``chunk`` bounds the elements of a task's rows (rounded up to whole rows and whole blocks).
    """
    total = sum(rows * row_size * per_element for _name, rows, row_size, groups in tensors
                for _key, _biases, _quantum, per_element in groups)
    tasks_wanted = INLINE_TASKS if inline else TASKS_PER_WORKER * max(1, workers)
    target = max(MIN_TASK_EVALUATIONS, -(-total // tasks_wanted))
    if inline:
        # Inline, cutting a row range's groups into several tasks gains nothing but finer progress
        # and costs each task a read of the rows and their exact signal sum (a fifth of a
        # checkpoint's two-format sweep): a task is a whole chunk's groups where it can be.
        # (up to INLINE_TASK_EVALUATIONS, about 0.8 s: inline, Ctrl-C stops between tasks)
        target = max([target] + [min(INLINE_TASK_EVALUATIONS,
                                     min(rows * row_size, chunk) * sum(per_element for *_rest, per_element in groups))
                                 for _name, rows, row_size, groups in tensors])
    tasks = []
    for name, rows, row_size, groups in tensors:
        by_range = {}  # (start, stop) -> [(cost, key, biases)], in the order they are made
        for key, biases, quantum, per_element in groups:
            for start, stop in row_ranges(rows, row_size, chunk, quantum):
                cost = (stop - start) * row_size * per_element
                pieces = min(math.ceil(cost / target), (stop - start + quantum - 1) // quantum)
                if pieces <= 1:
                    by_range.setdefault((start, stop), []).append((cost, key, biases))
                    continue
                per = math.ceil(math.ceil((stop - start) / quantum) / pieces) * quantum  # whole blocks
                for low in range(start, stop, per):
                    high = min(stop, low + per)
                    by_range.setdefault((low, high), []).append(((high - low) * row_size * per_element, key, biases))
        made = []
        for (start, stop), units in by_range.items():
            bins = []  # [cost, [(key, biases)]]
            for cost, key, biases in sorted(units, key=lambda unit: -unit[0]):
                for packed in bins:
                    if packed[0] + cost <= target:
                        packed[0] += cost
                        packed[1].append((key, biases))
                        break
                else:
                    bins.append([cost, [(key, biases)]])
            for cost, members in bins:
                items = [(key, bias) for key, biases in members for bias in biases]
                where = "all rows" if (start, stop) == (0, rows) else f"rows {start}-{stop - 1} of {rows}"
                made.append(Task(name, start, stop, items, cost,
                                 f"tensor {name!r} ({where}, {len(members)} group(s), {len(items)} evaluations)"))
        made.sort(key=lambda task: -task.cost)  # stable: equal tasks keep their row order
        tasks += made
    return tasks
