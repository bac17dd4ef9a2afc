"""`CompactTfidfVectorizer`: scikit-learn's TF-IDF, stored compactly and counted fast.

Changes to `TfidfVectorizer`, none of which changes a single output value
(the tests compare both against the parent class):

- Storage. skops writes a dict entry by entry, which for a vocabulary of a few hundred
  thousand character n-grams takes seconds and tens of megabytes; the vocabulary is
  stored instead as one NumPy array of terms, written in one block and rebuilt on load.
- Counting character n-grams. `char_wb` n-grams never cross a word boundary, so a
  comment's n-gram counts are the sum of its words' counts. The vocabulary columns of
  each word are cached, so a word seen before is counted with one dictionary lookup
  instead of one per n-gram.
- Counting word n-grams. Tokens, n-grams and vocabulary lookups are made with
  `map`/`zip` over whole lists and counted in one sparse-matrix conversion per batch,
  instead of scikit-learn's per-term loop and per-document dictionary.

IDF weighting and normalization are scikit-learn's arithmetic, applied without its
input checks, which cost more than the arithmetic for a few comments.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import chain, repeat
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l1, inplace_csr_row_normalize_l2

from models.sparse_rows import Parts, counted, word_occurrences
from models.word_cache import cached_for_word


class CompactTfidfVectorizer(TfidfVectorizer):  # type: ignore[misc]
    """A `TfidfVectorizer` with a compact stored form and cached `char_wb` counting."""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        # Caches, rebuilt on demand; the analyzer is a closure over this object.
        state.pop("_word_columns", None)
        state.pop("_analyzer", None)
        state.pop("_token_finder", None)
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
        return cached_for_word(self, "_word_columns", word, self._columns_of)

    def _columns_of(self, word: str) -> np.ndarray:
        found = [c for c in map(self.vocabulary_.get, self._char_analyzer(word)) if c is not None]
        return np.asarray(found, dtype=np.int64)

    def _char_analyzer(self, word: str) -> list[str]:
        """The `char_wb` n-grams of one word (no whitespace inside), as scikit-learn makes them."""
        if any(map(str.isspace, word)):
            analyzer = self.__dict__.get("_analyzer")
            if analyzer is None:
                analyzer = self.__dict__["_analyzer"] = self.build_analyzer()
            result: list[str] = analyzer(word)
            return result
        padded = f" {word} "
        size = len(padded)
        low, high = self.ngram_range
        if size > high:  # the common case: every n-gram length fits in the word
            return [padded[i : i + n] for n in range(low, high + 1) for i in range(size - n + 1)]
        grams: list[str] = []
        for n in range(low, high + 1):
            if size <= n:  # a word shorter than n counts once, and longer n-grams not at all
                grams.append(padded)
                break
            grams.extend(padded[i : i + n] for i in range(size - n + 1))
        return grams

    def _cached_counts(self, documents: Iterable[str]) -> Parts:
        """Term counts as CountVectorizer computes them, summed from cached words."""
        rows, columns, count = word_occurrences(documents, self.word_columns)
        return self._count_matrix(columns, rows, count)

    def _word_counts(self, documents: Iterable[str]) -> Parts:
        """Term counts of word n-grams as CountVectorizer computes them, in fewer Python steps."""
        find = self.__dict__.get("_token_finder")
        if find is None:
            find = self.__dict__["_token_finder"] = re.compile(self.token_pattern).findall
        low, high = self.ngram_range
        get = self.vocabulary_.get
        unknown = repeat(-1)  # the column given to terms outside the vocabulary
        # All documents' tokens in one list: each n-gram length is then one pass over the
        # batch, and the windows that straddle two documents are dropped afterwards.
        token_lists = list(map(find, documents))
        tokens = list(chain.from_iterable(token_lists))
        document_of = np.repeat(np.arange(len(token_lists)), [len(t) for t in token_lists])
        all_rows: list[np.ndarray] = []
        all_columns: list[np.ndarray] = []
        for n in range(low, high + 1):
            windows = len(tokens) - n + 1
            if windows <= 0:
                break
            # The shifted lists differ in length; zip stops at the shortest on purpose.
            grams = tokens if n == 1 else map(" ".join, zip(*(tokens[i:] for i in range(n)), strict=False))
            columns = np.fromiter(map(get, grams, unknown), dtype=np.int64, count=windows)
            keep = (columns >= 0) & (document_of[:windows] == document_of[n - 1 :])
            all_rows.append(document_of[:windows][keep])
            all_columns.append(columns[keep])
        if not all_columns:
            empty = np.zeros(0, dtype=np.int64)
            return self._count_matrix(empty, empty, len(token_lists))
        return self._count_matrix(np.concatenate(all_columns), np.concatenate(all_rows), len(token_lists))

    def _count_matrix(self, all_columns: np.ndarray, rows: np.ndarray, documents: int) -> Parts:
        """CSR counts from (row, column) pairs, one pair per occurrence of a term."""
        counts = counted(rows, all_columns, (documents, len(self.vocabulary_)), self.dtype)
        if self.binary:
            counts.data.fill(1)
        return counts

    def transform(self, raw_documents: Any) -> Any:
        """Transform documents to TF-IDF rows (cached counting when fitted on plain text)."""
        parts = self.transform_parts(raw_documents)
        return super().transform(raw_documents) if parts is None else parts.matrix()

    def transform_parts(self, raw_documents: Any) -> Parts | None:
        """`transform`'s rows as `Parts`, or None where only scikit-learn's own transform
        applies (options the cached counting does not reproduce)."""
        plain = (
            hasattr(self, "vocabulary_")
            and not self.lowercase
            and self.strip_accents is None
            and self.preprocessor is None
            and self.input == "content"
            and not isinstance(raw_documents, str)
        )
        if plain and self.analyzer == "char_wb":
            return self._weigh(self._cached_counts(raw_documents))
        if (
            plain
            and self.analyzer == "word"
            and self.tokenizer is None
            and self.stop_words is None
            and re.compile(self.token_pattern).groups == 0
        ):
            return self._weigh(self._word_counts(raw_documents))
        return None

    def _weigh(self, counts: Parts) -> Parts:
        """TF-IDF rows from our own counts, in place, as `TfidfTransformer.transform`
        computes them.

        The counts come from the methods above, so scikit-learn's input checks (a third of
        the cost of scoring a few comments, mostly its dataframe detection) are skipped.
        """
        data = counts.data
        if self.sublinear_tf:
            np.log(data, out=data)
            data += 1.0
        if self.use_idf:
            data *= self._tfidf.idf_[counts.indices]
        if self.norm == "l2":
            inplace_csr_row_normalize_l2(counts)
        elif self.norm == "l1":
            inplace_csr_row_normalize_l1(counts)
        return counts
