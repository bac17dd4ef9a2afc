"""The one pipeline used for training, evaluation and serving.

    prepare   records -> normalized text and author (`normalize_text`), raw kept for metadata
    features  FeatureUnion of
                words   word 1-3-grams of the normalized text
                chars   character 1-5-grams within words of the normalized text
                author  words of the normalized author name and website domain
                meta    `MetadataFeatures`: links, capitals, repeats, length, digits,
                        listed insults and swear words
                vectors `TokenVectors`: the weighted mean of the text's pretrained token
                        vectors, read with a drawn-out letter cut to one only (in
                        memory only; see models/embeddings.py)
              each branch scaled by its `BRANCH_WEIGHTS` entry
    heads     `LinearHeads`: one calibrated logistic model per head (spam, abuse), each
              with its own regularization chosen by cross-validation

In memory, the text branches are TF-IDF vectorizers with a learned vocabulary. Out of
core, they are stateless `HashingVectorizer`s and the heads are fitted chunk by chunk
with `partial_fit`, so the label set never has to fit in memory (`models.out_of_core`
reads it again for each pass).

Nothing is done to the text outside this pipeline: the same object that was trained is
the one saved, loaded and asked for scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline

from models.embeddings import VECTOR_DIMENSIONS, TokenVectors
from models.features import MetadataFeatures, measure_fields
from models.heads import HEADS, LinearHeads
from models.normalize import normalize_author, normalize_forms
from models.records import as_comment
from models.vectorizers import CompactTfidfVectorizer

TEXT_BRANCHES = ("words", "chars", "author")
VECTORS = "vectors"
# Chosen by cross-validation on the corpora (docs/model.md): trigrams catch phrases
# such as "check out my" and "like this comment", single characters and short
# character n-grams catch emoji and odd symbols that bots repeat.
WORD_NGRAMS = (1, 3)
CHAR_NGRAMS = (1, 5)
# Relative weight of each branch in the shared matrix. The heads' L2 penalty treats a
# unit of weight alike in every column, so scaling a branch up makes its evidence
# cheaper for the model to use. Chosen on the held-out figures of docs/model.md: word
# n-grams a little above character n-grams (whole phrases carry spam and abuse better
# than fragments), and the author words and metadata down, because author names differ
# from one site or video to the next and a few dense metadata columns otherwise pull
# weight from the text. Every reason still is `x_i * w_i` of the weighted matrix.
BRANCH_WEIGHTS = {"words": 1.25, "chars": 1.0, "author": 0.25, "vectors": 1.0, "meta": 0.5}
# Hashed feature spaces for the out-of-core mode: large enough that collisions between
# the few hundred thousand n-grams of a big corpus stay rare, small enough that the two
# heads' weight vectors stay a few tens of megabytes.
HASHED_TEXT_FEATURES = 2**20
HASHED_AUTHOR_FEATURES = 2**16
# Words are whole tokens, including the `urltoken` and `domain_...` markers.
WORD_PATTERN = r"(?u)\b\w+\b"
# Stands in for an empty author name, so the author vocabulary is never empty (many
# corpora have no authors) and "no name given" can itself be learned.
NO_AUTHOR = "noauthor"


@dataclass(frozen=True, slots=True)
class PreparedComment:
    """A comment with its normalized text and raw metadata values beside the raw fields.

    The metadata values are measured once here: the metadata branch scales them, and the
    reasons describe them, without measuring the comment again.
    """

    text: str
    author: str
    url: str
    normalized_text: str
    normalized_author: str
    metadata: tuple[float, ...] = ()
    # The normalized text with a drawn-out letter cut to one only (`normalize_forms`).
    meaning_text: str = ""


def prepare(record: Any) -> PreparedComment:
    """Normalize one record (a `CommentText`, str, mapping or `Example`) and measure its metadata."""
    if isinstance(record, PreparedComment):
        return record
    comment = as_comment(record)
    normalized, meaning = normalize_forms(comment.text)
    return PreparedComment(
        text=comment.text,
        author=comment.author,
        url=comment.url,
        normalized_text=normalized,
        normalized_author=normalize_author(comment.author, comment.url) or NO_AUTHOR,
        metadata=measure_fields(comment.text, comment.author, comment.url, normalized),
        meaning_text=meaning,
    )


class PrepareComments(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Stateless step turning input records into `PreparedComment`s."""

    def fit(self, records: Sequence[Any], y: Any = None) -> PrepareComments:
        """Do nothing: normalization has no parameters to learn."""
        return self

    def transform(self, records: Sequence[Any]) -> list[PreparedComment]:
        """Return one `PreparedComment` per record, in order."""
        return [prepare(record) for record in records]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags


class Field(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Stateless step selecting one string attribute of each prepared comment."""

    def __init__(self, name: str = "normalized_text") -> None:
        self.name = name

    def fit(self, records: Sequence[Any], y: Any = None) -> Field:
        """Do nothing: selection has no parameters to learn."""
        return self

    def transform(self, records: Sequence[Any]) -> list[str]:
        """Return the `name` attribute of every record."""
        return [str(getattr(record, self.name)) for record in records]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags


def _text_vectorizer(kind: str, out_of_core: bool, min_df: int, max_features: int) -> Any:
    if kind == "chars":
        options: dict[str, Any] = {"analyzer": "char_wb", "ngram_range": CHAR_NGRAMS}
    elif kind == "words":
        options = {"analyzer": "word", "ngram_range": WORD_NGRAMS, "token_pattern": WORD_PATTERN}
    else:
        options = {"analyzer": "word", "ngram_range": (1, 1), "token_pattern": WORD_PATTERN}
    # The text is already case-folded by `normalize_text`; lowercasing again is wasted work.
    options.update(lowercase=False, dtype=np.float32)
    if out_of_core:
        size = HASHED_AUTHOR_FEATURES if kind == "author" else HASHED_TEXT_FEATURES
        return HashingVectorizer(n_features=size, alternate_sign=False, norm="l2", **options)
    return CompactTfidfVectorizer(min_df=min_df, max_features=max_features, sublinear_tf=True, **options)


def build_features(
    *,
    out_of_core: bool = False,
    min_df: int = 1,
    max_features: int = 300_000,
    branch_weights: Mapping[str, float] | None = None,
) -> FeatureUnion:
    """Return the feature union (word, character, author, metadata branches), each branch
    scaled by its `branch_weights` entry (default `BRANCH_WEIGHTS`)."""
    field = {"words": "normalized_text", "chars": "normalized_text", "author": "normalized_author"}
    branches: list[tuple[str, Any]] = [
        (
            kind,
            Pipeline(
                [
                    ("field", Field(field[kind])),
                    ("vectorizer", _text_vectorizer(kind, out_of_core, min_df, max_features)),
                ]
            ),
        )
        for kind in TEXT_BRANCHES
    ]
    branches.append(("meta", MetadataFeatures()))
    if not out_of_core:
        # Last, so that the spam head can leave it out (see `build_pipeline`).
        vectors = Pipeline([("field", Field("meaning_text")), ("vectorizer", TokenVectors())])
        branches.append((VECTORS, vectors))
    # The union refuses a weight for a branch it lacks (out of core: the vectors).
    names = {name for name, _branch in branches}
    weights = {name: weight for name, weight in (branch_weights or BRANCH_WEIGHTS).items() if name in names}
    return FeatureUnion(branches, transformer_weights=weights)


def build_pipeline(
    *,
    out_of_core: bool = False,
    seed: int = 0,
    heads: Sequence[str] = HEADS,
    min_df: int = 1,
    max_features: int = 300_000,
    C: float | Mapping[str, float] = 4.0,  # noqa: N803 - scikit-learn's name for it
    C_grid: tuple[float, ...] | None = None,  # noqa: N803
    calibration_folds: int = 3,
    branch_weights: Mapping[str, float] | None = None,
) -> Pipeline:
    """Return the unfitted pipeline: prepare -> features -> heads.

    Args:
        out_of_core: hashed features and `partial_fit` heads instead of TF-IDF and
            batch-fitted logistic regression.
        seed: random state for every randomized step, so the same data gives the same model.
        heads: the label names the model may learn, in column order of the label matrix.
        min_df: minimum document frequency of a TF-IDF term (ignored out of core).
        max_features: cap on each TF-IDF vocabulary (ignored out of core).
        C: inverse regularization strength of the logistic regressions, one for all
            heads or one per head; used when `C_grid` is None or a head has too few labels.
        C_grid: candidate values of C; each head keeps the one its out-of-fold scores
            rank best with (see `models.heads`).
        calibration_folds: folds used to fit the sigmoid calibration of each head.
        branch_weights: scale of each feature branch (default `BRANCH_WEIGHTS`).
    """
    return Pipeline(
        [
            ("prepare", PrepareComments()),
            (
                "features",
                build_features(
                    out_of_core=out_of_core,
                    min_df=min_df,
                    max_features=max_features,
                    branch_weights=branch_weights,
                ),
            ),
            (
                "heads",
                LinearHeads(
                    heads=tuple(heads),
                    C=C,
                    C_grid=C_grid,
                    calibration_folds=calibration_folds,
                    out_of_core=out_of_core,
                    random_state=seed,
                    # The pretrained vectors lift both abuse corpora but lower the YouTube
                    # spam figure (docs/model.md), so the spam head leaves them out.
                    unused_last_columns=None if out_of_core else {"spam": VECTOR_DIMENSIONS},
                ),
            ),
        ]
    )
