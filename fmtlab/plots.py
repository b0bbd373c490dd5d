"""Plots of a precision sweep (matplotlib, Agg canvas: no display and no pyplot state needed).

* :func:`plot_sqnr_vs_bias`: one panel per swept format, SQNR (dB) against bias, one line
  per (tensor, rounding): colour = tensor, line style = rounding.  The best bias of each line
  is a star, the amax-rule bias a larger hollow ring (a ring around the star where they
  coincide).  Formats with one bias share a last panel (marker shape = rounding there).  An
  SQNR of +inf (an exact result: every error zero) is drawn on a dotted ceiling just above the
  panel's finite values, labelled "exact (∞ dB)"; a NaN (or -inf) SQNR is a gap.  Every
  tensor is drawn; one legend below the panels explains colours, styles and marks.  Above
  ``MAX_LEGEND_TENSORS`` (24) tensors the colour is the tensor's layer kind
  (``fmtlab._records.layer_kind``) and the legend lists the kinds with their tensor counts
  (a legend of hundreds of names would be taller than the panels); the title says so.
  Scaled formats are left out (they have no bias): see sqnr_vs_block.
* :func:`plot_sqnr_vs_block`: the scaled formats, one panel per tensor (at most
  ``max_panels``), SQNR against the elements per scale (n / number of scales: the block size,
  r*c for tiles, the row length for "channel", n for "tensor"; log axis, ticks labelled with
  the block), one line per (format family, rule, rounding): colour = the format without its
  block and rule, marker = rule, line style = rounding.  Beside them, as horizontal
  references, the unscaled formats of at most 8 bits: a configurable one (CFloat8) at its
  amax-rule bias (the line) and its best bias (a star at the right edge), a fixed one at its
  bias.  +inf is drawn on the marked ceiling, NaN is a gap, as in sqnr_vs_bias.
* :func:`plot_log2_histogram`: one panel per tensor (at most ``max_panels``, the title says
  how many of how many), the histogram of log2|x| over the finite nonzero elements, and for
  each element format a shaded band over its representable range [log2 min_subnormal, log2
  max] (the normal range [log2 min_normal, log2 max] darker), at the best bias found for that
  tensor; scaled formats have no fixed range (it moves with each block's scale) and are not
  shaded.
* :func:`plot_mma_error_vs_k`: matmul error against K, log-log, one column per distribution.

Each ``plot_*`` function builds its figure with the matching ``*_figure`` function (which
returns the matplotlib Figure, for inspection or further drawing) and writes it with
:func:`save_figure`, atomically: an interrupted run never leaves half a PNG.
:class:`PanelGrid` lays a figure out in inches (fixed panel size, title above, legend and
footnote below, the figure grown to fit them), so nothing is cropped and the legend never
covers data.  matplotlib is imported only inside these functions.
"""
from __future__ import annotations

import math
import textwrap

import numpy as np

from ._files import atomic_path

__all__ = ["MAX_PANELS", "MAX_LEGEND_TENSORS", "DPI", "PanelGrid", "save_figure", "sqnr_vs_bias_figure", "plot_sqnr_vs_bias",
           "sqnr_vs_block_figure", "plot_sqnr_vs_block", "log2_histogram_figure", "plot_log2_histogram",
           "mma_error_vs_k_figure", "plot_mma_error_vs_k"]

MAX_PANELS = 24  # tensors drawn in the histogram figure (the first ones, in order; the title says so)
MAX_LEGEND_TENSORS = 24  # above this many tensors, sqnr_vs_bias colours by layer kind (a legend of kinds)
DPI = 100        # dots per inch of the saved PNGs (and of the layout measurements)

_LINE_STYLES = ("-", "--", ":", "-.")
_ROUNDING_MARKERS = ("o", "s", "^", "v", "D", "P", "X")
_EXTRA_TENSOR_MARKERS = ("x", "+", "1", "2", "3", "4")  # past 20 tensors, colours repeat with a marker
_EXACT_COLOUR = "0.35"
_RULE_MARKERS = {"floor": "o", "ceil": "s", "even": "^", "rceil": "D", "amax": "v"}
REFERENCE_MAX_BITS = 8  # unscaled formats of at most this many bits are drawn beside the scaled ones


def _is_scaled(record) -> bool:
    """Whether a record is of a scaled format (SweepRecord.is_scaled; a record without the
    field is an element format's)."""
    return bool(getattr(record, "block", ""))


class PanelGrid:
    """A figure of ``rows`` x ``columns`` panels of ``panel_width`` x ``panel_height`` inches.

    :meth:`finish` adds the title above the panels and an optional legend and footnote below
    them, measures their text, and sizes the figure to hold everything: margins are fixed in
    inches, so the panels keep their size whatever the grid, nothing is cut off, and the
    legend (a figure legend in as many columns as fit the width) lies outside every panel.
    No layout engine is used (it would cost more than the drawing).
    """

    LEFT = 0.85         # y tick labels and y label
    RIGHT = 0.25
    GAP_X = 0.95        # between panels: the next panel's y labels
    GAP_Y = 1.05        # between rows: x tick labels, x label, the next panel's title
    PANEL_TITLE = 0.4   # above the top row
    BOTTOM_AXIS = 0.65  # x tick labels and x label below the bottom row
    PAD = 0.12

    def __init__(self, rows: int, columns: int, panel_width: float, panel_height: float, *, sharex=False,
                 row_gap=None):
        """``row_gap``: inches between rows (default :attr:`GAP_Y`; less where shared x axes
        leave the upper rows without x labels)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if row_gap is not None:
            self.GAP_Y = row_gap
        self.rows, self.columns = rows, columns
        self.panel_width, self.panel_height = panel_width, panel_height
        self.figure = Figure(figsize=(self._width(), panel_height * rows + 1.5), dpi=DPI)
        FigureCanvasAgg(self.figure)
        self.axes = self.figure.subplots(rows, columns, squeeze=False, sharex=sharex)

    def _width(self):
        return self.LEFT + self.columns * self.panel_width + (self.columns - 1) * self.GAP_X + self.RIGHT

    def finish(self, title, legends=(), *, footnote=None, title_size=11):
        """Add the title, the legends and the footnote; size the figure to fit them; return the Figure.

        ``legends``: a sequence of ``(handles, labels, legend_title)``, drawn one under the
        other below the panels, each in as many columns as fit the figure's width.
        """
        figure = self.figure
        renderer = figure.canvas.get_renderer()
        width = self._width()
        drawn = []
        for handles, labels, legend_title in legends:
            if handles:
                legend, legend_width = _fitted_legend(figure, renderer, list(handles), list(labels), legend_title,
                                                      width - 2 * self.PAD)
                width = max(width, legend_width + 2 * self.PAD)
                drawn.append((legend, legend.get_window_extent(renderer).height / DPI))
        title_text = figure.suptitle("", fontsize=title_size, va="top", ha="center")
        title_height = _fit_text(title_text, title, renderer, width - 2 * self.PAD)
        footnote_text, footnote_height = None, 0.0
        if footnote:
            footnote_text = figure.text(0, 0, "", fontsize=8, va="bottom", ha="left", color="0.25")
            footnote_height = _fit_text(footnote_text, footnote, renderer, width - self.LEFT - self.PAD)

        below = self.PAD + (footnote_height + self.PAD if footnote else 0.0) \
            + sum(legend_height + self.PAD for _legend, legend_height in drawn)
        bottom = below + self.BOTTOM_AXIS
        top = self.PAD + title_height + self.PAD + self.PANEL_TITLE
        height = top + self.rows * self.panel_height + (self.rows - 1) * self.GAP_Y + bottom
        figure.set_size_inches(width, height)
        panel_width = (width - self.LEFT - self.RIGHT - (self.columns - 1) * self.GAP_X) / self.columns
        figure.subplots_adjust(left=self.LEFT / width, right=1 - self.RIGHT / width, top=1 - top / height,
                               bottom=bottom / height, wspace=self.GAP_X / panel_width,
                               hspace=self.GAP_Y / self.panel_height)
        title_text.set_position((0.5, 1 - self.PAD / height))
        if footnote_text is not None:
            footnote_text.set_position((self.LEFT / width, self.PAD / height))
        upper_edge = below - self.PAD  # the legends' block, top down, under the x labels
        for legend, legend_height in drawn:
            legend.set_bbox_to_anchor((0.5, upper_edge / height), transform=figure.transFigure)
            upper_edge -= legend_height + self.PAD
        return figure


def _fitted_legend(figure, renderer, handles, labels, title, available):
    """A figure legend in the most columns (at most 8) whose width fits ``available`` inches."""
    legend = None
    for columns in range(min(len(handles), 8), 0, -1):
        if legend is not None:
            legend.remove()
        legend = figure.legend(handles, labels, loc="upper center", ncol=columns, fontsize=8, title=title,
                               title_fontsize=8, frameon=False, borderaxespad=0.0, columnspacing=1.4,
                               handlelength=2.6)
        legend_width = legend.get_window_extent(renderer).width / DPI
        if legend_width <= available:
            break
    return legend, legend_width


def _fit_text(text, content, renderer, available):
    """Set ``text`` to ``content`` wrapped to ``available`` inches; return its height in inches."""
    paragraphs = str(content).split("\n")
    characters = max(10, int(available * 72 / (0.55 * text.get_fontsize())))
    for _attempt in range(8):
        text.set_text("\n".join(textwrap.fill(part, characters) if part else "" for part in paragraphs))
        extent = text.get_window_extent(renderer)
        if extent.width / DPI <= available or characters <= 10:
            break
        characters = max(10, int(characters * available / (extent.width / DPI)) - 1)
    return extent.height / DPI


def save_figure(figure, path):
    """Write ``figure`` as a PNG to ``path`` atomically (a temporary beside it, then
    ``os.replace``); return ``path``."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=DPI)
    return path


def _grid(count):
    columns = min(count, 2 if count <= 4 else 3)
    return math.ceil(count / columns), columns


def _tensor_styles(tensors):
    """tensor -> (colour, marker): tab10 up to 10 tensors; beyond, tab20's dark then light
    colours, and past 20 tensors the colours repeat with a marker."""
    from matplotlib import colormaps

    if len(tensors) <= 10:
        palette = [f"C{index}" for index in range(10)]
    else:
        tab20 = colormaps["tab20"]
        palette = [tab20(index) for index in range(0, 20, 2)] + [tab20(index) for index in range(1, 20, 2)]
    styles = {}
    for index, tensor in enumerate(tensors):
        cycle = index // len(palette)
        marker = None if cycle == 0 else _EXTRA_TENSOR_MARKERS[(cycle - 1) % len(_EXTRA_TENSOR_MARKERS)]
        styles[tensor] = (palette[index % len(palette)], marker)
    return styles


def _exact_ceiling(values):
    """(ceiling, bottom, top, has_finite) for a panel: the height that stands for SQNR = +inf,
    just above the finite values, which span [bottom, top] ([0, 0] when there are none)."""
    finite = [value for value in values if math.isfinite(value)]
    bottom, top = (min(finite), max(finite)) if finite else (0.0, 0.0)
    return top + max(3.0, 0.12 * (top - bottom)), bottom, top, bool(finite)


def _drawn(value, ceiling):
    """The height drawn for an SQNR: +inf at the ceiling, NaN and -inf a gap."""
    if value == math.inf:
        return ceiling
    return value if math.isfinite(value) else math.nan


def _mark_exact_ceiling(panel, ceiling, bottom, top, has_finite):
    """Draw the dotted ceiling labelled "exact (∞ dB)", give it the y tick "∞", and set the limits."""
    from matplotlib.ticker import MaxNLocator
    from matplotlib.transforms import blended_transform_factory

    span = ceiling - bottom
    if has_finite:
        panel.set_ylim(bottom - 0.06 * span, ceiling + 0.1 * span)
    else:  # every result exact: the ceiling alone, in the middle
        panel.set_ylim(ceiling - span, ceiling + span)
    panel.axhline(ceiling, color=_EXACT_COLOUR, linestyle=":", linewidth=1.2, zorder=1, gid="exact-ceiling")
    panel.text(0.99, ceiling, "exact (∞ dB)", transform=blended_transform_factory(panel.transAxes, panel.transData),
               ha="right", va="bottom", fontsize=7, color=_EXACT_COLOUR)
    if top > bottom:
        ticks = [tick for tick in MaxNLocator(nbins=6).tick_values(bottom, top)
                 if bottom - 0.06 * span <= tick <= top + 1e-9 and tick < ceiling - 0.08 * span]
    else:
        ticks = [top] if has_finite else []  # one finite value, or none (every result exact)
    panel.set_yticks(ticks + [ceiling], [f"{tick:g}".replace("-", "\N{MINUS SIGN}") for tick in ticks] + ["∞"])


def sqnr_vs_bias_figure(records, title="SQNR against exponent bias"):
    """The figure of :func:`plot_sqnr_vs_bias` (a matplotlib Figure, not saved).

    The data lines carry ``gid`` ``"sqnr|FORMAT|TENSOR|ROUNDING"``, the marks
    ``"best|..."`` and ``"rule|..."`` (same fields), the ceiling line ``"exact-ceiling"``.
    Scaled formats' records are left out (:func:`sqnr_vs_block_figure` draws them).
    """
    from matplotlib.lines import Line2D

    records = list(records)
    if not records:
        raise ValueError("records is empty: nothing to plot")
    records = [record for record in records if not _is_scaled(record)]
    if not records:
        raise ValueError("records has only scaled formats, which have no bias: draw them with sqnr_vs_block_figure")
    by_format = {}
    for record in records:
        by_format.setdefault(record.format, {}).setdefault((record.tensor, record.rounding), []).append(record)
    swept = [spec for spec, lines in by_format.items() if any(len(group) > 1 for group in lines.values())]
    fixed = [spec for spec in by_format if spec not in swept]
    panels = len(swept) + (1 if fixed else 0)
    rows, columns = _grid(panels)
    grid = PanelGrid(rows, columns, 5.2, 3.6)
    tensors = list(dict.fromkeys(record.tensor for record in records))
    roundings = list(dict.fromkeys(record.rounding for record in records))
    by_kind = len(tensors) > MAX_LEGEND_TENSORS
    if by_kind:  # hundreds of tensors: one colour per layer kind, one legend entry per kind
        from ._records import LAYER_KINDS, layer_kind

        kind_of = {tensor: layer_kind(tensor) for tensor in tensors}
        kinds = [kind for kind in LAYER_KINDS if kind in kind_of.values()]
        kind_colour = {kind: f"C{index % 10}" for index, kind in enumerate(kinds)}
        tensor_styles = {tensor: (kind_colour[kind_of[tensor]], None) for tensor in tensors}
    else:
        tensor_styles = _tensor_styles(tensors)
    line_styles = {rounding: _LINE_STYLES[index % len(_LINE_STYLES)] for index, rounding in enumerate(roundings)}
    rounding_markers = {rounding: _ROUNDING_MARKERS[index % len(_ROUNDING_MARKERS)]
                        for index, rounding in enumerate(roundings)}
    panel_list = list(grid.axes.flat)
    any_exact = False
    for panel, spec in zip(panel_list, swept):
        lines = by_format[spec]
        values = [record.sqnr_db for group in lines.values() for record in group]
        ceiling, bottom, top, has_finite = _exact_ceiling(values)
        for tensor in tensors:
            colour, marker = tensor_styles[tensor]
            for rounding in roundings:
                group = sorted(lines.get((tensor, rounding), ()), key=lambda record: record.bias)
                if not group:
                    continue
                key = f"{spec}|{tensor}|{rounding}"
                panel.plot([record.bias for record in group], [_drawn(record.sqnr_db, ceiling) for record in group],
                           linestyle=line_styles[rounding], marker=None if by_kind else (marker or "."),
                           markersize=4 if marker else 2.5, linewidth=0.7 if by_kind else 1.3,
                           alpha=0.5 if by_kind else 1.0, color=colour, gid=f"sqnr|{key}")
                best = next((record for record in group if record.is_best_bias), None)
                rule = next((record for record in group if record.is_rule_bias), None)
                if best is not None:
                    panel.plot([best.bias], [_drawn(best.sqnr_db, ceiling)], linestyle="none", marker="*",
                               markersize=8 if by_kind else 12, color=colour, markeredgecolor="black", markeredgewidth=0.6,
                               zorder=4, gid=f"best|{key}")
                if rule is not None:
                    # Larger than the star and hollow: where both biases coincide, a ring around the star.
                    panel.plot([rule.bias], [_drawn(rule.sqnr_db, ceiling)], linestyle="none", marker="o",
                               markersize=12 if by_kind else 17, markerfacecolor="none", markeredgecolor=colour,
                               markeredgewidth=1.2 if by_kind else 1.6, zorder=5, gid=f"rule|{key}")
        if math.inf in values:
            any_exact = True
            _mark_exact_ceiling(panel, ceiling, bottom, top, has_finite)
        panel.set_title(spec, fontsize=10)
        panel.set_xlabel("exponent bias")
        panel.set_ylabel("SQNR (dB)")
        panel.grid(True, alpha=0.3)
    if fixed:
        panel = panel_list[len(swept)]
        values = [record.sqnr_db for spec in fixed for group in by_format[spec].values() for record in group]
        ceiling, bottom, top, has_finite = _exact_ceiling(values)
        series = len(tensors) * len(roundings)
        offsets = np.linspace(-0.3, 0.3, series) if series > 1 else np.zeros(1)
        for tensor_index, tensor in enumerate(tensors):
            colour, _marker = tensor_styles[tensor]
            for rounding_index, rounding in enumerate(roundings):
                offset = offsets[tensor_index * len(roundings) + rounding_index]
                for position, spec in enumerate(fixed):
                    group = by_format[spec].get((tensor, rounding))
                    if not group:
                        continue
                    panel.plot([position + offset], [_drawn(group[0].sqnr_db, ceiling)], linestyle="none",
                               marker=rounding_markers[rounding], markersize=6, color=colour,
                               markeredgecolor="black", markeredgewidth=0.3,
                               gid=f"sqnr|{spec}|{tensor}|{rounding}")
        if math.inf in values:
            any_exact = True
            _mark_exact_ceiling(panel, ceiling, bottom, top, has_finite)
        panel.set_xticks(range(len(fixed)), [spec.replace(":", "\n:") for spec in fixed], fontsize=8)
        panel.set_xlim(-0.6, len(fixed) - 0.4)
        panel.set_title("fixed-bias formats", fontsize=10)
        panel.set_ylabel("SQNR (dB)")
        panel.grid(True, alpha=0.3)
    for panel in panel_list[panels:]:
        panel.set_visible(False)

    handles, labels = [], []
    if swept:
        handles += [Line2D([], [], linestyle="none", marker="*", markersize=11, color="0.6",
                           markeredgecolor="black", markeredgewidth=0.6),
                    Line2D([], [], linestyle="none", marker="o", markersize=13, markerfacecolor="none",
                           markeredgecolor="0.3", markeredgewidth=1.6)]
        labels += ["best bias (highest SQNR)", "amax-rule bias (a ring around the star where they coincide)"]
    if any_exact:
        handles.append(Line2D([], [], color=_EXACT_COLOUR, linestyle=":", linewidth=1.2))
        labels.append("exact (∞ dB): zero error")
    for rounding in roundings:
        handles.append(Line2D([], [], color="0.2", linestyle=line_styles[rounding] if swept else "none",
                              marker=rounding_markers[rounding] if fixed else None, markersize=5))
        labels.append(rounding)
    rounding_title = "rounding: " + " / ".join((["line style"] if swept else [])
                                               + (["marker on the fixed-bias panel"] if fixed else []))
    if by_kind:
        counts = {kind: sum(1 for tensor in tensors if kind_of[tensor] == kind) for kind in kinds}
        colour_handles = [Line2D([], [], color=kind_colour[kind], linewidth=2.5) for kind in kinds]
        colour_labels = [f"{kind} ({counts[kind]} tensors)" for kind in kinds]
        colour_title = "layer kind: colour (every tensor is drawn)"
        suffix = f" ({len(tensors)} tensors, coloured by layer kind)"
    else:
        colour_handles = [Line2D([], [], color=tensor_styles[tensor][0], linewidth=2.5,
                                 marker=tensor_styles[tensor][1], markersize=5) for tensor in tensors]
        colour_labels, colour_title = tensors, "tensor: colour"
        suffix = f" ({len(tensors)} tensor{'s' if len(tensors) != 1 else ''})"
    return grid.finish(title + suffix, [(handles, labels, ("marks; " if swept or any_exact else "") + rounding_title),
                                        (colour_handles, colour_labels, colour_title)])


def plot_sqnr_vs_bias(records, path, title="SQNR against exponent bias"):
    """Write a PNG of SQNR against bias to ``path``; return ``path``.

    One panel per format swept over more than one bias; the formats with a single bias
    share one last panel (SQNR per format).  See the module docstring for the marks.
    """
    return save_figure(sqnr_vs_bias_figure(records, title), path)


def _elements_per_scale(record) -> float:
    """n / scales: the block size (r*c for tiles, the row length for 'channel', n for 'tensor';
    less for a partial last block)."""
    return record.n / record.scales if record.scales else float(record.n)


def sqnr_vs_block_figure(records, title="SQNR against block size", max_panels=MAX_PANELS):
    """The figure of :func:`plot_sqnr_vs_block` (a matplotlib Figure, not saved).

    The data lines carry ``gid`` ``"sqnr|FAMILY|RULE|TENSOR|ROUNDING"`` (FAMILY: the format
    without its block and rule, ``_records.format_family``); the references
    ``"reference|FORMAT|TENSOR|ROUNDING"`` (a configurable format at its rule bias, a fixed one
    at its bias) and ``"best-bias|FORMAT|TENSOR|ROUNDING"`` (the star); the ceiling line
    ``"exact-ceiling"``.
    """
    from matplotlib.lines import Line2D
    from matplotlib.transforms import blended_transform_factory

    from ._records import format_family

    if not isinstance(max_panels, int) or isinstance(max_panels, bool) or max_panels < 1:
        raise ValueError(f"max_panels={max_panels!r} is not allowed; allowed: an integer >= 1")
    records = list(records)
    scaled = [record for record in records if _is_scaled(record)]
    if not scaled:
        raise ValueError("records has no scaled format: nothing to plot against block size")
    all_tensors = list(dict.fromkeys(record.tensor for record in scaled))
    tensors = all_tensors[:max_panels]
    roundings = list(dict.fromkeys(record.rounding for record in records))
    families = list(dict.fromkeys(format_family(record.format) for record in scaled))
    rules = list(dict.fromkeys(record.rule for record in scaled))
    references = list(dict.fromkeys(record.format for record in records if not _is_scaled(record)
                                    and _reference_bits(record) <= REFERENCE_MAX_BITS))
    colours = {name: f"C{index % 10}" for index, name in enumerate(families + references)}
    line_styles = {rounding: _LINE_STYLES[index % len(_LINE_STYLES)] for index, rounding in enumerate(roundings)}
    markers = {rule: _RULE_MARKERS.get(rule, "o") for rule in rules}
    rows, columns = _grid(len(tensors))
    grid = PanelGrid(rows, columns, 5.6, 3.8)
    any_exact = any_best = False
    for panel, tensor in zip(grid.axes.flat, tensors):
        lines = {}
        for record in scaled:
            if record.tensor == tensor:
                lines.setdefault((format_family(record.format), record.rule, record.rounding), []).append(record)
        reference_groups = {}
        for record in records:
            if record.tensor == tensor and record.format in references:
                reference_groups.setdefault((record.format, record.rounding), []).append(record)
        values = [record.sqnr_db for group in lines.values() for record in group]
        values += [record.sqnr_db for group in reference_groups.values() for record in group
                   if record.is_rule_bias or record.is_best_bias]
        ceiling, bottom, top, has_finite = _exact_ceiling(values)
        ticks = {}
        for (family, rule, rounding), group in lines.items():
            group = sorted(group, key=_elements_per_scale)
            xs = [_elements_per_scale(record) for record in group]
            for x, record in zip(xs, group):
                ticks.setdefault(x, []).append(record.block)
            panel.plot(xs, [_drawn(record.sqnr_db, ceiling) for record in group], color=colours[family],
                       linestyle=line_styles[rounding], marker=markers[rule], markersize=6, linewidth=1.4,
                       markeredgecolor="black", markeredgewidth=0.4, gid=f"sqnr|{family}|{rule}|{tensor}|{rounding}")
        edge = blended_transform_factory(panel.transAxes, panel.transData)
        for (spec, rounding), group in reference_groups.items():
            rule = next((record for record in group if record.is_rule_bias), group[0])
            best = next((record for record in group if record.is_best_bias), rule)
            panel.axhline(_drawn(rule.sqnr_db, ceiling), color=colours[spec], linestyle=line_styles[rounding],
                          linewidth=1.0, alpha=0.85, zorder=1, gid=f"reference|{spec}|{tensor}|{rounding}")
            if len(group) > 1:  # a configurable format swept over biases: its best bias too
                any_best = True
                panel.plot([0.985], [_drawn(best.sqnr_db, ceiling)], transform=edge, linestyle="none", marker="*",
                           markersize=11, color=colours[spec], markeredgecolor="black", markeredgewidth=0.6,
                           zorder=4, clip_on=False, gid=f"best-bias|{spec}|{tensor}|{rounding}")
        if math.inf in values:
            any_exact = True
            _mark_exact_ceiling(panel, ceiling, bottom, top, has_finite)
        panel.set_xscale("log", base=2)
        positions = sorted(ticks)
        panel.set_xticks(positions, ["\n".join(dict.fromkeys(_tick_label(block, x) for block in ticks[x]))
                                     for x in positions], fontsize=8)
        panel.minorticks_off()
        low, high = positions[0], positions[-1]
        panel.set_xlim(low / 1.6, high * 1.6)
        panel.set_xlabel("elements per scale (block size)")
        panel.set_ylabel("SQNR (dB)")
        panel.set_title(tensor, fontsize=10)
        panel.grid(True, alpha=0.3)
    for panel in list(grid.axes.flat)[len(tensors):]:
        panel.set_visible(False)

    format_handles = [Line2D([], [], color=colours[family], linewidth=2.5) for family in families]
    mark_handles = [Line2D([], [], color="0.3", linestyle="none", marker=markers[rule], markersize=6,
                           markeredgecolor="black", markeredgewidth=0.4) for rule in rules]
    mark_labels = [f"rule {rule}" for rule in rules]
    mark_handles += [Line2D([], [], color="0.2", linestyle=line_styles[rounding]) for rounding in roundings]
    mark_labels += list(roundings)
    if any_best:
        mark_handles.append(Line2D([], [], linestyle="none", marker="*", markersize=10, color="0.6",
                                   markeredgecolor="black", markeredgewidth=0.6))
        mark_labels.append("best bias (star at the right edge)")
    if any_exact:
        mark_handles.append(Line2D([], [], color=_EXACT_COLOUR, linestyle=":", linewidth=1.2))
        mark_labels.append("exact (∞ dB): zero error")
    reference_handles = [Line2D([], [], color=colours[spec], linewidth=1.0) for spec in references]
    legends = [(format_handles, families, "scaled format: colour"),
               (mark_handles, mark_labels, "scale rule: marker; rounding: line style")]
    if references:
        legends.append((reference_handles, references,
                        "unscaled reference: horizontal line (configurable formats at the amax-rule bias)"))
    shown = (f"{len(all_tensors)} tensor{'s' if len(all_tensors) != 1 else ''}" if len(tensors) == len(all_tensors)
             else f"the first {len(tensors)} of {len(all_tensors)} tensors (max_panels={max_panels})")
    footnote = ("x: elements sharing one scale (n / number of scales: the block size, r*c for tiles; fewer where "
                "the last block is partial, shown in brackets).")
    if references:
        footnote += (f"  Horizontal lines: the unscaled formats of at most {REFERENCE_MAX_BITS} bits, a configurable "
                     "one at its amax-rule bias (the per-tensor scaling a runtime can afford), with a star at its best "
                     "bias.")
    return grid.finish(f"{title} ({shown})", legends, footnote=footnote)


def _tick_label(block: str, x: float) -> str:
    """The block, with its elements per scale where that is not the block's own size
    (channel, tensor, and partial blocks: 1-D blocks of 64 on rows of 10 are 10 per scale)."""
    rows, _, columns = block.partition("x")
    nominal = int(rows) * int(columns) if columns else int(block) if block.isdigit() else None
    return block if nominal is not None and nominal == x else f"{block} ({x:.4g})"


def _reference_bits(record) -> int:
    """Bits of an unscaled record's format (its bits per value; 0 if unknown)."""
    bits = getattr(record, "bits_per_value", math.nan)
    return int(bits) if isinstance(bits, (int, float)) and math.isfinite(bits) else 0


def plot_sqnr_vs_block(records, path, title="SQNR against block size", max_panels=MAX_PANELS):
    """Write a PNG of the scaled formats' SQNR against block size, one panel per tensor, with
    the unscaled formats of at most 8 bits (CFloat8 at its rule and best bias) as horizontal
    references; return ``path``.  See the module docstring for the marks."""
    return save_figure(sqnr_vs_block_figure(records, title, max_panels), path)


def log2_histogram_figure(tensors, records, max_panels=MAX_PANELS):
    """The figure of :func:`plot_log2_histogram` (a matplotlib Figure, not saved)."""
    from .formats import format_from_spec

    if not isinstance(max_panels, int) or isinstance(max_panels, bool) or max_panels < 1:
        raise ValueError(f"max_panels={max_panels!r} is not allowed; allowed: an integer >= 1")
    names = list(tensors)[:max_panels]
    if not names:
        raise ValueError("tensors is empty: nothing to plot")
    rows, columns = _grid(len(names))
    grid = PanelGrid(rows, columns, 6.0, 3.6)
    format_specs = list(dict.fromkeys(record.format for record in records if not _is_scaled(record)))
    scaled_specs = list(dict.fromkeys(record.format for record in records if _is_scaled(record)))
    for panel, name in zip(grid.axes.flat, names):
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
        panel.set_xlabel("log2 |x|")
        zeros = int(np.asarray(tensors[name]).size - magnitudes.size)
        panel.set_title(f"{name}: {magnitudes.size} nonzero finite values"
                        + (f", {zeros} zero or non-finite" if zeros else ""), fontsize=9)
    for panel in list(grid.axes.flat)[len(names):]:
        panel.set_visible(False)
    total = len(tensors)
    shown = (f"{total} tensors, all shown" if total > 1 else "1 tensor") if len(names) == total \
        else f"the first {len(names)} of {total} tensors (max_panels={max_panels})"
    footnote = ("Black: histogram of log2|x| over the finite nonzero values, scaled to its tallest bin.  "
                "Bands: each format's representable range, light from log2 of the smallest subnormal, dark "
                "from log2 of the smallest normal, both up to log2 max; configurable formats at the tensor's "
                "best bias (nearest_even where swept).")
    if scaled_specs:
        footnote += (f"  Scaled formats ({', '.join(scaled_specs[:4])}{', ...' if len(scaled_specs) > 4 else ''}) "
                     "are not shaded: their range moves with each block's scale.")
    if len(names) < total:
        footnote += f"  {total - len(names)} tensors are not drawn here (see the sweep's records)."
    return grid.finish(f"histogram of log2|x| and each format's representable range: {shown}", footnote=footnote)


def plot_log2_histogram(tensors, records, path, max_panels=MAX_PANELS):
    """Write a PNG of each tensor's log2|x| histogram with every format's range shaded.

    ``tensors``: dict name -> array; ``records``: the sweep's records, which give the formats
    and, for configurable formats, the best bias per tensor (nearest_even if swept, else the
    first rounding).  At most ``max_panels`` tensors are drawn (the first ones); the title
    says how many of how many.  Returns ``path``.
    """
    return save_figure(log2_histogram_figure(tensors, records, max_panels), path)


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


def mma_error_vs_k_figure(records):
    """The figure of :func:`plot_mma_error_vs_k` (a matplotlib Figure, not saved)."""
    from matplotlib.lines import Line2D

    records = list(records)
    distributions = list(dict.fromkeys(record.distribution for record in records))
    if not distributions:
        raise ValueError("records is empty: nothing to plot")
    models = list(dict.fromkeys(record.model for record in records))
    styles = {model: (f"C{index % 10}", _LINE_STYLES[(index // 10) % len(_LINE_STYLES)])
              for index, model in enumerate(models)}
    grid = PanelGrid(2, len(distributions), 5.2, 3.4)
    for column, distribution in enumerate(distributions):
        for row, (metric, label) in enumerate((("relative_error", "||D - AB||_F / ||AB||_F"),
                                               ("max_scaled_error", "max |D - AB| / (|A||B|)"))):
            panel = grid.axes[row][column]
            for model in models:
                colour, line_style = styles[model]
                points = sorted((record.k, getattr(record, metric)) for record in records
                                if record.model == model and record.distribution == distribution)
                ks = [k for k, value in points if math.isfinite(value) and value > 0]
                values = [value for _k, value in points if math.isfinite(value) and value > 0]
                panel.plot(ks, values, marker="o", markersize=3, color=colour, linestyle=line_style,
                           gid=f"{metric}|{distribution}|{model}")
            panel.set_xscale("log", base=2)
            panel.set_yscale("log")
            panel.set_xlabel("K (inner dimension)")
            panel.set_ylabel(label, fontsize=8)
            panel.set_title(f"{distribution} inputs", fontsize=9)
            panel.grid(True, alpha=0.3, which="both")
    handles = [Line2D([], [], color=styles[model][0], linestyle=styles[model][1], marker="o", markersize=3)
               for model in models]
    return grid.finish("emulated tensor-core matmul error against a float64 reference (an exact error 0 is not "
                       "drawn on the log axis)", [(handles, models, "model")])


def plot_mma_error_vs_k(records, path):
    """Write a PNG of matmul error against K (log-log), one column per input distribution:
    the normwise relative error on top, the largest componentwise scaled error below, one
    line per model.  Returns ``path``."""
    return save_figure(mma_error_vs_k_figure(records), path)
