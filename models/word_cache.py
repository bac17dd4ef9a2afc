"""A bounded cache of each word's columns (or token ids), kept on the estimator that computes them.

Featurizing a comment word by word is cheap only when a word seen before costs a
dictionary lookup and no more: the words of a whole batch are looked up at once, so a
word already seen costs no Python call of its own. The cache lives in the estimator's
``__dict__`` under a name its ``__getstate__`` leaves out, so it is never stored with a
model, and it starts over when full: memory stays bounded while the words of current
traffic fill it again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

import numpy as np

WORD_CACHE_SIZE = 100_000

# A word's columns (or token ids): a tuple rather than an array, as the words of a batch
# are joined into one array in one pass over them (`joined`), which is quicker than
# joining as many small arrays.
Columns = tuple[int, ...]


def cached_for_words(
    owner: Any, name: str, words: Sequence[str], compute: Callable[[str], Columns]
) -> list[Columns]:
    """``[compute(word) for word in words]``, from ``owner``'s cache ``name`` for the words
    seen before; each new word is computed once.

    A batch whose new words would overfill the cache starts it over with the batch's own
    words, so the cache holds at most ``WORD_CACHE_SIZE`` words beyond one batch's.
    """
    cache: dict[str, Columns] | None = owner.__dict__.get(name)
    if cache is None:
        cache = owner.__dict__[name] = {}
    found: list[Columns | None] = list(map(cache.get, words))
    missing = [index for index, columns in enumerate(found) if columns is None]
    if not missing:
        return found  # type: ignore[return-value]  # no None left
    new = {word: compute(word) for word in dict.fromkeys(words[index] for index in missing)}
    for index in missing:
        found[index] = new[words[index]]
    if len(cache) + len(new) > WORD_CACHE_SIZE:
        owner.__dict__[name] = dict(zip(words, found, strict=True))
    else:
        cache.update(new)
    return found  # type: ignore[return-value]


def joined(per_word: Sequence[Columns]) -> tuple[np.ndarray, np.ndarray]:
    """The words' columns one word after the other, and how many each word has."""
    columns = np.fromiter(chain.from_iterable(per_word), dtype=np.int64)
    return columns, np.fromiter(map(len, per_word), dtype=np.int64, count=len(per_word))
