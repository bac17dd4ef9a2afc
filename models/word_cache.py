"""A bounded cache of per-word arrays, kept on the estimator that computes them.

Featurizing a comment word by word is cheap only when a word seen before is one
dictionary lookup. The cache lives in the estimator's ``__dict__`` under a name its
``__getstate__`` leaves out, so it is never stored with a model, and it is emptied when
full: memory stays bounded while the words of current traffic fill it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

WORD_CACHE_SIZE = 100_000


def cached_for_word(owner: Any, name: str, word: str, compute: Callable[[str], np.ndarray]) -> np.ndarray:
    """``compute(word)``, from ``owner``'s cache ``name`` when the word was seen before."""
    cache: dict[str, np.ndarray] | None = owner.__dict__.get(name)
    found = cache.get(word) if cache is not None else None
    if found is not None:
        return found
    if cache is None or len(cache) >= WORD_CACHE_SIZE:
        cache = owner.__dict__[name] = {}
    result = cache[word] = compute(word)
    return result
