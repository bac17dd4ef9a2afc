"""Reasons for a score, read off the fitted linear model.

A head's calibrated log-odds are `intercept + sum_i x_i * coef_i` over the comment's
features, so `x_i * coef_i` is exactly how far feature i moved this comment's score.
The reasons are the largest positive of those contributions, grouped so a moderator
can read them:

- a word's own weight and the weights of the character n-grams inside it are summed
  under that word (`"viagra" +2.3 toward spam`, even when the comment said `v1agra`);
- a word pair keeps its own entry (`"free money"`);
- metadata features are described from the raw comment (`3 links +0.9 toward spam`);
- the pretrained token vectors (models/embeddings.py) go to the words they came from.
  Their columns hold `s / |s|` (times the branch weight), where `s` sums the vectors of
  the comment's tokens, so their share of the log-odds is
  `sum over words u of (s_u . w) * |x| / |s|`: each word's own vectors dotted with the
  weights, all scaled by one factor per comment. A word's share joins its word and
  character n-gram pieces.

The grouping only redistributes contributions: the sum over all groups equals the sum
over all features, so nothing is invented or guessed.

`Explainer.batch_reasons` computes the reasons of a whole batch with array operations
on the batch's feature matrix (the one the scores came from); `Explainer.reasons` does
the same for one row and is used for hashed (out-of-core) models. A test checks that
both give the same reasons.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.pipeline import Pipeline
from sklearn.utils import murmurhash3_32

from models.author_reasons import NO_AUTHOR as NO_AUTHOR_REASON
from models.author_reasons import author_label
from models.embeddings import TokenVectors
from models.features import FEATURES, describe, measure_one
from models.normalize import (
    DOMAIN_PREFIX,
    EMAIL_MARKER,
    EMAIL_PATTERN,
    URL_MARKER,
    domain_token,
    find_urls,
    url_domain,
)
from models.pipeline import NO_AUTHOR, TEXT_BRANCHES, VECTORS, PreparedComment
from models.sparse_rows import counted, ranks_within_runs, unique_inverse_counts
from models.word_cache import Columns, cached_for_words, joined

MAX_REASONS_PER_HEAD = 3
_PUNCTUATION = string.punctuation + "\u2026\u201c\u201d\u2018\u2019"
# Contributions below this (in log-odds) round to +0.0 or +0.1 and tell a moderator nothing.
MIN_CONTRIBUTION = 0.1
_WORD_CACHE_LIMIT = 100_000


def _term_indexer(vectorizer: Any) -> tuple[Callable[[str], int | None], int]:
    """Return (term -> column or None, number of columns) for a fitted text vectorizer."""
    if isinstance(vectorizer, HashingVectorizer):
        size = int(vectorizer.n_features)

        def hashed(term: str) -> int:
            # The same hash HashingVectorizer applies (sklearn's _hashing_fast).
            h = murmurhash3_32(term, seed=0, positive=False)
            return (2147483647 - (size - 1)) % size if h == -2147483648 else abs(h) % size

        return hashed, size
    vocabulary: dict[str, int] = vectorizer.vocabulary_
    return vocabulary.get, len(vocabulary)


class Explainer:
    """Turns a comment's feature row and the heads' weights into moderator reasons."""

    def __init__(self, pipeline: Pipeline) -> None:
        union = pipeline.named_steps["features"]
        self._index: dict[str, Callable[[str], int | None]] = {}
        self._vectorizers: dict[str, Any] = {}
        self._term_names: dict[str, list[str] | None] = {}
        self._analyzer: dict[str, Callable[[str], list[str]]] = {}
        self._offset: dict[str, int] = {}
        self._width: dict[str, int] = {}
        offset = 0
        for name, transformer in union.transformer_list:
            self._offset[name] = offset
            if name in TEXT_BRANCHES:
                vectorizer = self._vectorizers[name] = transformer.named_steps["vectorizer"]
                self._index[name], width = _term_indexer(vectorizer)
                self._analyzer[name] = vectorizer.build_analyzer()
            elif name == VECTORS:
                width = int(transformer.named_steps["vectorizer"].weighted_.shape[1])
            else:
                width = len(FEATURES)
            self._width[name] = width
            offset += width
        self.n_features = offset
        self._vectors: TokenVectors | None = (
            union.named_transformers[VECTORS].named_steps["vectorizer"] if VECTORS in self._offset else None
        )
        # The TF-IDF vectorizer finds many words' n-gram columns at once; reuse that.
        chars = union.named_transformers["chars"].named_steps["vectorizer"]
        self._char_columns: Callable[[Sequence[str]], tuple[np.ndarray, np.ndarray]] | None = getattr(
            chars, "words_columns", None
        )
        # For `batch_reasons`: each whitespace-separated word's key id (see `_word_key_ids_of`).
        self._word_key_ids: dict[str, int] = {}
        self._extra_keys: dict[str, int] = {}
        self._extra_names: list[str] = []

    def reasons(
        self,
        comment: PreparedComment,
        row: tuple[np.ndarray, np.ndarray],
        coef: np.ndarray,
        heads: Sequence[tuple[int, str]],
    ) -> list[str]:
        """Return up to `MAX_REASONS_PER_HEAD` reasons per head for one comment.

        Args:
            comment: the prepared comment the row was computed from.
            row: its feature row as (column indices in ascending order, values).
            coef: all heads' weights, shape (number of heads, n_features).
            heads: the (row of `coef`, head name) pairs to explain.
        """
        keys, label_ids, columns, values = self._pieces(comment, row)
        # contributions[h, k]: how far piece k moved head h's calibrated log-odds.
        rows = np.asarray([h for h, _ in heads], dtype=np.int64)
        contributions = coef[np.ix_(rows, columns)] * values
        domains: dict[str, str] | None = None
        reasons: list[str] = []
        for position, (_, head) in enumerate(heads):
            totals = np.bincount(label_ids, weights=contributions[position], minlength=len(keys))
            for k in np.argsort(-totals, kind="stable")[:MAX_REASONS_PER_HEAD]:
                if totals[k] < MIN_CONTRIBUTION:
                    break
                domains = _domain_names(comment) if domains is None else domains
                reasons.append(f"{_render(keys[k], comment, domains)} +{totals[k]:.1f} toward {head}")
        return reasons

    def batch_reasons(
        self,
        comments: Sequence[PreparedComment],
        matrix: sp.csr_matrix,
        coef: np.ndarray,
        explain: np.ndarray,
        heads: Sequence[str],
    ) -> list[list[str]]:
        """Return the reasons of every row of `matrix` at once (the same as `reasons` row by row).

        Args:
            comments: the prepared comments, one per row of `matrix`.
            matrix: their feature rows, CSR with sorted column indices.
            coef: all heads' weights, shape (len(heads), n_features).
            explain: boolean array (rows, len(heads)): which heads to explain for each row.
            heads: the head names, in the row order of `coef`.

        Contributions are computed for the whole batch with array operations: each
        non-zero term of the word, author and metadata branches is its own piece, and
        each occurrence of a word collects its character n-grams' contributions, each
        column shared equally among that column's occurrences in the comment.
        """
        result: list[list[str]] = [[] for _ in comments]
        rows = np.flatnonzero(np.asarray(explain).any(axis=1))
        if not len(rows):
            return result
        if self._char_columns is None or self._names("words") is None or self._names("author") is None:
            for i in rows.tolist():
                span = slice(matrix.indptr[i], matrix.indptr[i + 1])
                row = (matrix.indices[span], matrix.data[span])
                wanted = [(h, head) for h, head in enumerate(heads) if explain[i, h]]
                result[i] = self.reasons(comments[i], row, coef, wanted)
            return result
        selected = matrix[rows]
        counts = np.diff(selected.indptr)
        local_rows = np.repeat(np.arange(len(rows)), counts)
        columns = selected.indices.astype(np.int64)
        data = selected.data.astype(np.float64)
        chars_start = self._offset["chars"]
        in_chars = (columns >= chars_start) & (columns < chars_start + self._width["chars"])

        in_vectors = np.zeros(len(columns), dtype=bool)
        if self._vectors is not None:
            vectors_start = self._offset[VECTORS]
            in_vectors = (columns >= vectors_start) & (columns < vectors_start + self._width[VECTORS])

        # Pieces of the word, author and metadata branches: one per non-zero column, keyed
        # by that column (a word's unigram column is also the key its n-grams go to).
        terms = ~in_chars & ~in_vectors
        term_rows, term_keys = local_rows[terms], columns[terms]
        term_values = coef[:, term_keys] * data[terms]

        # Character n-gram pieces: every occurrence of a word in the comment.
        word_lists = [comments[i].normalized_text.split() for i in rows.tolist()]
        words = [w for ws in word_lists for w in ws]
        word_rows = np.repeat(np.arange(len(rows)), [len(ws) for ws in word_lists])
        distinct = dict.fromkeys(words)
        which = dict(zip(distinct, range(len(distinct)), strict=True))
        occurrence = np.fromiter(map(which.__getitem__, words), dtype=np.int64, count=len(words))
        char_columns, sizes = _gathered(*self._char_columns_of(list(distinct)), occurrence)
        piece_word = np.repeat(np.arange(len(words)), sizes)
        n_features = matrix.shape[1]
        piece_rows = word_rows[piece_word]
        # The distinct (row, column) pairs of the pieces are exactly the character
        # n-gram non-zeros of the rows, in the same row-major order as in `selected`;
        # sorting the pieces therefore gives each its non-zero and its count at once.
        chars_nonzeros = np.flatnonzero(in_chars)
        pairs, inverse, counts_of = unique_inverse_counts(piece_rows * n_features + char_columns)
        if len(pairs) == len(chars_nonzeros):
            positions = chars_nonzeros[inverse]
            occurrences = counts_of[inverse]
        else:  # not reached for a vocabulary-based model; kept exact all the same
            flat = local_rows * n_features + columns
            positions = np.searchsorted(flat, piece_rows * n_features + char_columns)
            occurrences = np.bincount(positions, minlength=len(columns))[positions]
        shares = data[positions] / occurrences
        word_values = np.stack(
            [
                np.bincount(piece_word, weights=coef[h, char_columns] * shares, minlength=len(words))
                for h in range(len(heads))
            ]
        ).reshape(len(heads), len(words))
        if len(self._word_key_ids) + len(distinct) > _WORD_CACHE_LIMIT:
            # Bounded memory; ids handed out before this batch are no longer in use.
            self._word_key_ids.clear()
            self._extra_keys.clear()
            self._extra_names.clear()
        # Token-vector pieces: every occurrence of a word of the text the vectors read.
        vector_lists = [comments[i].meaning_text.split() for i in rows.tolist()] if self._vectors else []
        vector_words = [w for ws in vector_lists for w in ws]
        vector_rows = np.repeat(np.arange(len(vector_lists)), [len(ws) for ws in vector_lists])
        key_of = self._word_key_ids_of(distinct.keys() | vector_words)
        word_keys = np.fromiter(map(key_of.__getitem__, words), dtype=np.int64, count=len(words))
        vector_keys = np.fromiter(map(key_of.__getitem__, vector_words), dtype=np.int64)
        vector_values = np.zeros((len(heads), 0))
        if vector_words:
            squares = np.bincount(local_rows[in_vectors], data[in_vectors] ** 2, minlength=len(rows))
            row_lengths = np.sqrt(squares)
            vector_values = self._vector_values(vector_words, vector_rows, row_lengths, coef)

        # Sum the pieces per (row, key).
        all_rows = np.concatenate([term_rows, word_rows, vector_rows])
        all_keys = np.concatenate([term_keys, word_keys, vector_keys])
        key_space = n_features + len(self._extra_names)
        groups, inverse, _ = unique_inverse_counts(all_rows * key_space + all_keys)
        group_rows, group_keys = groups // key_space, groups % key_space
        values = np.concatenate([term_values, word_values, vector_values], axis=1)
        totals = np.stack([np.bincount(inverse, weights=v, minlength=len(groups)) for v in values])

        # Per row, (head, key, total) of each reason, the heads in order.
        chosen: dict[int, list[tuple[int, int, float]]] = {}
        wanted_rows = np.asarray(explain)[rows]
        for h in range(len(heads)):
            keep = np.flatnonzero((totals[h] >= MIN_CONTRIBUTION) & wanted_rows[group_rows, h])
            # Largest first within a row; on a tie, the key that comes first.
            order = keep[np.lexsort((group_keys[keep], -totals[h][keep], group_rows[keep]))]
            picked = order[ranks_within_runs(group_rows[order]) < MAX_REASONS_PER_HEAD]
            reasons = zip(group_keys[picked].tolist(), totals[h][picked].tolist(), strict=True)
            for r, (key, total) in zip(group_rows[picked].tolist(), reasons, strict=True):
                chosen.setdefault(r, []).append((h, key, total))
        for r, picks in chosen.items():
            comment = comments[int(rows[r])]
            keys = [self._key(key) for _, key, _ in picks]
            # Domain names are looked up only when a reason names a domain.
            named = any(kind in ("word", "author") and DOMAIN_PREFIX in term for kind, term in keys)
            domains = _domain_names(comment) if named else {}
            result[int(rows[r])] = [
                f"{_render(key, comment, domains)} +{total:.1f} toward {heads[h]}"
                for key, (h, _, total) in zip(keys, picks, strict=True)
            ]
        return result

    def _word_key_ids_of(self, words: Iterable[str]) -> dict[str, int]:
        """The key each whitespace-separated word's n-grams are summed under.

        The column of its word feature when the vocabulary has it (so the word's own
        weight and its n-grams' weights add up), else an id past the last column.
        """
        known = self._word_key_ids
        return {word: known[word] if word in known else self._new_word_key_id(word) for word in words}

    def _new_word_key_id(self, word: str) -> int:
        term = _word_key(word)
        column = self._vectorizers["words"].vocabulary_.get(term)
        if column is not None:
            key = self._offset["words"] + int(column)
        else:
            extra = self._extra_keys.get(term)
            if extra is None:
                extra = self._extra_keys[term] = len(self._extra_names)
                self._extra_names.append(term)
            key = self.n_features + extra
        self._word_key_ids[word] = key
        return key

    def _vector_values(
        self, words: list[str], word_rows: np.ndarray, row_lengths: np.ndarray, coef: np.ndarray
    ) -> np.ndarray:
        """How far each word occurrence moved each head through the token vectors.

        ``words`` are the words of the rows' texts as the vectors read them, ``word_rows``
        their rows, ``row_lengths`` the lengths of the rows' vector columns; returns shape
        (heads, len(words)).
        """
        assert self._vectors is not None
        distinct = list(dict.fromkeys(words))
        # Each distinct word's summed token vectors: the branch's sum of a one-word text.
        summed = self._vectors.summed(distinct)
        index = dict(zip(distinct, range(len(distinct)), strict=True))
        occurrence = np.fromiter(map(index.__getitem__, words), dtype=np.int64, count=len(words))
        # Every row's sum, as the branch formed it before scaling it to unit length.
        occurrences = counted(word_rows, occurrence, (len(row_lengths), len(distinct)), np.float32).matrix()
        scale = _scale(row_lengths, np.linalg.norm(occurrences @ summed, axis=1))
        start = self._offset[VECTORS]
        per_word = summed @ coef[:, start : start + self._width[VECTORS]].T.astype(np.float32)
        values: np.ndarray = per_word[occurrence].T * scale[word_rows]
        return values

    def _key(self, key: int) -> tuple[str, str]:
        """The (kind, term) a key id of `batch_reasons` stands for."""
        if key >= self.n_features:
            return "word", self._extra_names[key - self.n_features]
        for kind, branch in (("meta", "meta"), ("author", "author"), ("word", "words")):
            offset = self._offset[branch]
            if key >= offset:
                if kind == "meta":
                    return kind, str(key - offset)
                names = self._names(branch)
                assert names is not None
                return kind, names[key - offset]
        raise ValueError(f"key {key} is not a word, author or metadata column")

    def _pieces(
        self, comment: PreparedComment, row: tuple[np.ndarray, np.ndarray]
    ) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray, np.ndarray]:
        """Split the comment's feature row into pieces, each with a readable key.

        `row` holds the row's non-zero columns (ascending) and their values. Returns
        (keys, key id per piece, column per piece, value per piece); the values of a
        column's pieces add up to the row's value there.
        """
        keys: dict[tuple[str, str], int] = {}
        ids: list[np.ndarray] = []
        columns: list[np.ndarray] = []
        shares: list[np.ndarray] = []
        for kind, branch, text in (
            ("word", "words", comment.normalized_text),
            ("author", "author", comment.normalized_author),
        ):
            terms, term_columns, term_shares = self._terms(branch, text, row[0])
            ids.append(np.asarray([keys.setdefault((kind, t), len(keys)) for t in terms], dtype=np.int64))
            columns.append(term_columns)
            shares.append(term_shares)
        words, word_ids, word_columns, word_shares = self._char_pieces(comment.normalized_text)
        lookup = np.asarray(
            [keys.setdefault(("word", _word_key(w)), len(keys)) for w in words], dtype=np.int64
        )
        ids.append(lookup[word_ids] if len(words) else word_ids)
        columns.append(word_columns)
        shares.append(word_shares)
        meta = [keys.setdefault(("meta", str(i)), len(keys)) for i in range(len(FEATURES))]
        ids.append(np.asarray(meta, dtype=np.int64))
        columns.append(self._offset["meta"] + np.arange(len(FEATURES)))
        shares.append(np.ones(len(FEATURES)))
        values = [_lookup(row, np.concatenate(columns)) * np.concatenate(shares)]
        if self._vectors is not None:
            vector_words, vector_columns, vector_values = self._vector_pieces(comment.meaning_text, row)
            vector_ids = [keys.setdefault(("word", _word_key(w)), len(keys)) for w in vector_words]
            ids.append(np.repeat(np.asarray(vector_ids, dtype=np.int64), self._width[VECTORS]))
            columns.append(vector_columns)
            values.append(vector_values)
        return list(keys), np.concatenate(ids), np.concatenate(columns), np.concatenate(values)

    def _vector_pieces(
        self, text: str, row: tuple[np.ndarray, np.ndarray]
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Each distinct word's part of every vector column: (words, columns, values).

        A word's part of the columns is its tokens' weighted vectors (times its count)
        scaled as the comment's sum was: together they make the row's vector columns.
        """
        assert self._vectors is not None
        width, start = self._width[VECTORS], self._offset[VECTORS]
        frequency = Counter(text.split())
        words = sorted(frequency)
        counts = np.asarray([frequency[word] for word in words], dtype=np.float64)
        parts = self._vectors.summed(words).astype(np.float64) * counts[:, None]
        vector_columns = start + np.arange(width)
        row_length = np.linalg.norm(_lookup(row, vector_columns)[None, :], axis=1)
        # The comment's sum is its words' parts added up, as the batch path forms it.
        scale = _scale(row_length, np.linalg.norm(parts.sum(axis=0, keepdims=True), axis=1))
        return words, np.tile(vector_columns, len(words)), (parts * scale).ravel()

    def _terms(self, branch: str, text: str, present: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Each distinct known term of `branch`, its column, and its share of that column."""
        offset, names = self._offset[branch], self._names(branch)
        if names is not None:
            # With a vocabulary, each non-zero column of the branch is exactly one term.
            columns = present[(present >= offset) & (present < offset + len(names))]
            return [names[c - offset] for c in columns.tolist()], columns, np.ones(len(columns))
        index = self._index[branch]
        found = sorted((t, c) for t in set(self._analyzer[branch](text)) if (c := index(t)) is not None)
        # Distinct terms can share a hashed column; each then gets an equal part of it.
        per_column = Counter(column for _, column in found)
        hashed = np.asarray([c for _, c in found], dtype=np.int64)
        shares = np.asarray([1.0 / per_column[c] for _, c in found], dtype=np.float64)
        return [t for t, _ in found], offset + hashed, shares

    def _names(self, branch: str) -> list[str] | None:
        """The branch's terms by column, or None for hashed features (built on first use)."""
        if branch not in self._term_names:
            vocabulary: dict[str, int] | None = getattr(self._vectorizers[branch], "vocabulary_", None)
            names = None
            if vocabulary is not None:
                names = [""] * len(vocabulary)
                for term, column in vocabulary.items():
                    names[column] = term
            self._term_names[branch] = names
        return self._term_names[branch]

    def _char_pieces(self, text: str) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """Attribute each character n-gram column to the words it occurs in.

        A column's value comes from all its occurrences in the comment, so each
        occurrence gets an equal share; a word's pieces are its occurrences.
        """
        frequency = Counter(text.split())
        words = sorted(frequency)
        if not words:
            empty = np.zeros(0, dtype=np.int64)
            return [], empty, empty, np.zeros(0)
        columns, sizes = self._char_columns_of(words)
        word_ids = np.repeat(np.arange(len(words)), sizes)
        weights = np.asarray([frequency[w] for w in words], dtype=np.float64)[word_ids]
        _, inverse = np.unique(columns, return_inverse=True)
        totals = np.bincount(inverse, weights=weights)
        return words, word_ids, columns, weights / totals[inverse]

    def _char_columns_of(self, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The character n-gram columns (in the union) of each of ``words``, with repeats,
        one word after the other, and how many each word has."""
        if self._char_columns is not None:
            columns, sizes = self._char_columns(words)
        else:
            # Hashed n-grams: one hash a term, so each word's columns are kept for the next.
            columns, sizes = joined(cached_for_words(self, "_hashed_columns_of", words, self._hashed_columns))
        return self._offset["chars"] + columns, sizes

    def _hashed_columns(self, word: str) -> Columns:
        index, grams = self._index["chars"], self._analyzer["chars"](word)
        return tuple(c for c in map(index, grams) if c is not None)


def _gathered(columns: np.ndarray, sizes: np.ndarray, picks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The runs of ``columns`` (run i is ``sizes[i]`` long) at ``picks``, one after the other,
    and their sizes."""
    starts = np.cumsum(sizes) - sizes
    picked = sizes[picks]
    within = np.arange(int(picked.sum())) - np.repeat(np.cumsum(picked) - picked, picked)
    return columns[np.repeat(starts[picks], picked) + within], picked


def _scale(row_lengths: np.ndarray, sum_lengths: np.ndarray) -> np.ndarray:
    """How the vector branch scaled each comment's summed token vectors: the length of its
    row's vector columns over the sum's (zero for a comment without a known token)."""
    scale: np.ndarray = np.zeros(len(sum_lengths))
    np.divide(row_lengths, sum_lengths, out=scale, where=sum_lengths > 0)
    return scale


def _lookup(row: tuple[np.ndarray, np.ndarray], columns: np.ndarray) -> np.ndarray:
    """Return the row's values at `columns` (zero where the row has none)."""
    indices, data = row
    if not len(indices):
        return np.zeros(len(columns))
    positions = np.minimum(np.searchsorted(indices, columns), len(indices) - 1)
    return np.where(indices[positions] == columns, data[positions], 0.0).astype(np.float64)


def _render(key: tuple[str, str], comment: PreparedComment, domains: dict[str, str]) -> str:
    kind, term = key
    if kind == "meta":
        index = int(term)
        return describe(index, measure_one(comment, index))
    label = _label(term, domains)
    return _author_label(label) if kind == "author" else label


def _domain_names(comment: PreparedComment) -> dict[str, str]:
    """Map each domain token of the comment back to the domain as written."""
    hosts = [url_domain(url) for url in find_urls(comment.text) + find_urls(comment.author)]
    hosts += [m.group(1).lower() for m in EMAIL_PATTERN.finditer(comment.text)]
    if comment.url.strip():
        hosts.append(url_domain(comment.url))
    return {domain_token(host): host for host in hosts}


def _display(token: str, domains: dict[str, str]) -> str:
    if token == URL_MARKER:
        return "[link]"
    if token == EMAIL_MARKER:
        return "[email address]"
    if token.startswith(DOMAIN_PREFIX):
        return domains.get(token) or token[len(DOMAIN_PREFIX) :].replace("_", ".")
    return token


def _label(term: str, domains: dict[str, str]) -> str:
    """Render a term as a moderator reads it: `"free"`, `"buy [link]"`, `link to ex.com`."""
    if term == URL_MARKER:
        return "a link"
    if term == EMAIL_MARKER:
        return "an email address"
    if term.startswith(DOMAIN_PREFIX) and " " not in term:
        return f"link to {_display(term, domains)}"
    return '"' + " ".join(_display(token, domains) for token in term.split(" ")) + '"'


def _word_key(word: str) -> str:
    """The word-feature term a whitespace-separated word stands for ("idiot," -> "idiot")."""
    return word.strip(_PUNCTUATION) or word


def _author_label(label: str) -> str:
    if label == f'"{NO_AUTHOR}"':
        return NO_AUTHOR_REASON
    return author_label(label, quoted=label.startswith('"'))
