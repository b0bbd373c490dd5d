"""The hooks the run commands call: provenance when a run starts, the report when it ends.

``fmtlab sweep``, ``sweep-mma`` and ``drift`` call :func:`start_run` once their arguments are
checked (it writes provenance.json and removes the page and the partial-run mark of an
earlier run in the folder) and, after their CSV, :func:`finish_sweep` or :func:`finish_run` (unless
``--no-report``).  A sweep's report also needs the log2|x| histograms of its tensors: the
sweep gathered them in its scan pass (``SweepResult.histograms``), so :func:`finish_sweep`
writes them to histograms.json without reading a tensor again.  A run stopped by Ctrl-C (or a
dead worker) calls them with ``partial``: what was missing (:mod:`fmtlab.report.partial`),
which the page shows at its top.
"""
from __future__ import annotations

import pathlib

from .builder import REPORT_FILE, build_report
from .histograms import HISTOGRAM_FILE, write_histograms
from .partial import clear_partial, write_partial
from .provenance import collect_provenance, write_provenance

__all__ = ["start_run", "finish_sweep", "finish_run"]


def start_run(out, argv, inputs=(), synthetic=None) -> pathlib.Path:
    """Write ``out/provenance.json`` for a run started with ``argv``; return its path.  The
    page of an earlier run in ``out`` is removed with its partial mark: a run stopped before
    anything finished writes no page, and must not leave the earlier run's standing."""
    clear_partial(out)
    (pathlib.Path(out) / REPORT_FILE).unlink(missing_ok=True)
    return write_provenance(out, collect_provenance(argv, inputs, synthetic))


def finish_sweep(out, histograms: dict, partial=None, jobs=None) -> pathlib.Path:
    """Write ``histograms`` (name -> log2|x| histogram, ``SweepResult.histograms``) and the
    sweep's report.html into ``out``; ``partial`` (a dict of :func:`fmtlab.report.partial.write_partial`'s
    keyword arguments) marks a stopped run; ``jobs``: the worker processes that draw the
    per-tensor details (see :func:`fmtlab.report.build_report`).  Return the report's path."""
    write_histograms(pathlib.Path(out) / HISTOGRAM_FILE, histograms)
    return finish_run(out, partial, jobs)


def finish_run(out, partial=None, jobs=None) -> pathlib.Path:
    """Write ``out/report.html`` for the run in ``out`` (marked partial when ``partial`` is
    given, see :func:`finish_sweep`); return its path."""
    if partial is not None:
        write_partial(out, **partial)
    return build_report(out, "--out", jobs=jobs)
