"""The spam and abuse classifier: a plain library that knows nothing of Flask, Redis or SQL.

Typical use by the service::

    from models import CommentText, load_active

    classifier = load_active(model_dir)           # once per process
    score = classifier.score_one(CommentText(text, author=name))
    score.spam, score.abuse, score.reasons, score.model_version

Importing this package is cheap and has no side effects: the scientific libraries are
imported only when a name that needs them is first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from models.errors import (
    DataError,
    ModelError,
    ModelIntegrityError,
    ModelNotFoundError,
    ModelVersionError,
    TrainingError,
)
from models.records import CommentText

if TYPE_CHECKING:
    from models.author_reasons import quotes_author, without_author
    from models.classifier import Classifier, Score
    from models.examples import Example, read_examples, write_examples
    from models.registry import activate, active_version, list_versions, load_active, rollback, save_version
    from models.seeding import train_seed_model
    from models.training import TrainingResult, train

# Public name -> module that defines it; resolved on first access (PEP 562).
_LAZY = {
    "Classifier": "models.classifier",
    "Score": "models.classifier",
    "Example": "models.examples",
    "read_examples": "models.examples",
    "write_examples": "models.examples",
    "TrainingResult": "models.training",
    "train": "models.training",
    "save_version": "models.registry",
    "load_active": "models.registry",
    "activate": "models.registry",
    "active_version": "models.registry",
    "list_versions": "models.registry",
    "rollback": "models.registry",
    "train_seed_model": "models.seeding",
    "quotes_author": "models.author_reasons",
    "without_author": "models.author_reasons",
}

__all__ = [
    "Classifier",
    "CommentText",
    "DataError",
    "Example",
    "ModelError",
    "ModelIntegrityError",
    "ModelNotFoundError",
    "ModelVersionError",
    "Score",
    "TrainingError",
    "TrainingResult",
    "activate",
    "active_version",
    "list_versions",
    "load_active",
    "quotes_author",
    "read_examples",
    "rollback",
    "save_version",
    "train",
    "train_seed_model",
    "without_author",
    "write_examples",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
