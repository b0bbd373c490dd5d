"""What every report page shares: the Jinja2 environment, inline SVG from matplotlib, JSON data.

* :func:`render_page` renders a template of ``fmtlab/report/templates`` with the shared style
  and script inlined and the provenance block at the top.
* :func:`svg_markup` turns a matplotlib Figure into SVG markup for inline use in HTML: text
  stays text (``svg.fonttype = none``: smaller, selectable), and everything that names a
  place outside the file is removed (the XML declaration, the DOCTYPE with its DTD address,
  the namespace declarations, which inline SVG in HTML does not need, and the metadata).
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

__all__ = ["render_page", "provenance_view", "svg_markup", "json_script", "finite_or_text", "sqnr_colour", "SQNR_COLOUR_MAP"]

SQNR_COLOUR_MAP = "viridis"
_ENVIRONMENT = None
_NAMESPACE = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')


def _environment():
    global _ENVIRONMENT
    if _ENVIRONMENT is None:
        import jinja2

        _ENVIRONMENT = jinja2.Environment(loader=jinja2.PackageLoader("fmtlab.report", "templates"),
                                          autoescape=jinja2.select_autoescape(("html", "j2")),
                                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return _ENVIRONMENT


def render_page(template: str, **context) -> str:
    """The page ``template`` rendered with ``context`` (``title`` and ``provenance`` expected)."""
    environment = _environment()
    assets = {name: markupsafe.Markup(environment.loader.get_source(environment, name)[0])
              for name in ("report.css", "report.js")}
    return environment.get_template(template).render(style=assets["report.css"], script=assets["report.js"],
                                                     **context)


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


def svg_markup(figure) -> markupsafe.Markup:
    """``figure`` as inline SVG markup (see the module docstring)."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "fmtlab"}):
        # bbox_inches="tight": the saved area grows to hold every title, label and legend (none is cut off).
        figure.savefig(buffer, format="svg", bbox_inches="tight", pad_inches=0.1,
                       metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    opening_end = text.index(">")
    opening = _NAMESPACE.sub("", text[:opening_end])
    text = opening + text[opening_end:]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    return markupsafe.Markup(text)


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
