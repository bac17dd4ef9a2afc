"""Character n-grams of a whole batch found with array operations (`CharGramIndex`).

scikit-learn's ``char_wb`` analyzer pads each whitespace-separated word with a space on
either side and takes every n-gram within it; counting one means slicing a new string
and looking it up in the vocabulary, so a comment costs one dictionary lookup per
n-gram, about five per character. A cache per word saves that for words seen before,
but every comment brings some never seen.

Here the characters the vocabulary's terms use are numbered from 1 (up to `ALPHABET`
of them, the most used first; 0 stands for any character no term holds), and an n-gram
of at most five characters is one 64-bit integer: twelve bits a character and its
length on top, so two different n-grams never share a key. The terms go into an
open-addressing hash table of such keys; a batch's padded words are laid end to end as
one array of character numbers, from which the keys of each n-gram length are made in
one shift-and-or over the array and looked up in a few vectorized probes. Only a word
holding a character that some term uses but that did not get a number (a vocabulary of
more than `ALPHABET` characters) is handed back to be counted word by word.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

BITS_A_CHARACTER = 12
ALPHABET = (1 << BITS_A_CHARACTER) - 1
LONGEST = 5  # 5 x 12 bits and the length in the 4 bits above: 64
_LENGTH_SHIFT = np.uint64(LONGEST * BITS_A_CHARACTER)
_SHIFT = np.uint64(BITS_A_CHARACTER)
# Fibonacci hashing: the top bits of key x 2^64/phi spread keys that differ in any bit.
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_EMPTY = np.uint64(0)  # no key is 0: every key carries its length, at least 1
# A lookup costs a few dozen array operations whatever its size, about what counting
# five hundred characters of new comments word by word costs (the word cache warm with
# 5,000 others): smaller batches (one comment, a reason's few words) go word by word.
BATCH_LOOKUP_MIN_CHARACTERS = 500
# A lookup holds a few hundred bytes a character at its peak; longer batches are looked
# up in parts of about this many characters (a part ends with a whole document).
PART_CHARACTERS = 1 << 17


def indexed_lengths(low: int, high: int) -> bool:
    """Whether `CharGramIndex.occurrences` counts ``char_wb`` n-grams of ``low`` to ``high``
    characters exactly as scikit-learn does: ``low`` <= 3, since a padded word has at least
    three characters and so none is shorter than the shortest n-gram, and ``high`` <= `LONGEST`."""
    return 1 <= low <= 3 and high <= LONGEST


def _codes(text: str) -> np.ndarray:
    """The code points of ``text`` as uint64 (a lone surrogate kept as its own code point)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)


class CharGramIndex:
    """A ``char_wb`` vocabulary's columns by n-gram key, for terms of 1 to `LONGEST`
    characters that all have a number; other terms are left to the per-word path."""

    def __init__(self, vocabulary: Mapping[str, int]) -> None:
        terms = list(vocabulary)
        columns = np.fromiter(vocabulary.values(), dtype=np.int64, count=len(terms))
        lengths = np.fromiter(map(len, terms), dtype=np.int64, count=len(terms))
        codes = _codes("".join(terms))
        used, uses = np.unique(codes, return_counts=True)
        numbered = np.sort(used[np.argsort(-uses, kind="stable")[:ALPHABET]])
        self._alphabet = numbered
        self._unnumbered = np.setdiff1d(used, numbered)  # empty up to ALPHABET characters
        digits, unnumbered = self._digits(codes)
        term_of = np.repeat(np.arange(len(terms)), lengths)
        position = np.arange(len(codes)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        left_out = np.zeros(len(terms), dtype=bool)
        left_out[term_of[unnumbered]] = True
        keep = ~left_out & (lengths >= 1) & (lengths <= LONGEST)
        # Row i holds term i's digits, left-aligned: its key is the row read as a number.
        grid = np.zeros((len(terms), LONGEST), dtype=np.uint64)
        placed = keep[term_of]
        grid[term_of[placed], position[placed]] = digits[placed]
        keys = np.zeros(len(terms), dtype=np.uint64)
        for n in range(LONGEST):
            keys = np.where(n < lengths, (keys << _SHIFT) | grid[:, n], keys)
        keys |= lengths.astype(np.uint64) << _LENGTH_SHIFT
        self._build(keys[keep], columns[keep])

    def _digits(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each code point's number (0 for a character no term holds), and where a code
        point is one that terms hold but that has no number."""
        unnumbered = np.isin(codes, self._unnumbered) if len(self._unnumbered) else np.zeros(len(codes), bool)
        at = np.minimum(np.searchsorted(self._alphabet, codes), len(self._alphabet) - 1)
        digits = np.where(self._alphabet[at] == codes, at + 1, 0).astype(np.uint64)
        return digits, unnumbered

    def _build(self, keys: np.ndarray, columns: np.ndarray) -> None:
        # Load under 0.25, for 12 bytes a slot: the longest probe sequence sets how many
        # rounds every lookup makes (9 for the 186,000 terms of a model of all corpora).
        bits = max(int(4 * len(keys)).bit_length(), 4)
        self._down = np.uint64(64 - bits)
        self._mask = (1 << bits) - 1
        self._keys = np.full(1 << bits, _EMPTY, dtype=np.uint64)
        self._columns = np.full(1 << bits, -1, dtype=np.int32)
        slots = self._home(keys)
        waiting = np.arange(len(keys))
        while len(waiting):  # linear probing, one free slot per key and round
            wanted = slots[waiting]
            free = self._keys[wanted] == _EMPTY
            contenders, at = waiting[free], wanted[free]
            _, first = np.unique(at, return_index=True)
            self._keys[at[first]] = keys[contenders[first]]
            self._columns[at[first]] = columns[contenders[first]]
            settled = np.zeros(len(keys), dtype=bool)
            settled[contenders[first]] = True
            waiting = waiting[~settled[waiting]]
            slots[waiting] = (slots[waiting] + 1) & self._mask

    def _home(self, keys: np.ndarray) -> np.ndarray:
        home: np.ndarray = ((keys * _MULTIPLIER) >> self._down).astype(np.int64)
        return home

    def columns(self, keys: np.ndarray) -> np.ndarray:
        """The vocabulary column of each key; -1 where the key is no term."""
        found = np.full(len(keys), -1, dtype=np.int64)
        slots = self._home(keys)
        waiting = np.arange(len(keys))
        while len(waiting):
            at = slots[waiting]
            stored = self._keys[at]
            hit = stored == keys[waiting]
            found[waiting[hit]] = self._columns[at[hit]]
            probing = ~hit & (stored != _EMPTY)
            waiting = waiting[probing]
            slots[waiting] = (at[probing] + 1) & self._mask
        return found

    def occurrences(
        self, documents: Sequence[str], low: int, high: int
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]:
        """(row, column) of every ``char_wb`` n-gram of ``low`` to ``high`` characters that
        is a term, in the words of ``documents`` but those holding a character that terms
        hold and that has no number; and (row, word) of each of those. Only for
        `indexed_lengths`.
        """
        if not indexed_lengths(low, high):
            raise ValueError(f"n-grams of {low} to {high} characters are not indexed")
        rows: list[np.ndarray] = []
        columns: list[np.ndarray] = []
        left: list[tuple[int, str]] = []
        first = 0
        while first < len(documents):
            end, size = first, 0
            while end < len(documents) and (size < PART_CHARACTERS or end == first):
                size += len(documents[end])
                end += 1
            part_rows, part_columns, part_left = self._part_occurrences(documents[first:end], low, high)
            rows.append(part_rows + first)
            columns.append(part_columns)
            left.extend((row + first, word) for row, word in part_left)
            first = end
        if not rows:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, left
        return np.concatenate(rows), np.concatenate(columns), left

    def _part_occurrences(
        self, documents: Sequence[str], low: int, high: int
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]:
        padded = [f" {'  '.join(words)} " if (words := document.split()) else "" for document in documents]
        text = "".join(padded)
        codes = _codes(text)
        size = len(codes)
        row_of = np.repeat(np.arange(len(padded)), [len(p) for p in padded])
        # Padded words lie end to end, so a word starts at a space that follows a space
        # (or the start): words hold no whitespace.
        spaces = codes == 32
        starts = spaces.copy()
        starts[1:] &= spaces[:-1]
        word_of = np.cumsum(starts) - 1
        word_starts = np.flatnonzero(starts)
        word_ends = np.append(word_starts[1:], size)
        digits, unnumbered = self._digits(codes)
        left_words = np.unique(word_of[unnumbered])
        counted = np.ones(len(word_starts), dtype=bool)
        counted[left_words] = False
        # Characters left in the word from each position on; none in a word left out.
        room = np.where(counted[word_of], word_ends[word_of] - np.arange(size), 0)
        wanted: list[np.ndarray] = []
        owners: list[np.ndarray] = []
        keys = np.zeros(size, dtype=np.uint64)
        for n in range(1, min(high, size) + 1):
            keys = (keys[: size - n + 1] << _SHIFT) | digits[n - 1 :]
            if n >= low:
                inside = np.flatnonzero(room[: size - n + 1] >= n)
                wanted.append(keys[inside] | np.uint64(n << int(_LENGTH_SHIFT)))
                owners.append(row_of[inside])
        # One lookup for every length: the probing rounds are paid once.
        found = self.columns(np.concatenate(wanted)) if wanted else np.zeros(0, dtype=np.int64)
        hit = found >= 0
        rows = np.concatenate(owners)[hit] if owners else found
        left = [
            (int(row_of[word_starts[w]]), text[word_starts[w] + 1 : word_ends[w] - 1])
            for w in left_words.tolist()
        ]
        return rows, found[hit], left
