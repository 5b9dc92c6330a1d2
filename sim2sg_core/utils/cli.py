"""How every ``python -m sim2sg_core...`` command ends a user error: one ``error:`` line, exit status 2."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional


def run_reporting_user_errors(command: Callable[[], Optional[int]], user_errors: tuple) -> int:
    """Run ``command``; a user error (one of ``user_errors``, or ``SystemExit("message")`` from a check in
    the command) becomes ``error: <message>`` on stderr and status 2. Other exceptions are bugs and keep
    their traceback; ``SystemExit(int)`` (argparse, ``--help``) passes through."""
    try:
        return int(command() or 0)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            raise
        msg = str(e.code)
        print(msg if msg.startswith("error:") else f"error: {msg}", file=sys.stderr)
        return 2
    except user_errors as e:
        print(f"error: {str(e) or type(e).__name__}", file=sys.stderr)
        return 2


def _checked(convert, kind: str, ok, problem: str, name: str, doc: str):
    """An argparse type: ``convert`` the text (else "is not <kind>"), then require ``ok`` (else ``problem``)."""

    def parse(text: str):
        try:
            v = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"{text} {problem}")
        return v

    parse.__name__, parse.__doc__ = name, doc
    return parse


fraction = _checked(
    float,
    "a number",
    lambda v: 0.0 <= v <= 1.0,
    "is outside [0, 1]",
    "fraction",
    "argparse type: a number in [0, 1] (thresholds).",
)
positive_int = _checked(
    int,
    "an integer",
    lambda v: v >= 1,
    "must be at least 1",
    "positive_int",
    "argparse type: an integer >= 1 (counts, steps, batch sizes).",
)
non_negative_float = _checked(
    float,
    "a number",
    lambda v: v >= 0.0,
    "must be >= 0",
    "non_negative_float",
    "argparse type: a number >= 0 (minutes, learning rates).",
)
