"""`CompactTfidfVectorizer`: scikit-learn's TF-IDF, stored compactly and counted fast.

Changes to `TfidfVectorizer`, none of which changes a single output value
(the tests compare both against the parent class):

- Storage. skops writes a dict entry by entry, which for a vocabulary of a few hundred
  thousand character n-grams takes seconds and tens of megabytes; the vocabulary is
  stored instead as one NumPy array of terms, written in one block and rebuilt on load.
- Counting character n-grams. A batch's n-grams are integer keys looked up in a hash
  table of the vocabulary, all at once (`models.char_grams`); a small batch, a word
  holding a character the keys cannot hold, and every word while fitting, is counted
  word by word: `char_wb` n-grams never cross a word boundary, so a comment's counts are
  the sum of its words'. Those words' vocabulary columns are cached, and fitting makes
  each distinct word's n-grams once.
- Sorting the vocabulary when fitting: the terms alone are sorted, and renumbered with
  NumPy instead of one Python step per term.
- Counting word n-grams. Tokens have integer ids and n-grams integer keys
  (`NgramIndex`), so each n-gram length is looked up for the whole batch in one sorted
  search, instead of a string join and a dictionary lookup per n-gram.

IDF weighting and normalization are scikit-learn's arithmetic, applied without its
input checks, which cost more than the arithmetic for a few comments.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain, repeat
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l1, inplace_csr_row_normalize_l2

from models import char_grams
from models.char_grams import CharGramIndex, indexed_lengths
from models.sparse_rows import Parts, counted, word_occurrences
from models.word_cache import Columns, cached_for_words, joined


class NgramIndex:
    """A vocabulary's word n-grams as integers, so that a batch's n-grams are found with NumPy.

    scikit-learn names an n-gram by its tokens joined with spaces and looks each one up
    as a new string. Here every token of the vocabulary has an id, and an n-gram of n > 1
    tokens a key made of the slot of its first n - 1 tokens and the id of its last. Its
    slot is its place among the sorted keys of its length, which hold every term of that
    length and every beginning of a longer term. A batch's n-grams of one length are then
    found from the slots of the length before in one sorted search.

    Terms are split at spaces, which is exact as long as no token holds a space: true of
    the pipeline's token pattern, and a batch where one does is left to scikit-learn.
    """

    def __init__(self, vocabulary: Mapping[str, int], longest: int) -> None:
        # Whole-list operations only: a list per term would cost more than the rest.
        terms = list(vocabulary)
        term_columns = np.fromiter(vocabulary.values(), dtype=np.int64, count=len(terms))
        lengths = np.fromiter(map(str.count, terms, repeat(" ")), dtype=np.int64, count=len(terms)) + 1
        every_token = " ".join(terms).split(" ")
        self.token_ids = {token: i for i, token in enumerate(dict.fromkeys(every_token))}
        # Row i, position j: the id of term i's j-th token, -1 past its end. A term longer
        # than `longest` tokens is never looked up, so it is given no length.
        term_of = np.repeat(np.arange(len(terms)), lengths)
        position = np.arange(len(every_token)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        fits = position < longest
        ids = np.full((len(terms), longest), -1, dtype=np.int64)
        token_ids = np.fromiter(map(self.token_ids.__getitem__, every_token), dtype=np.int64)
        ids[term_of[fits], position[fits]] = token_ids[fits]
        lengths[lengths > longest] = 0
        # Every table ends in a sentinel that slot -1 reads: no key (the largest integer,
        # never wanted, so a search never runs past the end) and no column.
        self._base = len(self.token_ids) + 1
        self._keys: list[np.ndarray] = []  # from two tokens on; one token's slot is its id
        self._columns = [np.full(self._base, -1, dtype=np.int64)]
        self._columns[0][ids[lengths == 1, 0]] = term_columns[lengths == 1]
        slots = ids[:, 0]
        for n in range(2, longest + 1):
            reaching = lengths >= n
            keys, slot_of = np.unique(self._key(slots[reaching], ids[reaching, n - 1]), return_inverse=True)
            columns = np.full(len(keys) + 1, -1, dtype=np.int64)
            ending = lengths[reaching] == n
            columns[slot_of[ending]] = term_columns[reaching][ending]
            self._keys.append(np.append(keys, np.iinfo(np.int64).max))
            self._columns.append(columns)
            slots = np.full(len(terms), -1, dtype=np.int64)
            slots[reaching] = slot_of

    def _key(self, slots: np.ndarray, ids: np.ndarray) -> np.ndarray:
        # Unknown parts (-1) give keys no n-gram has: below zero for an unknown beginning,
        # a last part of 0 for an unknown last token.
        keys: np.ndarray = slots * self._base + ids + 1
        return keys

    def extended(self, n: int, slots: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The slots of the n-grams made of the (n - 1)-grams at ``slots`` followed by the
        tokens ``ids``; -1 where either is unknown (-1) or the n-gram is not indexed."""
        keys = self._keys[n - 2]
        wanted = self._key(slots, ids)
        found = np.searchsorted(keys, wanted)
        return np.where(keys[found] == wanted, found, -1)

    def columns(self, n: int, slots: np.ndarray) -> np.ndarray:
        """The vocabulary columns of the n-grams at ``slots``; -1 for none (not a term)."""
        found: np.ndarray = self._columns[n - 1][slots]
        return found


class CompactTfidfVectorizer(TfidfVectorizer):  # type: ignore[misc]
    """A `TfidfVectorizer` with a compact stored form and cached `char_wb` counting."""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        # Caches, rebuilt on demand; the analyzer is a closure over this object.
        state.pop("_word_columns", None)
        state.pop("_word_columns_of", None)
        state.pop("_analyzer", None)
        state.pop("_token_finder", None)
        state.pop("_ngram_index_of", None)
        state.pop("_char_index_of", None)
        vocabulary = state.pop("vocabulary_", None)
        if vocabulary is not None:
            terms = [""] * len(vocabulary)
            for term, index in vocabulary.items():
                terms[index] = term
            stored = np.asarray(terms, dtype=str)
            if stored.tolist() != terms:  # NumPy strings drop a trailing NUL: refuse, not corrupt
                raise ValueError("a vocabulary term holds a character the stored form cannot keep (NUL)")
            state["terms_"] = stored
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        terms = state.pop("terms_", None)
        if terms is not None:
            state["vocabulary_"] = {term: index for index, term in enumerate(terms.tolist())}
        super().__setstate__(state)

    def columns_per_word(self, words: Sequence[str]) -> list[Columns]:
        """Return the vocabulary columns of each word's character n-grams, with repeats."""
        if self.__dict__.get("_word_columns_of") is not self.vocabulary_:  # fitted again since
            self.__dict__.pop("_word_columns", None)
            self.__dict__["_word_columns_of"] = self.vocabulary_
        return cached_for_words(self, "_word_columns", words, self._columns_of)

    def words_columns(self, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return the vocabulary columns of each word's character n-grams (a word: not
        empty, no whitespace), with repeats, in the analyzer's order, one word after the
        other, and how many each word has; found for all the words at once unless they are
        few or the lengths are not indexed."""
        if not self._batch_lookup(words):
            return joined(self.columns_per_word(words))
        low, high = self.ngram_range
        rows, columns = self._with_words_left(*self._char_index().occurrences(words, low, high))
        return columns[np.argsort(rows, kind="stable")], np.bincount(rows, minlength=len(words))

    def _with_words_left(
        self, rows: np.ndarray, columns: np.ndarray, left: list[tuple[int, str]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``rows`` and ``columns`` with the n-grams of the (row, word) pairs the batch
        lookup ``left`` to the per-word path added."""
        if not left:
            return rows, columns
        extra, sizes = joined(self.columns_per_word([word for _row, word in left]))
        owners = np.asarray([row for row, _word in left], dtype=np.int64)
        return np.concatenate([rows, np.repeat(owners, sizes)]), np.concatenate([columns, extra])

    def _columns_of(self, word: str) -> Columns:
        return tuple(c for c in map(self.vocabulary_.get, self._char_analyzer(word)) if c is not None)

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

    def _char_counts(self, documents: Iterable[str]) -> Parts:
        """Term counts of `char_wb` n-grams as CountVectorizer computes them: looked up for
        the whole batch (`CharGramIndex`), and word by word for the words it leaves out,
        or for every word of a small batch or of lengths not indexed."""
        documents = list(documents)
        if not self._batch_lookup(documents):
            rows, columns, count = word_occurrences(documents, self.columns_per_word)
            return self._count_matrix(columns, rows, count)
        low, high = self.ngram_range
        rows, columns = self._with_words_left(*self._char_index().occurrences(documents, low, high))
        return self._count_matrix(columns, rows, len(documents))

    def make_lookups(self) -> None:
        """Make the n-gram index scoring makes on first use (`CharGramIndex` or `NgramIndex`),
        so that processes forked after this share one copy."""
        counting = self._own_counting()
        if counting == "chars" and indexed_lengths(*self.ngram_range):
            self._char_index()
        elif counting == "words":
            self._ngram_index()

    def _batch_lookup(self, texts: Sequence[str]) -> bool:
        """Whether ``texts`` are worth one `CharGramIndex` lookup rather than word by word."""
        characters = sum(map(len, texts))
        return indexed_lengths(*self.ngram_range) and characters >= char_grams.BATCH_LOOKUP_MIN_CHARACTERS

    def _char_index(self) -> CharGramIndex:
        """The vocabulary's `CharGramIndex`, made on first use and again after a new fit."""
        made: tuple[dict[str, int], CharGramIndex] | None = self.__dict__.get("_char_index_of")
        if made is None or made[0] is not self.vocabulary_:
            made = self.__dict__["_char_index_of"] = (self.vocabulary_, CharGramIndex(self.vocabulary_))
        return made[1]

    def _word_counts(self, documents: Iterable[str]) -> Parts | None:
        """Term counts of word n-grams as CountVectorizer computes them, the n-grams found
        as integers (`NgramIndex`); None when a token holds a space."""
        find = self.__dict__.get("_token_finder")
        if find is None:
            find = self.__dict__["_token_finder"] = re.compile(self.token_pattern).findall
        index = self._ngram_index()
        low, high = self.ngram_range
        # All documents' tokens in one list: each n-gram length is then one pass over the
        # batch, and the windows that straddle two documents are dropped afterwards.
        token_lists = list(map(find, documents))
        tokens = list(chain.from_iterable(token_lists))
        if " ".join(tokens).count(" ") > len(tokens) - 1:
            return None
        document_of = np.repeat(np.arange(len(token_lists)), [len(t) for t in token_lists])
        ids = np.fromiter(map(index.token_ids.get, tokens, repeat(-1)), dtype=np.int64, count=len(tokens))
        slots = ids
        all_rows: list[np.ndarray] = []
        all_columns: list[np.ndarray] = []
        for n in range(1, high + 1):
            windows = len(tokens) - n + 1
            if windows <= 0:
                break
            if n > 1:
                slots = index.extended(n, slots[:-1], ids[n - 1 :])
            if n >= low:
                columns = index.columns(n, slots)
                keep = (columns >= 0) & (document_of[:windows] == document_of[n - 1 :])
                all_rows.append(document_of[:windows][keep])
                all_columns.append(columns[keep])
        if not all_columns:
            empty = np.zeros(0, dtype=np.int64)
            return self._count_matrix(empty, empty, len(token_lists))
        return self._count_matrix(np.concatenate(all_columns), np.concatenate(all_rows), len(token_lists))

    def _ngram_index(self) -> NgramIndex:
        """The vocabulary's `NgramIndex`, made on first use and again after a new fit."""
        made: tuple[dict[str, int], NgramIndex] | None = self.__dict__.get("_ngram_index_of")
        if made is None or made[0] is not self.vocabulary_:
            index = NgramIndex(self.vocabulary_, self.ngram_range[1])
            made = self.__dict__["_ngram_index_of"] = (self.vocabulary_, index)
        return made[1]

    def _count_matrix(self, all_columns: np.ndarray, rows: np.ndarray, documents: int) -> Parts:
        """CSR counts from (row, column) pairs, one pair per occurrence of a term."""
        return counted(rows, all_columns, (documents, len(self.vocabulary_)), self.dtype)

    def transform(self, raw_documents: Any) -> Any:
        """Transform documents to TF-IDF rows (cached counting when fitted on plain text)."""
        parts = self.transform_parts(raw_documents)
        return super().transform(raw_documents) if parts is None else parts.matrix()

    def transform_parts(self, raw_documents: Any) -> Parts | None:
        """`transform`'s rows as `Parts`, or None where only scikit-learn's own transform
        applies (options the cached counting does not reproduce)."""
        if not hasattr(self, "vocabulary_") or isinstance(raw_documents, str):
            return None
        counting = self._own_counting()
        if counting == "chars":
            return self._weigh(self._char_counts(raw_documents))
        if counting == "words" and (counts := self._word_counts(raw_documents)) is not None:
            return self._weigh(counts)
        return None

    def _own_counting(self) -> str | None:
        """Which of this class's countings the options allow: "chars" (`char_wb`), "words"
        (a token pattern without groups, no tokenizer or stop words), or None where only
        scikit-learn's own transform reproduces them."""
        if not self._reads_plain_text([]):
            return None
        if self.analyzer == "char_wb":
            return "chars"
        plain_words = self.tokenizer is None and self.stop_words is None
        if self.analyzer == "word" and plain_words and re.compile(self.token_pattern).groups == 0:
            return "words"
        return None

    def _reads_plain_text(self, raw_documents: Any) -> bool:
        """Whether the analyzer reads the documents as they are (the options the cached
        counting reproduces)."""
        return (
            not self.lowercase
            and self.strip_accents is None
            and self.preprocessor is None
            and self.input == "content"
            and not isinstance(raw_documents, str)
        )

    def _count_vocab(self, raw_documents: Any, fixed_vocab: bool) -> tuple[dict[str, int], sp.csr_matrix]:
        """scikit-learn's vocabulary and counts for fitting, `char_wb` n-grams made word by word.

        The same terms, numbered in the same order of first appearance, and the same
        matrix as scikit-learn's (tested): each distinct word's n-grams are made and
        numbered once instead of at every occurrence.
        """
        if fixed_vocab or self.analyzer != "char_wb" or not self._reads_plain_text(raw_documents):
            counts: tuple[dict[str, int], sp.csr_matrix] = super()._count_vocab(raw_documents, fixed_vocab)
            return counts
        word_lists = [document.split() for document in raw_documents]
        words = list(dict.fromkeys(chain.from_iterable(word_lists)))
        # Terms numbered in order of first appearance, as scikit-learn numbers them: a
        # missing term is given the next number. Each word's n-grams are made, numbered and
        # let go one word at a time; all of them at once would hold millions of strings.
        numbering: defaultdict[str, int] = defaultdict()
        numbering.default_factory = numbering.__len__
        numbered = [
            np.fromiter(map(numbering.__getitem__, self._char_analyzer(word)), dtype=np.int64)
            for word in words
        ]
        vocabulary = dict(numbering)
        if not vocabulary:
            raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
        sizes = [len(columns) for columns in numbered]
        index = dict(zip(words, range(len(words)), strict=True))
        occurrences = np.fromiter(map(index.__getitem__, chain.from_iterable(word_lists)), dtype=np.int64)
        rows = np.repeat(np.arange(len(word_lists)), [len(ws) for ws in word_lists])
        # A document's counts are its words' counts summed: one sparse product, in C, of
        # word occurrences by each distinct word's n-gram counts.
        shape = (len(words), len(vocabulary))
        word_of = np.repeat(np.arange(len(words)), sizes)
        per_word = counted(word_of, np.concatenate(numbered), shape, self.dtype).matrix()
        per_document = counted(rows, occurrences, (len(word_lists), len(words)), self.dtype).matrix()
        matrix: sp.csr_matrix = per_document @ per_word
        matrix.sort_indices()
        return vocabulary, matrix

    def _sort_features(self, X: Any, vocabulary: dict[str, int]) -> Any:  # noqa: N803 - scikit-learn's name
        """scikit-learn's `_sort_features` (terms renumbered in sorted order, the matrix's
        columns with them), sorting the terms alone and renumbering with NumPy."""
        terms = sorted(vocabulary)
        old = np.fromiter(map(vocabulary.__getitem__, terms), dtype=np.int64, count=len(terms))
        map_index = np.empty(len(terms), dtype=X.indices.dtype)
        map_index[old] = np.arange(len(terms))
        vocabulary.update(zip(terms, range(len(terms)), strict=True))
        X.indices = map_index.take(X.indices, mode="clip")
        return X

    def _weigh(self, counts: Parts) -> Parts:
        """TF-IDF rows from our own counts, in place, as `CountVectorizer` (``binary``) and
        `TfidfTransformer.transform` compute them.

        The counts come from the methods above, so scikit-learn's input checks (a third of
        the cost of scoring a few comments, mostly its dataframe detection) are skipped.
        """
        data = counts.data
        if self.binary:
            data.fill(1)
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
