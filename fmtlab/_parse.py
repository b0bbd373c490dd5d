"""Parsing of the lists users give the sweeps: formats, biases, rounding modes, block sizes,
scale rules, MMA models.

Each parser takes what the Python API accepts (objects, lists) and the comma-separated
strings the command line passes, and raises a ValueError or TypeError that names the
argument, the bad value and what is allowed.

``argument`` says in whose terms: a Python name (the default, e.g. ``"biases"``) gives the
library's messages (``biases has the value 70; allowed: None, "all", ...``); a command-line
flag (``"--bias"``) gives the message in command-line terms: the flag, the bad item as
typed, what may be typed instead, and "did you mean" for a near miss
(``--bias 70 is not allowed; allowed: all, auto, or biases 0..63 as a list such as 5,7,10-14``).
"""
from __future__ import annotations

import numbers
import re

from . import formats as _formats
from . import integers as _integers
from . import scaled as _scaled
from ._choices import closest, did_you_mean, is_flag, not_allowed
from .formats import Format, ROUNDINGS, SUBNORMALS, TESLA_BIAS_RANGE
from .scaled import RULES, ScaledFormat

__all__ = ["DEFAULT_FORMATS", "BIAS_CHOICES", "ROUNDING_ABBREVIATIONS", "parse_formats", "parse_cli_format",
           "parse_biases", "parse_roundings", "parse_blocks", "parse_rules", "block_text", "parse_mma_model",
           "split_model_list"]

DEFAULT_FORMATS = ("fp32", "fp16", "bf16", "cfloat8_1_4_3", "cfloat8_1_5_2")
BIAS_CHOICES = ("all", "auto")
# The usual abbreviations of the rounding modes, offered as "did you mean" on the command line
# (no spelling distance leads from "rne" to "nearest_even").
ROUNDING_ABBREVIATIONS = {"rne": "nearest_even", "rn": "nearest_even", "rna": "nearest_away",
                          "rtz": "toward_zero", "rz": "toward_zero", "ru": "up", "rd": "down",
                          "ro": "odd", "sr": "stochastic"}
_FORMAT_OPTIONS = ("bias", "subnormals")


def _flag_message(argument, shown, suggestion, allowed, *, unknown=False) -> str:
    """A command-line message: "--flag ITEM is not allowed (did you mean 'x'?); allowed: ...".

    ``argument`` not a flag: a positional argument named in words ("format"), written
    "format 'fp17' is unknown ..." (or "is not allowed" for a known name with bad options).
    """
    if is_flag(argument):
        shown = shown if shown.strip() else repr(shown)
        return f"{argument} {shown} is not allowed{suggestion}; allowed: {allowed}"
    return f"{argument} {shown!r} is {'unknown' if unknown else 'not allowed'}{suggestion}; allowed: {allowed}"


def _suggest(part, choices, build) -> str:
    """" (did you mean 'X'?)" with X = ``build(choice)`` for the choice nearest ``part``, or ""."""
    choice = closest(part, choices)
    return "" if choice is None else f" (did you mean {build(choice)!r}?)"


# ---- formats ---------------------------------------------------------------------------------------

def _configurable_presets() -> list[str]:
    return [name for name in _formats.preset_names() if _formats.is_configurable(_formats.format(name))]


def _cli_formats_allowed() -> str:
    return (f"{', '.join(_formats.preset_names())}, or NAME:bias=B,subnormals=S "
            f"({', '.join(_configurable_presets())})")


def _format_problem(spec: str, argument: str, scaled: bool = False) -> str:
    """Why ``fl.format(spec)`` refused ``spec``, in command-line syntax (see parse_cli_format).

    ``scaled``: scaled formats are allowed too, so a name or option nearer a scaled one is
    suggested as that (``mxfp8_e4m`` -> ``mxfp8_e4m3``, ``cfloat8_1_4_3:blok=32`` -> ``block=32``).
    """
    name, items, with_name, with_item = _spec_parts(spec)
    if _integers.is_integer_name(name):
        try:
            _formats.format(spec)
        except (ValueError, TypeError) as error:
            return _flag_message(argument, spec, "", f"intN (2..24 bits) or uintN (1..24), options symmetric=true "
                                                     f"and step_exponent=S ({error})")

    try:
        preset = _formats.format(name)
    except (ValueError, TypeError):
        suggestion = _suggest(name, _formats.preset_names(), with_name)
        if scaled and not suggestion:
            suggestion = _suggest(name, _scaled.preset_names(), with_name)
            if suggestion:
                return _flag_message(argument, spec, suggestion,
                                     f"{_cli_formats_allowed()}, or {_cli_scaled_allowed()}", unknown=True)
        return _flag_message(argument, spec, suggestion, _cli_formats_allowed(), unknown=True)
    configurable = ", ".join(_configurable_presets())
    tesla_biases = f"{TESLA_BIAS_RANGE.start}..{TESLA_BIAS_RANGE.stop - 1}"
    seen = set()
    for index, item in enumerate(items):
        key, equals, value = (text.strip() for text in item.partition("="))
        if not equals or key not in _FORMAT_OPTIONS:
            suggestion = (_suggest(key, _FORMAT_OPTIONS, lambda choice: with_item(index, f"{choice}={value}"))
                          if equals else "")
            if scaled and equals and not suggestion:
                suggestion = _suggest(key, _SCALED_OPTIONS, lambda choice: with_item(index, f"{choice}={value}"))
                if suggestion:
                    return _flag_message(argument, spec, suggestion, _cli_scaled_allowed())
            return _flag_message(argument, spec, suggestion,
                                 f"{preset.name}:bias=B,subnormals=S, each option written KEY=VALUE")
        if key in seen:
            return _flag_message(argument, spec, "", "each of bias=B, subnormals=S at most once")
        seen.add(key)
        if key == "bias":
            if _formats.is_configurable(preset):
                allowed = _formats.bias_range(preset)
                if not re.fullmatch(r"[+-]?\d+", value) or int(value) not in allowed:
                    return _flag_message(argument, spec, "",
                                         f"bias={allowed.start}..{allowed.stop - 1} for {preset.name}")
            elif not re.fullmatch(r"[+-]?\d+", value) or int(value) != preset.bias:
                return _flag_message(argument, spec, "", f"{preset.name} has the fixed bias {preset.bias}; "
                                     f"bias=B ({tesla_biases}) only for {configurable}")
        else:
            choices = []
            for subnormals in SUBNORMALS:
                try:
                    _formats.format(preset.name, subnormals=subnormals)
                except ValueError:
                    continue
                choices.append(subnormals)
            if value not in choices:
                if len(choices) > 1:
                    suggestion = _suggest(value, choices, lambda choice: with_item(index, f"subnormals={choice}"))
                    return _flag_message(argument, spec, suggestion,
                                         f"subnormals={' or '.join(choices)} for {preset.name}")
                return _flag_message(argument, spec, "", f"{preset.name} has subnormals={choices[0]} only; "
                                     f"subnormals=ieee or tesla only for {configurable}")
    return _flag_message(argument, spec, "", _cli_formats_allowed())



# The options that make a format name a scaled format (fmtlab.scaled's string form).
_SCALED_OPTIONS = ("block", "rule", "scale", "tensor_scale", "axis")


def _cli_scaled_allowed() -> str:
    return (f"a scaled preset ({', '.join(_scaled.preset_names())}) or an element format, with the options "
            f"block=K|RxC|channel|tensor, rule={'|'.join(RULES)}, scale=FORMAT (e8m0, e4m3fn, fp32, ...), "
            "tensor_scale=FORMAT|none, axis=A")


def _scale_format_ok(value: str, allow_none: bool) -> bool:
    if allow_none and value.lower() == "none":
        return True
    try:
        return isinstance(_scaled.any_format(value) if value.lower() == "e8m0" else _formats.format(value), Format)
    except (ValueError, TypeError):
        return False


def _spec_parts(spec: str):
    """(name, option items, with_name, with_item) of ``"NAME:opt=v,..."``: the spec cut at its
    first colon, and two builders of the spec with its name, or one of its items, replaced (for
    "did you mean" suggestions of the whole corrected spec)."""
    name, colon, options = spec.strip().partition(":")
    name = name.strip()
    items = [piece.strip() for piece in options.split(",") if piece.strip()]

    def with_name(choice):
        return choice + colon + options

    def with_item(index, item):
        return f"{name}:" + ",".join(items[:index] + [item] + items[index + 1:])

    return name, items, with_name, with_item


def _scaled_format_problem(spec: str, argument: str, error: Exception) -> str:
    """Why ``fl.format(spec)`` refused the scaled format ``spec``, in command-line syntax:
    the first bad name or option (with "did you mean"), else the library's reason for refusing
    the combination (``nvfp4:rule=floor``: its tensor scale needs rule=amax)."""
    name, items, with_name, with_item = _spec_parts(spec)

    if not _scaled.is_scaled_name(name):  # not a preset: then an element format
        try:
            _formats.format(name)
        except (ValueError, TypeError):
            choices = list(_scaled.preset_names()) + list(_formats.preset_names())
            return _flag_message(argument, spec, _suggest(name, choices, with_name), _cli_scaled_allowed(),
                                 unknown=True)
    keys = _SCALED_OPTIONS + _FORMAT_OPTIONS
    seen = set()
    for index, item in enumerate(items):
        key, equals, value = (text.strip() for text in item.partition("="))
        if not equals or key not in keys:
            suggestion = _suggest(key, keys, lambda choice: with_item(index, f"{choice}={value}")) if equals else ""
            return _flag_message(argument, spec, suggestion,
                                 f"options written KEY=VALUE, each of {', '.join(keys)} at most once")
        if key in seen:
            return _flag_message(argument, spec, "", f"each of {', '.join(keys)} at most once")
        seen.add(key)
        def with_value(choice, index=index, key=key):
            return with_item(index, f"{key}={choice}")

        if key == "rule" and value not in RULES:
            return _flag_message(argument, spec, _suggest(value, RULES, with_value), f"rule={', '.join(RULES)}")
        if key == "block" and _block_item(value) is None:
            return _flag_message(argument, spec, _suggest(value, _scaled.BLOCK_WORDS, with_value),
                                 "block=K (a positive int), RxC (a tile such as 16x16), channel or tensor")
        if key in ("scale", "tensor_scale") and not _scale_format_ok(value, key == "tensor_scale"):
            choices = ["e8m0"] + list(_formats.preset_names()) + (["none"] if key == "tensor_scale" else [])
            return _flag_message(argument, spec, _suggest(value, choices, with_value),
                                 f"{key}=e8m0 or an element format (e4m3fn, fp32, bf16, ...)"
                                 + (", or none" if key == "tensor_scale" else ""))
        if key == "axis" and not re.fullmatch(r"[+-]?\d+", value):
            return _flag_message(argument, spec, "", "axis=A with A an int such as -1 (the last axis) or 0")
    # Every part is well formed: the combination is what the library refused.
    reason = str(error)
    shown = spec if is_flag(argument) else repr(spec)
    return f"{argument} {shown} is not allowed: {reason}"


def parse_cli_format(spec: str, argument: str = "format", *, scaled: bool = False):
    """One format from command-line text ``NAME[:bias=B,subnormals=S]``, as ``fl.format`` reads it.

    ``fl.format`` decides what is valid; when it refuses, the ValueError says so in command-line
    terms: ``argument`` is the flag ("--formats": "--formats fp17 is not allowed (did you mean
    'fp16'?); allowed: ...") or the name of a positional argument ("format": "format 'fp17' is
    unknown (did you mean 'fp16'?); allowed: ...").  ``scaled=True`` also accepts the scaled
    formats (``mxfp8_e4m3``, ``nvfp4:block=32``, ``e4m3fn:block=64,scale=e8m0``) and returns a
    ScaledFormat for them; otherwise only element formats (a Format).
    """
    if not isinstance(spec, str):
        raise TypeError(f"{argument} must be a str, got {spec!r} ({type(spec).__name__})")
    if scaled and _scaled.is_scaled_name(spec):
        try:
            return _scaled.scaled_format(spec)
        except (ValueError, TypeError) as error:
            raise ValueError(_scaled_format_problem(spec, argument, error)) from None
    try:
        return _formats.format(spec)
    except (ValueError, TypeError):
        pass
    raise ValueError(_format_problem(spec, argument, scaled))


def parse_formats(formats, argument: str = "formats") -> list:
    """Formats from a Format, a ScaledFormat, a name, a list of those, or a comma-separated string.

    Names are read by ``fl.format``: element formats give a Format, scaled ones (``"mxfp8_e4m3"``,
    ``"nvfp4:block=32"``, ``"e4m3fn:block=64,scale=e8m0"``) a ScaledFormat.  In a string, an item
    with "=" but no ":" continues the previous format's options, so
    ``"fp16,cfloat8_1_4_3:bias=10,subnormals=tesla,bf16"`` is three formats.  ``argument``
    names the argument in messages (a flag such as "--formats": command-line terms).
    """
    if formats is None:
        formats = DEFAULT_FORMATS
    if isinstance(formats, (str, Format, ScaledFormat)):
        formats = [formats]
    if not isinstance(formats, (list, tuple)):
        raise TypeError(f"{argument}={formats!r} is not allowed: a format name, a Format, a ScaledFormat, "
                        "or a list of them")
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
        elif isinstance(item, (Format, ScaledFormat)):
            items.append(item)
        else:
            raise TypeError(f"{argument} has {item!r} ({type(item).__name__}): each must be a format name, "
                            "a fmtlab.Format or a fmtlab.ScaledFormat")
    if is_flag(argument):
        if not items:
            raise ValueError(_flag_message(argument, ",".join(formats), "", _cli_formats_allowed()))
        return [item if isinstance(item, (Format, ScaledFormat)) else parse_cli_format(item, argument, scaled=True)
                for item in items]
    if not items:
        raise ValueError(f"{argument}={formats!r} is empty; give at least one of "
                         f"{', '.join(_formats.preset_names())} or of the scaled {', '.join(_scaled.preset_names())}")
    return [_scaled.any_format(item) for item in items]


# ---- block sizes and scale rules -------------------------------------------------------------------

def _block_item(text: str):
    """A block from its text: K (a positive int), RxC (a tile), 'channel' or 'tensor'; None if it is none."""
    word = text.strip().lower()
    if word in _scaled.BLOCK_WORDS:
        return word
    match = re.fullmatch(r"(\d+)\s*[x*]\s*(\d+)", word)
    if match:
        rows, columns = int(match.group(1)), int(match.group(2))
        return (rows, columns) if rows >= 1 and columns >= 1 else None
    if re.fullmatch(r"\+?\d+", word) and int(word) >= 1:
        return int(word)
    return None


def block_text(block) -> str:
    """A block as the command line and the records write it: ``32``, ``16x16``, ``channel``, ``tensor``."""
    return f"{block[0]}x{block[1]}" if isinstance(block, tuple) else str(block)


def parse_blocks(blocks, argument: str = "blocks"):
    """None, or a tuple of distinct blocks in the order given, each a positive int K (1-D blocks
    of K), a pair (R, C) (R x C tiles), ``"channel"`` or ``"tensor"``.

    Accepts None, an int, a string of comma-separated items (``"16,32,16x16,channel"``), or a
    list of ints, (R, C) pairs and such strings (a tile inside a list: ``[16, 32, (16, 16)]``).
    ``argument`` names the argument in messages (a flag such as "--block": command-line terms,
    the bad item as typed).
    """
    flag = is_flag(argument)
    if flag:
        allowed = "block sizes as a list such as 16,32,128, tiles such as 16x16, channel or tensor"
    else:
        allowed = ('None, or a list of blocks: positive ints (1-D blocks), (rows, columns) pairs or "RxC" '
                   'strings (tiles), "channel", "tensor"')

    def refuse(item):
        if flag:
            shown = str(item)
            return ValueError(_flag_message(argument, shown, did_you_mean(shown, _scaled.BLOCK_WORDS), allowed))
        return ValueError(f"{argument} has the value {item!r}; allowed: {allowed}")

    if blocks is None:
        return None
    if isinstance(blocks, str):
        values = [piece.strip() for piece in blocks.split(",")]
    elif isinstance(blocks, numbers.Integral) and not isinstance(blocks, bool):
        values = [blocks]
    else:
        try:
            values = list(blocks)
        except TypeError:
            raise TypeError(f"{argument}={blocks!r} is not allowed; allowed: {allowed}") from None
    if not values:
        raise refuse("") if flag else ValueError(f"{argument}={blocks!r} is empty; allowed: {allowed}")
    parsed = []
    for value in values:
        if isinstance(value, str):
            block = _block_item(value)
        elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
            block = int(value) if value >= 1 else None
        elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
                isinstance(side, numbers.Integral) and not isinstance(side, bool) and side >= 1 for side in value):
            block = (int(value[0]), int(value[1]))
        else:
            block = None
        if block is None:
            raise refuse(value)
        parsed.append(block)
    return tuple(dict.fromkeys(parsed))


def parse_rules(rules, argument: str = "rules"):
    """None, or a tuple of distinct scale rules (``fl.ScaledFormat``'s: floor, ceil, even, rceil,
    amax) in the order given, from a name, a list or a comma-separated string.  ``argument``
    names the argument in messages (a flag such as "--rule": command-line terms)."""
    if rules is None:
        return None
    flag = is_flag(argument)
    if isinstance(rules, str):
        rules = [part.strip() for part in rules.split(",")]
    try:
        values = list(rules)
    except TypeError:
        raise TypeError(f"{argument}={rules!r} is not allowed: a list of {', '.join(RULES)}") from None
    if not values:
        raise ValueError(f"{argument}={rules!r} is empty; choose from {', '.join(RULES)}")
    for value in values:
        if not isinstance(value, str) or value.strip().lower() not in RULES:
            if flag:
                raise ValueError(not_allowed(argument, value, f"{', '.join(RULES)} (comma-separated)", RULES))
            raise ValueError(f"{argument} has {value!r}, which is not a scale rule; choose from {', '.join(RULES)}")
    return tuple(dict.fromkeys(value.strip().lower() for value in values))


# ---- biases ----------------------------------------------------------------------------------------

def parse_biases(biases, argument: str = "biases"):
    """None, "all", "auto", or a sorted tuple of distinct ints in 0..63.

    Accepts those, an int, an iterable of ints, or a string of comma-separated ints and
    ranges ("0,5,8-12").  ``argument`` names the argument in messages (a flag such as
    "--bias": command-line terms, the bad item as typed).
    """
    low_bias, high_bias = TESLA_BIAS_RANGE.start, TESLA_BIAS_RANGE.stop - 1
    flag = is_flag(argument)
    if flag:
        allowed = f"all, auto, or biases {low_bias}..{high_bias} as a list such as 5,7,10-14"
    else:
        allowed = (f'None, "all", "auto", or biases in {low_bias}..{high_bias} '
                   'as a list or a string such as "0,5,8-12"')

    def refuse(item, reason="", choices=()):
        if flag:
            suggestion = did_you_mean(item, choices) or (f" ({reason})" if reason else "")
            return ValueError(_flag_message(argument, item, suggestion, allowed))
        return ValueError(f"{argument}={biases!r} {reason}; allowed: {allowed}")

    if biases is None:
        return None
    if isinstance(biases, str):
        text = biases.strip().lower()
        if text in BIAS_CHOICES:
            return text
        parts = [piece.strip() for piece in text.split(",")]
        values = []
        for part in parts:
            match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
            if not match:
                if flag:
                    raise refuse(part, choices=BIAS_CHOICES if len(parts) == 1 else ())
                raise refuse(part, f"is not allowed (bad item {part!r})")
            low = int(match.group(1))
            high = int(match.group(2)) if match.group(2) is not None else low
            if high < low:
                raise refuse(part, "an empty range" if flag else f"has the empty range {part!r}")
            if flag and not (low_bias <= low and high <= high_bias):
                raise refuse(part)
            values.extend(range(low, high + 1))
        biases = values
    elif isinstance(biases, numbers.Integral) and not isinstance(biases, bool):
        biases = [biases]
    try:
        values = list(biases)
    except TypeError:
        raise TypeError(f"{argument}={biases!r} is not allowed; allowed: {allowed}") from None
    if not values:
        raise refuse("", "is empty")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value not in TESLA_BIAS_RANGE:
            if flag:
                raise refuse(str(value))
            raise ValueError(f"{argument} has the value {value!r}; allowed: {allowed}")
    return tuple(sorted({int(value) for value in values}))


# ---- rounding modes --------------------------------------------------------------------------------

def parse_roundings(roundings, argument: str = "roundings") -> tuple:
    """A tuple of rounding-mode names from a name, a list, or a comma-separated string.

    ``argument`` names the argument in messages (a flag such as "--rounding": command-line
    terms, "did you mean" for near misses and the usual abbreviations such as rne).
    """
    flag = is_flag(argument)
    if isinstance(roundings, str):
        roundings = [part.strip() for part in roundings.split(",") if part.strip()]
    try:
        values = list(roundings)
    except TypeError:
        raise TypeError(f"{argument}={roundings!r} is not allowed: a list of {', '.join(ROUNDINGS)}") from None
    if not values:
        if flag:
            raise ValueError(_flag_message(argument, "", "", ", ".join(ROUNDINGS)))
        raise ValueError(f"{argument}={roundings!r} is empty; choose from {', '.join(ROUNDINGS)}")
    for value in values:
        if value not in ROUNDINGS:
            if flag:
                raise ValueError(not_allowed(argument, value, f"{', '.join(ROUNDINGS)} (comma-separated)",
                                             ROUNDINGS, ROUNDING_ABBREVIATIONS))
            raise ValueError(f"{argument} has {value!r}, which is not a rounding mode; "
                             f"choose from {', '.join(ROUNDINGS)}")
    return tuple(dict.fromkeys(values))


# ---- MMA models ------------------------------------------------------------------------------------

_MODEL_SYNTAX = "GPU:INPUT[:OUT][:promote=N]"


def _preset_table():
    """({gpu: {input: [outs]}}, [reference model names], [preset names]), read from the names of
    the presets ``fl.mma_models()`` lists.

    GPU presets are named "gpu-input-out"; reference models have names without a "-" (their
    variants, such as "exact-fp32-fp16", start with one of those names).
    """
    from .mma import mma_models

    names = [model.name for model in mma_models()]
    references = [name for name in names if "-" not in name]
    gpus = {}
    for name in names:
        parts = name.split("-")
        if len(parts) == 3 and parts[0] not in references:
            gpus.setdefault(parts[0], {}).setdefault(parts[1], []).append(parts[2])
    return gpus, references, names


def _model_problem(spec, parts, options, argument) -> str:
    """Why ``parts`` (the spec without its options) names no MMA model, in command-line syntax."""
    gpus, references, presets = _preset_table()
    every = f"{_MODEL_SYNTAX} with GPU one of {', '.join(gpus)}, or {', '.join(references)}[:INPUT]"

    def with_part(index):
        return lambda choice: ":".join(parts[:index] + [choice] + parts[index + 1:]
                                       + [f"{key}={value}" for key, value in options.items()])

    if not parts or len(parts) > 3:
        return _flag_message(argument, spec, "", every)
    gpu = parts[0].lower()
    if gpu in references:
        outs = "fp32 or fp16" if gpu == "exact" else "fp32"
        return _flag_message(argument, spec, "", f"{gpu}[:INPUT[:OUT]] with INPUT a format exact in float32 "
                             f"(e.g. fp32, bf16, e4m3fn) and OUT {outs}")
    if gpu not in gpus:
        # A one-part spec may be a misspelt preset name ("h100-e4m3fn-fp3").
        choices = list(gpus) + references + (presets if len(parts) == 1 else [])
        return _flag_message(argument, spec, _suggest(parts[0], choices, with_part(0)), every)
    inputs = gpus[gpu]
    if len(parts) == 1 or parts[1].lower() not in inputs:
        suggestion = _suggest(parts[1], inputs, with_part(1)) if len(parts) > 1 else ""
        return _flag_message(argument, spec, suggestion, f"{gpu}:INPUT with INPUT one of {', '.join(inputs)}")
    outs = inputs[parts[1].lower()]
    fp16_inputs = ", ".join(name for name, out in inputs.items() if "fp16" in out)
    note = "" if len(outs) > 1 else f" (on {gpu}, fp16 output only for {fp16_inputs} inputs)"
    return _flag_message(argument, spec, _suggest(parts[2], outs, with_part(2)) if len(parts) == 3 else "",
                         f"{gpu}:{parts[1].lower()}:OUT with OUT {' or '.join(outs)}{note}")


def parse_mma_model(spec, argument: str = "models"):
    """An MMA model from an ``MMAModel`` or a spec string.

    Specs: ``"GPU:INPUT"`` or ``"GPU:INPUT:OUT"`` (``fl.mma_model(GPU, INPUT, OUT)``, e.g.
    ``"h100:e4m3fn"``), a reference model (``"fp32_fma"``, ``"fp32_pairwise"``, ``"exact"``,
    optionally ``":INPUT"``), or a preset name (``"h100-e4m3fn-fp32"``); each optionally
    followed by ``:promote=N``, the FP8 promotion interval (0: none).  ``argument`` names the
    argument in messages (a flag such as "--models": command-line terms).
    """
    from . import mma

    flag = is_flag(argument)
    if isinstance(spec, mma.MMAModel):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"{argument} has {spec!r} ({type(spec).__name__}): each must be an MMAModel or a spec "
                        "string such as 'h100:e4m3fn'")
    parts = [part.strip() for part in spec.split(":") if part.strip()]
    options = {}  # in reverse order of the text: read from the end
    while parts and "=" in parts[-1]:
        key, _, value = parts.pop().partition("=")
        options[key.strip()] = value.strip()
    if flag:
        try:
            model = mma.mma_model(*parts) if 1 <= len(parts) <= 3 else None
        except (ValueError, TypeError):
            model = None
        if model is None:
            raise ValueError(_model_problem(spec, parts, options, argument))
    else:
        if not parts or len(parts) > 3:
            raise ValueError(f"model {spec!r} is not allowed: write GPU:INPUT (e.g. h100:e4m3fn), GPU:INPUT:OUT, "
                             "a reference model (fp32_fma, fp32_pairwise, exact), optionally followed by "
                             ":promote=N")
        model = mma.mma_model(*parts)
    for key, value in options.items():
        if key != "promote":
            if flag:
                def build(choice, bad=key):
                    return ":".join(parts + [f"{choice if name == bad else name}={text}"
                                             for name, text in reversed(options.items())])
                raise ValueError(_flag_message(argument, spec, _suggest(key, ("promote",), build),
                                               f"{_MODEL_SYNTAX}: the one option is promote=N"))
            raise ValueError(f"model option {key!r} in {spec!r} is unknown; allowed: promote")
        if not re.fullmatch(r"\d+", value):
            if flag:
                raise ValueError(_flag_message(argument, spec, "", "promote=N with N an integer >= 0 (0: none)"))
            raise ValueError(f"promote={value!r} in {spec!r} is not allowed: a non-negative int (0: none)")
        try:
            model = model.replace(promote_every=int(value) or None, name=spec)
        except ValueError:
            if not flag:
                raise
            if model.summation == "pairwise":
                allowed = f"promote=0 only: {model.name} sums pairwise in float32, it has no blocks to promote"
            else:
                # Say only the conditions this N breaks.
                needs = []
                if model.block and int(value) % model.block:
                    needs.append(f"N a multiple of the block ({model.block})")
                if model.out_format != _formats.FP32:
                    needs.append(f"FP32 output (this model's is {model.out_format})")
                allowed = f"promote=N with {' and '.join(needs) or 'N at most 2**30'}, or promote=0 (none)"
            raise ValueError(_flag_message(argument, spec, "", allowed)) from None
    return model


def split_model_list(text):
    """Split "h100:e4m3fn,h100:e4m3fn:promote=128,fp32_fma" into model specs."""
    items = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        if "=" in part and ":" not in part and items:
            items[-1] += ":" + part
        else:
            items.append(part)
    return items
