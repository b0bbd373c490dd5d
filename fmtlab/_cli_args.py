"""argparse value types and list splitting shared by every ``fmtlab`` subcommand.

An argparse type raises ``argparse.ArgumentTypeError``; argparse then prints
"fmtlab CMD: error: argument --flag: <message>" and exits with status 2.
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["positive_int", "non_negative_int", "positive_float", "split_list", "report_stop"]


def _integer_at_least(text, low: int, allowed: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: {allowed}")
    return value


def positive_int(text):
    return _integer_at_least(text, 1, "a positive integer")


def non_negative_int(text):
    return _integer_at_least(text, 0, "an integer >= 0")


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: a positive finite number")
    return value


def split_list(values):
    """Flatten repeated, comma-separated option values."""
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


def report_stop(command: str, stopped, kept: str) -> int:
    """One line for a run the pool stopped, and its exit status: 130 after Ctrl-C
    (``fmtlab._pool.Interrupted``), 1 after a dead worker (``WorkerDied``, whose message names
    it).  ``kept`` says what finished and where it was written."""
    from ._pool import Interrupted  # only here: the pool is not needed to parse arguments

    if isinstance(stopped, Interrupted):
        print(f"fmtlab {command}: interrupted: {kept}", file=sys.stderr)
        return 130
    print(f"fmtlab {command}: error: {stopped}; {kept}", file=sys.stderr)
    return 1
