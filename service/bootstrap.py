"""First-run set-up shared by ``moderation init`` and ``moderation run``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from models import ModelNotFoundError, ModelVersionError, activate, active_version, train_seed_model
from models.registry import clear_shadow, shadow_version, verify_version
from service.config import Settings
from service.db import engine_for, upgrade
from service.errors import NotMigratedError
from service.keyfile import check_keys, key_origin, load_keys


def prepare(settings: Settings, *, replace_key: bool = False) -> Iterator[str]:
    """Make sure a key exists and is the one the stored emails were encrypted with,
    migrate, train the seed model when none is active; say each step.

    A key that is malformed, or not the stored emails', stops it before any migration:
    a schema upgraded for a start that then fails is one the running processes may not read.
    With ``replace_key``, a key other than the recorded one is recorded instead while no
    email is stored.
    """
    # The data folder is not made here: each embedded default makes its own folder when it is
    # used, and an install configured without any (production) must not need a writable
    # working directory for an empty `instance/`.
    keys = load_keys(settings)
    engine = engine_for(settings)
    try:
        with contextlib.suppress(NotMigratedError):  # a new database: checked once migrated, below
            check_keys(keys, settings, engine, replace=replace_key)
        upgrade(engine)
        yield f"database ready: {engine.url.render_as_string(hide_password=True)}"
        check_keys(keys, settings, engine)  # a database migrated just now records the key
    finally:
        engine.dispose()
    yield f"secret key ready ({key_origin(settings)})"
    yield from _prepare_models(settings.models)


def _prepare_models(models: Path) -> Iterator[str]:
    """Train the seed model when none is active or the active one cannot be loaded here,
    and drop a shadow model this code cannot load."""
    shadow = shadow_version(models)
    if shadow is not None:
        try:
            verify_version(models, shadow)
        except (ModelVersionError, ModelNotFoundError) as exc:
            clear_shadow(models)  # workers would log that they cannot load it at every check
            yield f"shadow model {shadow} cannot be used here and was dropped: {exc}"
    version = active_version(models)
    if version is None:
        version = train_seed_model(models)
        yield f"trained seed model {version} in {models}"
        return
    try:
        verify_version(models, version)
    except (ModelVersionError, ModelNotFoundError) as exc:
        # Workers could not start with it; a seed model keeps the queue moving until a
        # retrain on the moderators' labels replaces it.
        seed = train_seed_model(models)
        activate(models, seed)
        yield f"active model {version} cannot be used here: {exc}"
        yield f"trained seed model {seed} in {models}; `moderation retrain --now` uses your labels"
        return
    yield f"active model {version} in {models}"
