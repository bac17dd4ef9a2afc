"""The seed model: a first classifier for a fresh install, trained from packaged data.

`models/seed/comments.jsonl` is a small hand-written labeled set (link and SEO spam,
scams, bot text, insults, threats, ordinary comments) shipped with the package, so a
new site gets an honest model before it has any moderator decisions of its own.
"""

from __future__ import annotations

from pathlib import Path

from models.artifacts import verify_artifact
from models.errors import ModelError, ModelNotFoundError
from models.examples import Example, fingerprint, read_examples
from models.registry import activate_if_none, list_versions, save_version
from models.training import train

# Beside this module, shipped as package data (`models = ["seed/*.jsonl"]`). A plain
# path rather than importlib.resources: the file is always a real file in the installed
# package, and a path works the same for editable and regular installs.
SEED_FILE = Path(__file__).resolve().parent / "seed" / "comments.jsonl"


def seed_examples() -> list[Example]:
    """Return the packaged seed examples.

    Raises:
        ModelNotFoundError: the seed file is not installed with the package.
    """
    if not SEED_FILE.is_file():
        raise ModelNotFoundError(f"seed data missing: {SEED_FILE}")
    return read_examples(SEED_FILE)


def _existing_seed_version(model_dir: Path, data_fingerprint: str) -> str | None:
    """Return the newest loadable version already trained on exactly this data, if any."""
    for version in reversed(list_versions(model_dir)):
        try:
            metadata = verify_artifact(model_dir / version)
        except ModelError:
            continue  # damaged, or made with other library versions: not reusable
        if metadata.get("data_fingerprint") == data_fingerprint:
            return version
    return None


def train_seed_model(model_dir: str | Path) -> str:
    """Train the seed model into `model_dir` and return its version.

    Idempotent: when a usable version trained on the same seed data already exists it
    is reused instead of training again. The version is activated only when no version
    is active yet, so running set-up again never replaces a model trained on real labels.
    """
    root = Path(model_dir)
    examples = seed_examples()
    version = _existing_seed_version(root, fingerprint(examples))
    if version is None:
        version = save_version(root, train(examples))
    activate_if_none(root, version)
    return version
