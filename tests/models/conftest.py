"""Fixtures for the classifier tests: a tiny labeled set that trains in well under a second."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from models import char_grams
from models.examples import Example
from models.out_of_core import train_out_of_core
from models.registry import activate, save_version
from models.training import TrainingResult, train

# Written for these tests: short spam (links, pills, scams), insults, and ordinary
# comments. Small enough to train in a fraction of a second, varied enough that both
# heads learn their obvious words.
SPAM = [
    "Buy cheap viagra online at http://cheap-pills.ru/buy now",
    "FREE MONEY!!! Click http://win-cash.xyz to claim your prize",
    "Earn $5000 a week from home, visit www.easy-income.biz today",
    "Best SEO services, rank first on Google: http://seo-boost.top",
    "Cheap replica watches and bags at http://replicas.shop free shipping",
    "Hot singles in your area, click http://dating-now.club",
    "Get free followers instantly at http://followers-free.online",
    "Casino bonus 200% no deposit, play at http://lucky-spin.win",
    "Work from home and make money fast, message me on whatsapp +1 555 123 4567",
    "Lose weight fast with this one pill, order at http://slim-pills.ru",
    "Crypto investment doubles your money in a week, join http://btc-x2.io",
    "Check out my channel and subscribe for free gift cards http://gift-codes.xyz",
    "Cheap loans approved instantly, no credit check, apply at http://fast-loan.biz",
    "Buy viagra cialis cheap no prescription http://pharma-direct.top",
    "Make money online free, click here http://money-maker.site",
    "Free iPhone giveaway, claim now at http://prize-claim.online!!!",
    "Visit my website for cheap essays and free money http://essay-mill.shop",
    "Discount pills, free shipping worldwide, order at http://meds-cheap.ru",
    "Win a free vacation, click http://travel-prize.club now",
    "Earn free bitcoin daily, sign up at http://free-btc.xyz",
]
ABUSE = [
    "You are an idiot and should shut up",
    "What a stupid moron, nobody cares about your opinion",
    "Shut up you pathetic loser",
    "The author is a complete idiot",
    "Go away you worthless troll",
    "You are so dumb it hurts, idiot",
    "Only a moron would write this garbage",
    "You stupid fool, learn to read",
    "Pathetic idiot, get lost",
    "You are a disgusting loser and a liar",
    "Nobody asked you, moron",
    "This writer is a brainless idiot",
    "Shut your mouth, you ignorant fool",
    "Get lost, stupid troll",
    "You are the dumbest person alive, loser",
    "What an idiotic moron you are",
    "Pathetic, stupid and ignorant, like you",
    "You worthless idiot, stop posting",
    "Listen here you dumb loser",
    "Such a stupid idiot of an author",
]
HAM = [
    "Thanks for the article, very informative about the city budget",
    "I disagree with the mayor, but the reporting here is fair",
    "Great photos of the festival, I was there on Saturday",
    "The new bus schedule starts next Monday according to the council",
    "Interesting point about school funding, I would like more detail",
    "My neighbours have been waiting for that road repair for years",
    "Does anyone know when the library reopens?",
    "Well written piece, the interview with the farmer was moving",
    "I think the council should publish the full report",
    "The match last night was exciting, great goal in the second half",
    "Thank you for covering the local election so carefully",
    "The weather this week has been lovely for the harvest",
    "I remember when that bakery opened, sad to see it close",
    "Could you add a map of the new cycle lanes?",
    "The report on housing prices matches what we see in our town",
    "My grandmother loved this recipe, thanks for sharing it",
    "Good analysis of the budget, though the numbers seem optimistic",
    "The concert in the park was wonderful this year",
    "I hope the hospital gets the funding it needs",
    "A balanced article, I appreciate both sides being heard",
]


@pytest.fixture(scope="session")
def tiny_examples() -> list[Example]:
    """Spam, abuse and ordinary examples with both labels known."""
    return (
        [Example(text, spam=1, abuse=0, source="tiny") for text in SPAM]
        + [Example(text, spam=0, abuse=1, source="tiny") for text in ABUSE]
        + [Example(text, spam=0, abuse=0, source="tiny") for text in HAM]
    )


@pytest.fixture(scope="session")
def trained(tiny_examples: list[Example]) -> TrainingResult:
    """A model trained once on the tiny set (treat as read-only)."""
    return train(tiny_examples)


@pytest.fixture
def make_result(tiny_examples: list[Example]) -> Callable[..., TrainingResult]:
    """Train a fresh result (safe to save and mutate) on the tiny set or other examples."""

    def make(
        examples: list[Example] | None = None, out_of_core: bool = False, **options: object
    ) -> TrainingResult:
        chosen = examples if examples is not None else tiny_examples
        if out_of_core:
            return train_out_of_core(lambda: iter(chosen), **options)  # type: ignore[arg-type]
        return train(chosen, **options)  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="session")
def tiny_registry(tmp_path_factory: pytest.TempPathFactory, tiny_examples: list[Example]) -> Path:
    """One saved, active version of the tiny model (read-only: copy it, as ``model_dir`` does)."""
    root = tmp_path_factory.mktemp("tiny-registry")
    activate(root, save_version(root, train(tiny_examples)))
    return root


@pytest.fixture
def model_dir(tmp_path: Path, tiny_registry: Path) -> Path:
    """A model directory of the test's own holding one saved, active version of the tiny model."""
    root = tmp_path / "models"
    shutil.copytree(tiny_registry, root)
    return root


@pytest.fixture(scope="session")
def datasets() -> Path:
    """The public corpora folder (`MODERATION_DATASETS`, default ../shared/datasets); skips when absent."""
    from models.importers import DATASETS_ENV, datasets_dir

    directory = datasets_dir()
    if not directory.is_dir():
        pytest.skip(f"corpora folder {directory} not found; set {DATASETS_ENV} to the datasets folder")
    return directory


# How each way of counting character n-grams sets `models.char_grams`.
CHAR_COUNTING: dict[str, dict[str, int]] = {
    "batch lookup": {"BATCH_LOOKUP_MIN_CHARACTERS": 0},
    "batch lookup, 8 characters numbered": {"BATCH_LOOKUP_MIN_CHARACTERS": 0, "ALPHABET": 8},
    "batch lookup in parts of 40 characters, 8 numbered": {
        "BATCH_LOOKUP_MIN_CHARACTERS": 0,
        "PART_CHARACTERS": 40,
        "ALPHABET": 8,
    },
    "word by word": {"BATCH_LOOKUP_MIN_CHARACTERS": 10**12},
}


@pytest.fixture(params=list(CHAR_COUNTING))
def char_counting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Character n-grams counted by one lookup for any batch (every character numbered or
    only the vocabulary's 8 most used, the words holding others counted word by word; the
    batch whole or in parts of a few documents), or word by word for every batch."""
    for name, value in CHAR_COUNTING[request.param].items():
        monkeypatch.setattr(char_grams, name, value)
    return str(request.param)
