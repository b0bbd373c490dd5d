"""``histograms.json``: the log2|x| histograms of a sweep's tensors, for the report's detail.

The histograms are gathered by the sweep's scan pass (``SweepResult.histograms``; the maths
in :mod:`fmtlab._binades`: exact integer binade counts, merged piece by piece), so writing
them reads no tensor again.  The file (:data:`HISTOGRAM_FILE`) holds
``{"tensors": {name: histogram}}`` in the layout of :func:`fmtlab._binades.log2_histogram`.
"""
from __future__ import annotations

import json

from .._binades import log2_histogram, merge_histograms
from .._files import write_text

__all__ = ["HISTOGRAM_FILE", "log2_histogram", "merge_histograms", "write_histograms", "read_histograms"]

HISTOGRAM_FILE = "histograms.json"


def write_histograms(path, histograms: dict):
    """Write ``histograms`` as ``{"tensors": histograms}`` JSON, atomically; return the path."""
    return write_text(path, json.dumps({"tensors": histograms}, separators=(",", ":")) + "\n")


def read_histograms(path) -> dict:
    """The ``{name: histogram}`` of a histograms.json; {} when the file does not exist."""
    try:
        with open(path) as handle:
            return json.load(handle)["tensors"]
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{str(path)!r} is not a histograms file of fmtlab ({error})") from None
