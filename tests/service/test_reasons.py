"""The wording of the too-fast reason, and erasure's version of it."""

from __future__ import annotations

from service.reasons import posted_too_fast, without_timing


def test_the_seconds_are_rounded_down_and_erasure_keeps_only_the_minimum() -> None:
    assert posted_too_fast(2.96, 3.0) == "posted 2.9 s after its form was shown, under 3 s"
    assert posted_too_fast(0.0, 2.5) == "posted 0.0 s after its form was shown, under 2.5 s"
    assert without_timing(posted_too_fast(2.96, 3.0)) == "posted under 3 s after its form was shown"
    assert without_timing(posted_too_fast(1, 2.5)) == "posted under 2.5 s after its form was shown"
    for other in ("spam 0.97 at or above reject threshold 0.95", "every score below its review threshold"):
        assert without_timing(other) == other
