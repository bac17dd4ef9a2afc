"""The routing policy's table: approve below review, flag between, reject above."""

from __future__ import annotations

import pytest

from service.statuses import CommentStatus
from worker.policy import Policy, route

POLICY = Policy(review_threshold=0.5, reject_threshold=0.9)


@pytest.mark.parametrize(
    ("spam", "abuse", "outcome"),
    [
        (0.1, 0.2, CommentStatus.APPROVED),
        (0.5, 0.1, CommentStatus.FLAGGED),
        (0.1, 0.89, CommentStatus.FLAGGED),
        (0.9, 0.1, CommentStatus.REJECTED),
        (0.2, 0.99, CommentStatus.REJECTED),
        (None, 0.95, CommentStatus.REJECTED),
        (None, None, CommentStatus.APPROVED),
    ],
)
def test_thresholds(spam: float | None, abuse: float | None, outcome: CommentStatus) -> None:
    assert route(POLICY, {"spam": spam, "abuse": abuse}).outcome is outcome


def test_reason_names_the_head_and_threshold() -> None:
    assert route(POLICY, {"spam": 0.1, "abuse": 0.93}).why == "abuse 0.93 at or above reject threshold 0.9"


@pytest.mark.parametrize(("score", "outcome"), [(0.1, CommentStatus.FLAGGED), (0.95, CommentStatus.REJECTED)])
def test_premoderation_holds_everything_not_rejected(score: float, outcome: CommentStatus) -> None:
    premoderated = Policy(0.5, 0.9, premoderation=True)
    assert route(premoderated, {"spam": score, "abuse": 0.0}).outcome is outcome
