"""How every ``python -m sim2sg_core...`` command ends a user error: one ``error:`` line, exit status 2."""
from __future__ import annotations

import argparse
import sys
from typing import Callable


def run_reporting_user_errors(command: Callable[[], object], user_errors: tuple) -> int:
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


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1] (thresholds)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is outside [0, 1]")
    return v


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (counts, steps, batch sizes)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return v


def non_negative_float(text: str) -> float:
    """argparse type: a number >= 0 (minutes, learning rates)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v >= 0.0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return v
