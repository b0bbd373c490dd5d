"""Timing helper shared by the benchmark scripts."""
import time


def best_time(function, repeats, clock=time.perf_counter):
    """Best time of ``repeats`` calls by ``clock``, in seconds (the least disturbed run): wall-clock
    by default, ``time.thread_time`` for the CPU time of the calling thread."""
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = clock()
        function()
        best = min(best, clock() - start)
    return best
