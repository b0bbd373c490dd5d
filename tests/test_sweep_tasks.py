"""How a sweep is cut into tasks (fmtlab._sweep_tasks): whole bias axes, cost-sized tasks, the
inline decision; and that the records do not depend on the cut, also where a group's rows are
cut further because it alone costs more than a task should."""
import importlib
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fmtlab import _sweep_tasks
from fmtlab._sweep_tasks import TASKS_PER_WORKER, group_cost, parallel_pays, plan_tasks
from fmtlab.sweep import sweep


# ---- the cost model --------------------------------------------------------------------------------
def test_jobs_none_runs_inline_when_workers_would_not_finish_sooner():
    """c = evaluations x 6 ns against c / workers + the workers' start: 0.3 s for worker
    processes, 2 ms for threads (docs/sweep.md)."""
    # the default fmtlab sweep: 2 tensors of 2^18 values; per value 6 single-bias groups and four
    # 64-bias axes of 6 evaluations' worth each (group_cost): 30 evaluations, 0.094 s
    default_sweep = 2 * (1 << 18) * (6 + 4 * group_cost(64, False))
    assert default_sweep == 15_728_640
    assert parallel_pays(default_sweep, 2, "threads")
    assert not parallel_pays(default_sweep, 2, "processes")
    assert not parallel_pays(default_sweep, 2)                   # processes unless told
    assert not parallel_pays(10 ** 12, 1, "threads") and not parallel_pays(10 ** 12, 1, "processes")
    assert not parallel_pays(100_000_000, 2, "processes")        # c = 0.6 s: c / 2 + 0.3 = c, no gain
    assert parallel_pays(101_000_000, 2, "processes")            # c = 0.606 s
    assert not parallel_pays(666_666, 2, "threads")              # c = 4 ms: c / 2 + 2 ms = c, no gain
    assert parallel_pays(700_000, 2, "threads")
    issue_14_job = 2 * (1 << 20) * (4 + 4 * group_cost(64, False))  # 0.35 s of evaluations
    assert parallel_pays(issue_14_job, 2, "threads") and not parallel_pays(issue_14_job, 2, "processes")


def test_a_bias_axis_costs_its_biases_up_to_the_one_pass_weight():
    """One evaluation per bias up to BIAS_AXIS_WEIGHT (6: the 64-bias axis measured 3-10 single
    evaluations' worth), a scaled format SCALED_WEIGHT."""
    assert [group_cost(count, False) for count in (1, 2, 5, 6, 7, 64)] == [1, 2, 5, 6, 6, 6]
    assert _sweep_tasks.BIAS_AXIS_WEIGHT == 6
    assert group_cost(0, False) == 1
    assert group_cost(1, True) == _sweep_tasks.SCALED_WEIGHT == 4


# ---- the layout --------------------------------------------------------------------------------------
def test_a_costly_bias_axis_is_cut_by_rows_not_by_biases():
    """One tensor of 3,000,000 values, one group of 64 biases (6 evaluations a value), 2 workers: 18
    million evaluations, target max(2^20, 18M / 8) = 2.25M, so ceil(18M / 2.25M) = 8 row ranges of
    375,000 rows, each with all 64 biases."""
    biases = list(range(64))
    tasks = plan_tasks([("x", 3_000_000, 1, [("key", biases, 1, group_cost(64, False))])], 1 << 22, 2, False)
    assert [(task.start, task.stop) for task in tasks] == [(start, start + 375_000)
                                                           for start in range(0, 3_000_000, 375_000)]
    assert all(task.items == [("key", bias) for bias in biases] for task in tasks)


def test_small_groups_share_a_task_and_a_small_sweep_is_one_task_per_range():
    groups = [(name, [bias for bias in range(count)], 1, count) for name, count in (("a", 1), ("b", 64), ("c", 3))]
    tasks = plan_tasks([("x", 1000, 4, groups)], 1 << 22, 2, False)
    assert len(tasks) == 1 and tasks[0].start == 0 and tasks[0].stop == 1000
    # packed largest first
    assert [key for key, _bias in tasks[0].items] == ["b"] * 64 + ["c"] * 3 + ["a"]
    # the chunk still bounds the rows of a task
    tasks = plan_tasks([("x", 1000, 4, groups)], 1600, 2, False)
    assert [(task.start, task.stop) for task in tasks] == [(0, 400), (400, 800), (800, 1000)]


def test_the_default_sweep_becomes_near_equal_tasks_for_two_workers():
    """2 tensors of 2^18 values, fp32/fp16/bf16 (1 bias, cost 1) and two CFloat8 (64 biases, cost 6),
    two roundings: 15.7 million evaluations, target 15.7M / 8 = 1.97M; each 64-bias axis (1.57M)
    is a task, the small groups fill them up to the target; run in order on two workers (each takes
    the next task when free), the slower worker ends within 5% of half the work."""
    groups = [((f, r), list(range(count)), 1, group_cost(count, False)) for f, count in
              (("fp32", 1), ("fp16", 1), ("bf16", 1), ("c143", 64), ("c152", 64)) for r in ("ne", "sr")]
    tasks = plan_tasks([(name, 1 << 18, 1, groups) for name in ("normal", "lognormal")], 1 << 22, 2, False)
    total = 2 * (1 << 18) * 30
    assert {(task.start, task.stop) for task in tasks} == {(0, 1 << 18)}
    assert len(tasks) == 10 and sum(task.cost for task in tasks) == total
    assert all(task.cost <= math.ceil(total / 8) for task in tasks)
    for task in tasks:
        assert sum(1 for key, bias in task.items if key[0].startswith("c1") and bias == 0) <= 1
    loads = [0, 0]
    for task in tasks:
        loads[loads.index(min(loads))] += task.cost
    assert max(loads) <= 1.05 * total / 2


@settings(max_examples=300, deadline=None)
@given(rows=st.integers(1, 3000), row_size=st.integers(1, 50), chunk=st.integers(1, 1 << 16),
       workers=st.integers(1, 4), inline=st.booleans(), minimum=st.sampled_from([1, 100, 10_000, 1 << 22]),
       groups=st.lists(st.tuples(st.integers(1, 64), st.sampled_from([1, 1, 2, 16, 32]), st.booleans()),
                       min_size=1, max_size=6))
def test_every_layout_covers_each_group_once_with_whole_bias_axes(rows, row_size, chunk, workers, inline,
                                                                   minimum, groups):
    described = [(index, list(range(count)), quantum, group_cost(count, scaled))
                 for index, (count, quantum, scaled) in enumerate(groups)]
    saved = _sweep_tasks.MIN_TASK_EVALUATIONS
    _sweep_tasks.MIN_TASK_EVALUATIONS = minimum
    try:
        tasks = plan_tasks([("t", rows, row_size, described)], chunk, workers, inline)
    finally:
        _sweep_tasks.MIN_TASK_EVALUATIONS = saved
    total = sum(rows * row_size * per for _key, _biases, _quantum, per in described)
    target = max(minimum, -(-total // (_sweep_tasks.INLINE_TASKS if inline else TASKS_PER_WORKER * workers)))
    if inline:  # a chunk's groups are not cut into several tasks inline
        target = max(target, min(_sweep_tasks.INLINE_TASK_EVALUATIONS,
                                 min(rows * row_size, chunk) * sum(per for _key, _biases, _quantum, per in described)))
    for key, biases, quantum, per in described:
        ranges = []
        for task in tasks:
            present = [bias for k, bias in task.items if k == key]
            if present:
                assert present == biases  # the whole bias axis, in order, in this task
                ranges.append((task.start, task.stop))
        ranges.sort()
        assert ranges[0][0] == 0 and ranges[-1][1] == rows  # every row, once
        assert all(first[1] == second[0] for first, second in zip(ranges, ranges[1:]))
        limit = max(quantum, (max(1, chunk // row_size) // quantum) * quantum)  # the chunk, in whole blocks
        for start, stop in ranges:
            assert start % quantum == 0 and stop - start <= limit
            # cut to about the target: at most two blocks of rows over it (the cut is in whole blocks)
            assert (stop - start) * row_size * per <= target + 2 * quantum * row_size * per
    for task in tasks:
        assert task.cost == (task.stop - task.start) * row_size * sum(
            per for key, _biases, _quantum, per in described if any(k == key for k, _b in task.items))


# ---- the records do not depend on the cut, also where a group's rows are cut further ----------------
def _data():
    rng = np.random.default_rng(3)
    matrix = (rng.standard_normal((96, 40)) * np.exp(rng.uniform(-6, 6, (96, 40)))).astype(np.float32)
    matrix[7, 3], matrix[50, 0] = np.nan, np.inf
    return {"matrix": matrix, "vector": rng.laplace(0, 0.02, 3000).astype(np.float32)}


FORMATS = ["bf16", "cfloat8_1_4_3", "cfloat8_1_5_2", "mxfp8_e4m3", "nvfp4_2d", "e4m3fn:block=24,scale=e8m0,axis=0"]
ARGUMENTS = dict(formats=FORMATS, biases="all", roundings=["nearest_even", "stochastic"], seed=6,
                 on_note=lambda line: None)


@pytest.fixture(scope="module")
def whole():
    return sweep(_data(), jobs=1, chunk=1 << 30, **ARGUMENTS)


@pytest.mark.parametrize("minimum", [1, 5000])
@pytest.mark.parametrize("jobs, pool", [(1, "threads"), (2, "threads"), (2, "processes")])
def test_groups_cut_by_rows_give_the_records_of_the_whole_tensor(whole, monkeypatch, minimum, jobs, pool):
    """With MIN_TASK_EVALUATIONS lowered, every 64-bias axis and the scaled formats (blocks along the
    first axis of the vector: 32 or 24 rows a block; 16 x 16 tiles of the matrix) are cut into
    sub-ranges of whole blocks; the records are still those of one piece per tensor."""
    sweep_module = importlib.import_module("fmtlab.sweep")  # (fmtlab.sweep is also the function)

    monkeypatch.setattr(_sweep_tasks, "MIN_TASK_EVALUATIONS", minimum)
    monkeypatch.setattr(_sweep_tasks, "TASKS_PER_WORKER", 64)  # targets near 15,000 evaluations
    monkeypatch.setattr(_sweep_tasks, "INLINE_TASKS", 128)
    seen = []
    monkeypatch.setattr(sweep_module, "plan_tasks", _recording(_sweep_tasks.plan_tasks, seen))
    # (inline, a chunk's groups stay one task: the rows are cut by a chunk of 16 matrix rows instead)
    result = sweep(_data(), jobs=jobs, pool=pool, **ARGUMENTS, **({"chunk": 640} if jobs == 1 else {}))
    assert result.to_csv() == whole.to_csv()
    tiles = [task for task in seen[0] if task.name == "matrix" and any(key[1] == "nvfp4_2d" for key, _b in task.items)]
    assert len(tiles) > 2 and all(task.start % 16 == 0 for task in tiles)  # its rows cut, in whole 16 x 16 tiles
    blocks = [task for task in seen[0] if task.name == "vector" and any(key[1] == "mxfp8_e4m3" for key, _b in task.items)]
    assert len(blocks) > 1 and all(task.start % 32 == 0 for task in blocks)


def _recording(function, seen):
    def recorded(*args, **kwargs):
        tasks = function(*args, **kwargs)
        seen.append(tasks)
        return tasks
    return recorded


def test_inline_a_chunk_with_all_its_groups_is_one_task():
    """Inline, the groups of one row range stay in one task (each task reads its rows and sums
    their signal): 8 chunks of 1000 rows and two one-bias formats give 8 tasks, not 16; on two
    workers the same sweep's target (16,000 / 8 = 2,000) is one chunk's two groups too."""
    groups = [("e4m3fn", [7], 1, 1), ("bf16", [127], 1, 1)]
    inline = plan_tasks([("x", 8000, 1, groups)], 1000, 1, True)
    assert [(task.start, task.stop, len(task.items)) for task in inline] == [
        (start, start + 1000, 2) for start in range(0, 8000, 1000)]
    monkeypatched = _sweep_tasks.MIN_TASK_EVALUATIONS
    try:
        _sweep_tasks.MIN_TASK_EVALUATIONS = 1
        assert len(plan_tasks([("x", 8000, 1, groups)], 1000, 2, False)) == 8
        assert len(plan_tasks([("x", 8000, 1, groups)], 1000, 4, False)) == 16  # target 1,000: split
    finally:
        _sweep_tasks.MIN_TASK_EVALUATIONS = monkeypatched
    # ... up to INLINE_TASK_EVALUATIONS (Ctrl-C stops between tasks): 80 groups of 6 on 2^22 values
    # cost 2^22 x 480 = 15 x 2^27: cut into tasks of at most 2^27 (2^22 x 32, five 6-bias groups)
    many = [(index, list(range(64)), 1, 6) for index in range(80)]
    tasks = plan_tasks([("x", 1 << 22, 1, many)], 1 << 22, 1, True)
    assert all(task.cost <= _sweep_tasks.INLINE_TASK_EVALUATIONS for task in tasks) and len(tasks) == 16


def test_a_sweep_names_an_unknown_pool():
    with pytest.raises(ValueError, match=r"pool='process' is not allowed \(did you mean 'processes'\?\)"):
        sweep(np.ones(8, np.float32), "bf16", pool="process")
