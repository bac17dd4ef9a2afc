"""The per-word cache computes a word once and stays within its bound."""

from __future__ import annotations

import pytest

from models import word_cache
from models.word_cache import cached_for_words


class Owner:
    pass


def test_a_word_is_computed_once_and_a_full_cache_starts_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(word_cache, "WORD_CACHE_SIZE", 2)
    owner, calls = Owner(), []

    def compute(word: str) -> tuple[int, ...]:
        calls.append(word)
        return (len(word),)

    def looked_up(words: list[str]) -> list[int]:
        return [columns[0] for columns in cached_for_words(owner, "_cache", words, compute)]

    assert looked_up(["a", "bb", "a"]) == [1, 2, 1]
    assert looked_up(["bb", "a"]) == [2, 1]
    assert calls == ["a", "bb"]
    # "dddd" would overfill the cache: it starts over with this batch's words.
    assert looked_up(["a", "dddd", "dddd"]) == [1, 4, 4]
    assert calls == ["a", "bb", "dddd"]
    assert set(owner.__dict__["_cache"]) == {"a", "dddd"}
    assert looked_up(["bb"]) == [2]
    assert calls == ["a", "bb", "dddd", "bb"]
