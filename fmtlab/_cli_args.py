"""argparse value types and list splitting shared by every ``fmtlab`` subcommand.

An argparse type raises ``argparse.ArgumentTypeError``; argparse then prints
"fmtlab CMD: error: argument --flag: <message>" and exits with status 2.
"""
from __future__ import annotations

import argparse

__all__ = ["positive_int", "non_negative_int", "positive_float", "split_list"]


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: a positive integer")
    return value


def non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: an integer >= 0")
    return value


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
