"""The hand-written insult and swear lists, counted in normalized text."""

from __future__ import annotations

import pytest

from models.features import FEATURE_NAMES, describe, measure
from models.lexicon import (
    INSULT,
    NEUTRAL,
    SECOND_PERSON,
    SWEAR,
    lexicon_counts,
    negative_valences,
    word_kind,
)
from models.normalize import normalize_text
from models.records import CommentText


@pytest.mark.parametrize(
    ("word", "kind"),
    [
        ("idiot", INSULT),
        ("idiots", INSULT),
        ("pathetic", INSULT),
        ("pig", INSULT),
        ("pigment", NEUTRAL),
        ("ass", INSULT),
        ("assume", NEUTRAL),
        ("bullshit", SWEAR),
        ("dumbfuck", SWEAR),
        ("dumb", INSULT),
        ("retarded", INSULT),
        ("fucking", SWEAR),
        ("sucks", SWEAR),
        ("hell", SWEAR),
        ("hello", NEUTRAL),
        ("your", SECOND_PERSON),
        ("video", NEUTRAL),
        # Ordinary words that begin with, or hold, a listed stem.
        ("dumbfounded", NEUTRAL),
        ("dumbbell", NEUTRAL),
        ("prickly", NEUTRAL),
        ("creeping", NEUTRAL),
        ("retardant", NEUTRAL),
        ("fukushima", NEUTRAL),
        ("shitake", NEUTRAL),
    ],
)
def test_word_kind(word: str, kind: int) -> None:
    assert word_kind(word) == kind


def test_counts_and_aimed_insults() -> None:
    assert lexicon_counts("you are a pathetic liar")[:3] == (2, 0, 2)
    # Insults about someone else, and a swear word far from "you", are not aimed.
    assert lexicon_counts("he is an idiot")[:3] == (1, 0, 0)
    assert lexicon_counts("you said the new album is shit")[:3] == (0, 1, 0)
    assert lexicon_counts("great video, thanks for sharing") == (0, 0, 0, 0.0)


def test_negative_sentiment_sums_vader_valences() -> None:
    valences = negative_valences()
    assert valences["hate"] > 0
    assert "love" not in valences  # positive words are not counted
    assert lexicon_counts("i hate this")[3] == pytest.approx(valences["hate"])
    assert lexicon_counts("i love this")[3] == 0.0


@pytest.mark.parametrize("disguised", ["you 1d10t", "you \u0456diot", "you i d i o t", "you iiidiot"])
def test_disguised_insults_count_as_plain(disguised: str) -> None:
    assert lexicon_counts(normalize_text(disguised)) == lexicon_counts(normalize_text("you idiot"))


def test_metadata_features_describe_the_counts() -> None:
    values = dict(zip(FEATURE_NAMES, measure(CommentText("You stupid f*cking moron")), strict=True))
    assert values["insult_words"] == 2
    assert values["aimed_insults"] >= 2
    names = list(FEATURE_NAMES)
    assert describe(names.index("insult_words"), 2.0) == "2 insulting words"
    assert describe(names.index("aimed_insults"), 1.0) == "1 insulting or swear word aimed at 'you'"
    assert describe(names.index("negative_words"), 2.7) == "negative wording (sentiment -2.7)"
