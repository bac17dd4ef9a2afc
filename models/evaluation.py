"""Evaluate a fitted classifier on labeled examples: per-head metrics at its own thresholds.

Used by `moderation evaluate` and the benchmark. The examples are deduplicated first,
so a comment posted a hundred times by a bot counts once. A head is evaluated on the
examples that carry its label; a head the model lacks, or that no example labels, is
named in `notes` instead of being scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.classifier import Classifier
from models.examples import Example, deduplicate
from models.heads import HEADS
from models.metrics import DEFAULT_REVIEW, NO_AUTOMATIC_REJECT, evaluate_head


@dataclass(frozen=True)
class HeadScores:
    """One head's true labels and the model's probabilities on the same examples."""

    head: str
    labels: np.ndarray
    scores: np.ndarray


def head_scores(classifier: Classifier, examples: Sequence[Example]) -> list[HeadScores]:
    """Return labels and scores for every head both the model and the examples have."""
    probabilities = classifier.probabilities(list(examples)) if examples else {}
    results = []
    for head in classifier.heads:
        rows = [i for i, example in enumerate(examples) if example.label(head) is not None]
        if not rows:
            continue
        labels = np.asarray([examples[i].label(head) for i in rows], dtype=np.int64)
        results.append(HeadScores(head, labels, probabilities[head][rows]))
    return results


def thresholds_of(classifier: Classifier, head: str) -> dict[str, float]:
    """The classifier's review and reject thresholds for `head`, with the library defaults."""
    chosen = classifier.thresholds.get(head, {})
    return {
        "review": float(chosen.get("review", DEFAULT_REVIEW)),
        "reject": float(chosen.get("reject", NO_AUTOMATIC_REJECT)),
    }


def _notes(classifier: Classifier, scored: Sequence[HeadScores]) -> list[str]:
    done = {result.head for result in scored}
    notes = []
    for head in HEADS:
        if head not in classifier.heads:
            notes.append(f"head {head!r} not evaluated: the model has no such head")
        elif head not in done:
            notes.append(f"head {head!r} not evaluated: no example carries its label")
    return notes


def evaluate(classifier: Classifier, examples: Sequence[Example]) -> tuple[dict[str, Any], list[HeadScores]]:
    """Return (report, per-head scores) for `classifier` on the deduplicated `examples`.

    The report is JSON-ready: model version, example counts, and per head the ROC-AUC,
    average precision, and precision, recall, F1 and confusion matrix at the model's
    review and reject thresholds (see `models.metrics.evaluate_head`).
    """
    unique = deduplicate(examples)
    scored = head_scores(classifier, unique)
    report = {
        "model_version": classifier.version,
        "examples": len(examples),
        "unique_examples": len(unique),
        "heads": {
            result.head: evaluate_head(result.labels, result.scores, thresholds_of(classifier, result.head))
            for result in scored
        },
        "notes": _notes(classifier, scored),
    }
    return report, scored
