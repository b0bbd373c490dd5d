"""Messages for a value that is not one of the allowed choices, with "did you mean".

One wording for the library and the command line: the argument is a Python name
(``rounding``) or a command-line flag (``--rounding``), and the message says the bad value,
what is allowed, and the nearest allowed value when one is close.
"""
from __future__ import annotations

import difflib

__all__ = ["did_you_mean", "not_allowed"]


def did_you_mean(value, choices) -> str:
    """" (did you mean 'x'?)" for the choice closest to ``value``, or "" when none is close."""
    if not isinstance(value, str):
        return ""
    lowered = {str(choice).lower(): str(choice) for choice in choices}
    close = difflib.get_close_matches(value.strip().lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


def not_allowed(argument: str, value, allowed: str, choices=()) -> str:
    """The message for ``argument`` given ``value``: "--flag VALUE" for flags, "name=VALUE" otherwise."""
    shown = f"{argument} {value}" if argument.startswith("-") else f"{argument}={value!r}"
    return f"{shown} is not allowed{did_you_mean(value, choices)}; allowed: {allowed}"
