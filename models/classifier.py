"""`Classifier`: a fitted pipeline with its version and thresholds, and the `Score` it gives."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import sklearn
from sklearn.pipeline import Pipeline

from models.explain import Explainer
from models.metrics import DEFAULT_REVIEW
from models.records import CommentText
from models.sparse_rows import Parts, of_matrix, side_by_side
from models.vectorizers import CompactTfidfVectorizer

# Scoring works in batches of this many rows: large enough for fast sparse products,
# small enough that a huge input does not build one huge matrix.
BATCH_SIZE = 2048
# Reaches every branch and lookup: words, a link, a listed insult, a drawn-out word.
_WARM_UP = "Check out https://example.com now, you idiot!!! Sooo good"


@dataclass(frozen=True)
class Score:
    """A comment's probability per head (None when the model lacks the head), why, and by which model.

    `reasons` lists, for each head whose probability reaches that head's review
    threshold, the features that pushed it up most (see `models.explain`). A head below
    its review threshold played no part in routing the comment, so its weak pushes are
    left out rather than shown to a moderator as if they mattered.
    """

    spam: float | None
    abuse: float | None
    reasons: list[str] = field(default_factory=list)
    model_version: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form: `{"spam", "abuse", "reasons", "model_version"}`."""
        return {
            "spam": self.spam,
            "abuse": self.abuse,
            "reasons": list(self.reasons),
            "model_version": self.model_version,
        }


class Classifier:
    """A fitted model ready to score comments.

    Attributes:
        version: the model version (the folder name in the model directory).
        heads: the heads the model has, e.g. ("spam", "abuse") or ("spam",).
        thresholds: per head, `{"review": p, "reject": p}` chosen on validation data.
        metadata: everything recorded with the model (metrics, parameters, libraries).
        pipeline: the fitted scikit-learn pipeline from `build_pipeline`.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        version: str,
        thresholds: Mapping[str, Mapping[str, float]] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.version = version
        self.thresholds = {head: dict(values) for head, values in (thresholds or {}).items()}
        self.metadata = dict(metadata or {})
        self._prepare = pipeline.named_steps["prepare"]
        self._features = pipeline.named_steps["features"]
        self._heads = pipeline.named_steps["heads"]
        self.heads: tuple[str, ...] = tuple(self._heads.heads_)
        self._explainer = Explainer(pipeline)

    def __repr__(self) -> str:
        return f"Classifier(version={self.version!r}, heads={self.heads!r})"

    def probabilities(self, comments: Sequence[Any]) -> dict[str, np.ndarray]:
        """Return, per head, the probability for every comment (no reasons)."""
        # In batches, as `score` works: one feature matrix for a whole evaluation set took
        # gigabytes (some 25 KB a comment).
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            batches = [
                self._heads.predict_proba(self.feature_matrix(self._prepare.transform(batch)))
                for batch in (
                    comments[start : start + BATCH_SIZE] for start in range(0, len(comments), BATCH_SIZE)
                )
            ]
        matrix = np.vstack(batches) if batches else np.zeros((0, len(self.heads)))
        return {head: matrix[:, column] for column, head in enumerate(self.heads)}

    def feature_matrix(self, prepared: Sequence[Any]) -> sp.csr_matrix:
        """Return the feature union's output for prepared comments, as sorted CSR.

        The same as `FeatureUnion.transform` (a test checks it), calling each fitted
        branch directly and stacking the branches' arrays in one step (`models.sparse_rows`):
        the union's parallel-job machinery and scipy's per-matrix checks cost more than
        the arithmetic for a few comments.
        """
        weights = self._features.transformer_weights or {}
        branches = self._features.transformer_list
        blocks = [_branch_parts(branch, prepared) for _name, branch in branches]
        matrix = side_by_side(blocks, [weights.get(name) for name, _branch in branches])
        matrix.sort_indices()
        return matrix

    def score(self, comments: Sequence[CommentText | str], *, reasons: bool = True) -> list[Score]:
        """Score comments in batches; one `Score` per comment, in order.

        `reasons=False` skips the explanations (about a fifth of the cost of a batch).
        """
        scores: list[Score] = []
        for start in range(0, len(comments), BATCH_SIZE):
            scores.extend(self._score_batch(comments[start : start + BATCH_SIZE], reasons))
        return scores

    def score_one(self, comment: CommentText) -> Score:
        """Score a single comment."""
        return self._score_batch([comment], True)[0]

    def warm(self) -> None:
        """Make what scoring otherwise makes on its first call (the n-gram indexes, the
        token vocabulary, the word lists), so that the first comment does not wait for it
        and worker processes forked after this share one copy."""
        self.score_one(CommentText(_WARM_UP))
        for _name, branch in self._features.transformer_list:
            last = branch.steps[-1][1] if isinstance(branch, Pipeline) else branch
            if isinstance(last, CompactTfidfVectorizer):
                last.make_lookups()

    def _score_batch(self, comments: Sequence[Any], reasons: bool) -> list[Score]:
        # Inputs come from our own transformers, so scikit-learn's per-call input checks
        # are skipped; they cost more than the arithmetic for a single comment.
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            prepared = self._prepare.transform(comments)
            matrix = self.feature_matrix(prepared)
            probabilities = self._heads.predict_proba(matrix)
        explained: list[list[str]] = [[] for _ in prepared]
        if reasons and len(self.heads):
            # Reasons only for heads at or above their review threshold (see `Score`).
            floors = np.asarray([self._review_threshold(head) for head in self.heads])
            explained = self._explainer.batch_reasons(
                prepared, matrix, self._heads.coef_, probabilities >= floors, self.heads
            )
        return [
            Score(
                spam=by_head.get("spam"),
                abuse=by_head.get("abuse"),
                reasons=explained[i],
                model_version=self.version,
            )
            for i, by_head in enumerate(
                dict(zip(self.heads, row, strict=True)) for row in probabilities.tolist()
            )
        ]

    def _review_threshold(self, head: str) -> float:
        return float(self.thresholds.get(head, {}).get("review", DEFAULT_REVIEW))


def _branch_parts(branch: Any, prepared: Sequence[Any]) -> Parts:
    """A feature branch's rows for ``prepared``: a `Pipeline`'s steps run one after the
    other (its own `transform` adds metadata routing and output wrapping, a tenth of a
    millisecond a call), the last one asked for `Parts` when it can give them."""
    steps = [step for _name, step in branch.steps] if isinstance(branch, Pipeline) else [branch]
    steps = [step for step in steps if step not in (None, "passthrough")]
    data: Any = prepared
    for step in steps[:-1]:
        data = step.transform(data)
    last = steps[-1]
    if isinstance(last, CompactTfidfVectorizer) and (parts := last.transform_parts(data)) is not None:
        return parts
    return of_matrix(last.transform(data))
