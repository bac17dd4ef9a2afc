"""The held-out quality protocol of bench/corpus_eval.py, with the project's model stubbed out."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
from sklearn.metrics import f1_score

from bench import corpus_eval
from models.examples import Example


class _ConstantModel:
    """Stands in for the fitted pipeline: one head, the same score for every comment."""

    named_steps: ClassVar[dict[str, Any]] = {"heads": type("Heads", (), {"heads_": ("abuse",)})()}

    def predict_proba(self, examples: list[Example]) -> np.ndarray:
        return np.full((len(examples), 1), 0.5)


def _examples() -> list[Example]:
    """One in ten abusive, each with the word "rude", which also fills a third of the rest:
    a logistic regression ranks every abusive text first but scores none above 0.5."""
    rows = []
    for index in range(400):
        abusive = index % 10 == 0
        marker = "rude" if abusive or index % 3 == 0 else "kind"
        rows.append(Example(f"comment {index} is {marker} number{index}", abuse=int(abusive)))
    return rows


def test_the_baseline_macro_f1_uses_a_threshold_chosen_on_the_training_folds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(corpus_eval, "fit_pipeline", lambda _examples, _parameters: _ConstantModel())
    monkeypatch.setattr(corpus_eval, "chosen_c", lambda _pipeline: {})
    examples = _examples()
    train, test = examples[:300], examples[300:]
    figures: dict[str, Any] = corpus_eval._macro_f1_fold(train, test, "abuse")
    labels = np.asarray([e.abuse for e in test])
    at_half = f1_score(labels, np.zeros(len(test), dtype=bool), average="macro")
    # The baseline ranks the abusive texts first; at 0.5 it would call none abusive.
    assert figures["tfidf_lr_roc_auc"] > 0.8
    assert figures["tfidf_lr_macro_f1"] > at_half + 0.1
    assert figures["tfidf_lr_threshold"] < 0.5
