"""The routing policy's table: approve below review, flag between, reject above."""

from __future__ import annotations

import math

import pytest

from service.statuses import CommentStatus
from worker.policy import DEFAULT_REJECT, DEFAULT_REVIEW, Policy, route

POLICY = Policy(review_threshold=0.5, reject_threshold=0.9)
MODEL = {"spam": {"review": 0.3, "reject": 0.8}, "abuse": {"review": 0.6, "reject": 0.95}}


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
def test_configured_thresholds(spam: float | None, abuse: float | None, outcome: CommentStatus) -> None:
    assert route(POLICY, {"spam": spam, "abuse": abuse}, MODEL).outcome is outcome


@pytest.mark.parametrize(
    ("spam", "abuse", "outcome"),
    [
        (0.29, 0.59, CommentStatus.APPROVED),
        (0.3, 0.0, CommentStatus.FLAGGED),
        (0.0, 0.6, CommentStatus.FLAGGED),
        (0.8, 0.0, CommentStatus.REJECTED),
        (0.0, 0.94, CommentStatus.FLAGGED),
        (0.0, 0.95, CommentStatus.REJECTED),
    ],
)
def test_model_thresholds_apply_per_head(spam: float, abuse: float, outcome: CommentStatus) -> None:
    assert route(Policy(), {"spam": spam, "abuse": abuse}, MODEL).outcome is outcome


def test_a_configured_value_overrides_only_its_own_threshold() -> None:
    assert Policy(reject_threshold=0.99).thresholds("spam", MODEL) == (0.3, 0.99)
    assert Policy(review_threshold=0.9).thresholds("spam", MODEL) == (0.8, 0.8)


def test_a_head_without_model_thresholds_never_rejects_automatically() -> None:
    assert Policy().thresholds("spam", {}) == (DEFAULT_REVIEW, DEFAULT_REJECT)
    assert route(Policy(), {"spam": 0.999}, {}).outcome is CommentStatus.FLAGGED
    # Flagged from the classifier's own decision boundary, a probability of one half.
    assert route(Policy(), {"spam": 0.49}, {}).outcome is CommentStatus.APPROVED
    assert route(Policy(), {"spam": 0.5}, {}).outcome is CommentStatus.FLAGGED


def test_a_model_threshold_of_zero_is_the_model_s_not_a_missing_one() -> None:
    # A head whose recall target needed every comment reviewed: 0 is a threshold, not "none".
    assert Policy().thresholds("spam", {"spam": {"review": 0.0, "reject": 0.9}}) == (0.0, 0.9)


def test_reason_names_the_head_and_threshold() -> None:
    assert route(POLICY, {"spam": 0.1, "abuse": 0.93}).why == "abuse 0.93 at or above reject threshold 0.90"


def test_the_reason_names_the_highest_scoring_head_of_those_over_the_threshold() -> None:
    # Both heads reject (or flag): the moderator reads the score that matters most.
    assert route(POLICY, {"spam": 0.92, "abuse": 0.97}).why == "abuse 0.97 at or above reject threshold 0.90"
    assert route(POLICY, {"spam": 0.6, "abuse": 0.7}).why == "abuse 0.70 at or above review threshold 0.50"


@pytest.mark.parametrize(("score", "outcome"), [(0.1, CommentStatus.FLAGGED), (0.95, CommentStatus.REJECTED)])
def test_premoderation_holds_everything_not_rejected(score: float, outcome: CommentStatus) -> None:
    premoderated = Policy(0.5, 0.9, premoderation=True)
    assert route(premoderated, {"spam": score, "abuse": 0.0}).outcome is outcome


@pytest.mark.parametrize(
    ("score", "premoderation", "outcome"),
    [
        (0.1, False, CommentStatus.APPROVED),
        (0.6, False, CommentStatus.APPROVED),
        (0.95, False, CommentStatus.REJECTED),
        (0.6, True, CommentStatus.FLAGGED),
        (0.1, True, CommentStatus.FLAGGED),
    ],
)
def test_a_trusted_commenter_skips_review_but_not_rejection_or_premoderation(
    score: float, premoderation: bool, outcome: CommentStatus
) -> None:
    policy = Policy(0.5, 0.9, premoderation=premoderation, trusted_after=2)
    assert route(policy, {"spam": score, "abuse": 0.0}, trusted=True).outcome is outcome


def test_trust_is_named_in_the_reason() -> None:
    routing = route(POLICY, {"spam": 0.6, "abuse": 0.0}, trusted=True)
    assert routing.why == "spam 0.60 at or above review threshold 0.50; approved, the commenter is trusted"


@pytest.mark.parametrize(
    ("seconds", "score", "trusted", "outcome"),
    [
        (1.5, 0.1, False, CommentStatus.FLAGGED),  # faster than a person writes
        (1.5, 0.1, True, CommentStatus.FLAGGED),  # an email proves nothing about who filled in the form
        (1.5, 0.6, True, CommentStatus.FLAGGED),  # where trust would approve what review flags
        (1.5, 0.95, False, CommentStatus.REJECTED),  # rejection still wins
        (3.0, 0.1, False, CommentStatus.APPROVED),
        (None, 0.1, False, CommentStatus.APPROVED),  # the form did not say
    ],
)
def test_a_comment_posted_too_soon_after_its_form_was_shown_waits_for_a_moderator(
    seconds: float | None, score: float, trusted: bool, outcome: CommentStatus
) -> None:
    policy = Policy(0.5, 0.9, trusted_after=2 if trusted else 0, min_seconds_to_submit=3.0)
    routing = route(policy, {"spam": score, "abuse": 0.0}, trusted=trusted, seconds_to_submit=seconds)
    assert routing.outcome is outcome
    if outcome is CommentStatus.FLAGGED:
        assert routing.why == "posted 1.5 s after its form was shown, under 3 s"


def test_the_time_to_post_is_not_checked_when_the_least_is_zero() -> None:
    assert route(POLICY, {"spam": 0.1, "abuse": 0.0}, seconds_to_submit=0.0).outcome is CommentStatus.APPROVED


def test_the_time_in_the_reason_is_never_rounded_up_to_the_least() -> None:
    policy = Policy(0.5, 0.9, min_seconds_to_submit=3.0)
    routing = route(policy, {"spam": 0.1, "abuse": 0.0}, seconds_to_submit=2.96)
    assert routing.why == "posted 2.9 s after its form was shown, under 3 s"


@pytest.mark.parametrize("broken", [math.nan, math.inf, -math.inf])
def test_a_score_that_is_not_a_number_waits_for_a_moderator(broken: float) -> None:
    routed = route(Policy(), {"spam": broken, "abuse": 0.01}, {"spam": {"review": 0.5, "reject": 0.9}})
    assert routed.outcome is CommentStatus.FLAGGED and "spam score is not a number" in routed.why
