"""First-run set-up shared by ``moderation init`` and ``moderation run``."""

from __future__ import annotations

from collections.abc import Iterator

from models import ModelVersionError, activate, active_version, train_seed_model
from models.artifacts import verify_artifact
from service.config import Settings
from service.db import make_engine, upgrade
from service.keyfile import load_keys


def prepare(settings: Settings) -> Iterator[str]:
    """Migrate, make sure a key exists, train the seed model when none is active; say each step."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database)
    upgrade(engine)
    engine.dispose()
    yield f"database ready: {engine.url.render_as_string(hide_password=True)}"
    load_keys(settings)
    yield "secret key ready" + ("" if settings.secret_key else f" ({settings.data_dir / 'secret.key'})")
    version = active_version(settings.models)
    if version is None:
        version = train_seed_model(settings.models)
        yield f"trained seed model {version} in {settings.models}"
        return
    try:
        verify_artifact(settings.models / version)
    except ModelVersionError as exc:
        # Workers could not start with it; a seed model keeps the queue moving until a
        # retrain on the moderators' labels replaces it.
        seed = train_seed_model(settings.models)
        activate(settings.models, seed)
        yield f"active model {version} cannot be used here: {exc}"
        yield f"trained seed model {seed} in {settings.models}; `moderation retrain --now` uses your labels"
        return
    yield f"active model {version} in {settings.models}"
