"""Progress of long commands on stderr: a bar on a terminal, plain log lines elsewhere.

    display = progress_display("drift", unit="steps", quiet=args.quiet)
    for ...:
        display.set(done, total)
    display.close()

:func:`progress_display` picks what ``fmtlab sweep``, ``fmtlab sweep-mma`` and
``fmtlab drift`` show:

* ``quiet``: nothing;
* the stream is a terminal: :class:`TqdmBar` where ``tqdm`` is installed (one line redrawn in
  place by tqdm: done/total, percent, elapsed time, rate, an estimate of the time left), else
  :class:`ProgressBar`, the same line drawn here;
* otherwise (a log file, a pipe, CI): :class:`ProgressLog`, a plain line at the start, at
  most one every ``interval`` seconds (10) after it, and one at 100%, e.g.
  ``drift: 1200/27000 steps (4%), 00:45 elapsed, eta 16:00``.

Both wait ``delay`` seconds of work before they show anything (0: at once), so that short
jobs stay clean; a job that ends within its delay shows nothing.  The time left is
elapsed x remaining / done.
"""
from __future__ import annotations

import sys
import time

__all__ = ["ProgressBar", "ProgressLog", "TqdmBar", "progress_display"]


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


def _check_total(total) -> None:
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise ValueError(f"total={total!r} is not allowed: a non-negative int")


class _Progress:
    """What both displays share: the counts, the clock, and the context-manager protocol."""

    def __init__(self, total, label, unit, stream, delay):
        _check_total(total)
        self.total = total
        self.label = label
        self.unit = unit
        self.stream = sys.stderr if stream is None else stream
        self.delay = delay
        self.done = 0
        self._start = time.monotonic()

    def update(self, count: int = 1) -> None:
        """Record ``count`` more units done and show it if it is time to."""
        self.done = min(self.total, self.done + count)
        self._changed(time.monotonic())

    def set(self, done: int, total: int | None = None) -> None:
        """Record that ``done`` units of ``total`` (default: unchanged) are done."""
        if total is not None:
            _check_total(total)
            self.total = total
        self.done = max(0, min(self.total, int(done)))
        self._changed(time.monotonic())

    def _counts(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.done}/{self.total}{unit}"

    def _eta(self, elapsed) -> str:
        if 0 < self.done < self.total:
            return _clock(elapsed * (self.total - self.done) / self.done)
        return ""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class ProgressBar(_Progress):
    """Progress of ``total`` units of work, drawn on one line of ``stream`` (stderr by default).

    Parameters
    ----------
    total : number of units (an int >= 0).
    label : text shown before the bar.
    unit : name of the units, shown after the counts ("steps").
    stream : where to draw; ``None`` means ``sys.stderr`` at construction time.
    enabled : ``None`` draws only when ``stream`` is a terminal; True/False force it.
    delay : seconds of work before the first draw (0 draws at once).
    interval : least seconds between two redraws.
    width : characters of the bar itself.
    """

    def __init__(self, total: int, label: str = "", *, unit: str = "", stream=None, enabled: bool | None = None,
                 delay: float = 0.5, interval: float = 0.1, width: int = 30):
        super().__init__(total, label, unit, stream, delay)
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.interval = interval
        self.width = width
        self._last_draw = None
        self._drawn = False
        self._drawn_done = None

    def _changed(self, now: float) -> None:
        if not self.enabled:
            return
        if now - self._start < self.delay and self.done < self.total:
            return
        if self._last_draw is not None and now - self._last_draw < self.interval and self.done < self.total:
            return
        self._draw(now)

    def render(self, now: float | None = None) -> str:
        """The bar's text for the current state (without the leading carriage return)."""
        now = time.monotonic() if now is None else now
        elapsed = now - self._start
        fraction = self.done / self.total if self.total else 1.0
        filled = int(round(fraction * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        eta = self._eta(elapsed)
        remaining = f" eta {eta}" if eta else ""
        label = f"{self.label} " if self.label else ""
        return f"{label}[{bar}] {self._counts()} {100 * fraction:3.0f}% {_clock(elapsed)}{remaining}"

    def _draw(self, now: float) -> None:
        self._last_draw = now
        self._drawn_done = self.done
        self._drawn = True
        self.stream.write("\r" + self.render(now) + "\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        """Finish the line (only if something was drawn)."""
        if self.enabled and self._drawn:
            if self._drawn_done != self.done:
                self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


class TqdmBar(ProgressBar):
    """A :class:`ProgressBar` drawn by ``tqdm``: ``label [bar] done/total unit percent elapsed
    eta remaining rate``.  The counts are this object's (``set`` and ``update`` as for every
    display); tqdm draws them, at most every ``interval`` seconds, after ``delay``."""

    def __init__(self, total: int, label: str = "", *, unit: str = "", stream=None, enabled: bool | None = None,
                 delay: float = 0.5, interval: float = 0.1, width: int = 30):
        super().__init__(total, label, unit=unit, stream=stream, enabled=enabled, delay=delay, interval=interval,
                         width=width)
        self._bar = None

    def _draw(self, now: float) -> None:
        import tqdm

        if self._bar is None:
            unit = f" {self.unit}" if self.unit else ""
            self._bar = tqdm.tqdm(total=self.total, file=self.stream, leave=True, mininterval=0, delay=0,
                                  ascii=" #", dynamic_ncols=False,
                                  bar_format=f"{self.label} [{{bar:{self.width}}}] {{n}}/{{total}}{unit} "
                                             "{percentage:3.0f}% {elapsed} eta {remaining} {rate_fmt}",
                                  unit=self.unit or "it")
        self._bar.total = self.total
        self._bar.n = self.done
        self._bar.refresh()
        self._last_draw = now
        self._drawn_done = self.done
        self._drawn = True

    def close(self) -> None:
        """Finish the line (only if something was drawn)."""
        if self._bar is not None:
            if self._drawn_done != self.done:
                self._draw(time.monotonic())
            self._bar.close()
            self._bar = None
            self._drawn = False


class ProgressLog(_Progress):
    """Progress as plain lines for streams that are not terminals (logs, pipes).

    A line when the first ``delay`` seconds have passed (at once for 0), then at most one
    every ``interval`` seconds, and one when the work is complete; nothing if the work was
    complete before ``delay``.  ``close`` writes nothing, so an interrupted job's last line
    is its own message.
    """

    def __init__(self, total: int, label: str = "", *, unit: str = "", stream=None, delay: float = 0.5,
                 interval: float = 10.0):
        super().__init__(total, label, unit, stream, delay)
        self.interval = interval
        self._last_line = None
        self._last_done = None

    def _changed(self, now: float) -> None:
        complete = self.done >= self.total
        if self._last_line is None:
            if now - self._start < self.delay:
                return  # not yet; and a job complete within its delay shows nothing
        elif not (complete and self._last_done != self.done) and now - self._last_line < self.interval:
            return
        self._write(now)

    def render(self, now: float | None = None) -> str:
        """The line for the current state."""
        now = time.monotonic() if now is None else now
        elapsed = now - self._start
        percent = int(100 * self.done / self.total) if self.total else 100
        eta = self._eta(elapsed)
        label = f"{self.label}: " if self.label else ""
        return (f"{label}{self._counts()} ({percent}%), {_clock(elapsed)} elapsed" + (f", eta {eta}" if eta else ""))

    def _write(self, now: float) -> None:
        self._last_line = now
        self._last_done = self.done
        self.stream.write(self.render(now) + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Nothing to finish (every line is complete)."""


def progress_display(label: str, *, unit: str = "", quiet: bool = False, stream=None, delay: float = 0.5,
                     interval: float = 10.0):
    """The display for a command (see the module docstring): nothing when ``quiet``, a
    :class:`ProgressBar` on a terminal, else a :class:`ProgressLog` (a line every
    ``interval`` seconds).  Start it with ``set(0, total)``."""
    stream = sys.stderr if stream is None else stream
    if quiet:
        return ProgressBar(0, label, unit=unit, stream=stream, enabled=False)
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        try:
            import tqdm  # noqa: F401  (the bar of a terminal where it is installed)
        except ImportError:
            return ProgressBar(0, label, unit=unit, stream=stream, enabled=True, delay=delay)
        return TqdmBar(0, label, unit=unit, stream=stream, enabled=True, delay=delay)
    return ProgressLog(0, label, unit=unit, stream=stream, delay=delay, interval=interval)
