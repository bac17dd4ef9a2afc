"""First-run set-up shared by ``moderation init`` and ``moderation run``."""

from __future__ import annotations

from collections.abc import Iterator

from models import active_version, train_seed_model
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
    else:
        yield f"active model {version} in {settings.models}"
