"""Thresholds are picked from validation scores as documented, with safe fallbacks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier

from models.metrics import DEFAULT_REVIEW, NO_AUTOMATIC_REJECT, head_metrics, pick_thresholds, prior_scores

POSITIVES = [0.99, 0.95, 0.9, 0.85, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2]
NEGATIVES = [0.82, 0.55, 0.1, 0.05, 0.04, 0.03, 0.02, 0.01]
LABELS = [1] * len(POSITIVES) + [0] * len(NEGATIVES)
SCORES = POSITIVES + NEGATIVES


@pytest.mark.parametrize(
    ("recall", "precision", "expected"),
    [
        # Precision stays >= 0.8 down to 0.6 (6/7: seven scores, at least the five one
        # mistake needs to show it); the negative at 0.55 breaks it (6/8).
        # All ten positives are needed for recall 0.95, so review is the lowest positive.
        (0.95, 0.8, {"review": 0.2, "reject": 0.6}),
        # Eight positives give recall 0.8: the eighth highest positive is 0.4.
        (0.8, 0.8, {"review": 0.4, "reject": 0.6}),
        # Precision stays >= 0.75 from the top down to 0.1 (10/13), then drops (10/14);
        # review (0.2) would lie above reject, so it is lowered to reject.
        (0.95, 0.75, {"review": 0.1, "reject": 0.1}),
    ],
)
def test_thresholds_on_a_constructed_case(
    recall: float, precision: float, expected: dict[str, float]
) -> None:
    thresholds, how = pick_thresholds(LABELS, SCORES, review_recall=recall, reject_precision=precision)
    assert thresholds == pytest.approx(expected)
    assert how == "validation"


@pytest.mark.parametrize(
    ("precision", "seen", "needed"), [(0.9, 4, "it takes 10"), (0.99, 4, "it takes 100")]
)
def test_a_precision_seen_on_too_few_examples_means_no_automatic_reject(
    precision: float, seen: int, needed: str
) -> None:
    # Precision is 1.0 down to 0.85, but on four scores: one mistake more would not show
    # as a precision below 0.9 until there are ten.
    thresholds, how = pick_thresholds(LABELS, SCORES, review_recall=0.95, reject_precision=precision)
    assert thresholds == {"review": 0.2, "reject": NO_AUTOMATIC_REJECT}
    assert (
        how
        == f"validation; precision target met on {seen} examples, {needed} to show it, no automatic reject"
    )


def test_a_precision_met_on_exactly_the_examples_it_takes_allows_automatic_reject() -> None:
    # At 0.8 the precision is 4/5, on the five examples 0.8 takes; 0.7 breaks it (4/6).
    positives = [0.99, 0.95, 0.9, 0.85, 0.4, 0.3, 0.2, 0.15, 0.1, 0.05]
    negatives = [0.8, 0.7, 0.06, 0.04, 0.03, 0.02, 0.01, 0.005, 0.004, 0.003]
    labels = [1] * len(positives) + [0] * len(negatives)
    thresholds, how = pick_thresholds(labels, positives + negatives, review_recall=0.5, reject_precision=0.8)
    assert (thresholds, how) == ({"review": 0.4, "reject": 0.8}, "validation")


def test_a_precision_of_one_is_never_shown() -> None:
    labels, scores = [1] * 500 + [0] * 500, [0.9] * 500 + [0.1] * 500
    thresholds, how = pick_thresholds(labels, scores, review_recall=0.95, reject_precision=1.0)
    assert thresholds["reject"] == NO_AUTOMATIC_REJECT and "no number of examples can show it" in how
    assert pick_thresholds(labels, scores, review_recall=0.95, reject_precision=0.99)[0]["reject"] == 0.9


def test_unreachable_precision_means_no_automatic_reject() -> None:
    scores = [0.99, *SCORES[1:]]
    labels = [0, *LABELS[1:]]  # the top score is a negative
    thresholds, how = pick_thresholds(labels, scores, review_recall=0.9, reject_precision=0.99)
    assert thresholds["reject"] == NO_AUTOMATIC_REJECT
    assert "unreachable" in how


def test_ties_are_not_split() -> None:
    labels = [1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    scores = [0.9, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    thresholds, _ = pick_thresholds(labels, scores, review_recall=0.5, reject_precision=0.99)
    assert thresholds["reject"] == NO_AUTOMATIC_REJECT  # 0.9 holds a positive and a negative


def test_too_few_validation_examples_use_defaults() -> None:
    thresholds, how = pick_thresholds(
        [1, 1, 0, 0, 0, 0, 0, 0], [0.9, 0.8] + [0.1] * 6, review_recall=0.95, reject_precision=0.99
    )
    assert thresholds == {"review": DEFAULT_REVIEW, "reject": NO_AUTOMATIC_REJECT}
    assert how.startswith("default")


def test_head_metrics_beside_baseline() -> None:
    thresholds = {"review": 0.2, "reject": 0.85}
    metrics = head_metrics(LABELS, SCORES, thresholds, prior_scores(2, 2, len(LABELS)))
    assert metrics["examples"] == 18 and metrics["positives"] == 10
    assert metrics["reject"]["precision"] == 1.0 and metrics["reject"]["recall"] == pytest.approx(0.4)
    assert metrics["review"]["recall"] == 1.0
    assert metrics["reject"]["confusion_matrix"] == [[8, 0], [6, 4]]
    assert metrics["baseline"]["roc_auc"] == 0.5
    assert metrics["baseline"]["average_precision"] == pytest.approx(10 / 18)
    assert metrics["roc_auc"] > 0.8


@pytest.mark.parametrize(("negatives", "positives"), [(3, 1), (0, 4), (5, 0)])
def test_the_prior_baseline_is_what_a_prior_dummy_classifier_scores(negatives: int, positives: int) -> None:
    labels = [0] * negatives + [1] * positives
    dummy = DummyClassifier(strategy="prior").fit(np.zeros((len(labels), 1)), labels)
    probabilities = dummy.predict_proba(np.zeros((3, 1)))
    expected = probabilities[:, list(dummy.classes_).index(1)] if 1 in dummy.classes_ else np.zeros(3)
    assert prior_scores(negatives, positives, 3).tolist() == pytest.approx(expected.tolist())
