"""The compact TF-IDF vectorizer gives exactly scikit-learn's output."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import skops.io as sio
from sklearn.feature_extraction.text import TfidfVectorizer

from models.char_grams import CharGramIndex
from models.classifier import Classifier
from models.examples import Example
from models.pipeline import WORD_PATTERN, prepare
from models.training import TrainingResult
from models.vectorizers import CompactTfidfVectorizer

OPTIONS = {"ngram_range": (2, 5), "lowercase": False, "sublinear_tf": True, "dtype": np.float32}


@pytest.fixture(scope="module")
def documents(tiny_examples: list[Example]) -> list[str]:
    return [prepare(e).normalized_text for e in tiny_examples] + ["", "   ", "unseen qqqq words", "x"]


def _same_as_scikit_learn(
    documents: list[str], analyzer: str, options: dict[str, Any], passes: int = 1
) -> None:
    ours = CompactTfidfVectorizer(analyzer=analyzer, **options).fit(documents[:40])
    theirs = TfidfVectorizer(analyzer=analyzer, **options).fit(documents[:40])
    for _ in range(passes):  # a second pass reads the caches the first filled
        _same_rows(ours.transform(documents), theirs.transform(documents))


@pytest.mark.parametrize("ngram_range", [(2, 5), (1, 5)])
@pytest.mark.usefixtures("char_counting")
def test_same_character_output_as_tfidf_vectorizer(
    documents: list[str], ngram_range: tuple[int, int]
) -> None:
    _same_as_scikit_learn(documents, "char_wb", {**OPTIONS, "ngram_range": ngram_range}, passes=2)


@pytest.mark.parametrize("ngram_range", [(2, 5), (1, 3), (1, 1)])
def test_same_word_output_as_tfidf_vectorizer(documents: list[str], ngram_range: tuple[int, int]) -> None:
    options = {**OPTIONS, "ngram_range": ngram_range, "token_pattern": WORD_PATTERN}
    _same_as_scikit_learn(documents, "word", options, passes=2)


WEIGHTINGS = [
    {"norm": "l1"},
    {"norm": None},
    {"sublinear_tf": False},
    {"use_idf": False, "norm": "l1"},
    {"binary": True},
]


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.usefixtures("char_counting")
def test_same_character_weighting_as_tfidf_vectorizer(
    documents: list[str], weighting: dict[str, Any]
) -> None:
    _same_as_scikit_learn(documents, "char_wb", {**OPTIONS, **weighting})


@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_same_word_weighting_as_tfidf_vectorizer(documents: list[str], weighting: dict[str, Any]) -> None:
    _same_as_scikit_learn(documents, "word", {**OPTIONS, **weighting})


@pytest.mark.parametrize("analyzer", ["char_wb", "word"])
@pytest.mark.parametrize("limits", [{}, {"min_df": 2}, {"max_features": 150}, {"min_df": 2, "max_df": 0.5}])
def test_fits_as_tfidf_vectorizer(documents: list[str], analyzer: str, limits: dict[str, object]) -> None:
    # The same vocabulary and the very same training matrix, down to the order of the
    # columns within a row, which the solvers' sums follow.
    options = {**OPTIONS, "ngram_range": (1, 5) if analyzer == "char_wb" else (1, 3), **limits}
    if analyzer == "word":
        options["token_pattern"] = WORD_PATTERN
    ours = CompactTfidfVectorizer(analyzer=analyzer, **options)
    theirs = TfidfVectorizer(analyzer=analyzer, **options)
    a, b = ours.fit_transform(documents), theirs.fit_transform(documents)
    assert ours.vocabulary_ == theirs.vocabulary_
    assert type(a) is type(b) and a.indices.dtype == b.indices.dtype
    _same_rows(a, b)
    np.testing.assert_array_equal(ours.idf_, theirs.idf_)


def test_fitting_on_no_words_fails_as_scikit_learn_does() -> None:
    with pytest.raises(ValueError, match="empty vocabulary"):
        CompactTfidfVectorizer(analyzer="char_wb", **OPTIONS).fit(["", "  \n"])


def test_a_vocabulary_the_stored_form_cannot_keep_is_refused_when_saved() -> None:
    # NumPy strings drop a trailing NUL: "ab\x00" would come back as "ab", a term already there.
    fitted = CompactTfidfVectorizer(analyzer="char_wb", **OPTIONS).fit(["ab\x00"])
    with pytest.raises(ValueError, match="NUL"):
        sio.dumps(fitted)


def test_tokens_holding_a_space_are_counted_by_scikit_learn() -> None:
    # A token pattern that lets a token hold a space makes "a b" both a token and a
    # bigram; the integer n-gram lookup splits terms at spaces, so it must stand aside.
    documents = ["red fox, lazy dog, red fox", "lazy dog, red", "fox, lazy dog red fox"]
    options = {**OPTIONS, "ngram_range": (1, 2), "token_pattern": r"[^,]+"}
    ours = CompactTfidfVectorizer(analyzer="word", **options).fit(documents)
    theirs = TfidfVectorizer(analyzer="word", **options).fit(documents)
    assert ours.transform_parts(documents) is None
    _same_rows(ours.transform(documents), theirs.transform(documents))


# Emoji, Cyrillic and CJK words, characters on either side of 4,096, whitespace other
# than spaces, a lone surrogate, short and long words.
AWKWARD = [
    "emoji \U0001f600 in the middle, and 1\U0001f600x inside a word",
    "\u0436\u0436\u0436 \u043a\u0438\u0440\u0438\u043b\u043b\u0438\u0446\u0430 \u65e5\u672c\u8a9e, english",
    "tab\tseparated\u3000ideographic\xa0no-break  double\nline",
    "lone \ud800 surrogate and a\ud800b",
    "edge \u0fff\u0ffe and \u1000\u1001 and a\u0fffb a\u1000b",
    "a b c i o",
    "",
    "x" * 40 + " " + "yz" * 30,
]


@pytest.mark.parametrize("ngram_range", [(1, 5), (2, 5), (3, 5), (1, 3), (1, 1), (4, 5), (1, 6)])
@pytest.mark.usefixtures("char_counting")
def test_characters_of_every_width_are_counted_as_scikit_learn_does(
    documents: list[str], ngram_range: tuple[int, int]
) -> None:
    # (4, 5) and (1, 6) are beyond the batch lookup: counted word by word.
    options = {**OPTIONS, "ngram_range": ngram_range}
    training = documents[:40] + AWKWARD[:5]
    ours = CompactTfidfVectorizer(analyzer="char_wb", **options).fit(training)
    theirs = TfidfVectorizer(analyzer="char_wb", **options).fit(training)
    batch = AWKWARD + documents
    for _ in range(2):  # the second pass reads the word cache
        _same_rows(ours.transform(batch), theirs.transform(batch))
    for document in AWKWARD:  # a batch of one
        _same_rows(ours.transform([document]), theirs.transform([document]))
    _same_rows(ours.transform(["", " \t "]), theirs.transform(["", " \t "]))


@pytest.mark.usefixtures("char_counting")
def test_random_text_is_counted_as_scikit_learn_does() -> None:
    # Letters, digits and marks from several scripts, emoji, every kind of whitespace
    # str.split knows, NUL: drawn at random (seeded), so that every mix is met somewhere.
    alphabet = [*"abcxyz019.-!'", "\u00e9", "\u0436", "\u0fff", "\u1000", "\u4e00", "\U0001f600", "\x00"]
    spaces = [" ", "  ", "\t", "\n", "\xa0", "\u2003", "\u3000", "\x1c"]
    rng = random.Random(7)

    def text() -> str:
        words = ["".join(rng.choices(alphabet, k=rng.randint(1, 9))) for _ in range(rng.randint(0, 12))]
        return "".join(word + rng.choice(spaces) for word in words)

    training, batch = [text() for _ in range(300)], [text() for _ in range(300)]
    options = {**OPTIONS, "ngram_range": (1, 5)}
    ours = CompactTfidfVectorizer(analyzer="char_wb", **options).fit(training)
    theirs = TfidfVectorizer(analyzer="char_wb", **options).fit(training)
    _same_rows(ours.transform(batch), theirs.transform(batch))


@pytest.mark.parametrize("ngram_range", [(1, 5), (2, 4), (4, 5)])
@pytest.mark.usefixtures("char_counting")
def test_many_words_columns_are_each_word_s_columns(
    documents: list[str], ngram_range: tuple[int, int]
) -> None:
    options = {**OPTIONS, "ngram_range": ngram_range}
    vectorizer = CompactTfidfVectorizer(analyzer="char_wb", **options).fit(documents[:40] + AWKWARD)
    words = [word for document in AWKWARD + documents for word in document.split()]
    together, sizes = vectorizer.words_columns(words)
    assert len(sizes) == len(words) and sizes.sum() == len(together)
    for word, columns in zip(words, np.split(together, np.cumsum(sizes)[:-1]), strict=True):
        # In the same order too: the reasons' sums follow it.
        np.testing.assert_array_equal(columns, vectorizer._columns_of(word))


@pytest.mark.parametrize(
    ("options", "made"),
    [
        ({"analyzer": "char_wb"}, "_char_index_of"),
        ({"analyzer": "word"}, "_ngram_index_of"),
        ({"analyzer": "char_wb", "ngram_range": (1, 6)}, None),  # beyond the index
        ({"analyzer": "char_wb", "lowercase": True}, None),  # scikit-learn's own transform
    ],
)
def test_lookups_are_made_where_scoring_uses_them(
    documents: list[str], options: dict[str, Any], made: str | None
) -> None:
    vectorizer = CompactTfidfVectorizer(**{**OPTIONS, **options}).fit(documents)
    vectorizer.make_lookups()
    assert [name for name in ("_char_index_of", "_ngram_index_of") if name in vectorizer.__dict__] == (
        [made] if made else []
    )


def test_the_index_finds_nothing_in_no_documents_and_refuses_lengths_beyond_it() -> None:
    index = CharGramIndex({" a": 0, "a": 1})
    rows, columns, left = index.occurrences([], 1, 5)
    assert (len(rows), len(columns), left) == (0, 0, [])
    with pytest.raises(ValueError, match="n-grams of 1 to 6 characters are not indexed"):
        index.occurrences(["a"], 1, 6)


def test_a_new_fit_looks_up_its_own_vocabulary(documents: list[str]) -> None:
    options = {**OPTIONS, "ngram_range": (1, 3), "token_pattern": WORD_PATTERN}
    ours = CompactTfidfVectorizer(analyzer="word", **options).fit(documents[:20])
    ours.transform(documents)  # makes the first vocabulary's n-gram index
    ours.fit(documents[20:40])
    theirs = TfidfVectorizer(analyzer="word", **options).fit(documents[20:40])
    _same_rows(ours.transform(documents), theirs.transform(documents))


@pytest.mark.usefixtures("char_counting")
def test_a_new_fit_looks_up_its_own_character_vocabulary(documents: list[str]) -> None:
    ours = CompactTfidfVectorizer(analyzer="char_wb", **OPTIONS).fit(documents[:20])
    ours.transform(documents)  # makes the first vocabulary's index
    ours.fit(documents[20:40])
    theirs = TfidfVectorizer(analyzer="char_wb", **OPTIONS).fit(documents[20:40])
    _same_rows(ours.transform(documents), theirs.transform(documents))


def _same_rows(a: sp.csr_matrix, b: sp.csr_matrix) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.usefixtures("char_counting")
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
