"""Timing helper shared by the benchmark scripts."""
import time


def best_time(function, repeats):
    """Best wall-clock time of ``repeats`` calls, in seconds (the least disturbed run)."""
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best
