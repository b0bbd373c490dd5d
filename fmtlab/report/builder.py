"""Which kind of run a folder holds, and the one entry point that writes its report.html."""
from __future__ import annotations

import pathlib

from .._files import write_text

__all__ = ["REPORT_FILE", "RUN_FILES", "run_kind", "build_report"]

REPORT_FILE = "report.html"
# kind -> the file that says a folder holds a finished run of that kind
RUN_FILES = {"sweep": "sweep.csv", "sweep-mma": "sweep_mma.csv", "drift": "drift.csv"}


def run_kind(directory, argument: str = "DIR") -> str:
    """"sweep", "sweep-mma" or "drift": the kind of run whose CSV ``directory`` holds.  A
    ValueError naming ``argument`` when it is not a folder or holds none of them."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise ValueError(f"{argument} {str(directory)!r} is not a directory; give the output folder of a "
                         "fmtlab sweep, sweep-mma or drift run")
    found = [kind for kind, name in RUN_FILES.items() if (directory / name).is_file()]
    if not found:
        expected = ", ".join(f"{name} ({kind})" for kind, name in RUN_FILES.items())
        raise ValueError(f"{argument} {str(directory)!r} holds no run to report on: expected one of {expected}")
    if len(found) > 1:
        raise ValueError(f"{argument} {str(directory)!r} holds the outputs of more than one kind of run "
                         f"({', '.join(found)}); give a folder of one run")
    return found[0]


def build_report(directory, argument: str = "DIR", *, jobs=None) -> pathlib.Path:
    """Write ``directory/report.html`` for the run the folder holds; return its path.  A
    sweep's per-tensor details are drawn on ``jobs`` worker processes (None: the CPUs
    available, inline for fewer than 40 tensors; 1: inline); the page does not depend on it."""
    import functools

    directory = pathlib.Path(directory)
    kind = run_kind(directory, argument)
    if kind == "sweep":
        from .sweep_page import sweep_page

        page = functools.partial(sweep_page, jobs=jobs)
    elif kind == "sweep-mma":
        from .mma_page import mma_page as page
    else:
        from .drift_page import drift_page as page
    return write_text(directory / REPORT_FILE, page(directory))
