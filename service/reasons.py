"""How a routing reason words the time a commenter took to post, and how erasure takes it out.

The seconds between the form being shown and the post are personal data (they describe
one person's visit), so an erasure keeps only what the policy concluded from them.
"""

from __future__ import annotations

import math
import re

_TOO_FAST = re.compile(r"posted \d+(?:\.\d+)? s after its form was shown, under (\S+) s")


def seconds_shown(seconds: float) -> str:
    """``seconds`` to one decimal, rounded down: 2.96 reads 2.9, never "3.0 ... under 3"."""
    return f"{math.floor(seconds * 10) / 10:.1f}"


def posted_too_fast(seconds: float, minimum: float) -> str:
    """The reason for holding a comment posted ``seconds`` after its form was shown, under ``minimum``."""
    return f"posted {seconds_shown(seconds)} s after its form was shown, under {minimum:g} s"


def without_timing(reason: str) -> str:
    """``reason`` with the seconds a commenter took left out, keeping that they were under the minimum."""
    return _TOO_FAST.sub(r"posted under \1 s after its form was shown", reason)
