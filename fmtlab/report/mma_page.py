"""The report page of ``fmtlab sweep-mma``: relative error against K, per model, variants side by side.

Models are grouped by their spec without the promotion option (``h100:e4m3fn:promote=128``
belongs to ``h100:e4m3fn``): one panel per group and distribution, the group's variants as
lines in it, and the reference models (specs without a GPU, such as ``fp32_fma``) as thin grey
lines in every panel.  Under the figure, for each group with variants and each distribution,
the ratio of the variants' relative errors at the largest K, and the whole table.
"""
from __future__ import annotations

import collections
import math
import pathlib
import re

from .._records import read_records_csv
from ..sweep_mma import MMARecord
from .page import provenance_view, render_page, svg_markup
from .partial import partial_view
from .provenance import read_provenance

__all__ = ["mma_page", "mma_context", "model_group"]

_PROMOTE = re.compile(r":promote=\d+")


def model_group(spec: str) -> str:
    """The model spec without its promotion option."""
    return _PROMOTE.sub("", spec)


def _is_reference(spec: str) -> bool:
    return ":" not in spec


def _figure(records, groups, references, distributions):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = max(1, len(groups))
    figure = Figure(figsize=(1.0 + 3.6 * columns, 0.8 + 3.0 * len(distributions)))
    FigureCanvasAgg(figure)
    curves = collections.defaultdict(list)
    for record in records:
        curves[(record.model, record.distribution)].append((record.k, record.relative_error))
    for row, distribution in enumerate(distributions):
        for column, (group, members) in enumerate(groups.items()):
            axes = figure.add_subplot(len(distributions), columns, row * columns + column + 1)
            for reference in references:
                points = sorted(curves[(reference, distribution)])
                if points:
                    axes.plot(*zip(*points), color="0.6", linewidth=1, linestyle="--", label=reference)
            for index, spec in enumerate(members):
                points = [(k, error) for k, error in sorted(curves[(spec, distribution)]) if error > 0]
                if points:
                    axes.plot(*zip(*points), marker="o", markersize=3, color=f"C{index % 10}", label=spec)
            axes.set_xscale("log", base=2)
            axes.set_yscale("log")
            axes.set_title(f"{group} · {distribution}", fontsize=9)
            axes.grid(alpha=0.3, which="both")
            axes.set_xlabel("K")
            if column == 0:
                axes.set_ylabel("relative error")
            axes.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    return svg_markup(figure)


def mma_context(records, provenance=None) -> dict:
    """What the sweep-mma template draws."""
    models = list(dict.fromkeys(record.model for record in records))
    distributions = list(dict.fromkeys(record.distribution for record in records))
    gpu_models = [spec for spec in models if not _is_reference(spec)]
    references = [spec for spec in models if _is_reference(spec)] if gpu_models else []
    groups = {}
    for spec in (gpu_models or models):
        groups.setdefault(model_group(spec), []).append(spec)
    error = {(record.model, record.distribution, record.k): record.relative_error for record in records}
    findings = []
    for group, members in groups.items():
        if len(members) < 2:
            continue
        for distribution in distributions:
            ks = [k for (spec, dist, k) in error if spec in members and dist == distribution]
            if not ks:
                continue
            k = max(ks)
            values = [(error[(spec, distribution, k)], spec) for spec in members if (spec, distribution, k) in error]
            finite = [(value, spec) for value, spec in values if math.isfinite(value) and value > 0]
            if len(finite) < 2:
                continue
            best, worst = min(finite), max(finite)
            findings.append(f"At K = {k:,} on {distribution} data, {best[1]} has {worst[0] / best[0]:.3g}× lower "
                            f"relative error than {worst[1]} ({best[0]:.3g} against {worst[0]:.3g}).")
    ks = sorted({record.k for record in records})
    table = [{"model": spec, "distribution": distribution,
              "errors": [error.get((spec, distribution, k)) for k in ks]}
             for spec in models for distribution in distributions]
    return {"title": f"fmtlab sweep-mma: {len(models)} models × {len(ks)} values of K",
            "provenance": provenance_view(provenance), "figure": _figure(records, groups, references, distributions),
            "findings": findings, "ks": ks, "table": table}


def mma_page(directory) -> str:
    """The HTML of the report of the sweep-mma run in ``directory`` (sweep_mma.csv, provenance.json)."""
    directory = pathlib.Path(directory)
    records, _valid, _dropped = read_records_csv(directory / "sweep_mma.csv", MMARecord)
    if not records:
        raise ValueError(f"{str(directory / 'sweep_mma.csv')!r} holds no results to report on")
    return render_page("mma.html.j2", partial=partial_view(directory), **mma_context(records, read_provenance(directory)))
