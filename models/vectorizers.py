"""`CompactTfidfVectorizer`: scikit-learn's TF-IDF, stored compactly and counted fast.

Two changes to `TfidfVectorizer`, neither of which changes a single output value
(the tests compare both against the parent class):

- Storage. skops writes a dict entry by entry, which for a vocabulary of a few hundred
  thousand character n-grams takes seconds and tens of megabytes; the vocabulary is
  stored instead as one NumPy array of terms, written in one block and rebuilt on load.
- Counting character n-grams. `char_wb` n-grams never cross a word boundary, so a
  comment's n-gram counts are the sum of its words' counts. The vocabulary columns of
  each word are cached, so a word seen before is counted with one dictionary lookup
  instead of one per n-gram. IDF weighting and normalization stay scikit-learn's own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

# Bound on cached words; the cache is emptied when full, so memory stays bounded while
# the words of the current traffic fill it again.
WORD_CACHE_SIZE = 100_000


class CompactTfidfVectorizer(TfidfVectorizer):  # type: ignore[misc]
    """A `TfidfVectorizer` with a compact stored form and cached `char_wb` counting."""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        # Caches, rebuilt on demand; the analyzer is a closure over this object.
        state.pop("_word_columns", None)
        state.pop("_analyzer", None)
        vocabulary = state.pop("vocabulary_", None)
        if vocabulary is not None:
            terms = [""] * len(vocabulary)
            for term, index in vocabulary.items():
                terms[index] = term
            state["terms_"] = np.asarray(terms, dtype=str)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        terms = state.pop("terms_", None)
        if terms is not None:
            state["vocabulary_"] = {term: index for index, term in enumerate(terms.tolist())}
        super().__setstate__(state)

    def word_columns(self, word: str) -> np.ndarray:
        """Return the vocabulary columns of one word's character n-grams, with repeats."""
        cache: dict[str, np.ndarray] | None = self.__dict__.get("_word_columns")
        columns = cache.get(word) if cache is not None else None
        if columns is not None:
            return columns
        if cache is None or len(cache) >= WORD_CACHE_SIZE:
            cache = self.__dict__["_word_columns"] = {}
        vocabulary = self.vocabulary_
        found = [vocabulary[g] for g in self._char_analyzer(word) if g in vocabulary]
        columns = cache[word] = np.asarray(found, dtype=np.int64)
        return columns

    def _char_analyzer(self, word: str) -> list[str]:
        analyzer = self.__dict__.get("_analyzer")
        if analyzer is None:
            analyzer = self.__dict__["_analyzer"] = self.build_analyzer()
        result: list[str] = analyzer(word)
        return result

    def _cached_counts(self, documents: Iterable[str]) -> sp.csr_matrix:
        """Term counts as CountVectorizer computes them, summed from cached words."""
        pieces: list[np.ndarray] = []
        lengths: list[int] = []
        lookup = self.word_columns
        for document in documents:
            start = len(pieces)
            pieces.extend(map(lookup, document.split()))
            lengths.append(sum(map(len, pieces[start:])))
        all_columns = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
        rows = np.repeat(np.arange(len(lengths)), lengths)
        ones = np.ones(len(all_columns), dtype=self.dtype)
        # COO -> CSR adds up repeated (row, column) pairs, which is the counting itself.
        matrix = sp.coo_matrix(
            (ones, (rows, all_columns)), shape=(len(lengths), len(self.vocabulary_))
        ).tocsr()
        matrix.sort_indices()
        if self.binary:
            matrix.data.fill(1)
        return matrix

    def transform(self, raw_documents: Any) -> Any:
        """Transform documents to TF-IDF rows (cached counting for fitted `char_wb`)."""
        fast = (
            self.analyzer == "char_wb"
            and hasattr(self, "vocabulary_")
            and not self.lowercase
            and self.strip_accents is None
            and self.preprocessor is None
            and self.input == "content"
            and not isinstance(raw_documents, str)
        )
        if not fast:
            return super().transform(raw_documents)
        return self._tfidf.transform(self._cached_counts(raw_documents), copy=False)
