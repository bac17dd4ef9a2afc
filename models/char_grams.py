"""Character n-grams of a whole batch found with array operations (`CharGramIndex`).

scikit-learn's ``char_wb`` analyzer pads each whitespace-separated word with a space on
either side and takes every n-gram within it; counting one means slicing a new string
and looking it up in the vocabulary, so a comment costs one dictionary lookup per
n-gram, about five per character. A cache per word saves that for words seen before,
but every comment brings some never seen.

Here an n-gram of at most five characters, each below `WIDE` (every Latin, Greek and
Cyrillic letter, digit and common symbol), is one 64-bit integer: twelve bits a
character and its length on top, so two different n-grams never share a key. The
vocabulary's terms go into an open-addressing hash table of such keys; a batch's padded
words are laid end to end as one array of code points, from which the keys of each
n-gram length are made in one shift-and-or over the array and looked up in a few
vectorized probes. The rare word holding a character from `WIDE` up (an emoji, a CJK
character) is handed back to be counted as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

BITS_A_CHARACTER = 12
WIDE = 1 << BITS_A_CHARACTER
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


def indexed_lengths(low: int, high: int) -> bool:
    """Whether `CharGramIndex.occurrences` counts ``char_wb`` n-grams of ``low`` to ``high``
    characters exactly as scikit-learn does: ``low`` <= 3, since a padded word has at least
    three characters and so none is shorter than the shortest n-gram, and ``high`` <= `LONGEST`."""
    return 1 <= low <= 3 and high <= LONGEST


def _codes(text: str) -> np.ndarray:
    """The code points of ``text`` as uint64 (a lone surrogate kept as its own code point)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)


class CharGramIndex:
    """A ``char_wb`` vocabulary's columns by n-gram key, for n-grams of 1 to `LONGEST`
    narrow characters (all below `WIDE`); other terms are left to the per-word path."""

    def __init__(self, vocabulary: Mapping[str, int]) -> None:
        terms = list(vocabulary)
        columns = np.fromiter(vocabulary.values(), dtype=np.int64, count=len(terms))
        lengths = np.fromiter(map(len, terms), dtype=np.int64, count=len(terms))
        codes = _codes("".join(terms))
        term_of = np.repeat(np.arange(len(terms)), lengths)
        position = np.arange(len(codes)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        wide = np.zeros(len(terms), dtype=bool)
        wide[term_of[codes >= WIDE]] = True
        keep = ~wide & (lengths >= 1) & (lengths <= LONGEST)
        # Row i holds term i's code points, left-aligned: its key is the row read as digits.
        grid = np.zeros((len(terms), LONGEST), dtype=np.uint64)
        placed = keep[term_of]
        grid[term_of[placed], position[placed]] = codes[placed]
        keys = np.zeros(len(terms), dtype=np.uint64)
        for n in range(LONGEST):
            digit = np.where(n < lengths, grid[:, n], np.uint64(0))
            keys = np.where(n < lengths, (keys << _SHIFT) | digit, keys)
        keys |= lengths.astype(np.uint64) << _LENGTH_SHIFT
        self._build(keys[keep], columns[keep])

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
        is a term, in the narrow words of ``documents``; and (row, word) of each word holding
        a wide character, whose n-grams are not among them. Only for `indexed_lengths`.
        """
        if not indexed_lengths(low, high):
            raise ValueError(f"n-grams of {low} to {high} characters are not indexed")
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
        wide_words = np.unique(word_of[codes >= WIDE])
        narrow = np.ones(len(word_starts), dtype=bool)
        narrow[wide_words] = False
        # Characters left in the word from each position on; none in a wide word.
        room = np.where(narrow[word_of], word_ends[word_of] - np.arange(size), 0)
        wanted: list[np.ndarray] = []
        owners: list[np.ndarray] = []
        keys = np.zeros(size, dtype=np.uint64)
        for n in range(1, min(high, size) + 1):
            keys = (keys[: size - n + 1] << _SHIFT) | codes[n - 1 :]
            if n >= low:
                inside = np.flatnonzero(room[: size - n + 1] >= n)
                wanted.append(keys[inside] | np.uint64(n << int(_LENGTH_SHIFT)))
                owners.append(row_of[inside])
        # One lookup for every length: the probing rounds are paid once.
        found = self.columns(np.concatenate(wanted)) if wanted else np.zeros(0, dtype=np.int64)
        hit = found >= 0
        rows = np.concatenate(owners)[hit] if owners else found
        wide = [
            (int(row_of[word_starts[w]]), text[word_starts[w] + 1 : word_ends[w] - 1])
            for w in wide_words.tolist()
        ]
        return rows, found[hit], wide
