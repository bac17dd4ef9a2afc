"""The routing policy: from two scores to approve, flag for review, or reject."""

from __future__ import annotations

from dataclasses import dataclass

from service.statuses import CommentStatus


@dataclass(frozen=True)
class Policy:
    """Thresholds that apply to every head, and the pre-moderation switch."""

    review_threshold: float
    reject_threshold: float
    premoderation: bool = False


@dataclass(frozen=True)
class Routing:
    """Where a comment goes, and a sentence a moderator can read saying why."""

    outcome: CommentStatus
    why: str


def route(policy: Policy, scores: dict[str, float | None]) -> Routing:
    """Reject at or above the reject threshold, flag at or above the review one, else approve.

    A head the model lacks (None) is ignored. With pre-moderation on, anything not
    rejected waits for a moderator.
    """
    present = {head: score for head, score in scores.items() if score is not None}
    head, score = max(present.items(), key=lambda item: item[1], default=("none", 0.0))
    if score >= policy.reject_threshold:
        return Routing(
            CommentStatus.REJECTED,
            f"{head} {score:.2f} at or above reject threshold {policy.reject_threshold}",
        )
    if score >= policy.review_threshold:
        return Routing(
            CommentStatus.FLAGGED,
            f"{head} {score:.2f} at or above review threshold {policy.review_threshold}",
        )
    if policy.premoderation:
        return Routing(CommentStatus.FLAGGED, "pre-moderation holds every comment for review")
    return Routing(CommentStatus.APPROVED, f"all scores below review threshold {policy.review_threshold}")
