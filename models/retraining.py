"""Retraining from moderators' labels, with a gate before a new version goes live.

Moderator labels are split once and for all by a digest of their text: a label in the
held-out part is never trained on by any retrain, nor is an example of the corpora
trained beside the labels that has the same text, so the candidate and the active
model are always judged on text neither has seen from the moderators. The candidate
becomes active only when it has every head the active model has and, on every head
both can be judged on, its average precision is at least the active model's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from models.classifier import Classifier
from models.errors import ModelIntegrityError, ModelNotFoundError, ModelVersionError
from models.examples import Example, dedup_key
from models.heads import HEADS
from models.records import CommentText
from models.registry import activate_in_place_of, active_version, load_version, save_version
from models.training import train

HOLDOUT_PERCENT = 20
# A head is judged only when the held-out labels hold this many of each class.
MIN_PER_CLASS = 5


def in_holdout(example: Example, percent: int = HOLDOUT_PERCENT) -> bool:
    """True for the fixed share of texts that are kept for judging, never for training."""
    digest = hashlib.sha256(dedup_key(example.text).encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


def split_holdout(examples: Sequence[Example]) -> tuple[list[Example], list[Example]]:
    """(training part, held-out part) of moderator labels, stable across retrains."""
    training = [example for example in examples if not in_holdout(example)]
    holdout = [example for example in examples if in_holdout(example)]
    return training, holdout


def _head_metrics(classifier: Classifier, examples: Sequence[Example], head: str) -> dict[str, float] | None:
    labelled = [example for example in examples if getattr(example, head) is not None]
    truth = np.array([getattr(example, head) for example in labelled], dtype=np.int64)
    if min(int(truth.sum()), len(truth) - int(truth.sum())) < MIN_PER_CLASS or head not in classifier.heads:
        return None
    # As the worker scores them: with the name and website the commenter gave.
    texts = [CommentText(example.text, author=example.author, url=example.url) for example in labelled]
    scores = [getattr(score, head) for score in classifier.score(texts, reasons=False)]
    return {
        "average_precision": float(average_precision_score(truth, scores)),
        "roc_auc": float(roc_auc_score(truth, scores)),
        "examples": float(len(truth)),
    }


def evaluate_on(classifier: Classifier, examples: Sequence[Example]) -> dict[str, dict[str, float]]:
    """Per-head average precision and ROC-AUC on ``examples``; heads without enough labels are left out."""
    results = {head: _head_metrics(classifier, examples, head) for head in HEADS}
    return {head: metrics for head, metrics in results.items() if metrics is not None}


@dataclass(frozen=True)
class Comparison:
    """How the candidate and the active model did on the same held-out labels."""

    candidate: dict[str, dict[str, float]]
    active: dict[str, dict[str, float]]
    holdout_size: int
    passed: bool
    reasons: list[str] = field(default_factory=list)
    # Heads the candidate has (and the active model too) that the held-out labels were
    # too few to judge: the gate says nothing about them.
    unjudged: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy, for the run record and the command line."""
        return {
            "candidate": self.candidate,
            "active": self.active,
            "holdout_size": self.holdout_size,
            "passed": self.passed,
            "reasons": self.reasons,
            "unjudged": self.unjudged,
        }


def compare(candidate: Classifier, active: Classifier | None, holdout: Sequence[Example]) -> Comparison:
    """Judge the candidate against the active model on the same held-out labels.

    A candidate that lacks a head the active model has is refused whatever the labels
    say: once live, it would leave that head unscored and routing would ignore it.
    """
    candidate_metrics = evaluate_on(candidate, holdout)
    shared = [head for head in candidate.heads if active is None or head in active.heads]
    # Both models are judged on the same labels, so a shared head lacks metrics only for want of them.
    unjudged = [head for head in shared if head not in candidate_metrics]
    if active is None:
        return Comparison(candidate_metrics, {}, len(holdout), True, ["no active model to beat"], unjudged)
    active_metrics = evaluate_on(active, holdout)
    missing = [head for head in active.heads if head not in candidate.heads]
    reasons = [f"candidate has no {head} head, which the active model has" for head in missing]
    judged = [head for head in shared if head in candidate_metrics]
    if not judged:
        reasons.append(f"too few held-out labels to judge any head (need {MIN_PER_CLASS} of each class)")
    passed = not missing and bool(judged)
    for head in judged:
        new, old = candidate_metrics[head]["average_precision"], active_metrics[head]["average_precision"]
        verdict = "at least as good" if new >= old else "worse"
        passed = passed and new >= old
        reasons.append(f"{head}: average precision {new:.4f} vs active {old:.4f}, {verdict}")
    return Comparison(candidate_metrics, active_metrics, len(holdout), passed, reasons, unjudged)


@dataclass(frozen=True)
class RetrainOutcome:
    """What a retrain produced and whether it went live."""

    version: str
    activated: bool
    comparison: Comparison
    training_examples: int


def _loaded(root: Path, version: str | None) -> tuple[Classifier | None, str]:
    """The active ``version`` loaded, or none and why it cannot be.

    An active model that no longer loads (its folder removed, its files changed, or made
    with libraries since upgraded) serves nothing, so there is nothing for the candidate
    to beat: it is what replaces it, instead of each retrain failing on it for good.
    """
    if version is None:
        return None, ""
    try:
        return load_version(root, version), ""
    except (ModelNotFoundError, ModelIntegrityError, ModelVersionError) as exc:
        return None, f"the active version {version} cannot be loaded ({exc})"


def retrain(
    model_dir: str | Path,
    moderator_labels: Sequence[Example],
    corpora: Sequence[Example] = (),
    *,
    activate_if_better: bool = True,
) -> RetrainOutcome:
    """Train on moderator labels (less the held-out part) plus ``corpora``, gate, maybe activate."""
    root = Path(model_dir)
    training, holdout = split_holdout(moderator_labels)
    held_out = {dedup_key(example.text) for example in holdout}
    others = [example for example in corpora if dedup_key(example.text) not in held_out]
    result = train([*training, *others])
    version = save_version(root, result)
    judged_against = active_version(root)
    current, unusable = _loaded(root, judged_against)
    comparison = compare(result.classifier, current, holdout)
    if unusable:
        comparison.reasons.append(unusable)
    activated = False
    if activate_if_better and comparison.passed:
        activated = activate_in_place_of(root, version, judged_against)
        if not activated:
            now_active = active_version(root)
            comparison.reasons.append(
                f"not activated: version {now_active} became active meanwhile, and the candidate "
                "was not compared with it"
            )
    return RetrainOutcome(version, activated, comparison, len(training) + len(others))
