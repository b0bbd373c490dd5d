"""Ctrl-C and a killed worker, on the real command line (``python -m fmtlab``, two workers).

Each test starts a job big enough to still be running, waits until it has really started (a
progress line on stderr says that work has finished: stderr is not a terminal, so progress
is plain lines), then:

* sends SIGINT to the whole process group, as Ctrl-C at a terminal does (the workers get it
  too and must ignore it): the command must exit within 5 s with status 130, print exactly
  one line on stderr after the signal and no traceback anywhere, and leave the finished
  results in its output folder, readable;
* or SIGKILLs one worker process (a child of the forkserver, found through
  /proc/<pid>/task/*/children): status 1, one line naming what died, the finished results
  written.

Start-up is given minutes (a loaded 2-core machine); only the stop is timed strictly.
"""
import csv
import os
import pathlib
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
START_TIMEOUT = 300   # seconds until the job shows that work has finished
STOP_TIMEOUT = 5      # seconds from the signal to the exit

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


class Job:
    """``python -m fmtlab ARGS`` in its own process group, stderr read line by line."""

    def __init__(self, *args):
        self.process = subprocess.Popen([sys.executable, "-m", "fmtlab", *args], cwd=ROOT, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.lines = queue.Queue()
        self.stdout = []
        threading.Thread(target=self._read, args=(self.process.stderr, self.lines.put), daemon=True).start()
        threading.Thread(target=self._read, args=(self.process.stdout, self.stdout.append), daemon=True).start()
        self.before = []  # stderr lines read before the signal

    @staticmethod
    def _read(stream, put):
        for line in stream:
            put(line.rstrip("\n"))
        put(None)

    def wait_for(self, pattern, timeout=START_TIMEOUT):
        """Read stderr until a line matches ``pattern``; return the match."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.kill()
                pytest.fail(f"no line matching {pattern!r} within {timeout} s; stderr: {self.before}")
            self.before.append(line)
            match = re.match(pattern, line)
            if match:
                return match

    def stop_with(self, send):
        """Call ``send()``, wait for the exit; return (status, seconds, stderr lines after the signal)."""
        sent = time.monotonic()
        send()
        try:
            status = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail("the command did not stop within 60 s of the signal")
        seconds = time.monotonic() - sent
        after = []
        while (line := self.lines.get(timeout=10)) is not None:
            after.append(line)
        return status, seconds, after

    def kill(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def workers(self):
        """The worker processes: children of the command's forkserver (or, under spawn, its
        children that run spawn_main)."""
        found = []
        for child in _children(self.process.pid):
            command = _command_line(child)
            if "forkserver" in command:
                found.extend(_children(child))
            elif "spawn_main" in command:
                found.append(child)
        return found


def _children(pid):
    children = []
    for path in pathlib.Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children.extend(int(word) for word in path.read_text().split())
        except OSError:
            pass
    return children


def _command_line(pid):
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _no_traceback(job, after):
    text = "\n".join(job.before + after + [line for line in job.stdout if line is not None])
    assert "Traceback" not in text, text


# ---- fmtlab sweep -------------------------------------------------------------------------------
# 524 evaluations in 10 tasks (fmtlab._sweep_tasks, a target of 1/8 of the cost): per tensor, each of
# the four 64-bias axes with one of the six single-bias groups, and one task of the other two.
# Threads (the default pool) for Ctrl-C; worker processes for the killed worker.
SWEEP = ("sweep", "--size", str(4_000_000), "--jobs", "2", "--no-plots")
SWEEP_PROCESSES = SWEEP + ("--pool", "processes")
SWEEP_PROGRESS = r"sweep: ([1-9])/10 tasks"                             # a task finished, more to come


def _check_partial_sweep(out, finished):
    rows = _read_csv(out / "sweep.csv")
    # Exactly the complete groups the message counts.  How many there are depends on which tasks
    # finished first (a task of CFloat8 biases completes no group alone), which load decides.
    assert len(rows) == finished
    assert all(row["sqnr_db"] for row in rows)
    summary = (out / "summary.txt").read_text()
    assert "best bias" in summary
    # a summary row for each complete group; none when only partial groups had finished
    rows_shown = [line for line in summary.splitlines() if line.split()[:1] in (["normal"], ["lognormal"])]
    assert bool(rows_shown) == (finished > 0)
    _check_partial_page(out, finished > 0)


def _check_partial_page(out, expected):
    """report.html of the finished work, marked partial (tests/test_report_partial.py checks its
    contents); none when nothing had finished."""
    report = out / "report.html"
    assert report.exists() == expected
    if expected:
        assert "Partial results: this run was stopped" in report.read_text()


def test_ctrl_c_stops_a_sweep_at_once_and_writes_what_finished(tmp_path):
    out = tmp_path / "out"
    job = Job(*SWEEP, "--out", str(out))
    job.wait_for(SWEEP_PROGRESS)
    status, seconds, after = job.stop_with(lambda: os.killpg(job.process.pid, signal.SIGINT))
    assert status == 130
    assert seconds < STOP_TIMEOUT
    assert len(after) == 1, after
    match = re.fullmatch(rf"fmtlab sweep: interrupted: (\d+) of 524 results finished and were written to "
                         rf"{re.escape(str(out))}/", after[0])
    assert match, after
    _no_traceback(job, after)
    _check_partial_sweep(out, int(match.group(1)))


def test_ctrl_c_stops_a_sweep_on_worker_processes_at_once(tmp_path):
    out = tmp_path / "out"
    job = Job(*SWEEP_PROCESSES, "--out", str(out))
    job.wait_for(SWEEP_PROGRESS)
    status, seconds, after = job.stop_with(lambda: os.killpg(job.process.pid, signal.SIGINT))
    assert status == 130 and seconds < STOP_TIMEOUT and len(after) == 1, (status, seconds, after)
    assert re.fullmatch(r"fmtlab sweep: interrupted: \d+ of 524 results finished and were written to .*/", after[0])
    _no_traceback(job, after)


def test_a_killed_sweep_worker_is_named_and_the_finished_results_are_written(tmp_path):
    out = tmp_path / "out"
    job = Job(*SWEEP_PROCESSES, "--out", str(out))
    job.wait_for(SWEEP_PROGRESS)
    workers = job.workers()
    assert len(workers) == 2, workers
    status, seconds, after = job.stop_with(lambda: os.kill(workers[0], signal.SIGKILL))
    assert status == 1
    assert seconds < STOP_TIMEOUT
    assert len(after) == 1, after
    match = re.fullmatch(r"fmtlab sweep: error: the worker process running tensor '(normal|lognormal)' "
                         r"\((all rows|rows \d+-\d+ of 4000000), \d group\(s\), \d+ evaluations\) was killed by SIGKILL "
                         r"\(out of memory, or killed from outside\); [1-9] of 10 tasks had finished.*; (\d+) of 524 "
                         r"results finished and were "
                         rf"written to {re.escape(str(out))}/", after[0])
    assert match, after
    _no_traceback(job, after)
    _check_partial_sweep(out, int(match.group(3)))


# ---- fmtlab drift -------------------------------------------------------------------------------
# 100 runs of 1000 steps: a minute or more on 2 cores, so it is still running when a progress line
# (one every 10 s) says that more than two runs' worth of steps are done.
DRIFT = ("drift", "--configs", "fp32,bf16_mixed", "--seeds", "50", "--steps", "1000", "--eval-every", "500",
         "--jobs", "2", "--no-plots")
DRIFT_PROGRESS = r"drift: (\d+)/100000 steps"


def _wait_for_two_runs(job):
    while int(job.wait_for(DRIFT_PROGRESS).group(1)) < 2 * 1000 + 1:
        pass


def _check_partial_drift(out, finished):
    rows = _read_csv(out / "drift.csv")
    runs = {(row["config"], row["seed"]) for row in rows}
    assert len(runs) == finished >= 1
    assert len(rows) == 1001 * finished  # steps 0..1000 of each finished run, nothing of the others
    summary = _read_csv(out / "summary.csv")
    assert [row["config"] for row in summary] == ["fp32", "bf16_mixed"]
    assert sum(int(row["seeds"]) for row in summary) == finished
    _check_partial_page(out, True)


def test_ctrl_c_stops_drift_at_once_and_writes_the_finished_runs(tmp_path):
    out = tmp_path / "out"
    job = Job(*DRIFT, "--out", str(out))
    assert job.wait_for(r"drift: 0/100000 steps \(0%\)")  # the first line, before any step
    _wait_for_two_runs(job)
    status, seconds, after = job.stop_with(lambda: os.killpg(job.process.pid, signal.SIGINT))
    assert status == 130
    assert seconds < STOP_TIMEOUT
    assert len(after) == 1, after
    match = re.fullmatch(rf"fmtlab drift: interrupted: (\d+) of 100 runs finished and were written to "
                         rf"{re.escape(str(out))}/ \(drift\.csv, summary\.csv\)", after[0])
    assert match, after
    _no_traceback(job, after)
    _check_partial_drift(out, int(match.group(1)))


def test_a_killed_drift_worker_is_named_and_the_finished_runs_are_written(tmp_path):
    out = tmp_path / "out"
    job = Job(*DRIFT, "--out", str(out))
    _wait_for_two_runs(job)
    workers = job.workers()
    assert len(workers) == 2, workers
    status, seconds, after = job.stop_with(lambda: os.kill(workers[0], signal.SIGKILL))
    assert status == 1
    assert seconds < STOP_TIMEOUT
    assert len(after) == 1, after
    match = re.fullmatch(r"fmtlab drift: error: the worker process running (fp32|bf16_mixed) seed \d+ was killed "
                         r"by SIGKILL \(out of memory, or killed from outside\); \d+ of 100 tasks had finished.*; "
                         rf"(\d+) of 100 runs finished and were written to {re.escape(str(out))}/ "
                         r"\(drift\.csv, summary\.csv\)", after[0])
    assert match, after
    _no_traceback(job, after)
    _check_partial_drift(out, int(match.group(2)))
