"""The seed model: trained from the packaged seed set, robust to disguised spellings."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.classifier import Classifier
from models.records import CommentText
from models.registry import activate, active_version, list_versions, save_version
from models.seeding import SEED_FILE, seed_examples, train_seed_model
from models.training import train

pytestmark = pytest.mark.skipif(not SEED_FILE.is_file(), reason=f"seed data not present at {SEED_FILE}")

# (plain, disguised) pairs: leetspeak, spaced letters, homoglyphs, fullwidth, zero-width.
VARIANTS = [
    ("Buy viagra now", "Buy v1agra now"),
    ("cheap viagra and cialis here", "ch3ap v1@gr@ and c1al1s here"),
    ("free money for everyone", "f r e e  m o n e y for everyone"),
    ("claim your free prize", "claim your f.r.e.e prize"),
    ("you are an idiot", "you are an \u0456diot"),
    ("you stupid idiot", "y0u stup1d 1d10t"),
    ("shut up, moron", "\uff53\uff48\uff55\uff54 up, m\u200bor\u200con"),
    ("what a pathetic loser", "what a p\u0430thetic l\u043eser"),
]


@pytest.fixture(scope="module")
def seed_classifier() -> Classifier:
    return train(seed_examples()).classifier


@pytest.mark.parametrize(("plain", "disguised"), VARIANTS)
def test_disguised_variants_score_like_plain(seed_classifier: Classifier, plain: str, disguised: str) -> None:
    a, b = seed_classifier.score([CommentText(plain), CommentText(disguised)])
    for head in ("spam", "abuse"):
        assert getattr(a, head) == pytest.approx(getattr(b, head), abs=0.1), head


def test_obvious_cases(seed_classifier: Classifier) -> None:
    link_spam, insult, ordinary = seed_classifier.score(
        [
            CommentText(
                "Cheap pills, free shipping, order now at http://pills-cheap.example/buy", author="Pharma"
            ),
            CommentText("You are a stupid idiot and everyone hates you", author="troll"),
            CommentText("The council meeting is on Tuesday at the library.", author="Ann"),
        ]
    )
    assert link_spam.spam is not None and insult.abuse is not None
    assert ordinary.spam is not None and ordinary.abuse is not None
    assert link_spam.spam > 0.5 > ordinary.spam
    assert insult.abuse > 0.5 > ordinary.abuse


def test_train_seed_model_activates_and_is_idempotent(tmp_path: Path) -> None:
    version = train_seed_model(tmp_path)
    assert active_version(tmp_path) == version
    assert train_seed_model(tmp_path) == version
    assert list_versions(tmp_path) == [version]


def test_train_seed_model_keeps_another_active_version(tmp_path: Path) -> None:
    other = save_version(tmp_path, train(seed_examples()[:200]))
    activate(tmp_path, other)
    version = train_seed_model(tmp_path)
    assert version != other and active_version(tmp_path) == other


def test_short_friendly_comments_are_not_held_as_abuse(seed_classifier: Classifier) -> None:
    # Nor anything like them in the seed set. A seed with "lol" almost only in insults held
    # the first three for a moderator (0.70, 0.54, 0.39 against a threshold of 0.37), and
    # the first hour of a new site is full of such comments.
    friendly = ["lmao yes", "lol I love this town", "lol my cat does this", "lol fair enough"]
    insults = ["lol you idiot", "shut up loser lol", "lmao nobody likes you, clown"]
    review = seed_classifier.thresholds["abuse"]["review"]
    scores = seed_classifier.score([CommentText(text) for text in friendly + insults])
    assert [text for text, score in zip(friendly, scores, strict=False) if score.abuse >= review] == []
    assert all(score.abuse >= review for score in scores[len(friendly) :])
