"""Sweep results as records: one frozen dataclass per row, and lists that write CSV and JSON.

:class:`RecordList` is the writer base of every sweep's result list (``fl.sweep``'s
:class:`SweepResult`, ``fl.sweep_mma``'s ``MMASweepResult``): CSV with full-precision
floats, JSON with non-finite floats as strings, each written atomically
(:func:`fmtlab._files.write_text`: a reader, or a Ctrl-C, never leaves half a file).
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math

from ._files import write_text
from ._table import render_table
from .formats import format_from_spec, is_configurable

__all__ = ["RecordList", "SweepRecord", "SweepResult", "COLUMNS", "SUMMARY_LEGEND"]


@dataclasses.dataclass(frozen=True)
class SweepRecord:
    """The metrics of one tensor quantized to one (format, bias, rounding).

    ``format`` is the format's spec without its bias (``"cfloat8_1_4_3"``,
    ``"cfloat8_1_4_3:subnormals=tesla"``), so ``fl.format(record.format, bias=record.bias)``
    rebuilds it for presets.  ``rule_bias``, ``best_bias`` and ``sqnr_gap_db`` describe the
    record's (tensor, format, rounding) group and repeat on each of its rows.
    """
    tensor: str
    format: str
    bias: int
    rounding: str
    seed: int
    n: int
    amax: float
    sqnr_db: float
    rmse: float
    max_abs_err: float
    max_rel_err: float
    mean_err: float
    overflow_frac: float
    underflow_frac: float
    subnormal_frac: float
    nan_frac: float
    inf_frac: float
    nan_input_frac: float
    inf_input_frac: float
    rule_bias: int
    best_bias: int
    is_rule_bias: bool
    is_best_bias: bool
    sqnr_gap_db: float

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


COLUMNS = tuple(field.name for field in dataclasses.fields(SweepRecord))


class RecordList(list):
    """A list of records (dataclasses with ``as_dict()``) that writes itself as CSV or JSON."""

    columns: tuple = ()

    def to_csv(self, path=None) -> str:
        """CSV with one row per record and the columns of ``self.columns``; written to ``path`` if given.
        Floats are written in full precision (Python's repr), infinities as ``inf``."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        for record in self:
            writer.writerow(record.as_dict())
        text = buffer.getvalue()
        if path is not None:
            write_text(path, text)
        return text

    def to_json(self, path=None) -> str:
        """JSON list of records; non-finite floats as the strings "inf", "-inf", "nan"."""
        rows = [{key: _json_value(value) for key, value in record.as_dict().items()} for record in self]
        text = json.dumps(rows, indent=1)
        if path is not None:
            write_text(path, text + "\n")
        return text


class SweepResult(RecordList):
    """A list of :class:`SweepRecord`, sorted by tensor, format, rounding and bias, with
    writers (CSV, JSON) and a per-group summary."""

    columns = COLUMNS

    def summary(self) -> list[dict]:
        """One dict per (tensor, format, rounding): best and rule bias, their SQNR, the gap, and
        at the best bias the overflow and underflow fractions, the fraction of Inf/NaN results
        and the fraction of Inf/NaN inputs (the tensor's, the same at every bias)."""
        groups = {}
        for record in self:
            groups.setdefault((record.tensor, record.format, record.rounding), []).append(record)
        rows = []
        for (tensor, format_spec, rounding), records in groups.items():
            best = next(record for record in records if record.is_best_bias)
            rule = next(record for record in records if record.is_rule_bias)
            rows.append({"tensor": tensor, "format": format_spec, "rounding": rounding,
                         "configurable": is_configurable(format_from_spec(format_spec, best.bias)),
                         "biases_evaluated": len(records), "best_bias": best.bias,
                         "best_sqnr_db": best.sqnr_db, "rule_bias": rule.bias, "rule_sqnr_db": rule.sqnr_db,
                         "sqnr_gap_db": best.sqnr_gap_db, "overflow_frac": best.overflow_frac,
                         "underflow_frac": best.underflow_frac,
                         "nonfinite_frac": best.nan_frac + best.inf_frac,
                         "nonfinite_input_frac": best.nan_input_frac + best.inf_input_frac})
        return rows

    def summary_table(self) -> str:
        """The summary as an aligned text table (its columns are explained by ``SUMMARY_LEGEND``)."""
        header = ("tensor", "format", "rounding", "biases", "best bias", "SQNR dB", "rule bias",
                  "rule SQNR dB", "gap dB", "underflow %", "Inf/NaN out %", "Inf/NaN in %")
        lines = []
        for row in self.summary():
            fixed = not row["configurable"]
            lines.append((row["tensor"], row["format"], row["rounding"], str(row["biases_evaluated"]),
                          str(row["best_bias"]), _decibels(row["best_sqnr_db"]),
                          "-" if fixed else str(row["rule_bias"]),
                          "-" if fixed else _decibels(row["rule_sqnr_db"]),
                          "-" if fixed else _decibels(row["sqnr_gap_db"]),
                          f"{100 * row['underflow_frac']:.3g}", f"{100 * row['nonfinite_frac']:.3g}",
                          f"{100 * row['nonfinite_input_frac']:.3g}"))
        return render_table(header, lines, right=range(3, len(header)))


SUMMARY_LEGEND = """\
best bias: the highest SQNR among the biases swept (NaN counts as -inf); among equal SQNRs the bias
  nearest the rule bias wins, then the smaller one.
rule bias: the largest bias whose max >= amax (amax = max |x| over the finite values); gap dB = SQNR at
  the best bias - SQNR at the rule bias.  Fixed-bias formats show "-".
underflow %, Inf/NaN out %: of the values, at the best bias: nonzero values rounded to 0, and Inf/NaN
  results.  Inf/NaN in %: of the tensor's own values, which are left out of SQNR and the errors.
Definitions: docs/sweep.md"""


def _decibels(value) -> str:
    return "inf" if value == math.inf else "nan" if math.isnan(value) else f"{value:.2f}"


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value
