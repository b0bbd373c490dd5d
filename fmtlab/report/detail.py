"""The per-tensor detail of a sweep's page: one matplotlib SVG per tensor, and its counts.

For each tensor the figure has three panels:

* **ranges** (top left): one row per element format of the page's first rounding, its
  representable range at the tensor's best bias as a band in log2|x|: light from log2 of the
  smallest subnormal to log2 of the smallest normal, dark from there to log2 max + 1 (the top
  of max's binade).  The x axis is the tensor's binades and 6 either side: a band that runs
  past an edge is cut there and its label ends in "→" or starts with "←".
* **histogram** (bottom left): one bar per nonzero binade e (2^e <= |x| < 2^(e+1)), its height
  the exact count from the sweep's scan (``fmtlab._binades``); each bar's SVG group is named
  ``binade_E_COUNT`` so that a reader (and the tests) can count them.
* **SQNR against bias** (right): each (format, rounding) evaluated at several biases as a
  curve (solid: nearest_even; dashed: another rounding), a dot at its best bias and a ring at
  the amax rule's; a format evaluated at one bias as a dot (configurable) or a horizontal
  line (a fixed format: it has no bias to choose).  Non-finite SQNRs are left out of a curve
  (the counts table says ∞ or nan).  The colours and line styles are the same in every
  tensor's figure, so their key is drawn once for the page (:func:`key_svg`).

The figure is laid out by hand (fixed margins in inches), so it is drawn once per tensor, not
twice as ``bbox_inches="tight"`` would; one Figure is reused for a batch of tensors
(:class:`DetailFigure`): its axes, labels and ticks stay, only the last tensor's bars, bands
and curves are removed before the next is drawn (building the axes anew costs more than
drawing them), and every limit and tick label is set for each tensor, so nothing carries over.
Batches are drawn on fmtlab's worker pool (:func:`detail_batch`).  The counts table beside
it is HTML (templates/detail.html.j2).
"""
from __future__ import annotations

import math

__all__ = ["DetailFigure", "EDGE_BINADES", "detail_limits", "detail_batch", "key_svg"]

EDGE_BINADES = 6  # binades shown either side of a tensor's values
_BAND_INCHES = 0.2
_LEFT, _MIDDLE, _RIGHT = 1.45, 0.75, 0.25  # inches: margins and the gap between the panels
_HISTOGRAM_WIDTH, _BIAS_WIDTH, _PLOT_HEIGHT = 4.6, 3.2, 2.2
_TOP, _BOTTOM = 0.3, 0.5


def detail_limits(histogram) -> tuple:
    """(low, high): the x range of a tensor's histogram, its binades and EDGE_BINADES either
    side; (-20, 20) when it has no finite nonzero value."""
    if not histogram or not histogram["counts"]:
        return (-20, 20)
    return (histogram["low"] - EDGE_BINADES, histogram["low"] + len(histogram["counts"]) + EDGE_BINADES)


def _number(value):
    if isinstance(value, str):
        return {"inf": math.inf, "-inf": -math.inf}.get(value, math.nan)
    return value


class DetailFigure:
    """One Figure redrawn for each tensor of a sweep with ``bands`` range rows at most."""

    def __init__(self, bands: int):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.bands = max(1, bands)
        band_height = _BAND_INCHES * self.bands
        width = _LEFT + _HISTOGRAM_WIDTH + _MIDDLE + _BIAS_WIDTH + _RIGHT
        height = _TOP + band_height + 0.08 + _PLOT_HEIGHT + _BOTTOM
        self.figure = Figure(figsize=(width, height))
        FigureCanvasAgg(self.figure)

        def box(left, bottom, box_width, box_height):
            return (left / width, bottom / height, box_width / width, box_height / height)

        self.histogram = self.figure.add_axes(box(_LEFT, _BOTTOM, _HISTOGRAM_WIDTH, _PLOT_HEIGHT))
        self.ranges = self.figure.add_axes(box(_LEFT, _BOTTOM + _PLOT_HEIGHT + 0.08, _HISTOGRAM_WIDTH, band_height),
                                           sharex=self.histogram)
        self.bias = self.figure.add_axes(box(_LEFT + _HISTOGRAM_WIDTH + _MIDDLE, _BOTTOM, _BIAS_WIDTH,
                                             _PLOT_HEIGHT + 0.08 + band_height))
        for axes, name in ((self.histogram, "histogram"), (self.ranges, "ranges"), (self.bias, "bias")):
            axes.set_gid(f"detail-{name}")  # the panel's SVG group, for a reader (and the tests) to find
        self._drawn = []  # what svg() added for the last tensor, removed before the next
        self._style(width, height)

    def _style(self, width, height):
        """What every tensor's figure shares, set once: labels and titles (figure texts at fixed
        places, so no drawing has to find room for them), tick sizes, grids."""
        from matplotlib.ticker import MaxNLocator

        bias_left = _LEFT + _HISTOGRAM_WIDTH + _MIDDLE

        def text(x, y, words, **options):  # x, y in inches from the bottom left
            self.figure.text(x, y, words, transform=self.figure.dpi_scale_trans, fontsize=8, **options)

        text(_LEFT + _HISTOGRAM_WIDTH / 2, 0.08, "floor(log2 |x|): 2^e ≤ |x| < 2^(e+1)", ha="center")
        text(_LEFT - 0.55, _BOTTOM + _PLOT_HEIGHT / 2, "values", rotation=90, ha="center", va="center")
        text(_LEFT, height - _TOP + 0.08, "each format's range (light: subnormal) at its best bias; bars: the "
             "tensor's values", ha="left")
        text(bias_left + _BIAS_WIDTH / 2, 0.08, "bias (dot: best; ring: the amax rule's)", ha="center")
        text(bias_left - 0.45, _BOTTOM + _PLOT_HEIGHT / 2, "SQNR (dB)", rotation=90, ha="center", va="center")
        text(bias_left, height - _TOP + 0.08, "SQNR against bias", ha="left")
        # few ticks: each is several artists to lay out and draw, for each of hundreds of tensors
        self.histogram.xaxis.set_major_locator(MaxNLocator(7, integer=True))
        self.histogram.yaxis.set_major_locator(MaxNLocator(3, integer=True))
        self.ranges.tick_params(labelbottom=False, bottom=False, left=False)
        for side in ("top", "right", "left"):
            self.ranges.spines[side].set_visible(False)
        self.bias.grid(axis="y", alpha=0.3)
        self.bias.xaxis.set_major_locator(MaxNLocator(5, integer=True))
        self.bias.yaxis.set_major_locator(MaxNLocator(4))
        for axes in (self.histogram, self.bias):
            axes.tick_params(labelsize=7)
            for side in ("top", "right"):
                axes.spines[side].set_visible(False)

    def svg(self, histogram, groups):
        """The SVG markup of one tensor's detail: ``histogram`` (fmtlab._binades layout, or
        None), ``groups`` the page's detail dicts of the tensor (see sweep_page.sweep_context)."""
        from .page import svg_markup

        for artist in self._drawn:  # the last tensor's artists; the axes, ticks and labels stay
            artist.remove()
        self._drawn = []
        low, high = detail_limits(histogram)
        self._draw_histogram(histogram, low, high)
        self._draw_ranges(groups, low, high)
        self._draw_bias(groups)
        return svg_markup(self.figure, tight=False)

    def _draw_histogram(self, histogram, low, high):
        axes = self.histogram
        if histogram and histogram["counts"]:
            used = [(histogram["low"] + index, count) for index, count in enumerate(histogram["counts"]) if count]
            bars = axes.bar([binade for binade, _count in used], [count for _binade, count in used], 0.9,
                            align="edge", color="#333333")
            for bar, (binade, count) in zip(bars, used):
                bar.set_gid(f"binade_{binade}_{count}")
            self._drawn.append(bars)
            axes.set_ylim(0, max(histogram["counts"]) * 1.05)
        else:
            self._drawn.append(axes.text(0.5, 0.5, "no finite nonzero value" if histogram else "no histogram recorded",
                                         ha="center", va="center", transform=axes.transAxes))
            axes.set_ylim(0, 1)
        axes.set_xlim(low, high)

    def _draw_ranges(self, groups, low, high):
        axes = self.ranges
        ranged = [group for group in groups if group["range"] and group["rounding"] == groups[0]["rounding"]]
        ranged = ranged[:self.bands]
        labels = []
        for row, group in enumerate(ranged):
            subnormal, normal, top = group["range"][0], group["range"][1], group["range"][2] + 1
            colour = f"C{group['colour'] % 10}"
            for start, stop, alpha, part in ((subnormal, normal, 0.25, "subnormal"), (normal, top, 0.6, "normal")):
                start, stop = max(low, start), min(high, stop)
                if stop > start:
                    self._drawn.append(axes.broken_barh([(start, stop - start)], (row - 0.4, 0.8), facecolors=colour,
                                                        alpha=alpha, gid=f"range_{group['c']}_{part}"))
            label = group["format"] + (f" (bias {group['best_bias']})" if group["configurable"] else "")
            labels.append(("← " if subnormal < low else "") + label + (" →" if top > high else ""))
        axes.set_ylim(len(ranged) - 0.5, -0.5)
        axes.set_yticks(range(len(ranged)), labels, fontsize=7)

    def _draw_bias(self, groups):
        axes = self.bias
        finite = []
        for group in groups:
            colour, style = f"C{group['colour'] % 10}", _line_style(group["rounding"])
            best = _number(group["best_sqnr"])
            drawn = [(bias, _number(sqnr)) for bias, sqnr in group["curve"] if math.isfinite(_number(sqnr))]
            if not group["configurable"]:  # one bias, nothing to choose: a level line
                if math.isfinite(best):
                    self._drawn.append(axes.axhline(best, color=colour, linestyle=style, linewidth=1,
                                                    gid=f"fixed_{group['c']}"))
                    finite.append(best)
                continue
            if len(drawn) > 1:
                self._drawn += axes.plot([bias for bias, _sqnr in drawn], [sqnr for _bias, sqnr in drawn],
                                         color=colour, linestyle=style, linewidth=1.3, gid=f"curve_{group['c']}")
            finite += [sqnr for _bias, sqnr in drawn]
            if math.isfinite(best):
                self._drawn += axes.plot([group["best_bias"]], [best], "o", color=colour, markersize=4)
            rule = _number(group["rule_sqnr"])
            if math.isfinite(rule):
                self._drawn += axes.plot([group["rule_bias"]], [rule], "o", markerfacecolor="none",
                                         markeredgecolor=colour, markersize=8)
        if finite:
            spread = max(finite) - min(finite)
            axes.set_ylim(min(finite) - 0.05 * spread - 0.5, max(finite) + 0.05 * spread + 0.5)
        else:
            axes.set_ylim(0, 1)
        # the configurable formats' biases (a fixed format's, bf16's 127, would squeeze them to a point)
        biases = ([bias for group in groups if group["configurable"] for bias, _sqnr in group["curve"]]
                  or [bias for group in groups for bias, _sqnr in group["curve"]] or [0])
        axes.set_xlim(min(biases) - 0.5, max(biases) + 0.5)  # always set: nothing carries over between tensors


def _line_style(rounding: str) -> str:
    return "-" if rounding == "nearest_even" else "--"


def key_svg(columns, colours, configurable):
    """The key of every detail, drawn once for the page: one entry per (format, rounding) of
    ``columns`` in its colour (``colours``: format -> index) and line style (solid:
    nearest_even, dashed: another rounding), with a dot where the format is ``configurable``
    (format -> bool; a fixed format is a level line in the SQNR panel)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from .page import svg_markup

    figure = Figure(figsize=(10.0, 0.25 + 0.2 * math.ceil(len(columns) / 4)))
    FigureCanvasAgg(figure)
    handles = [Line2D([], [], color=f"C{colours[spec] % 10}", linestyle=_line_style(rounding),
                      marker="o" if configurable[spec] else None, markersize=4) for spec, rounding in columns]
    labels = [spec + ("" if rounding == "nearest_even" else f" · {rounding}") for spec, rounding in columns]
    figure.legend(handles, labels, loc="center left", ncol=4, fontsize=8, frameon=False, handlelength=2.6)
    return svg_markup(figure)


def detail_batch(items, bands: int, threads=None) -> list:
    """The packed detail fragments (fmtlab.report.page.packed) of ``items``, each a dict with
    ``tensor`` (name, kind, depth, n, amax), ``histogram``, ``groups`` (the figure's) and
    ``rows`` (the counts table's), drawn on one :class:`DetailFigure` of ``bands`` range rows:
    a task of fmtlab's pool (``threads``: its argument, unused).  Each fragment depends only on
    its own item, so the batches' cut does not change a byte of the page."""
    from .page import packed, render_fragment

    drawing = DetailFigure(bands)
    return [packed(render_fragment("detail.html.j2", tensor=item["tensor"], histogram=item["histogram"],
                                   rows=item["rows"], svg=drawing.svg(item["histogram"], item["groups"])))
            for item in items]
