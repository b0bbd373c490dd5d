"""fmtlab._progress: a bar on a terminal, plain log lines elsewhere, nothing when quiet.

Time is faked (``time.monotonic`` patched) so the tests are exact and instant.
"""
import io

import pytest

from fmtlab import _progress
from fmtlab._progress import ProgressBar, ProgressLog, progress_display


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(_progress.time, "monotonic", fake)
    return fake


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_renders_and_stays_silent_off_a_terminal():
    stream = io.StringIO()
    bar = ProgressBar(4, "sweep", stream=stream, enabled=True, delay=0, interval=0)
    bar.update(2)
    bar.close()
    text = stream.getvalue()
    assert "sweep [" in text and "2/4" in text and "50%" in text and text.endswith("\n")
    quiet = io.StringIO()
    with ProgressBar(3, stream=quiet) as silent:  # StringIO is not a terminal
        silent.update(3)
    assert quiet.getvalue() == ""
    with pytest.raises(ValueError, match="total=-1 is not allowed"):
        ProgressBar(-1)


def test_progress_bar_shows_units_elapsed_time_and_eta(clock):
    bar = ProgressBar(0, "drift", unit="steps", stream=Terminal(), enabled=True, delay=0, width=10)
    bar.set(0, 400)
    clock.now += 30
    bar.set(100)
    assert bar.render() == "drift [##--------] 100/400 steps  25% 00:30 eta 01:30"


def test_log_lines_at_the_start_every_interval_and_at_the_end(clock):
    stream = io.StringIO()
    log = ProgressLog(0, "drift", unit="steps", stream=stream, delay=0, interval=10)
    log.set(0, 27000)                     # at once: delay 0
    clock.now += 4
    log.set(300)                          # within 10 s of the last line: nothing
    clock.now += 41
    log.set(1200)                         # 45 s: a line with the estimate
    clock.now += 5
    log.set(1500)                         # 5 s later: nothing
    clock.now += 100
    log.set(27000)                        # complete: a line, even within the interval
    log.set(27000)                        # the same state again: no second 100% line
    log.close()                           # writes nothing
    assert stream.getvalue().splitlines() == [
        "drift: 0/27000 steps (0%), 00:00 elapsed",
        "drift: 1200/27000 steps (4%), 00:45 elapsed, eta 16:08",  # 45 s x 25800 / 1200 = 967.5 s
        "drift: 27000/27000 steps (100%), 02:30 elapsed",
    ]


def test_log_waits_for_its_delay_and_a_short_job_shows_nothing(clock):
    stream = io.StringIO()
    log = ProgressLog(0, "sweep", unit="tasks", stream=stream, delay=0.5)
    log.set(0, 8)
    clock.now += 0.2
    log.set(8)                            # done within the delay: nothing at all
    assert stream.getvalue() == ""
    slow = ProgressLog(0, "sweep", unit="tasks", stream=stream, delay=0.5)
    slow.set(0, 8)
    clock.now += 2
    slow.set(1)
    assert stream.getvalue() == "sweep: 1/8 tasks (12%), 00:02 elapsed, eta 00:14\n"


def test_an_interrupted_log_ends_with_no_line_of_its_own(clock):
    stream = io.StringIO()
    log = ProgressLog(0, "drift", unit="steps", stream=stream, delay=0)
    log.set(0, 100)
    clock.now += 3
    log.set(40)
    log.close()
    assert stream.getvalue() == "drift: 0/100 steps (0%), 00:00 elapsed\n"


def test_progress_display_chooses_by_stream_and_quiet(clock):
    quiet = progress_display("sweep", quiet=True, stream=Terminal())
    assert isinstance(quiet, ProgressBar) and not quiet.enabled
    terminal = Terminal()
    bar = progress_display("sweep", unit="tasks", stream=terminal, delay=0)
    assert isinstance(bar, ProgressBar) and bar.enabled
    bar.set(1, 2)
    assert "sweep [" in terminal.getvalue() and "1/2 tasks" in terminal.getvalue()
    log_stream = io.StringIO()
    log = progress_display("sweep", unit="tasks", stream=log_stream, delay=0)
    assert isinstance(log, ProgressLog)
    log.set(1, 2)
    assert log_stream.getvalue() == "sweep: 1/2 tasks (50%), 00:00 elapsed, eta 00:00\n"
    silent_stream = Terminal()
    silent = progress_display("sweep", quiet=True, stream=silent_stream, delay=0)
    silent.set(1, 2)
    silent.close()
    assert silent_stream.getvalue() == ""


def test_a_terminal_gets_tqdm_with_rate_and_eta(clock):
    from fmtlab._progress import TqdmBar

    terminal = Terminal()
    bar = progress_display("sweep", unit="tasks", stream=terminal, delay=0)
    assert isinstance(bar, TqdmBar)
    bar.set(0, 4)
    bar.set(1, 4)
    bar.close()
    text = terminal.getvalue()
    assert "sweep [" in text and "1/4 tasks  25%" in text and "eta" in text and "tasks/s" in text
    assert text.endswith("\n")


def test_without_tqdm_a_terminal_gets_the_own_bar(clock, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tqdm", None)
    bar = progress_display("sweep", unit="tasks", stream=Terminal(), delay=0)
    assert type(bar) is ProgressBar and bar.enabled
