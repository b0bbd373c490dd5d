"""The mark of a stopped run: ``partial.json``, and what the page says about it at its top.

A run stopped by Ctrl-C (``fmtlab._pool.Interrupted``) or by a dead worker
(``WorkerDied``) writes its finished work, then ``partial.json`` (:data:`PARTIAL_FILE`) with
``{"reason": why it stopped, "unit": what was counted ("(tensor, format, rounding) groups",
"runs"), "finished": how many finished, "planned": how many were planned, "missing": [the
missing ones, each a list of strings]}``, then report.html, which says in a box at its top
that the run is partial and which groups are missing.  ``fmtlab report DIR`` shows the same
box while the mark is there; the next run in the folder (a resumed sweep included) removes
it when it starts (:func:`clear_partial`), and writes it again only if it is stopped too.
"""
from __future__ import annotations

import json
import pathlib

from .._files import write_text

__all__ = ["PARTIAL_FILE", "MISSING_SHOWN", "write_partial", "read_partial", "clear_partial", "partial_view"]

PARTIAL_FILE = "partial.json"
MISSING_SHOWN = 40  # missing entries named on the page; the rest are counted


def write_partial(directory, *, reason: str, unit: str, finished: int, planned: int, missing) -> pathlib.Path:
    """Write ``directory/partial.json`` (see the module docstring); return its path."""
    entry = {"reason": reason, "unit": unit, "finished": int(finished), "planned": int(planned),
             "missing": [[str(part) for part in item] for item in missing]}
    return write_text(pathlib.Path(directory) / PARTIAL_FILE, json.dumps(entry, indent=1) + "\n")


def read_partial(directory) -> dict | None:
    """The partial.json of ``directory``, or None when the run there was not stopped."""
    path = pathlib.Path(directory) / PARTIAL_FILE
    try:
        with open(path) as handle:
            entry = json.load(handle)
        return {key: entry[key] for key in ("reason", "unit", "finished", "planned", "missing")}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{str(path)!r} is not a partial-run file of fmtlab ({error})") from None


def clear_partial(directory) -> None:
    """Remove ``directory/partial.json`` if it is there (a new run starts in the folder)."""
    (pathlib.Path(directory) / PARTIAL_FILE).unlink(missing_ok=True)


def partial_view(directory) -> dict | None:
    """What the page's partial box shows: ``sentence``, the first :data:`MISSING_SHOWN` missing
    entries as text (``missing``) and how many more there are (``more``); None for a finished run."""
    entry = read_partial(directory)
    if entry is None:
        return None
    missing = [" · ".join(item) for item in entry["missing"]]
    sentence = (f"Partial results: this run was stopped ({entry['reason']}) when {entry['finished']:,} of "
                f"{entry['planned']:,} {entry['unit']} had finished; the page shows only those. "
                f"Missing ({len(missing):,}):")
    return {"sentence": sentence, "missing": missing[:MISSING_SHOWN], "more": max(0, len(missing) - MISSING_SHOWN)}
