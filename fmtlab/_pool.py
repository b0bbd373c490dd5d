"""Running many independent tasks: inline, on fmtlab's own worker processes, or on any Executor.

The one process pool of fmtlab: ``fl.sweep``, ``fl.sweep_mma`` and the drift experiment
(``fmtlab.drift.runner.run_experiment``) all run their tasks with :func:`run_tasks`.

Every task is a pure function of its arguments, called as ``function(*args, threads=1)``,
so results never depend on how (or on how many processes) the tasks ran.  ``threads=1``:
each task runs the C loops (and torch) on one thread; the parallelism comes from tasks side
by side (OpenMP teams inside every worker would oversubscribe the cores).

The worker processes (made here when no executor is given):

* are started with one start method, "forkserver" where the platform has it, else
  "spawn": never "fork", which copies a parent whose OpenMP or torch threads may hold
  locks.  forkserver serves torch as well as spawn does (the server is a fresh,
  single-threaded interpreter started like a spawned one) and starts workers sooner: each
  is a fork of the server, which can import heavy modules once for all of them
  (``preload``: the drift runs preload torch, which saves each worker seconds of imports);
* ignore SIGINT from birth (it is ignored in the parent while they start, and an ignored
  signal stays ignored across fork and exec), so Ctrl-C at a terminal, which signals the
  whole process group, reaches only the parent: no worker prints a traceback, not even one
  interrupted while importing numpy;
* are fmtlab's own rather than a ``concurrent.futures.ProcessPoolExecutor``, because the
  parent must (1) stop running workers at once on Ctrl-C (the executor has no public
  terminate and lets running tasks finish), (2) know which task each worker runs, so that
  a dead worker is named (the executor reports a BrokenProcessPool for every task), and
  (3) receive progress from tasks while they run (:func:`report_progress`).  Each worker
  has one duplex pipe to the parent, takes one task at a time, and the parent waits on the
  pipes and on the workers' exit sentinels together.

How a run ends when it does not finish:

* Ctrl-C (KeyboardInterrupt in the parent): running workers are terminated at once, no
  queued task is started, and :class:`Interrupted` is raised with the finished results;
* a worker dies (killed, out of memory): the others are terminated and :class:`WorkerDied`
  names the task(s) that were running in it and how many had finished;
* a task raises: the others are terminated and its exception is raised in the parent (with
  the worker's traceback as ``__cause__``).

Scripts must guard their entry point with ``if __name__ == "__main__":``: workers
re-import the main module (both start methods do).
"""
from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import multiprocessing
import multiprocessing.connection
import numbers
import os
import pickle
import signal
import threading
import time
import traceback

from ._choices import not_allowed
from .codec import get_threads, set_threads

__all__ = ["available_cpus", "check_pool", "check_run_arguments", "is_dask_client", "dask_client", "plan", "run_tasks", "report_progress", "start_method", "Interrupted",
           "WorkerDied", "INLINE_WORK", "POOLS"]

POOLS = ("threads", "processes")  # how run_tasks runs tasks when no executor is given
INLINE_WORK = 1 << 22       # element evaluations below which jobs=None runs inline
_WAIT_SECONDS = 0.5         # the parent's longest sleep between two looks at its workers
_REPORT_SECONDS = 0.2       # a worker sends progress at most this often
_STOP_SECONDS = 2.0         # how long a terminated worker gets before it is killed


def available_cpus() -> int:
    """The CPUs this process may run on: ``len(os.sched_getaffinity(0))`` (which honours
    taskset and container CPU sets), else ``os.cpu_count()``; at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def start_method() -> str:
    """The start method of fmtlab's workers: "forkserver" where available, else "spawn"."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def check_pool(pool, argument: str = "pool") -> str:
    """``pool`` if it is one of :data:`POOLS`, else a ValueError naming ``argument`` (``pool`` or
    ``--pool``), with "did you mean"."""
    if not isinstance(pool, str) or pool not in POOLS:
        raise ValueError(not_allowed(argument, pool, ", ".join(POOLS), POOLS))
    return pool


def check_run_arguments(seed, jobs, executor) -> None:
    """Check the arguments every parallel entry point (fl.sweep, fl.sweep_mma) shares: ``seed`` a
    non-negative int, ``jobs`` None or a positive int, ``executor`` None or an Executor."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed={seed!r} is not allowed: a non-negative int")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, numbers.Integral) or jobs < 1):
        raise ValueError(f"jobs={jobs!r} is not allowed: a positive int, or None for every available CPU")
    if executor is not None and not isinstance(executor, concurrent.futures.Executor) and not is_dask_client(executor):
        raise TypeError(f"executor={executor!r} is not allowed: a concurrent.futures.Executor, a "
                        "distributed.Client, or None")


def is_dask_client(executor) -> bool:
    """Whether ``executor`` is a Dask ``distributed.Client``, recognised (without importing
    distributed) as what the tasks need of one: a ``get_executor()`` that gives an Executor."""
    return not isinstance(executor, concurrent.futures.Executor) and callable(getattr(executor, "get_executor", None))


def dask_client(address: str, workers: int):
    """A ``distributed.Client`` for ``--dask``: ``"local"`` starts a LocalCluster of ``workers``
    processes with one thread each (the tasks run the C loops on one thread), anything else is
    a scheduler address (``tcp://host:8786``).  Returns (client, cluster or None); close both."""
    try:
        import distributed
    except ImportError:
        raise ValueError("--dask needs Dask's distributed package, which is not installed "
                         "(pip install 'dask[distributed]')") from None
    if address == "local":
        import dask

        # Dask starts its workers with MALLOC_TRIM_THRESHOLD_=65536, which makes glibc hand every
        # freed temporary back to the OS: a sweep task, which makes many MB-sized numpy
        # temporaries, then ran 2.5 times slower (measured).  Its other settings stay.
        environment = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
        environment.pop("MALLOC_TRIM_THRESHOLD_", None)
        # The workers do not log: a Ctrl-C or a stop cancels their tasks and closes the scheduler
        # under them, which Dask reports as warnings and errors (with tracebacks) on the terminal
        # after fmtlab's own one line.  What fails in a task still reaches this process (its
        # exception, or KilledWorker for a worker that keeps dying).
        environment["DASK_LOGGING__DISTRIBUTED"] = "critical"
        # SIGINT ignored while the worker processes start (they keep it ignored, as fmtlab's own
        # workers do): Ctrl-C at a terminal, sent to the whole process group, reaches only this
        # process, which stops the run; no worker prints a traceback.
        cluster = None
        try:
            with dask.config.set({"distributed.nanny.pre-spawn-environ": environment}), _sigint_ignored():
                cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                   dashboard_address=":0")
            return distributed.Client(cluster), cluster
        except BaseException:  # a Ctrl-C while it started (raised when SIGINT is unblocked): close it
            if cluster is not None:
                cluster.close()
            raise
    try:
        return distributed.Client(address, timeout=5), None
    except (OSError, TimeoutError, ValueError) as error:
        raise ValueError(f"--dask {address!r}: no Dask scheduler answers there ({type(error).__name__}: "
                         f"{' '.join(str(error).split())}); give local or a scheduler address such as "
                         "tcp://host:8786") from None


def plan(executor, jobs, work):
    """(inline, workers) for a run of ``work`` element evaluations: ``jobs`` workers
    (None: :func:`available_cpus`), inline when there is no executor and one worker, or
    ``jobs=None`` and less than ``INLINE_WORK`` of work."""
    workers = available_cpus() if jobs is None else int(jobs)
    inline = executor is None and (workers == 1 or (jobs is None and work < INLINE_WORK))
    return inline, workers


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`run_tasks`; what had finished is kept.

    ``results``: one entry per task, in order, None where the task had not finished.
    ``partial`` and ``planned`` are set by the caller that re-raises it: its own partial
    result (e.g. a SweepResult of the complete groups) and the size the whole result would
    have had.  A KeyboardInterrupt, so code that does not know it still stops.
    """

    def __init__(self, results):
        self.results = list(results)
        self.finished = sum(result is not None for result in self.results)
        self.total = len(self.results)
        self.partial = None
        self.planned = None
        super().__init__(f"interrupted: {self.finished} of {self.total} tasks had finished")


class WorkerDied(RuntimeError):
    """A worker process died (killed, out of memory) or could not start.

    The message is one line: which task(s) were running in the dead worker, how it died, and
    how many tasks had finished.  ``results``, ``partial`` and ``planned`` as for
    :class:`Interrupted`; ``running``: the labels of the tasks that were running in it.
    """

    def __init__(self, message, results, running=()):
        self.results = list(results)
        self.finished = sum(result is not None for result in self.results)
        self.total = len(self.results)
        self.running = list(running)
        self.partial = None
        self.planned = None
        super().__init__(message)


# ---- progress from inside a task ----------------------------------------------------------------
_reporter = None  # set while a task runs: a callable taking a count of units done


def report_progress(units: int = 1) -> None:
    """Called by a task: ``units`` more of its work are done (drift: one training step).

    In a worker the count goes to the parent (at most every 0.2 s); inline it reaches the
    ``progress`` callback at once; elsewhere (another executor, or outside run_tasks) it is
    ignored.  What a task reports beyond its ``units`` (see :func:`run_tasks`) is ignored.
    """
    if _reporter is not None:
        _reporter(units)


class _PipeReporter:
    """Batches a task's progress into a few messages to the parent."""

    def __init__(self, connection, index):
        self.connection, self.index = connection, index
        self.pending, self.last = 0, time.monotonic()

    def __call__(self, units):
        self.pending += units
        now = time.monotonic()
        if now - self.last >= _REPORT_SECONDS:
            self.flush()
            self.last = now

    def flush(self):
        if self.pending:
            self.connection.send(("progress", self.index, self.pending))
            self.pending = 0


# ---- the worker process -------------------------------------------------------------------------
def _worker_main(connection):
    """A worker: run tasks from the parent one at a time until told to stop (None) or the
    parent goes away (EOF)."""
    global _reporter
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # already ignored from birth; see the module docstring
    set_threads(1)
    connection.send(("ready", os.getpid()))
    while True:
        try:
            index = connection.recv()
            if index is None:
                return
            payload = connection.recv_bytes()
        except (EOFError, OSError):  # the parent is gone
            return
        reporter = _PipeReporter(connection, index)
        _reporter = reporter
        try:
            function, args = pickle.loads(payload)
            del payload  # the arguments' pickled bytes: as large as a tensor, not needed any more
            reply = ("done", index, function(*args, threads=1))
        except BaseException as error:  # reported to the parent, which decides what to do
            reply = ("error", index, _sendable(error), traceback.format_exc())
        finally:
            _reporter = None
        try:
            reporter.flush()
            connection.send(reply)
        except (EOFError, OSError):
            return
        except Exception as error:  # the result does not pickle
            connection.send(("error", index, RuntimeError(f"the result of task {index} cannot be sent to the "
                                                          f"parent process: {error}"), traceback.format_exc()))


def _sendable(error):
    """``error`` if it survives pickling, else a RuntimeError with its type and message."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")


class _RemoteTraceback(Exception):
    """The traceback of a task's exception in its worker (the ``__cause__`` of the re-raised one)."""

    def __init__(self, text):
        self.text = text

    def __str__(self):
        return self.text


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT blocked and ignored while worker processes start, so that they inherit the
    ignored disposition; a Ctrl-C meanwhile stays pending (Linux never discards a blocked
    signal) and arrives as KeyboardInterrupt when the block is lifted.  Outside the main
    thread signals are not ours to touch, and nothing is done."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield  # (None: a handler installed outside Python, which could not be put back)
        return
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if hasattr(signal, "pthread_sigmask") else None
    old_handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old_handler)
        if old_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def _death(exitcode) -> str:
    """How a process ended, in words."""
    if exitcode is None:
        return "stopped answering"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory, or killed from outside)" if -exitcode == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with status {exitcode}"


_GUARD_HINT = ("if this runs from a script, guard its entry point with `if __name__ == \"__main__\":` "
               "(workers re-import the main module), or pass jobs=1 to run in this process")


class _Pool:
    """Worker processes with one duplex pipe each (see the module docstring)."""

    def __init__(self, preload=()):
        self.context = multiprocessing.get_context(start_method())
        if preload and start_method() == "forkserver":
            # Modules the server imports once, before it forks each worker (the first pool of a
            # process decides; a server already running keeps its modules).
            self.context.set_forkserver_preload(["__main__", *preload])
        self.processes, self.connections = [], []
        self.ready = set()      # workers that reported ready
        self.running = {}       # worker -> index of the task it runs
        self.stopped = False

    def start(self, workers: int) -> None:
        with _sigint_ignored():
            for _ in range(workers):
                parent_end, child_end = self.context.Pipe(duplex=True)
                process = self.context.Process(target=_worker_main, args=(child_end,), daemon=True,
                                               name="fmtlab-worker")
                self.connections.append(parent_end)
                try:
                    process.start()
                finally:
                    child_end.close()
                self.processes.append(process)

    def send(self, worker: int, index: int, payload: bytes) -> None:
        self.running[worker] = index  # from now on: a death of the worker is this task's
        self.connections[worker].send(index)
        self.connections[worker].send_bytes(payload)

    def receive(self, worker: int) -> list:
        """Every message waiting from ``worker``; ``[("eof",)]`` at the end when its pipe closed."""
        connection, messages = self.connections[worker], []
        try:
            while connection.poll():
                messages.append(connection.recv())
        except (EOFError, OSError):
            messages.append(("eof",))
        return messages

    def stop(self, now: bool) -> None:
        """End every worker: at once (SIGTERM, whose default action ends the process without
        running any Python) or after its current task (a stop message).  Idempotent."""
        if self.stopped:
            return
        self.stopped = True
        for worker, process in enumerate(self.processes):
            if process.exitcode is not None:
                continue
            if now:
                process.terminate()
            else:
                with contextlib.suppress(OSError):
                    self.connections[worker].send(None)
        deadline = time.monotonic() + _STOP_SECONDS
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                process.kill()
                process.join()
        for connection in self.connections:
            connection.close()
        for process in self.processes:
            with contextlib.suppress(ValueError):
                process.close()


def _run_on_workers(function, arguments, workers, results, labels, units, report, preload, on_result):
    """The parent's loop: hand tasks to idle workers, collect messages, watch for deaths."""
    pending = collections.deque(range(len(arguments)))
    partial = {}  # task index -> units its running task has reported
    pool = _Pool(preload)
    finished_cleanly = False
    try:
        try:
            pool.start(min(workers, len(arguments)))
        except (OSError, EOFError, RuntimeError) as error:
            reason = " ".join(str(error).split())  # one line
            raise WorkerDied(f"the worker processes could not start ({type(error).__name__}: {reason}); "
                             f"{_GUARD_HINT}", results) from None
        while pending or pool.running:
            for worker in range(len(pool.processes)):
                if pending and worker in pool.ready and worker not in pool.running:
                    index = pending.popleft()
                    try:
                        pool.send(worker, index, pickle.dumps((function, arguments[index])))
                    except OSError:  # BrokenPipeError: the worker died since it last spoke
                        pool.processes[worker].join(_STOP_SECONDS)
                        raise _worker_died(pool, worker, results, labels) from None
            live = [worker for worker, process in enumerate(pool.processes) if process.exitcode is None]
            if len(live) < len(pool.processes):  # a worker ended without its pipe saying so yet
                dead = next(w for w in range(len(pool.processes)) if w not in live)
                pool.receive(dead)
                raise _worker_died(pool, dead, results, labels)
            ready = multiprocessing.connection.wait(
                [pool.connections[w] for w in live] + [pool.processes[w].sentinel for w in live],
                timeout=_WAIT_SECONDS)
            changed = False
            for worker in live:
                if pool.connections[worker] not in ready and pool.processes[worker].sentinel not in ready:
                    continue
                for message in pool.receive(worker):
                    kind = message[0]
                    if kind == "ready":
                        pool.ready.add(worker)
                    elif kind == "progress":
                        partial[message[1]] = min(units[message[1]], partial.get(message[1], 0) + message[2])
                        changed = True
                    elif kind == "done":
                        results[message[1]] = message[2]
                        partial.pop(message[1], None)
                        del pool.running[worker]
                        changed = True
                        if on_result is not None:
                            on_result(message[1], message[2])
                    elif kind == "error":  # the task raised: raise it here, with the worker's traceback
                        error = message[2]
                        error.__cause__ = _RemoteTraceback(message[3])
                        raise error
                    else:  # "eof": the worker is gone
                        pool.processes[worker].join(_STOP_SECONDS)
                        raise _worker_died(pool, worker, results, labels)
            if changed and report is not None:
                report(sum(units[index] for index, result in enumerate(results) if result is not None)
                       + sum(partial.values()))
        finished_cleanly = True
    except KeyboardInterrupt:
        raise Interrupted(results) from None  # the workers are terminated first, by the finally
    finally:
        pool.stop(now=not finished_cleanly)
    return results


def _worker_died(pool, worker, results, labels):
    process = pool.processes[worker]
    finished = sum(result is not None for result in results)
    done = f"{finished} of {len(results)} tasks had finished"
    if worker not in pool.ready:
        return WorkerDied(f"a worker process {_death(process.exitcode)} before it could run any task ({done}); "
                          f"{_GUARD_HINT}", results)
    index = pool.running.get(worker)
    if index is None:
        return WorkerDied(f"a worker process {_death(process.exitcode)} between tasks; {done}", results)
    others = [labels[i] for w, i in pool.running.items() if w != worker]
    stopped = f"; stopped with it: {', '.join(others)}" if others else ""
    return WorkerDied(f"the worker process running {labels[index]} {_death(process.exitcode)}; {done}{stopped}",
                      results, [labels[index]])


def _unfinished_died(error, results, labels):
    unfinished = [labels[index] for index, result in enumerate(results) if result is None]
    shown = ", ".join(unfinished[:4]) + (f" and {len(unfinished) - 4} more" if len(unfinished) > 4 else "")
    return WorkerDied(f"the executor's workers died ({type(error).__name__}) with {shown} unfinished; "
                      f"{len(results) - len(unfinished)} of {len(results)} tasks had finished", results, unfinished)


def _run_on_dask(function, arguments, client, results, labels, units, report, on_result):
    """The tasks as Dask futures of ``client`` (pure=False: each runs, even two with equal
    arguments); on Ctrl-C or an error the unfinished ones are cancelled on the cluster."""
    import distributed

    futures = {}
    not_done = set()
    try:
        # submitted inside the try: a Ctrl-C while hundreds of tasks are being submitted (seconds on
        # a loaded machine) cancels those already sent and is reported as Interrupted like any other
        for index, args in enumerate(arguments):
            futures[client.submit(function, *args, threads=1, pure=False)] = index
        not_done = set(futures)
        while not_done:
            try:
                done, not_done = distributed.wait(not_done, timeout=_WAIT_SECONDS, return_when="FIRST_COMPLETED")
            except TimeoutError:
                continue
            for future in done:
                index = futures[future]
                if future.status == "error":
                    error = future.exception()
                    if type(error).__name__ == "KilledWorker":  # the task's workers died, each time
                        raise _unfinished_died(error, results, labels)
                    raise error
                if future.status == "cancelled":
                    raise WorkerDied(f"{labels[index]} was cancelled on the Dask cluster; "
                                     f"{sum(r is not None for r in results)} of {len(results)} tasks had finished",
                                     results, [labels[index]])
                results[index] = future.result()
                if on_result is not None:
                    on_result(index, results[index])
            if done and report is not None:
                report(sum(units[index] for index, result in enumerate(results) if result is not None))
    except KeyboardInterrupt:
        client.cancel([future for future in futures if not future.done()])
        raise Interrupted(results) from None
    except BaseException:
        client.cancel([future for future in futures if not future.done()])
        raise
    return results


def _run_on_executor(function, arguments, executor, results, labels, units, report, on_result):
    if is_dask_client(executor):
        if callable(getattr(executor, "submit", None)) and callable(getattr(executor, "cancel", None)):
            return _run_on_dask(function, arguments, executor, results, labels, units, report, on_result)
        # Another client-like object: its Executor face (concurrent.futures futures).
        executor = executor.get_executor(pure=False)
    futures = {executor.submit(function, *args, threads=1): index for index, args in enumerate(arguments)}
    try:
        not_done = set(futures)
        while not_done:
            done, not_done = concurrent.futures.wait(not_done, timeout=_WAIT_SECONDS,
                                                     return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                try:
                    results[futures[future]] = future.result()
                    if on_result is not None:
                        on_result(futures[future], results[futures[future]])
                except concurrent.futures.CancelledError:
                    raise WorkerDied(f"{labels[futures[future]]} was cancelled by the executor; "
                                     f"{sum(r is not None for r in results)} of {len(results)} tasks had finished",
                                     results, [labels[futures[future]]]) from None
                except Exception as error:
                    if type(error).__name__ != "KilledWorker" and not isinstance(
                            error, concurrent.futures.BrokenExecutor):
                        raise
                    # A broken executor, or Dask's KilledWorker (the task's workers died, each time)
                    raise _unfinished_died(error, results, labels) from None
            if done and report is not None:
                report(sum(units[index] for index, result in enumerate(results) if result is not None))
    except KeyboardInterrupt:
        for future in futures:
            future.cancel()  # tasks already running on another executor's workers are not ours to stop
        # Tasks that finished while this process waited are kept, as though the wait had seen them.
        for future, index in futures.items():
            if results[index] is None and future.done() and not future.cancelled() and future.exception() is None:
                results[index] = future.result()
                if on_result is not None:
                    on_result(index, results[index])
        raise Interrupted(results) from None
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return results


def run_tasks(function, arguments, executor=None, inline=False, workers=1, progress=None, *, labels=None,
              units=None, preload=(), on_result=None, pool="processes") -> list:
    """``[function(*args, threads=1) for args in arguments]``, in order, run inline (this
    process's thread setting is restored afterwards), on ``executor``, or on ``workers``
    worker processes made here (see the module docstring) -- or, with ``pool="threads"``, on
    ``workers`` threads of this process.

    ``pool="threads"`` is for tasks whose time is spent in fmtlab's C loops, which release the
    GIL (the sweep's): threads start in microseconds and share the tensors, where each worker
    process costs a start and a copy of its rows.  The tasks run side by side with the C loops
    on one thread each (this process's thread setting is restored afterwards); Ctrl-C cancels
    every task not yet started and raises :class:`Interrupted` at once (a running task cannot be
    stopped from outside: it ends in the background and its result is dropped); a task's
    exception is raised as it is.  A process that dies takes the run with it, so
    :class:`WorkerDied` is not raised there.

    ``progress(done, total)`` is called at the start and as work is done.  Without
    ``units`` a task counts 1 when it finishes; with ``units`` (one count per task, e.g. its
    training steps) ``total = sum(units)`` and a running task's :func:`report_progress`
    calls count too (inline and on the workers made here; another executor reports finished
    tasks only).  ``labels`` names the tasks in messages (default "task 0", "task 1", ...).
    ``on_result(index, result)`` is called in this process as each task's result arrives (in
    the order they finish), so that a caller can keep finished work as it comes.
    ``executor`` may be a ``distributed.Client`` (run through ``client.get_executor()``).
    ``preload``: modules for the forkserver to import before it forks the workers (torch for
    the drift runs: imported once instead of once per worker).

    Raises :class:`Interrupted` on Ctrl-C (inline: between tasks; the task that was running
    is lost) and :class:`WorkerDied` when a worker process dies, both carrying the finished
    results (None for a task that had not finished, so tasks must not return None); a task's
    own exception is raised as it is, after the other workers are stopped.
    """
    total = len(arguments)
    results = [None] * total
    labels = [f"task {index}" for index in range(total)] if labels is None else [str(label) for label in labels]
    units = [1] * total if units is None else [int(count) for count in units]
    if len(labels) != total or len(units) != total:
        raise ValueError(f"labels and units need one entry per task ({total}); got {len(labels)} and {len(units)}")
    total_units = sum(units)
    report = None if progress is None else (lambda done: progress(done, total_units))
    if progress is not None:
        progress(0, total_units)
    if not arguments:
        return results
    if inline:
        return _run_inline(function, arguments, results, units, report, on_result)
    if executor is not None:
        return _run_on_executor(function, arguments, executor, results, labels, units, report, on_result)
    if pool == "threads":
        return _run_on_threads(function, arguments, workers, results, labels, units, report, on_result)
    check_pool(pool)
    return _run_on_workers(function, arguments, workers, results, labels, units, report, tuple(preload), on_result)


def _run_on_threads(function, arguments, workers, results, labels, units, report, on_result):
    """The tasks on ``workers`` threads of this process (see :func:`run_tasks`): through
    :func:`_run_on_executor` with a ThreadPoolExecutor, which gives the same waiting, progress,
    Ctrl-C and error handling as any other executor."""
    previous = get_threads()
    set_threads(1)  # process-wide: every task runs its C loops on one thread (tasks set it too)
    threads = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(int(workers), len(arguments))),
                                                    thread_name_prefix="fmtlab-task")
    try:
        return _run_on_executor(function, arguments, threads, results, labels, units, report, on_result)
    finally:
        # Not waiting: after Ctrl-C or an error the tasks not started are cancelled, and one still
        # running ends on its own (its result is dropped).
        threads.shutdown(wait=False, cancel_futures=True)
        set_threads(previous)


def _run_inline(function, arguments, results, units, report, on_result):
    global _reporter
    previous = get_threads()
    done = 0
    try:
        for index, args in enumerate(arguments):
            if report is not None:
                running = [0]

                def reporter(count, running=running, limit=units[index], base=done):
                    running[0] = min(limit, running[0] + count)
                    report(base + running[0])

                _reporter = reporter
            try:
                results[index] = function(*args, threads=1)
            finally:
                _reporter = None
            done += units[index]
            if on_result is not None:
                on_result(index, results[index])
            if report is not None:
                report(done)
    except KeyboardInterrupt:
        raise Interrupted(results) from None
    finally:
        set_threads(previous)
    return results
