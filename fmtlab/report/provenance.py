"""A run's provenance: what the report shows at its top, written when the run starts.

``provenance.json`` (:data:`PROVENANCE_FILE`) holds the command line as typed (``fmtlab`` and
its arguments, shell-quoted), the inputs (path, bytes, SHA-256 where they are files; a
description where they are synthetic), fmtlab's version, the date (UTC, ISO 8601) and the
machine (host name, operating system, processor, CPUs, Python and numpy versions).
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import shlex

from .._files import write_text

__all__ = ["PROVENANCE_FILE", "collect_provenance", "write_provenance", "read_provenance", "command_line"]

PROVENANCE_FILE = "provenance.json"


def command_line(argv) -> str:
    """``fmtlab`` followed by ``argv`` (the arguments after the program name), shell-quoted."""
    return " ".join(["fmtlab"] + [shlex.quote(str(word)) for word in (argv or ())])


def collect_provenance(argv, inputs=(), synthetic=None, when=None) -> dict:
    """The provenance of a run started with ``argv``: ``inputs`` a list of dicts with ``path``,
    ``bytes`` and ``sha256``; ``synthetic`` a sentence describing generated inputs (or None)."""
    import numpy

    from .. import __version__

    when = when or datetime.datetime.now(datetime.timezone.utc)
    return {"command": command_line(argv), "inputs": [dict(entry) for entry in inputs], "synthetic": synthetic,
            "fmtlab_version": __version__, "date": when.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "machine": {"host": platform.node(), "system": platform.platform(),
                        "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                        "python": platform.python_version(), "numpy": numpy.__version__}}


def write_provenance(directory, provenance: dict):
    """Write ``provenance`` to ``directory/provenance.json`` atomically; return the path."""
    import pathlib

    return write_text(pathlib.Path(directory) / PROVENANCE_FILE, json.dumps(provenance, indent=1) + "\n")


def read_provenance(directory) -> dict | None:
    """The provenance.json of ``directory``, or None when the run did not write one."""
    import pathlib

    path = pathlib.Path(directory) / PROVENANCE_FILE
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ValueError(f"{str(path)!r} is not a provenance file of fmtlab ({error})") from None
