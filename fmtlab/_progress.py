"""A tiny dependency-free progress bar on stderr (used by ``fmtlab sweep`` and ``fmtlab drift``).

    with ProgressBar(total=120, label="sweep") as bar:
        for item in work:
            ...
            bar.update()

The bar draws only when its stream is a terminal (or ``enabled=True``), and only once the
work has run for ``delay`` seconds, so short jobs and logs stay clean.  Redraws are
limited to one every ``interval`` seconds.  It shows done/total, percent, elapsed time and
an estimate of the time left (elapsed x remaining / done).
"""
from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


class ProgressBar:
    """Progress of ``total`` units of work, drawn on one line of ``stream`` (stderr by default).

    Parameters
    ----------
    total : number of units (an int >= 0).
    label : text shown before the bar.
    stream : where to draw; ``None`` means ``sys.stderr`` at construction time.
    enabled : ``None`` draws only when ``stream`` is a terminal; True/False force it.
    delay : seconds of work before the first draw (0 draws at once).
    interval : least seconds between two redraws.
    width : characters of the bar itself.
    """

    def __init__(self, total: int, label: str = "", *, stream=None, enabled: bool | None = None,
                 delay: float = 0.5, interval: float = 0.1, width: int = 30):
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise ValueError(f"total={total!r} is not allowed: a non-negative int")
        self.total = total
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.delay = delay
        self.interval = interval
        self.width = width
        self.done = 0
        self._start = time.monotonic()
        self._last_draw = None
        self._drawn = False
        self._drawn_done = None

    def update(self, count: int = 1) -> None:
        """Record ``count`` more units done and redraw if it is time to."""
        self.done = min(self.total, self.done + count)
        if not self.enabled:
            return
        now = time.monotonic()
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
        if 0 < self.done < self.total:
            remaining = f" eta {_clock(elapsed * (self.total - self.done) / self.done)}"
        else:
            remaining = ""
        label = f"{self.label} " if self.label else ""
        return (f"{label}[{bar}] {self.done}/{self.total} {100 * fraction:3.0f}% "
                f"{_clock(elapsed)}{remaining}")

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

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
