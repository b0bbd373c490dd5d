"""Parsing of the lists users give the sweeps: formats, biases, rounding modes, MMA models.

Each parser takes what the Python API accepts (objects, lists) and the comma-separated
strings the command line passes, and raises a ValueError or TypeError that names the
argument, the bad value and what is allowed.
"""
from __future__ import annotations

import numbers
import re

from . import formats as _formats
from .formats import Format, ROUNDINGS, TESLA_BIAS_RANGE

__all__ = ["DEFAULT_FORMATS", "BIAS_CHOICES", "parse_formats", "parse_biases", "parse_roundings",
           "parse_mma_model", "split_model_list"]

DEFAULT_FORMATS = ("fp32", "fp16", "bf16", "cfloat8_1_4_3", "cfloat8_1_5_2")
BIAS_CHOICES = ("all", "auto")


def parse_formats(formats) -> list[Format]:
    """Formats from a Format, a name, a list of those, or a comma-separated string.

    In a string, an item with "=" but no ":" continues the previous format's options, so
    ``"fp16,cfloat8_1_4_3:bias=10,subnormals=tesla,bf16"`` is three formats.
    """
    if formats is None:
        formats = DEFAULT_FORMATS
    if isinstance(formats, (str, Format)):
        formats = [formats]
    if not isinstance(formats, (list, tuple)):
        raise TypeError(f"formats={formats!r} is not allowed: a format name, a Format, or a list of them")
    items = []
    for item in formats:
        if isinstance(item, str):
            for part in (piece.strip() for piece in item.split(",")):
                if not part:
                    continue
                if "=" in part and ":" not in part and items and isinstance(items[-1], str):
                    items[-1] += "," + part
                else:
                    items.append(part)
        elif isinstance(item, Format):
            items.append(item)
        else:
            raise TypeError(f"formats has {item!r} ({type(item).__name__}): each must be a format name "
                            "or a fmtlab.Format")
    if not items:
        raise ValueError(f"formats={formats!r} is empty; give at least one of {', '.join(_formats.preset_names())}")
    return [_formats.format(item) for item in items]


def parse_biases(biases):
    """None, "all", "auto", or a sorted tuple of distinct ints in 0..63.

    Accepts those, an int, an iterable of ints, or a string of comma-separated ints and
    ranges ("0,5,8-12").
    """
    allowed = (f'None, "all", "auto", or biases in {TESLA_BIAS_RANGE.start}..{TESLA_BIAS_RANGE.stop - 1} '
               'as a list or a string such as "0,5,8-12"')
    if biases is None:
        return None
    if isinstance(biases, str):
        text = biases.strip().lower()
        if text in BIAS_CHOICES:
            return text
        values = []
        for part in (piece.strip() for piece in text.split(",")):
            match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
            if not match:
                raise ValueError(f"biases={biases!r} is not allowed (bad item {part!r}); allowed: {allowed}")
            low = int(match.group(1))
            high = int(match.group(2)) if match.group(2) is not None else low
            if high < low:
                raise ValueError(f"biases={biases!r} has the empty range {part!r}; allowed: {allowed}")
            values.extend(range(low, high + 1))
        biases = values
    elif isinstance(biases, numbers.Integral) and not isinstance(biases, bool):
        biases = [biases]
    try:
        values = list(biases)
    except TypeError:
        raise TypeError(f"biases={biases!r} is not allowed; allowed: {allowed}") from None
    if not values:
        raise ValueError(f"biases={biases!r} is empty; allowed: {allowed}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value not in TESLA_BIAS_RANGE:
            raise ValueError(f"biases has the value {value!r}; allowed: {allowed}")
    return tuple(sorted({int(value) for value in values}))


def parse_roundings(roundings) -> tuple:
    """A tuple of rounding-mode names from a name, a list, or a comma-separated string."""
    if isinstance(roundings, str):
        roundings = [part.strip() for part in roundings.split(",") if part.strip()]
    try:
        values = list(roundings)
    except TypeError:
        raise TypeError(f"roundings={roundings!r} is not allowed: a list of {', '.join(ROUNDINGS)}") from None
    if not values:
        raise ValueError(f"roundings={roundings!r} is empty; choose from {', '.join(ROUNDINGS)}")
    for value in values:
        if value not in ROUNDINGS:
            raise ValueError(f"roundings has {value!r}, which is not a rounding mode; "
                             f"choose from {', '.join(ROUNDINGS)}")
    return tuple(dict.fromkeys(values))


def parse_mma_model(spec):
    """An MMA model from an ``MMAModel`` or a spec string.

    Specs: ``"GPU:INPUT"`` or ``"GPU:INPUT:OUT"`` (``fl.mma_model(GPU, INPUT, OUT)``, e.g.
    ``"h100:e4m3"``), a reference model (``"fp32_fma"``, ``"fp32_pairwise"``, ``"exact"``,
    optionally ``":INPUT"``), or a preset name (``"h100-e4m3-fp32"``); each optionally
    followed by ``:promote=N``, the FP8 promotion interval (0: none).
    """
    from . import mma

    if isinstance(spec, mma.MMAModel):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"models has {spec!r} ({type(spec).__name__}): each must be an MMAModel or a spec "
                        "string such as 'h100:e4m3'")
    parts = [part.strip() for part in spec.split(":") if part.strip()]
    options = {}
    while parts and "=" in parts[-1]:
        key, _, value = parts.pop().partition("=")
        options[key.strip()] = value.strip()
    if not parts or len(parts) > 3:
        raise ValueError(f"model {spec!r} is not allowed: write GPU:INPUT (e.g. h100:e4m3), GPU:INPUT:OUT, "
                         "a reference model (fp32_fma, fp32_pairwise, exact), optionally followed by :promote=N")
    model = mma.mma_model(*parts)
    for key, value in options.items():
        if key != "promote":
            raise ValueError(f"model option {key!r} in {spec!r} is unknown; allowed: promote")
        if not re.fullmatch(r"\d+", value):
            raise ValueError(f"promote={value!r} in {spec!r} is not allowed: a non-negative int (0: none)")
        model = model.replace(promote_every=int(value) or None, name=spec)
    return model


def split_model_list(text):
    """Split "h100:e4m3,h100:e4m3:promote=128,fp32_fma" into model specs."""
    items = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        if "=" in part and ":" not in part and items:
            items[-1] += ":" + part
        else:
            items.append(part)
    return items
