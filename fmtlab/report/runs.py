"""The hooks the run commands call: provenance when a run starts, the report when it ends.

``fmtlab sweep``, ``sweep-mma`` and ``drift`` call :func:`start_run` once their arguments are
checked (it writes provenance.json) and, after their CSV, :func:`finish_sweep` or
:func:`finish_run` (unless ``--no-report``).  A sweep's report also needs the log2|x|
histograms of its tensors: :func:`finish_sweep` reads every tensor once more, a chunk at a
time, with a progress display (it writes histograms.json, then report.html).
"""
from __future__ import annotations

import pathlib

from .builder import build_report
from .histograms import HISTOGRAM_FILE, tensor_histograms, write_histograms
from .provenance import collect_provenance, write_provenance

__all__ = ["start_run", "finish_sweep", "finish_run"]


def start_run(out, argv, inputs=(), synthetic=None) -> pathlib.Path:
    """Write ``out/provenance.json`` for a run started with ``argv``; return its path."""
    return write_provenance(out, collect_provenance(argv, inputs, synthetic))


def finish_sweep(out, sources, chunk: int, quiet: bool = False, jobs=None) -> pathlib.Path:
    """Write the histograms of ``sources`` (read ``chunk`` values at a time, on ``jobs`` worker
    processes: None, the CPUs available, inline for small inputs) and the sweep's report.html
    into ``out``; return the report's path."""
    from .._progress import progress_display

    display = progress_display("report histograms", unit="values", quiet=quiet)
    try:
        histograms = tensor_histograms(sources, chunk, progress=display.set, jobs=jobs)
    finally:
        display.close()
    write_histograms(pathlib.Path(out) / HISTOGRAM_FILE, histograms)
    return build_report(out, "--out")


def finish_run(out) -> pathlib.Path:
    """Write ``out/report.html`` for the sweep-mma or drift run in ``out``; return its path."""
    return build_report(out, "--out")

