"""What every report page shares: the Jinja2 environment, inline SVG from matplotlib, JSON data.

* :func:`render_page` renders a template of ``fmtlab/report/templates`` with the shared style
  and script inlined and the provenance block at the top.
* :func:`svg_markup` turns a matplotlib Figure into SVG markup for inline use in HTML: text
  stays text (``svg.fonttype = none``: smaller, selectable), and everything that names a
  place outside the file is removed (the XML declaration, the DOCTYPE with its DTD address,
  the namespace declarations, which inline SVG in HTML does not need, and the metadata).
  It is made lean (:func:`lean_svg`): coordinates rounded to 0.1 pt (a tenth of a point is
  below a screen pixel at any usual zoom), path data without line breaks, and matplotlib's
  automatic element ids (``patch_12``, ``text_3``: nothing refers to them) dropped.
* :func:`packed` gzips and base64-encodes markup for the page to inflate in the browser with
  the built-in ``DecompressionStream`` API (the per-tensor details of a sweep: 500 of them
  stay a few MB).
* :func:`json_script` writes data for the page's script as JSON that cannot end its
  ``<script>`` element early (``<``, ``>`` and ``&`` escaped as ``\\u003c`` ...) and
  non-finite floats as the strings "inf", "-inf", "nan".
"""
from __future__ import annotations

import io
import json
import math
import re

import markupsafe

__all__ = ["render_page", "render_fragment", "provenance_view", "svg_markup", "lean_svg", "packed", "json_script", "finite_or_text",
           "sqnr_colour", "SQNR_COLOUR_MAP"]

SQNR_COLOUR_MAP = "viridis"
_ENVIRONMENT = None
_NAMESPACE = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')
# the geometry attributes whose numbers lean_svg rounds (never text content: tick labels stay as drawn)
_GEOMETRY = re.compile(r'\s(d|x|y|x1|x2|y1|y2|cx|cy|r|width|height|transform|viewBox|points)="([^"]*)"')
_NUMBER = re.compile(r"-?\d+\.\d+")
_AUTOMATIC_ID = re.compile(r'\sid="(?:figure|axes|patch|line2d|text|matplotlib\.axis|xtick|ytick|legend|'
                           r'PolyCollection|PathCollection|LineCollection|BrokenBarHCollection|QuadMesh)_\d+"')


def _environment():
    global _ENVIRONMENT
    if _ENVIRONMENT is None:
        import jinja2

        _ENVIRONMENT = jinja2.Environment(loader=jinja2.PackageLoader("fmtlab.report", "templates"),
                                          autoescape=jinja2.select_autoescape(("html", "j2")),
                                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return _ENVIRONMENT


def render_page(template: str, **context) -> str:
    """The page ``template`` rendered with ``context`` (``title`` and ``provenance`` expected;
    ``partial``: :func:`fmtlab.report.partial.partial_view`, None for a finished run)."""
    context.setdefault("partial", None)
    environment = _environment()
    assets = {name: markupsafe.Markup(environment.loader.get_source(environment, name)[0])
              for name in ("report.css", "report.js")}
    return environment.get_template(template).render(style=assets["report.css"], script=assets["report.js"],
                                                     **context)


def render_fragment(template: str, **context) -> markupsafe.Markup:
    """A piece of a page (no style, script or provenance): ``template`` rendered with ``context``."""
    return markupsafe.Markup(_environment().get_template(template).render(**context))


def provenance_view(provenance, *, inputs=None, settings=None, synthetic=None) -> dict:
    """The provenance block's fields (every key present, None where not recorded): the run's
    provenance.json, completed with ``inputs``, ``settings`` (a dict shown as key: value) and
    ``synthetic`` where it lacks them."""
    view = {key: None for key in ("command", "inputs", "synthetic", "settings", "fmtlab_version", "date", "machine")}
    view.update({key: value for key, value in (provenance or {}).items() if key in view})
    view["inputs"] = view["inputs"] or inputs or []
    view["synthetic"] = view["synthetic"] or synthetic
    view["settings"] = settings or view["settings"]
    return view


def svg_markup(figure, tight: bool = True) -> markupsafe.Markup:
    """``figure`` as inline SVG markup (see the module docstring).  ``tight``: the saved area
    grows to hold every title, label and legend (none is cut off), at the price of a second
    drawing; a figure laid out to fit (the per-tensor details) passes False."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "fmtlab"}):
        figure.savefig(buffer, format="svg", bbox_inches="tight" if tight else None, pad_inches=0.1,
                       metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    opening_end = text.index(">")
    opening = _NAMESPACE.sub("", text[:opening_end])
    text = opening + text[opening_end:]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    return markupsafe.Markup(lean_svg(text))


def _rounded(match) -> str:
    text = f"{float(match.group(0)):.1f}"
    return "0" if text in ("0.0", "-0.0") else text[:-2] if text.endswith(".0") else text


def _lean_attribute(match) -> str:
    value = _NUMBER.sub(_rounded, match.group(2))
    if match.group(1) == "d":  # "M 1.5 2 \nL 3 4 \nz\n" -> "M1.5 2L3 4z"
        value = re.sub(r"\s*([MLCQZz])\s*", r"\1", re.sub(r"\s+", " ", value)).strip()
    return f' {match.group(1)}="{value}"'


def lean_svg(text: str) -> str:
    """Matplotlib's SVG ``text`` with its geometry rounded to 0.1 pt, its path data on one line,
    its automatic ids dropped and the indentation between elements removed (see the module
    docstring); what it draws does not change beyond the rounding."""
    text = _AUTOMATIC_ID.sub("", text)
    text = _GEOMETRY.sub(_lean_attribute, text)
    return re.sub(r">\s+<", "><", text)


def packed(markup: str) -> str:
    """``markup`` as base64 of its gzip-compressed UTF-8 (the page inflates it with
    ``DecompressionStream("gzip")``); ``mtime=0``, so the same markup packs to the same text."""
    import base64
    import gzip

    return base64.b64encode(gzip.compress(str(markup).encode("utf-8"), compresslevel=9, mtime=0)).decode("ascii")


def finite_or_text(value):
    """``value`` for JSON: a finite float rounded to 4 significant decimals' worth, non-finite as text."""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return float(f"{value:.6g}")
    return value


def json_script(data) -> markupsafe.Markup:
    """``data`` as JSON safe inside ``<script type="application/json">``."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return markupsafe.Markup(text)


def sqnr_colour(value: float, low: float, high: float) -> str:
    """The heatmap colour of an SQNR of ``value`` dB on a scale from ``low`` to ``high`` dB
    (viridis in 256 steps; clamped at both ends): ``#rrggbb``.  +inf (exact) is white, NaN grey."""
    if math.isnan(value):
        return "#9e9e9e"
    if value == math.inf:
        return "#ffffff"
    position = 0.0 if high <= low else min(1.0, max(0.0, (value - low) / (high - low)))
    return _colour_table()[int(round(position * 255))]


_COLOURS = []


def _colour_table() -> list:
    if not _COLOURS:
        import matplotlib

        colour_map = matplotlib.colormaps[SQNR_COLOUR_MAP]
        _COLOURS.extend(matplotlib.colors.to_hex(colour_map(index / 255)) for index in range(256))
    return _COLOURS
