"""Running a sweep's tasks: inline, on a process pool made here, or on any Executor.

Every task is a pure function of its arguments, so results never depend on how (or on how
many processes) the tasks ran.
"""
from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import multiprocessing
import os

from .codec import get_threads, set_threads

__all__ = ["plan", "run_tasks"]

INLINE_WORK = 1 << 22  # element evaluations below which jobs=None runs inline


def plan(executor, jobs, work):
    """(inline, workers) for a sweep of ``work`` element evaluations."""
    workers = (os.cpu_count() or 1) if jobs is None else int(jobs)
    inline = executor is None and (workers == 1 or (jobs is None and work < INLINE_WORK))
    return inline, workers


def run_tasks(function, arguments, executor=None, inline=False, workers=1, progress=None) -> list:
    """``[function(*args, threads=1) for args in arguments]``, in order, run inline (this
    process's thread setting is restored afterwards), on ``executor``, or on a process pool
    of ``workers`` made here.  ``threads=1``: each task runs the C loops on one thread, the
    parallelism comes from running tasks side by side (OpenMP teams inside every worker
    would oversubscribe the cores).

    ``progress(done, total)`` is called as tasks finish.  The results never depend on how
    the tasks ran, since each is a pure function of its arguments.
    """
    total = len(arguments)
    results = [None] * total
    if progress is not None:
        progress(0, total)
    if inline:
        previous = get_threads()
        try:
            for index, args in enumerate(arguments):
                results[index] = function(*args, threads=1)
                if progress is not None:
                    progress(index + 1, total)
        finally:
            set_threads(previous)
        return results
    own_pool = executor is None
    if own_pool:
        executor = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=_process_context())
    futures = {}
    try:
        for index, args in enumerate(arguments):
            futures[executor.submit(function, *args, threads=1)] = index
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            results[futures[future]] = future.result()
            if progress is not None:
                progress(done, total)
    except concurrent.futures.process.BrokenProcessPool as error:
        for future in futures:
            future.cancel()
        raise RuntimeError(
            "the sweep's worker processes died before finishing; if this runs from a script, guard its "
            "entry point with `if __name__ == \"__main__\":` (workers re-import the main module), "
            "or pass jobs=1 to run in this process") from error
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    finally:
        if own_pool:
            executor.shutdown(wait=True, cancel_futures=True)
    return results


def _process_context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
