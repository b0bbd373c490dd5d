"""One self-contained HTML page per run: ``report.html`` beside a run's CSV.

``build_report(directory)`` reads a finished output folder of ``fmtlab sweep`` (sweep.csv),
``fmtlab sweep-mma`` (sweep_mma.csv) or ``fmtlab drift`` (drift.csv, summary.csv) and
writes ``directory/report.html`` atomically; ``fmtlab report DIR`` does the same from the
command line, and the three commands call it at the end of a run (``--no-report`` skips it).

The page is one file with nothing outside it: the style, the script and the data (JSON) are
inside it, and every picture is inline SVG drawn by matplotlib, the per-tensor details of a
sweep included (one SVG per tensor, :mod:`fmtlab.report.detail`, stored gzip-compressed and
inflated by the browser's own DecompressionStream when shown, so a 500-tensor sweep stays a few
MB).  The page's script draws nothing: it shows the detail asked for, writes the heatmap's
tooltips and sorts and filters the table.  Jinja2 renders it from the templates in
``fmtlab/report/templates``.  What the page shows is described in docs/sweep.md ("Report")
and docs/drift.md ("Report").  A stopped run's page is marked partial
(:mod:`fmtlab.report.partial`).

The run's provenance (the command, the inputs with their sizes and SHA-256, fmtlab's
version, the date, the machine) is read from ``provenance.json`` (written by
:func:`fmtlab.report.provenance.write_provenance` when the run starts) and, for a sweep,
from ``sweep.run.json``; the log2|x| histograms of a sweep's tensors from
``histograms.json`` (:mod:`fmtlab.report.histograms`, gathered by the sweep's scan pass).
"""
from __future__ import annotations


from .builder import REPORT_FILE, build_report, run_kind
from .runs import finish_run, finish_sweep, start_run
from .histograms import HISTOGRAM_FILE, log2_histogram, write_histograms
from .partial import PARTIAL_FILE
from .provenance import PROVENANCE_FILE, collect_provenance, read_provenance, write_provenance

__all__ = ["REPORT_FILE", "HISTOGRAM_FILE", "PROVENANCE_FILE", "PARTIAL_FILE", "build_report", "run_kind",
           "log2_histogram", "write_histograms", "collect_provenance", "write_provenance", "read_provenance",
           "start_run", "finish_sweep", "finish_run"]
