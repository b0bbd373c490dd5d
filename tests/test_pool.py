"""fmtlab._pool: the one process pool of the sweeps and the drift runs.

* results come back in order and equal an inline run; a CPU count honours the affinity mask;
* workers ignore SIGINT from birth and run each task with threads=1;
* tasks report progress while they run (per unit, not only per finished task);
* Ctrl-C (a KeyboardInterrupt in the parent) stops running workers at once and raises
  Interrupted with the finished results, inline, on the workers and on another executor;
* a killed worker raises WorkerDied naming the task it ran and how many had finished;
* a task's own exception is raised as it is (an OSError is not mistaken for a dead worker).

The task functions live in this module, which the workers import by name (tests/ is on
sys.path, see conftest.py).
"""
import concurrent.futures
import os
import pathlib
import signal
import time

import pytest

from fmtlab import _pool
from fmtlab._pool import Interrupted, WorkerDied, available_cpus, report_progress, run_tasks


# ---- tasks (module level: the workers import them) ----------------------------------------------
def square(x, threads=None):
    return x * x


def worker_state(_unused, threads=None):
    """What a worker looks like from inside: its SIGINT handler, the threads it was given, its pid."""
    return signal.getsignal(signal.SIGINT), threads, os.getpid()


def steps(count, seconds, threads=None):
    for _ in range(count):
        time.sleep(seconds)
        report_progress(1)
    return count


def fails(x, threads=None):
    if x == 2:
        raise FileNotFoundError(f"no such file: {x}")
    return x


def wait_then_die(directory, threads=None):
    """Wait until the two quick tasks have written their files, then SIGKILL this worker."""
    directory = pathlib.Path(directory)
    deadline = time.monotonic() + 120
    while not ((directory / "0").exists() and (directory / "1").exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # let the parent receive their results
    os.kill(os.getpid(), signal.SIGKILL)


def quick(directory, name, threads=None):
    (pathlib.Path(directory) / name).write_text(str(os.getpid()))
    return name


def sleep_and_record(directory, name, threads=None):
    """Record this worker's pid, then sleep for a minute, reporting a unit every 0.1 s."""
    (pathlib.Path(directory) / f"pid-{name}").write_text(str(os.getpid()))
    for _ in range(600):
        time.sleep(0.1)
        report_progress(1)
    return name


def dispatch(name, args, threads=None):
    """One task function for tasks of several kinds (the workers import this module)."""
    return globals()[name](*args, threads=threads)


# ---- the basics ---------------------------------------------------------------------------------
def test_available_cpus_is_the_affinity_mask():
    assert available_cpus() == len(os.sched_getaffinity(0))
    assert _pool.start_method() == "forkserver"  # Linux has it; spawn is the fallback elsewhere


def test_results_come_back_in_order_and_equal_an_inline_run():
    arguments = [(value,) for value in range(7)]
    on_workers = run_tasks(square, arguments, workers=2)
    assert on_workers == run_tasks(square, arguments, inline=True) == [value * value for value in range(7)]
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        assert run_tasks(square, arguments, executor=executor) == on_workers


def test_workers_ignore_sigint_and_run_tasks_on_one_thread():
    states = run_tasks(worker_state, [(0,), (1,)], workers=2)
    for handler, threads, pid in states:
        assert handler == signal.SIG_IGN and threads == 1 and pid != os.getpid()


def test_running_tasks_report_progress_per_unit():
    calls = []
    results = run_tasks(steps, [(10, 0.05), (10, 0.05)], workers=2, units=[10, 10],
                        progress=lambda done, total: calls.append((done, total)))
    assert results == [10, 10]
    assert calls[0] == (0, 20) and calls[-1] == (20, 20)
    assert all(total == 20 for _done, total in calls)
    assert [done for done, _total in calls] == sorted(done for done, _total in calls)
    # Counts that are not whole tasks: the steps were seen while the tasks ran.
    assert any(done not in (0, 10, 20) for done, _total in calls)


def test_inline_progress_counts_each_unit():
    calls = []
    run_tasks(steps, [(3, 0), (2, 0)], inline=True, units=[3, 2], progress=lambda done, total: calls.append(done))
    assert calls == [0, 1, 2, 3, 3, 4, 5, 5]


def test_labels_and_units_need_one_entry_per_task():
    with pytest.raises(ValueError, match=r"labels and units need one entry per task \(2\); got 1 and 2"):
        run_tasks(square, [(1,), (2,)], inline=True, labels=["only one"])


# ---- ends that are not the end ------------------------------------------------------------------
def test_a_task_error_is_raised_as_it_is_with_the_worker_traceback():
    with pytest.raises(FileNotFoundError, match="no such file: 2") as caught:
        run_tasks(fails, [(value,) for value in range(4)], workers=2)
    assert "fails" in str(caught.value.__cause__)  # the worker's traceback names the function


def test_a_killed_worker_is_named_and_the_finished_results_are_kept(tmp_path):
    arguments = [(str(tmp_path), "0"), (str(tmp_path), "1"), (str(tmp_path),), (str(tmp_path), "3")]
    kinds = ["quick", "quick", "wait_then_die", "sleep_and_record"]
    with pytest.raises(WorkerDied) as caught:
        run_tasks(dispatch, list(zip(kinds, arguments)), workers=2,
                  labels=["quick 0", "quick 1", "the killer", "the sleeper"])
    error = caught.value
    assert str(error) == ("the worker process running the killer was killed by SIGKILL (out of memory, or "
                          "killed from outside); 2 of 4 tasks had finished; stopped with it: the sleeper")
    assert error.results == ["0", "1", None, None] and error.running == ["the killer"]
    assert isinstance(error, RuntimeError)


def _gone(pid, seconds):
    """Whether process ``pid`` has ended (or is a zombie) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().rsplit(") ", 1)[1].startswith("Z"):
                    return True
        except FileNotFoundError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def test_ctrl_c_terminates_running_workers_at_once_and_keeps_what_finished(tmp_path):
    # Two quick tasks, then four that sleep for a minute; Ctrl-C (the parent's KeyboardInterrupt,
    # raised here from the progress callback) once both workers are asleep in one.
    tasks = [("square", (1,)), ("square", (2,))] + [("sleep_and_record", (str(tmp_path), str(i))) for i in range(4)]

    def progress(done, total):
        if len(list(tmp_path.glob("pid-*"))) >= 2:
            raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(Interrupted) as caught:
        run_tasks(dispatch, tasks, workers=2, units=[1, 1, 600, 600, 600, 600], progress=progress)
    stopped = time.monotonic()
    error = caught.value
    assert isinstance(error, KeyboardInterrupt)
    assert error.results == [1, 4, None, None, None, None] and error.finished == 2 and error.total == 6
    assert error.partial is None  # the caller's to set
    pids = [int(path.read_text()) for path in tmp_path.glob("pid-*")]
    assert len(pids) == 2  # the queued tasks never started
    for pid in pids:
        assert _gone(pid, seconds=0.5), f"worker {pid} still runs after Interrupted was raised"
    assert stopped - started < 55  # less than one sleeping task: nothing waited for them


def test_ctrl_c_inline_stops_between_tasks():
    calls = []

    def progress(done, total):
        calls.append(done)
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as caught:
        run_tasks(square, [(value,) for value in range(5)], inline=True, progress=progress)
    assert caught.value.results == [0, 1, None, None, None] and calls == [0, 1, 2]


def test_ctrl_c_on_another_executor_cancels_what_has_not_started():
    def progress(done, total):
        if done == 1:
            raise KeyboardInterrupt

    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        with pytest.raises(Interrupted) as caught:
            run_tasks(steps, [(1, 0.01)] + [(1, 0.2)] * 20, executor=executor, progress=progress)
    results = caught.value.results
    assert results[0] == 1 and results.count(None) >= 18  # the queued ones never ran


# ---- pool="threads": the tasks on threads of this process (the sweep's default) -------------------
def thread_state(x, threads=None):
    """Which thread runs the task, and the C loops' thread setting it sees."""
    import threading

    from fmtlab import get_threads

    return x * x, threading.current_thread().name, threads, get_threads()


def test_threads_give_the_results_in_order_on_worker_threads_with_one_c_thread():
    from fmtlab import get_threads, set_threads

    set_threads(2)
    try:
        done = []
        results = run_tasks(thread_state, [(x,) for x in range(12)], workers=2, pool="threads",
                            on_result=lambda index, result: done.append(index))
        assert [result[0] for result in results] == [x * x for x in range(12)]
        assert all(name.startswith("fmtlab-task") for _square, name, _threads, _c in results)
        assert {threads for _square, _name, threads, _c in results} == {1}
        assert {c_threads for _square, _name, _threads, c_threads in results} == {1}  # no OpenMP team inside
        assert sorted(done) == list(range(12))
        assert get_threads() == 2  # this process's setting is back
    finally:
        set_threads(None)


def test_threads_raise_a_task_error_as_it_is():
    with pytest.raises(FileNotFoundError, match="no such file: 2"):
        run_tasks(fails, [(x,) for x in range(6)], workers=2, pool="threads")


def interrupt_at(x, threads=None):
    """Task 2 presses Ctrl-C (a KeyboardInterrupt in the main thread) and then takes a while."""
    import _thread

    if x == 2:
        _thread.interrupt_main()
        time.sleep(3)
    return x + 1


def test_ctrl_c_on_threads_raises_interrupted_at_once_with_the_finished_results():
    started = time.monotonic()
    with pytest.raises(Interrupted) as caught:
        run_tasks(interrupt_at, [(x,) for x in range(200)], workers=1, pool="threads")
    assert time.monotonic() - started < 1.5  # not waiting for the running task (3 s)
    # the two tasks before it are kept (also one that finished while the parent had not looked yet)
    assert caught.value.results[:3] == [1, 2, None]
    assert caught.value.finished == 2 and caught.value.total == 200  # the rest never started


def test_an_unknown_pool_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"pool='thread' is not allowed \(did you mean 'threads'\?\); "
                                         r"allowed: threads, processes"):
        run_tasks(square, [(1,), (2,)], workers=2, pool="thread")
