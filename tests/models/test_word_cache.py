"""The per-word cache computes a word once and stays within its bound."""

from __future__ import annotations

import numpy as np
import pytest

from models import word_cache
from models.word_cache import cached_for_word


class Owner:
    pass


def test_a_word_is_computed_once_and_a_full_cache_starts_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(word_cache, "WORD_CACHE_SIZE", 2)
    owner, calls = Owner(), []

    def compute(word: str) -> np.ndarray:
        calls.append(word)
        return np.asarray([len(word)])

    for word in ("a", "bb", "a", "ccc", "a"):
        assert cached_for_word(owner, "_cache", word, compute).tolist() == [len(word)]
    # "ccc" found the cache full and emptied it, so "a" was computed again after it.
    assert calls == ["a", "bb", "ccc", "a"]
    assert set(owner.__dict__["_cache"]) == {"ccc", "a"}
