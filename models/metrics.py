"""Thresholds picked from validation scores, and the metrics reported for each head.

Thresholds (per head, on the validation split):

- reject: the lowest threshold at which precision stays at or above `reject_precision`
  for that threshold and every higher one. Scanning down from the top and stopping at
  the first dip means a lucky run of positives lower down cannot pull it too low. The
  validation scores at or above it must be at least as many as it takes for a single
  mistake among them to break the target (100 for 0.99): on fewer, "precise enough"
  only means "no mistake seen yet", and a small validation set would reject
  automatically far down the scores.
- review: the highest threshold whose recall is at or above `review_recall` (recall only
  falls as the threshold rises, so this is well defined).

Fallbacks, for validation sets too small to say anything:

- fewer than `MIN_VALIDATION_PER_CLASS` positives or negatives: review = 0.5 (the model's
  own decision boundary) and reject = 1.0 (no automatic rejection; everything suspicious
  goes to a human);
- the precision target is not met even at the highest score, or not on enough
  examples: reject = 1.0, same reason;
- review is never above reject.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

MIN_VALIDATION_PER_CLASS = 5
DEFAULT_REVIEW = 0.5
# No probability reaches it: `models.heads` keeps every probability below 1.
NO_AUTOMATIC_REJECT = 1.0


def _ranked(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (threshold, true positives, predicted positives) at each distinct score."""
    order = np.argsort(-scores, kind="stable")
    ranked_scores, ranked_labels = scores[order], y_true[order]
    true_positives = np.cumsum(ranked_labels)
    # The last row of each run of tied scores: a threshold cannot split ties.
    ends = np.r_[np.flatnonzero(np.diff(ranked_scores)), len(ranked_scores) - 1]
    return ranked_scores[ends], true_positives[ends], ends + 1


def pick_thresholds(
    y_true: Any, scores: Any, *, review_recall: float, reject_precision: float
) -> tuple[dict[str, float], str]:
    """Return ({"review": t, "reject": t}, how they were chosen) for one head."""
    labels = np.asarray(y_true, dtype=np.int64)
    values = np.asarray(scores, dtype=np.float64)
    positives = int(labels.sum())
    if min(positives, len(labels) - positives) < MIN_VALIDATION_PER_CLASS:
        return {
            "review": DEFAULT_REVIEW,
            "reject": NO_AUTOMATIC_REJECT,
        }, "default: too few validation examples"
    thresholds, true_positives, predicted = _ranked(labels, values)
    precise = true_positives / predicted >= reject_precision
    # Length of the leading run of thresholds (from the top) that meet the precision target.
    run = len(precise) if precise.all() else int(np.argmin(precise))
    needed = examples_to_show_precision(reject_precision)
    review = float(thresholds[np.argmax(true_positives / positives >= review_recall)])
    if not run:
        return {"review": review, "reject": NO_AUTOMATIC_REJECT}, (
            "validation; precision target unreachable, no automatic reject"
        )
    if predicted[run - 1] < needed:
        shown = "no number of examples can show it" if math.isinf(needed) else f"it takes {needed} to show it"
        return {"review": review, "reject": NO_AUTOMATIC_REJECT}, (
            f"validation; precision target met on {predicted[run - 1]} examples, {shown}, no automatic reject"
        )
    reject = float(thresholds[run - 1])
    return {"review": min(review, reject), "reject": reject}, "validation"


def examples_to_show_precision(target: float) -> float:
    """How many examples a threshold needs above it before one mistake among them would
    bring its precision below ``target``: ``1 / (1 - target)``, rounded up; infinite for 1."""
    if target >= 1:
        return math.inf
    # Rounded first, so 0.99 asks for 100, not the 101 its binary fraction would give.
    return math.ceil(round(1 / (1 - target), 9))


def _at_threshold(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    predicted = (scores >= threshold).astype(np.int64)
    return {
        "threshold": threshold,
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "confusion_matrix": confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
    }


def _ranking(labels: np.ndarray, scores: np.ndarray) -> dict[str, float | None]:
    if len(np.unique(labels)) < 2:
        return {"roc_auc": None, "average_precision": None}
    return {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "average_precision": float(average_precision_score(labels, scores)),
    }


def prior_scores(negatives: int, positives: int, n: int) -> np.ndarray:
    """``n`` scores of a `DummyClassifier(strategy="prior")` fitted on training labels
    with these class counts: the share of positives, every time."""
    return np.full(n, positives / (negatives + positives) if negatives + positives else 0.0)


def evaluate_head(y_true: Any, scores: Any, thresholds: dict[str, float]) -> dict[str, Any]:
    """Return one head's metrics: ranking quality, and each threshold's precision, recall, F1, confusion.

    The confusion matrix is `[[true negatives, false positives], [false negatives, true positives]]`.
    """
    labels = np.asarray(y_true, dtype=np.int64)
    values = np.asarray(scores, dtype=np.float64)
    return {
        "examples": len(labels),
        "positives": int(labels.sum()),
        **_ranking(labels, values),
        "review": _at_threshold(labels, values, thresholds["review"]),
        "reject": _at_threshold(labels, values, thresholds["reject"]),
    }


def head_metrics(
    y_true: Any,
    scores: Any,
    thresholds: dict[str, float],
    baseline: Any,
) -> dict[str, Any]:
    """Return validation metrics for one head beside the trivial baseline's."""
    labels = np.asarray(y_true, dtype=np.int64)
    return {
        **evaluate_head(labels, scores, thresholds),
        "baseline": {"model": "DummyClassifier(strategy='prior')", **_ranking(labels, np.asarray(baseline))},
    }
