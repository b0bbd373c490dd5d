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
import os

from ._files import atomic_path, write_text
from ._table import render_table
from .formats import format_from_spec, is_configurable
from .integers import is_integer_name
from .scaled import any_format

__all__ = ["RecordList", "SweepRecord", "SweepResult", "COLUMNS", "SUMMARY_LEGEND", "format_family",
           "CsvAppender", "read_records_csv", "layer_kind", "LAYER_KINDS"]


@dataclasses.dataclass(frozen=True)
class SweepRecord:
    """The metrics of one tensor quantized to one (format, bias, rounding).

    ``format`` is the format's spec without its bias (``"cfloat8_1_4_3"``,
    ``"cfloat8_1_4_3:subnormals=tesla"``), so ``fl.format(record.format, bias=record.bias)``
    rebuilds it for presets; for a scaled format it is ``str(ScaledFormat)``
    (``"mxfp8_e4m3:block=16"``), which ``fl.format(record.format)`` reads back, and ``bias`` is
    its element's bias.  ``rule_bias``, ``best_bias`` and ``sqnr_gap_db`` describe the
    record's (tensor, format, rounding) group and repeat on each of its rows.  ``block`` and
    ``rule`` are the scaled format's block (``"32"``, ``"16x16"``, ``"channel"``, ``"tensor"``) and
    scale rule, empty for an element format; ``scales`` is the number of scale codes (0 for an
    element format) and ``bits_per_value`` the storage per value: element bits + (scales x
    scale bits + tensor-scale bits) / n (a configurable format's per-tensor bias is not counted).
    """
    tensor: str
    format: str
    block: str
    rule: str
    bias: int
    rounding: str
    seed: int
    n: int
    scales: int
    bits_per_value: float
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

    @property
    def is_scaled(self) -> bool:
        """Whether the record's format is a scaled format (it has a block)."""
        return bool(self.block)

    def as_dict(self) -> dict:
        # Every field is a str, int, float or bool: a plain read equals dataclasses.asdict, which
        # deep-copies each value and took about 0.1 s of the default sweep's 524 records.
        return {name: getattr(self, name) for name in COLUMNS}


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

    def to_parquet(self, path) -> None:
        """A Parquet file of the records (the CSV's columns, typed: str, int64, float64, bool),
        written atomically; needs pyarrow (ImportError saying so otherwise)."""
        try:
            import pyarrow
            import pyarrow.parquet
        except ImportError:
            raise ImportError("writing Parquet needs pyarrow, which is not installed (pip install pyarrow)") from None
        rows = [record.as_dict() for record in self]
        table = pyarrow.table({column: [row[column] for row in rows] for column in self.columns})
        with atomic_path(path) as temporary:
            pyarrow.parquet.write_table(table, str(temporary))

    def to_pandas(self):
        """The records as a ``pandas.DataFrame`` (one row per record, the CSV's columns); needs pandas."""
        try:
            import pandas
        except ImportError:
            raise ImportError("to_pandas() needs pandas, which is not installed (pip install pandas)") from None
        return pandas.DataFrame([record.as_dict() for record in self], columns=list(self.columns))

    def to_json(self, path=None) -> str:
        """JSON list of records; non-finite floats as the strings "inf", "-inf", "nan"."""
        rows = [{key: _json_value(value) for key, value in record.as_dict().items()} for record in self]
        text = json.dumps(rows, indent=1)
        if path is not None:
            write_text(path, text + "\n")
        return text


class SweepResult(RecordList):
    """A list of :class:`SweepRecord`, sorted by tensor, format, rounding and bias, with
    writers (CSV, JSON) and a per-group summary.  ``notes``: the sweep's one-line notes on
    what it skipped (see ``fmtlab.sweep.scaled_variants``)."""

    columns = COLUMNS

    def __init__(self, records=(), notes=()):
        super().__init__(records)
        self.notes = tuple(notes)

    def summary(self) -> list[dict]:
        """One dict per (tensor, format, rounding): best and rule bias, their SQNR, the gap, and
        at the best bias the overflow and underflow fractions, the fraction of Inf/NaN results
        and the fraction of Inf/NaN inputs (the tensor's, the same at every bias); for scaled
        formats also ``scaled`` (True), ``block``, ``rule``, ``family`` (:func:`format_family`);
        ``bits_per_value`` for every format."""
        groups = {}
        for record in self:
            groups.setdefault((record.tensor, record.format, record.rounding), []).append(record)
        rows = []
        for (tensor, format_spec, rounding), records in groups.items():
            best = next(record for record in records if record.is_best_bias)
            rule = next(record for record in records if record.is_rule_bias)
            scaled = best.is_scaled
            rows.append({"tensor": tensor, "format": format_spec, "rounding": rounding, "scaled": scaled,
                         "configurable": not scaled and is_configurable(format_from_spec(format_spec, best.bias)),
                         "block": best.block if scaled else "", "rule": best.rule if scaled else "",
                         "family": format_family(format_spec) if scaled else format_spec,
                         "bits_per_value": best.bits_per_value,
                         "biases_evaluated": len(records), "best_bias": best.bias,
                         "best_sqnr_db": best.sqnr_db, "rule_bias": rule.bias, "rule_sqnr_db": rule.sqnr_db,
                         "sqnr_gap_db": best.sqnr_gap_db, "overflow_frac": best.overflow_frac,
                         "underflow_frac": best.underflow_frac,
                         "nonfinite_frac": best.nan_frac + best.inf_frac,
                         "nonfinite_input_frac": best.nan_input_frac + best.inf_input_frac})
        return rows

    def layer_summary(self) -> list[dict]:
        """One dict per (layer kind, format, rounding) (:func:`layer_kind` of the tensor names):
        ``tensors``, ``values`` (their total n), ``mean_sqnr_db`` = sum(n_t * SQNR_t) / sum(n_t)
        over the tensors' best-bias SQNRs (NaN if any is NaN; +inf if any is +inf), and the worst
        tensor (``worst_tensor``, ``worst_sqnr_db``: the lowest SQNR, NaN counting lowest)."""
        groups = {}
        for row, n in self._summary_with_n():
            groups.setdefault((layer_kind(row["tensor"]), row["format"], row["rounding"]), []).append((row, n))
        order = {kind: index for index, kind in enumerate(LAYER_KINDS)}
        rows = []
        for (kind, spec, rounding), members in sorted(groups.items(), key=lambda item: order[item[0][0]]):
            values = sum(n for _row, n in members)
            sqnrs = [row["best_sqnr_db"] for row, _n in members]
            if any(math.isnan(value) for value in sqnrs):
                mean = math.nan
            elif any(value == math.inf for value in sqnrs):
                mean = math.inf
            else:
                mean = math.fsum(row["best_sqnr_db"] * n for row, n in members) / values
            worst = min(members, key=lambda member: _sortable(member[0]["best_sqnr_db"]))[0]
            rows.append({"kind": kind, "format": spec, "rounding": rounding, "tensors": len(members),
                         "values": values, "mean_sqnr_db": mean, "worst_tensor": worst["tensor"],
                         "worst_sqnr_db": worst["best_sqnr_db"]})
        return rows

    def _summary_with_n(self):
        n_of = {record.tensor: record.n for record in self}
        return [(row, n_of[row["tensor"]]) for row in self.summary()]

    def layer_table(self) -> str:
        """:meth:`layer_summary` as an aligned text table."""
        header = ("layer kind", "format", "rounding", "tensors", "values", "mean SQNR dB", "worst tensor",
                  "worst SQNR dB")
        lines = [(row["kind"], row["format"], row["rounding"], str(row["tensors"]), f"{row['values']:,}",
                  _decibels(row["mean_sqnr_db"]), row["worst_tensor"], _decibels(row["worst_sqnr_db"]))
                 for row in self.layer_summary()]
        return render_table(header, lines, right=(3, 4, 5, 7))

    def summary_table(self) -> str:
        """The summary as an aligned text table (its columns are explained by ``SUMMARY_LEGEND``),
        followed, when the sweep has scaled formats, by :meth:`scaling_comparison`'s lines."""
        header = ("tensor", "format", "rounding", "bits", "biases", "best bias", "SQNR dB", "rule bias",
                  "rule SQNR dB", "gap dB", "overflow %", "underflow %", "Inf/NaN out %", "Inf/NaN in %")
        lines = []
        for row in self.summary():
            fixed = not row["configurable"]
            # scaled formats have their scales, integers a step, not a bias: "-"
            no_bias = row["scaled"] or is_integer_name(row["format"].partition(":")[0])
            lines.append((row["tensor"], row["format"], row["rounding"], f"{row['bits_per_value']:.5g}",
                          "-" if no_bias else str(row["biases_evaluated"]),
                          "-" if no_bias else str(row["best_bias"]), _decibels(row["best_sqnr_db"]),
                          "-" if fixed else str(row["rule_bias"]),
                          "-" if fixed else _decibels(row["rule_sqnr_db"]),
                          "-" if fixed else _decibels(row["sqnr_gap_db"]),
                          _percent(row["overflow_frac"]), _percent(row["underflow_frac"]),
                          _percent(row["nonfinite_frac"]), _percent(row["nonfinite_input_frac"])))
        table = render_table(header, lines, right=range(3, len(header)))
        comparison = self.scaling_comparison()
        return table + ("\n\n" + "\n".join(comparison) if comparison else "")

    def scaling_comparison(self) -> list[str]:
        """One line per (tensor, rounding) that has scaled formats: the best scaled format of
        each element width (highest SQNR; ties: fewer bits per value, then the order of the
        sweep) with its block and rule, next to each configurable format at its rule bias and
        its best bias, e.g. ``normal, nearest_even: best 8-bit scaled: mxfp8_e4m3 block 16 rule
        floor 31.52 dB; cfloat8_1_4_3 at its rule bias 10: 30.90 dB (best bias 10: 30.90 dB)``."""
        by_group = {}
        for row in self.summary():
            by_group.setdefault((row["tensor"], row["rounding"]), []).append(row)
        lines = []
        for (tensor, rounding), rows in by_group.items():
            scaled = [row for row in rows if row["scaled"]]
            if not scaled:
                continue
            parts = []
            widths = sorted({_element_bits(row) for row in scaled}, reverse=True)
            for width in widths:
                candidates = [row for row in scaled if _element_bits(row) == width]
                best = min(candidates, key=lambda row: (-_sortable(row["best_sqnr_db"]), row["bits_per_value"]))
                parts.append(f"best {width}-bit scaled: {best['family']} block {best['block']} rule {best['rule']} "
                             f"{_decibels(best['best_sqnr_db'])} dB")
            for row in rows:
                if row["configurable"]:
                    parts.append(f"{row['format']} at its rule bias {row['rule_bias']}: "
                                 f"{_decibels(row['rule_sqnr_db'])} dB (best bias {row['best_bias']}: "
                                 f"{_decibels(row['best_sqnr_db'])} dB)")
            lines.append(f"{tensor}, {rounding}: " + "; ".join(parts))
        return lines


LAYER_KINDS = ("attention.q", "attention.k", "attention.v", "attention.o", "attention.qkv", "mlp", "embedding",
               "norm", "other")
_NORM = {"norm", "ln", "ln1", "ln2", "ln_1", "ln_2", "ln_f", "layernorm", "rmsnorm"}
_EMBEDDING = {"wte", "wpe", "embeddings", "embedding", "embed", "lm_head", "tok_embeddings", "word_embeddings"}
_ATTENTION = {"attn", "attention", "self_attn", "self_attention", "cross_attn", "mixer"}
_ATTENTION_PARTS = {"q": {"q_proj", "query", "wq", "q"}, "k": {"k_proj", "key", "wk", "k"},
                    "v": {"v_proj", "value", "wv", "v"}, "o": {"o_proj", "out_proj", "wo", "c_proj", "dense", "o"},
                    "qkv": {"qkv_proj", "c_attn", "query_key_value", "qkv", "wqkv", "in_proj"}}
_MLP = {"mlp", "ffn", "feed_forward", "feedforward", "fc1", "fc2", "up_proj", "down_proj", "gate_proj", "c_fc",
        "w1", "w2", "w3", "intermediate", "experts"}


def layer_kind(name: str) -> str:
    """The kind of layer a tensor belongs to, from the usual checkpoint naming (one of
    ``LAYER_KINDS``), by the dot-separated parts of its name, lower-cased, first match wins:

    * ``norm``: a part containing "norm", or ln, ln_1, ln_2, ln_f (GPT-2);
    * ``embedding``: a part containing "embed", or wte, wpe, lm_head;
    * ``attention.q``/``k``/``v``/``o``: q_proj, k_proj, v_proj, o_proj (Llama), query, key,
      value (BERT), wq, wk, wv, wo, out_proj, and c_proj or dense inside an attention block
      (attn, attention, self_attn, ...); ``attention.qkv``: fused projections (c_attn,
      query_key_value, qkv_proj, in_proj);
    * ``mlp``: mlp, ffn, feed_forward, fc1, fc2, up_proj, down_proj, gate_proj, c_fc, w1-w3, experts;
    * ``other``: anything else.
    """
    parts = [part for part in name.lower().replace("/", ".").split(".") if part]
    if any("norm" in part or part in _NORM for part in parts):
        return "norm"
    if any("embed" in part or part in _EMBEDDING for part in parts):
        return "embedding"
    in_attention = any(part in _ATTENTION for part in parts)
    for kind in ("qkv", "q", "k", "v", "o"):
        names = _ATTENTION_PARTS[kind]
        short = {"q", "k", "v", "o", "c_proj", "dense"}  # ambiguous outside an attention block
        if any(part in names and (in_attention or part not in short) for part in parts):
            return f"attention.{kind}"
    if any(part in _MLP for part in parts):
        return "mlp"
    return "other"


def format_family(spec: str) -> str:
    """A scaled format's spec without its block and rule options: what a sweep over blocks and
    rules keeps fixed (``"mxfp8_e4m3:block=16,rule=rceil"`` -> ``"mxfp8_e4m3"``,
    ``"e4m3fn:block=64,scale=e8m0,rule=floor"`` -> ``"e4m3fn:scale=e8m0"``)."""
    name, colon, options = spec.partition(":")
    kept = [item for item in options.split(",") if item and not item.startswith(("block=", "rule="))]
    return name + (":" + ",".join(kept) if kept else "")


def _element_bits(row) -> int:
    """Bits of a scaled row's element (from its spec; a spec that does not read back, such as
    a custom element's, counts as its whole bits per value)."""
    try:
        return any_format(row["format"]).element.bits
    except (ValueError, TypeError, AttributeError):
        return int(math.floor(row["bits_per_value"])) if math.isfinite(row["bits_per_value"]) else 0


def _sortable(value) -> float:
    return -math.inf if math.isnan(value) else value


def _percent(fraction) -> str:
    return f"{100 * fraction:.3g}"


SUMMARY_LEGEND = """\
best bias: the highest SQNR among the biases swept (NaN counts as -inf); among equal SQNRs the bias
  nearest the rule bias wins, then the smaller one.
rule bias: the largest bias whose max >= amax (amax = max |x| over the finite values); gap dB = SQNR at
  the best bias - SQNR at the rule bias.  Fixed-bias formats show "-".
bits: storage per value, scales included (element bits + scale bits x scales / n).
overflow %, underflow %, Inf/NaN out %: of the values, at the best bias: values above the format's max
  (for a scaled format: above element max x their block's scale; they saturate), nonzero values rounded
  to 0, and Inf/NaN results.  Inf/NaN in %: of the tensor's own values, which are left out of SQNR and
  the errors.
Scaled formats (one scale per block; the format names its block and rule) have no bias to choose: "-".
Definitions: docs/sweep.md"""


def _decibels(value) -> str:
    return "inf" if value == math.inf else "nan" if math.isnan(value) else f"{value:.2f}"


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


# ---- rows as they come, and read back -------------------------------------------------------------
class CsvAppender:
    """Whole CSV rows appended to a file as results arrive, each batch flushed to the OS.

    ``CsvAppender(path, columns, keep=n)`` keeps the file's first ``n`` bytes (a resumed run's
    valid rows, see :func:`read_records_csv`) or, with ``keep=None``, starts the file anew with
    its header.  A batch is written with one ``write`` of whole lines, so a process killed in
    between leaves at most one torn last line, which the reader drops.
    """

    def __init__(self, path, columns, keep=None):
        self.columns = tuple(columns)
        if keep is None:
            self.handle = open(path, "w", newline="")
            self.handle.write(",".join(self.columns) + "\n")
        else:
            self.handle = open(path, "r+", newline="")
            self.handle.truncate(keep)
            self.handle.seek(keep)
        self.handle.flush()

    def append(self, records) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        for record in records:
            writer.writerow(record.as_dict())
        self.handle.write(buffer.getvalue())
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        self.handle.close()


def _parser(kind):
    if kind is bool or kind == "bool":
        return lambda text: {"True": True, "False": False}[text]
    if kind is int or kind == "int":
        return int
    if kind is float or kind == "float":
        return float
    return str


def read_records_csv(path, record_type=SweepRecord):
    """The records of a CSV written by :meth:`RecordList.to_csv` or :class:`CsvAppender`, and how
    many bytes of it are whole, valid rows: ``(records, valid_bytes, dropped)``.  A last line
    without its newline or with a wrong number of fields (a run killed while writing) is
    dropped, and counted in ``dropped``; a bad header or a bad row before the last is a
    ValueError naming the file and the line."""
    fields = dataclasses.fields(record_type)
    parsers = [_parser(field.type) for field in fields]
    names = tuple(field.name for field in fields)
    with open(path, newline="") as handle:
        text = handle.read()
    lines = text.split("\n")
    if lines[0].split(",") != list(names):
        raise ValueError(f"{str(path)!r} is not a sweep.csv of this fmtlab (its header differs)")
    torn = lines[-1] != ""  # text not ending in a newline: the last line is cut
    body = lines[1:-1]
    records, valid_bytes, dropped = [], len(lines[0]) + 1, int(torn)
    for number, line in enumerate(body, start=2):
        try:
            values = next(csv.reader([line]))
            if len(values) != len(names):
                raise ValueError(f"{len(values)} fields, not {len(names)}")
            record = record_type(**{name: parse(value) for name, parse, value in zip(names, parsers, values)})
        except (ValueError, KeyError) as error:
            if number == len(body) + 1 and not torn:
                dropped += 1
                break
            raise ValueError(f"{str(path)!r} line {number} is not a sweep row ({error})") from None
        records.append(record)
        valid_bytes += len(line.encode()) + 1
    return records, valid_bytes, dropped
