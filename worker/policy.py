"""The routing policy: from scores to approve, flag for review, or reject.

Each head has a review and a reject threshold. By default they are the ones the
model picked from held-out data (reject where precision stays at its target, review
where recall does); configured thresholds, when set, override them for every head.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from service.reasons import posted_too_fast
from service.statuses import CommentStatus

# For a head whose model records no thresholds: its own decision boundary, and no
# automatic rejection, so everything doubtful reaches a human.
DEFAULT_REVIEW = 0.5
DEFAULT_REJECT = 1.0


@dataclass(frozen=True)
class Policy:
    """Configured overrides of the model's thresholds, the pre-moderation switch, how many
    approved comments (with none rejected) make a commenter trusted (0: nobody is), and
    the least time a person takes to fill in the form (0: not checked)."""

    review_threshold: float | None = None
    reject_threshold: float | None = None
    premoderation: bool = False
    trusted_after: int = 0
    min_seconds_to_submit: float = 0.0

    def thresholds(self, head: str, model: Mapping[str, Mapping[str, float]]) -> tuple[float, float]:
        """(review, reject) for ``head``: the configured value, else the model's, else the defaults."""
        picked = model.get(head, {})
        review = self.review_threshold if self.review_threshold is not None else picked.get("review")
        reject = self.reject_threshold if self.reject_threshold is not None else picked.get("reject")
        review = DEFAULT_REVIEW if review is None else review
        reject = DEFAULT_REJECT if reject is None else reject
        return min(review, reject), reject


@dataclass(frozen=True)
class Routing:
    """Where a comment goes, and a sentence a moderator can read saying why."""

    outcome: CommentStatus
    why: str


def route(
    policy: Policy,
    scores: Mapping[str, float | None],
    model_thresholds: Mapping[str, Mapping[str, float]] | None = None,
    *,
    trusted: bool = False,
    seconds_to_submit: float | None = None,
) -> Routing:
    """Reject when any head reaches its reject threshold, flag when any reaches review, else approve.

    A head the model lacks (None) is ignored; one whose score is not a finite number
    (a fault in the model) sends the comment to a moderator. A comment posted sooner after its form was
    shown than a person can write one is flagged unless rejected, a trusted commenter's
    too (the email proves nothing; the speed says a program filled in the form). A
    ``trusted`` commenter's comment that would be flagged otherwise is approved instead.
    With pre-moderation on, anything not rejected waits for a moderator, a trusted
    commenter's too.
    """
    limits = {head: policy.thresholds(head, model_thresholds or {}) for head in scores}
    present = {head: score for head, score in scores.items() if score is not None}
    # Compared with a threshold, NaN is below every one, so a broken score would approve.
    broken = sorted(head for head, score in present.items() if not math.isfinite(score))
    if broken:
        return Routing(
            CommentStatus.FLAGGED, f"{', '.join(broken)} score is not a number; a moderator decides"
        )
    for head, score in sorted(present.items(), key=lambda item: -item[1]):
        if score >= limits[head][1]:
            return Routing(
                CommentStatus.REJECTED,
                f"{head} {score:.2f} at or above reject threshold {limits[head][1]:.2f}",
            )
    if seconds_to_submit is not None and seconds_to_submit < policy.min_seconds_to_submit:
        return Routing(
            CommentStatus.FLAGGED, posted_too_fast(seconds_to_submit, policy.min_seconds_to_submit)
        )
    for head, score in sorted(present.items(), key=lambda item: -item[1]):
        if score >= limits[head][0]:
            why = f"{head} {score:.2f} at or above review threshold {limits[head][0]:.2f}"
            if trusted and not policy.premoderation:
                return Routing(CommentStatus.APPROVED, f"{why}; approved, the commenter is trusted")
            return Routing(CommentStatus.FLAGGED, why)
    if policy.premoderation:
        return Routing(CommentStatus.FLAGGED, "pre-moderation holds every comment for review")
    return Routing(CommentStatus.APPROVED, "every score below its review threshold")
