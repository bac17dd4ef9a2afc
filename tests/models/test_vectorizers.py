"""The compact TF-IDF vectorizer gives exactly scikit-learn's output."""

from __future__ import annotations

import numpy as np
import pytest
import skops.io as sio
from sklearn.feature_extraction.text import TfidfVectorizer

from models.classifier import Classifier
from models.examples import Example
from models.pipeline import WORD_PATTERN, prepare
from models.training import TrainingResult
from models.vectorizers import CompactTfidfVectorizer

OPTIONS = {"ngram_range": (2, 5), "lowercase": False, "sublinear_tf": True, "dtype": np.float32}


@pytest.fixture(scope="module")
def documents(tiny_examples: list[Example]) -> list[str]:
    return [prepare(e).normalized_text for e in tiny_examples] + ["", "   ", "unseen qqqq words", "x"]


@pytest.mark.parametrize(
    ("analyzer", "ngram_range"),
    [("char_wb", (2, 5)), ("char_wb", (1, 5)), ("word", (2, 5)), ("word", (1, 3)), ("word", (1, 1))],
)
def test_same_output_as_tfidf_vectorizer(
    documents: list[str], analyzer: str, ngram_range: tuple[int, int]
) -> None:
    options = {**OPTIONS, "ngram_range": ngram_range}
    if analyzer == "word":
        options["token_pattern"] = WORD_PATTERN
    ours = CompactTfidfVectorizer(analyzer=analyzer, **options).fit(documents[:40])
    theirs = TfidfVectorizer(analyzer=analyzer, **options).fit(documents[:40])
    for _ in range(2):  # the second pass reads the word cache
        a, b = ours.transform(documents), theirs.transform(documents)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a.indptr, b.indptr)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize(
    "weighting",
    [
        {"norm": "l1"},
        {"norm": None},
        {"sublinear_tf": False},
        {"use_idf": False, "norm": "l1"},
    ],
)
def test_same_weighting_as_tfidf_vectorizer(documents: list[str], weighting: dict[str, object]) -> None:
    options = {**OPTIONS, **weighting}
    ours = CompactTfidfVectorizer(analyzer="char_wb", **options).fit(documents[:40])
    theirs = TfidfVectorizer(analyzer="char_wb", **options).fit(documents[:40])
    a, b = ours.transform(documents), theirs.transform(documents)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)


def test_round_trip_through_skops(documents: list[str]) -> None:
    vectorizer = CompactTfidfVectorizer(analyzer="char_wb", **OPTIONS).fit(documents)
    vectorizer.transform(documents)  # fill the caches, which must not be stored
    data = sio.dumps(vectorizer)
    loaded = sio.loads(data, trusted=["models.vectorizers.CompactTfidfVectorizer"])
    assert loaded.vocabulary_ == vectorizer.vocabulary_
    assert (loaded.transform(documents) != vectorizer.transform(documents)).nnz == 0


def test_classifier_features_match_the_union(trained: TrainingResult, documents: list[str]) -> None:
    classifier: Classifier = trained.classifier
    prepared = [prepare(d) for d in documents]
    expected = classifier.pipeline.named_steps["features"].transform(prepared).tocsr()
    assert (classifier.feature_matrix(prepared) != expected).nnz == 0
