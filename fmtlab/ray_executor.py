"""Ray as the executor of a sweep: ``fl.sweep(..., executor=RayExecutor())``.

The sweep's engine (fmtlab._pool) takes any ``concurrent.futures.Executor``; Ray has none of its
own, so this is the smallest one: each ``submit(function, *args, **kwargs)`` is one Ray task
running ``function(*args, **kwargs)`` on a Ray worker, and its Future is that task's
(``ObjectRef.future()``).  The tasks are pure functions of their arguments (a task of a file
tensor carries the file's path and its row range, never the data), so the records are those of
the inline run bit for bit (tests/test_ray_executor.py).

* Ray itself is the caller's: ``ray.init(...)`` (a local instance, or ``address="auto"`` /
  ``"ray://head:10001"`` for a cluster) before the sweep, or Ray's own automatic local start at
  the first task.  Every worker needs fmtlab installed and the input files at the same path.
* A Ray worker or node that dies (Ray's ``WorkerCrashedError``, ``NodeDiedError``,
  ``OutOfMemoryError``, once Ray's own retries of the task are spent) fails the task's Future with
  ``concurrent.futures.BrokenExecutor``: the sweep then stops with ``fmtlab._pool.WorkerDied``,
  the finished groups kept, as with its own workers.
* ``Future.cancel()`` (the sweep cancels what is left on Ctrl-C or an error) also asks Ray to
  cancel the task (``ray.cancel``).

``pip install "fmtlab[ray]"`` installs Ray (ray 2.60 on Python 3.11: about 1.5 minutes, 70 MB
of wheels).
"""
from __future__ import annotations

import concurrent.futures

__all__ = ["RayExecutor"]

# Ray's errors that mean the task's worker (or its node) was lost, not that the task raised.
_LOST_WORKER_ERRORS = ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError", "LocalRayletDiedError")


def _call(function, args, kwargs):
    """What a Ray task runs: the submitted call."""
    return function(*args, **kwargs)


class _RayFuture(concurrent.futures.Future):
    """The Future of one Ray task: its result or exception once Ray has it; a lost worker is a
    BrokenExecutor; cancel() cancels the Ray task too."""

    def __init__(self, reference):
        super().__init__()
        self._reference = reference
        reference.future().add_done_callback(self._settle)

    def _settle(self, finished) -> None:
        try:
            result = finished.result()
        except BaseException as error:  # noqa: BLE001 - handed to the caller through the Future
            if type(error).__name__ in _LOST_WORKER_ERRORS:
                error = concurrent.futures.BrokenExecutor(f"a Ray worker was lost: {type(error).__name__}: {error}")
            self._settle_with(self.set_exception, error)
        else:
            self._settle_with(self.set_result, result)

    def _settle_with(self, setter, value) -> None:
        try:
            setter(value)
        except concurrent.futures.InvalidStateError:  # cancelled meanwhile: the result is not wanted
            pass

    def cancel(self) -> bool:
        if self.done():
            return False
        import ray

        try:
            ray.cancel(self._reference)
        except Exception:  # noqa: BLE001 - the task may have finished or its worker gone: nothing to stop
            pass
        return super().cancel()


class RayExecutor(concurrent.futures.Executor):
    """A ``concurrent.futures.Executor`` whose calls run as Ray tasks (see the module docstring).

    ``options``: Ray task options (``ray.remote`` ones: ``num_cpus`` (default 1: the sweep's
    tasks run on one thread), ``max_retries``, ``memory``, ``resources``, ...)."""

    def __init__(self, **options):
        import ray

        remote = ray.remote(_call)
        self._remote = remote.options(**options) if options else remote
        self._shut = False

    def submit(self, function, /, *args, **kwargs) -> concurrent.futures.Future:
        if self._shut:
            raise RuntimeError("cannot submit to a RayExecutor after shutdown()")
        return _RayFuture(self._remote.remote(function, args, kwargs))

    def shutdown(self, wait=True, *, cancel_futures=False) -> None:
        """Refuse further calls; Ray itself stays up (it is the caller's: ``ray.shutdown()``)."""
        self._shut = True
