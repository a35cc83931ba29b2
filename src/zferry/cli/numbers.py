"""Argument types for number options: each checks its range, so a bad value is a usage error at parse time."""

from __future__ import annotations

import argparse
import math
from typing import Callable, Optional


def whole_number(minimum: int, maximum: Optional[int] = None) -> Callable[[str], int]:
    """An argparse `type` accepting integers from `minimum` to `maximum` (inclusive)."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" to {maximum}" if maximum is not None else " or more"
            raise argparse.ArgumentTypeError(f"{text!r} is out of range; give a whole number from {minimum}{upper}")
        return value

    return convert


def seconds(allow_zero: bool) -> Callable[[str], float]:
    """An argparse `type` accepting a finite number of seconds, > 0 (or >= 0 with `allow_zero`)."""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            least = "0 or more" if allow_zero else "more than 0"
            raise argparse.ArgumentTypeError(f"{text!r} is out of range; give a number of seconds, {least}")
        return value

    return convert
