"""The one text-table renderer of fmtlab's command line and summaries.

    >>> print(render_table(("format", "max"), [("fp16", "65504"), ("e4m3fn", "448")], right=(1,)))
    format    max
    ------  -----
    fp16    65504
    e4m3fn    448

Cells are strings (callers format their numbers); columns are separated by two spaces,
the header is underlined with dashes, and the columns named in ``right`` (numbers) are
right-aligned, the others left-aligned.  Trailing spaces are stripped.
"""
from __future__ import annotations

__all__ = ["render_table"]


def render_table(header, rows, *, right=()) -> str:
    """``header`` (a sequence of column titles) and ``rows`` (sequences of cells) as aligned text."""
    header = [str(cell) for cell in header]
    rows = [[str(cell) for cell in row] for row in rows]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a row has {len(row)} cells but the header has {len(header)}: {row!r}")
    right = set(right)
    widths = [max([len(header[column])] + [len(row[column]) for row in rows]) for column in range(len(header))]

    def line(cells):
        return "  ".join(cell.rjust(width) if column in right else cell.ljust(width)
                         for column, (cell, width) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header), "  ".join("-" * width for width in widths)] + [line(row) for row in rows])
