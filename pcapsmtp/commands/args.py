"""Argument types shared by the subcommands (one place for the messages a user sees)."""
from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["number", "port", "positive_int", "positive_seconds", "seconds", "score",
           "minutes_ns", "grace_ns"]


def number(kind: str, convert: Callable[[str], float] = float, *, low: float | None = None,
           high: float | None = None, low_open: bool = False) -> Callable[[str], float]:
    """An argparse type: ``convert(text)`` within [low, high] (``low_open``: > low)."""
    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {kind}: {text!r}") from None
        if low is not None and (value <= low if low_open else value < low):
            raise argparse.ArgumentTypeError(f"{kind} must be {'>' if low_open else '>='} "
                                             f"{low:g}: {text!r}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{kind} must be <= {high:g}: {text!r}")
        return value
    parse.__name__ = kind.replace(" ", "_")
    return parse


port = number("a TCP port", int, low=1, high=65535)
positive_int = number("a positive number", int, low=0, low_open=True)
positive_seconds = number("a number of seconds", low=0, low_open=True)
seconds = number("a number of seconds")
score = number("a score", low=0.0, high=1.0)
_minutes = number("a number of minutes", low=0)


def minutes_ns(text: str) -> int:
    """Minutes, as integer nanoseconds."""
    return int(_minutes(text) * 60 * 10**9)


def grace_ns(text: str) -> int | None:
    """Seconds as integer nanoseconds, or ``never`` (None)."""
    if text.strip().lower() == "never":
        return None
    return int(positive_seconds(text) * 10**9)
