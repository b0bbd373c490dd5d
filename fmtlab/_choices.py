"""Messages for a value that is not one of the allowed choices, with "did you mean".

One wording for the library and the command line: the argument is a Python name
(``rounding``) or a command-line flag (``--rounding``), and the message says the bad value,
what is allowed, and the nearest allowed value when one is close:

    >>> not_allowed("--rounding", "stochastc", "nearest_even, stochastic", ("nearest_even", "stochastic"))
    "--rounding stochastc is not allowed (did you mean 'stochastic'?); allowed: nearest_even, stochastic"
    >>> not_allowed("rounding", "stochastc", "nearest_even, stochastic", ("nearest_even", "stochastic"))
    "rounding='stochastc' is not allowed (did you mean 'stochastic'?); allowed: nearest_even, stochastic"

A flag shows the value as the user typed it (no quotes: that is how it was written on the
command line); a Python name shows its ``repr``.
"""
from __future__ import annotations

import difflib

__all__ = ["closest", "did_you_mean", "not_allowed", "is_flag"]


def is_flag(argument: str) -> bool:
    """Whether ``argument`` is a command-line flag ("--formats") rather than a Python name."""
    return argument.startswith("-")


def closest(value, choices, aliases=None):
    """The choice closest to ``value``, or None when none is close.

    Closeness is difflib's ratio (at least 0.6), compared case-insensitively; "-" and "_" count
    as the same character, so ``nearest-even`` finds ``nearest_even``.  ``aliases`` maps
    well-known abbreviations that no spelling distance finds (``rne``) to the choice they mean.
    """
    if not isinstance(value, str):
        return None
    wanted = value.strip().lower()
    if aliases and wanted in aliases:
        return aliases[wanted]

    def key(text):
        return text.lower().replace("-", "_")

    by_key = {}
    for choice in choices:
        by_key.setdefault(key(str(choice)), str(choice))
    close = difflib.get_close_matches(key(wanted), list(by_key), n=1, cutoff=0.6)
    return by_key[close[0]] if close else None


def did_you_mean(value, choices, aliases=None) -> str:
    """" (did you mean 'x'?)" for the choice closest to ``value`` (see :func:`closest`), or ""."""
    choice = closest(value, choices, aliases)
    return "" if choice is None else f" (did you mean {choice!r}?)"


def not_allowed(argument: str, value, allowed: str, choices=(), aliases=None) -> str:
    """The message for ``argument`` given ``value``: "--flag VALUE" for flags, "name=VALUE" otherwise.

    ``allowed`` says in words what is allowed; ``choices`` are the values "did you mean"
    looks among (and ``aliases`` the abbreviations it knows, see :func:`did_you_mean`).
    """
    if is_flag(argument):
        # As typed; an empty value is shown as '' so that the message shows there was none.
        shown = f"{argument} {value if str(value).strip() else repr(value)}"
    else:
        shown = f"{argument}={value!r}"
    return f"{shown} is not allowed{did_you_mean(value, choices, aliases)}; allowed: {allowed}"
