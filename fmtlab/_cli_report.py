"""``fmtlab report DIR``: (re)build DIR/report.html from a finished run's output folder.

DIR is the ``--out`` folder of ``fmtlab sweep`` (sweep.csv), ``fmtlab sweep-mma``
(sweep_mma.csv) or ``fmtlab drift`` (drift.csv); the page is described in docs/sweep.md
("Report") and docs/drift.md ("Report").
"""
from __future__ import annotations

import time

__all__ = ["configure", "run"]


def configure(parser) -> None:
    from ._cli_args import positive_int

    parser.add_argument("directory", metavar="DIR",
                        help="the output folder of a finished fmtlab sweep, sweep-mma or drift run")
    parser.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                        help="worker processes drawing a sweep's per-tensor details (default: the CPUs available; "
                             "fewer than 40 tensors are drawn in this process); the page does not depend on it")


def run(args) -> int:
    from .report import build_report

    started = time.perf_counter()
    path = build_report(args.directory, "DIR", jobs=args.jobs)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB) in {time.perf_counter() - started:.1f} s")
    return 0
