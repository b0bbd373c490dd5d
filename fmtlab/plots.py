"""Plots of a precision sweep (matplotlib, Agg canvas: no display and no pyplot state needed).

* :func:`plot_sqnr_vs_bias`: one panel per swept format, SQNR (dB) against bias, one line
  per (tensor, rounding); the best bias is marked with a star and the amax-rule bias with
  a circle.  Formats with one bias share a last panel.
* :func:`plot_log2_histogram`: one panel per tensor, the histogram of log2|x| over the
  finite nonzero elements, and for each format a shaded band over its representable range
  [log2 min_subnormal, log2 max] (the normal range [log2 min_normal, log2 max] darker), at
  the best bias found for that tensor.

matplotlib is imported only by these functions.
"""
from __future__ import annotations

import math

import numpy as np

MAX_PANELS = 12  # tensors drawn in the histogram figure (the first ones, in order)


def _figure(rows, columns, width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure_width, figure_height = width * columns, height * rows + 0.5
    figure = Figure(figsize=(figure_width, figure_height))
    FigureCanvasAgg(figure)
    # Fixed margins in inches (a layout engine costs more than the drawing itself).
    figure.subplots_adjust(left=0.75 / figure_width, right=1 - 0.2 / figure_width,
                           bottom=0.65 / figure_height, top=1 - 0.75 / figure_height,
                           wspace=0.9 / width, hspace=1.2 / height)
    axes = figure.subplots(rows, columns, squeeze=False)
    return figure, axes


def _grid(count):
    columns = min(count, 2 if count <= 4 else 3)
    return math.ceil(count / columns), columns


def plot_sqnr_vs_bias(records, path, title="SQNR against exponent bias"):
    """Write a PNG of SQNR against bias to ``path``; return ``path``.

    One panel per format swept over more than one bias; the formats with a single bias
    share one last panel (SQNR per format).
    """
    by_format = {}
    for record in records:
        by_format.setdefault(record.format, {}).setdefault((record.tensor, record.rounding), []).append(record)
    if not by_format:
        raise ValueError("records is empty: nothing to plot")
    swept = {spec: lines for spec, lines in by_format.items()
             if any(len(group) > 1 for group in lines.values())}
    fixed = [spec for spec in by_format if spec not in swept]
    panels = len(swept) + (1 if fixed else 0)
    rows, columns = _grid(panels)
    figure, axes = _figure(rows, columns, 5.2, 3.6)
    tensors = list(dict.fromkeys(record.tensor for record in records))
    roundings = list(dict.fromkeys(record.rounding for record in records))
    colours = {tensor: f"C{index % 10}" for index, tensor in enumerate(tensors[:10])}
    styles = {rounding: ("-", "--", ":", "-.")[index % 4] for index, rounding in enumerate(roundings)}
    markers = {rounding: ("o", "s", "^", "v", "D", "P", "X")[index % 7] for index, rounding in enumerate(roundings)}
    panel_list = list(axes.flat)
    for panel, (format_spec, lines) in zip(panel_list, swept.items()):
        for (tensor, rounding), group in lines.items():
            if tensor not in colours:
                continue  # at most 10 tensors per panel stay readable
            group = sorted(group, key=lambda record: record.bias)
            panel.plot([record.bias for record in group], [_finite_or_nan(record.sqnr_db) for record in group],
                       styles[rounding], marker=".", markersize=3, color=colours[tensor],
                       label=f"{tensor}, {rounding}")
            best = next(record for record in group if record.is_best_bias)
            rule = next(record for record in group if record.is_rule_bias)
            panel.plot([best.bias], [_finite_or_nan(best.sqnr_db)], "*", color=colours[tensor], markersize=11,
                       markeredgecolor="black", markeredgewidth=0.5)
            panel.plot([rule.bias], [_finite_or_nan(rule.sqnr_db)], "o", markerfacecolor="none",
                       color=colours[tensor], markersize=9)
        panel.set_title(format_spec)
        panel.set_xlabel("exponent bias")
        panel.set_ylabel("SQNR (dB)")
        panel.grid(True, alpha=0.3)
        panel.legend(fontsize=7, loc="center right")
    if fixed:
        panel = panel_list[len(swept)]
        offsets = np.linspace(-0.25, 0.25, max(1, len(tensors[:10]) * len(roundings)))
        series = 0
        for tensor in tensors[:10]:
            for rounding in roundings:
                points = [(position, by_format[spec].get((tensor, rounding)))
                          for position, spec in enumerate(fixed)]
                points = [(position, group[0]) for position, group in points if group]
                if points:
                    panel.plot([position + offsets[series] for position, _ in points],
                               [_finite_or_nan(record.sqnr_db) for _, record in points], markers[rounding],
                               linestyle="none", color=colours[tensor], label=f"{tensor}, {rounding}")
                series += 1
        panel.set_xticks(range(len(fixed)))
        labels = [spec + ("\n(exact: +inf)" if all(record.sqnr_db == math.inf for group in by_format[spec].values()
                                                     for record in group) else "") for spec in fixed]
        panel.set_xticklabels(labels, fontsize=8)
        panel.set_xlim(-0.6, len(fixed) - 0.4)
        panel.set_title("fixed-bias formats")
        panel.set_ylabel("SQNR (dB)")
        panel.grid(True, alpha=0.3)
        panel.legend(fontsize=7, loc="lower left")
    for panel in panel_list[panels:]:
        panel.set_visible(False)
    figure.suptitle(f"{title}  (star: best bias, circle: amax rule; SQNR = +inf, an exact result, not drawn)",
                    fontsize=10)
    figure.savefig(path, dpi=100)
    return path


def _finite_or_nan(value):
    return value if math.isfinite(value) else math.nan


def plot_log2_histogram(tensors, records, path, max_panels=MAX_PANELS):
    """Write a PNG of each tensor's log2|x| histogram with every format's range shaded.

    ``tensors``: dict name -> array; ``records``: the sweep's records, which give the formats
    and, for configurable formats, the best bias per tensor (nearest_even if swept, else the
    first rounding).  Returns ``path``.
    """
    from .formats import format_from_spec

    names = list(tensors)[:max_panels]
    if not names:
        raise ValueError("tensors is empty: nothing to plot")
    rows, columns = _grid(len(names))
    figure, axes = _figure(rows, columns, 6.0, 3.8)
    format_specs = list(dict.fromkeys(record.format for record in records))
    for panel, name in zip(axes.flat, names):
        magnitudes = np.abs(np.asarray(tensors[name], dtype=np.float64).reshape(-1))
        magnitudes = magnitudes[np.isfinite(magnitudes) & (magnitudes > 0)]
        ranges = []
        for index, spec in enumerate(format_specs):
            chosen = _chosen_record(records, name, spec)
            if chosen is None:
                continue
            fmt = format_from_spec(spec, chosen.bias)
            ranges.append((spec, chosen.bias, fmt, f"C{index % 10}"))
        if magnitudes.size:
            logs = np.log2(magnitudes)
            low, high = float(logs.min()), float(logs.max())
        else:
            low, high = -1.0, 1.0
        span_low, span_high = low - 4, high + 4
        for _spec, _bias, fmt, _colour in ranges:  # widen to show formats of at most 64 binades whole
            if fmt.dynamic_range_binades <= 64:
                span_low = min(span_low, fmt.min_subnormal_exponent - 1)
                span_high = max(span_high, math.log2(fmt.max) + 1)
        band = 1.0 / max(1, len(ranges))
        for position, (spec, bias, fmt, colour) in enumerate(ranges):
            bottom, top = position * band, (position + 1) * band
            panel.axvspan(fmt.min_subnormal_exponent, math.log2(fmt.max), ymin=bottom, ymax=top,
                          color=colour, alpha=0.15, linewidth=0)
            panel.axvspan(fmt.emin, math.log2(fmt.max), ymin=bottom, ymax=top, color=colour, alpha=0.25,
                          linewidth=0)
            label_x = min(max(fmt.emin, span_low), span_high)
            panel.text(label_x, (bottom + top) / 2, f" {spec} (bias {bias})", transform=panel.get_xaxis_transform(),
                       va="center", ha="left", fontsize=7, color=colour, clip_on=True)
        if magnitudes.size:
            edges = np.arange(math.floor(low), math.ceil(high) + 1.25, 0.25)
            counts, edges = np.histogram(logs, bins=edges)
            scale = counts.max() if counts.max() else 1
            panel.stairs(counts / scale, edges, color="black", linewidth=1.2, label="log2|x|")
        panel.set_xlim(span_low, span_high)
        panel.set_ylim(0, 1.02)
        panel.set_yticks([])
        panel.set_xlabel("log2 |x|  (light: subnormal range, dark: normal range)")
        zeros = int(np.asarray(tensors[name]).size - magnitudes.size)
        panel.set_title(f"{name}: {magnitudes.size} nonzero finite values" + (f", {zeros} others" if zeros else ""),
                        fontsize=9)
    for panel in list(axes.flat)[len(names):]:
        panel.set_visible(False)
    more = len(tensors) - len(names)
    figure.suptitle("histogram of log2|x| and each format's representable range"
                    + (f" (first {len(names)} tensors of {len(tensors)})" if more > 0 else ""), fontsize=10)
    figure.savefig(path, dpi=100)
    return path


def _chosen_record(records, tensor, spec):
    """The best-bias record for (tensor, format spec): nearest_even if present, else any rounding."""
    candidates = [record for record in records if record.tensor == tensor and record.format == spec
                  and record.is_best_bias]
    if not candidates:
        return None
    for record in candidates:
        if record.rounding == "nearest_even":
            return record
    return candidates[0]


def plot_mma_error_vs_k(records, path):
    """Write a PNG of matmul error against K (log-log), one column per input distribution:
    the normwise relative error on top, the largest componentwise scaled error below, one
    line per model.  Returns ``path``."""
    distributions = list(dict.fromkeys(record.distribution for record in records))
    if not distributions:
        raise ValueError("records is empty: nothing to plot")
    models = list(dict.fromkeys(record.model for record in records))
    figure, axes = _figure(2, len(distributions), 5.2, 3.4)
    for column, distribution in enumerate(distributions):
        for row, (metric, label) in enumerate((("relative_error", "||D - AB||_F / ||AB||_F"),
                                               ("max_scaled_error", "max |D - AB| / (|A||B|)"))):
            panel = axes[row][column]
            for index, model in enumerate(models):
                points = sorted((record.k, getattr(record, metric)) for record in records
                                if record.model == model and record.distribution == distribution)
                ks = [k for k, value in points if math.isfinite(value) and value > 0]
                values = [value for _k, value in points if math.isfinite(value) and value > 0]
                panel.plot(ks, values, marker="o", markersize=3, color=f"C{index % 10}", label=model)
            panel.set_xscale("log", base=2)
            panel.set_yscale("log")
            panel.set_xlabel("K (inner dimension)")
            panel.set_ylabel(label, fontsize=8)
            panel.set_title(f"{distribution} inputs", fontsize=9)
            panel.grid(True, alpha=0.3, which="both")
            if row == 0 and column == 0:
                panel.legend(fontsize=7, loc="upper left")
    figure.suptitle("emulated tensor-core matmul error against a float64 reference (exact error 0 not drawn)",
                    fontsize=10)
    figure.savefig(path, dpi=100)
    return path
