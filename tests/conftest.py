"""Shared fixtures: real Redis, real PostgreSQL and SQLite, a seed model, app and client.

The integration servers are the machine's own (PostgreSQL on 127.0.0.1:5432, Redis on
127.0.0.1:6379, or TEST_DATABASE_URL / TEST_REDIS_URL). Without them a test skips
saying what to start; with CI=true it fails instead, because CI must run them all.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from models import train_seed_model
from service import create_app
from service.app import Services
from service.auth import create_token
from service.db import make_engine, migrated_schema, upgrade
from service.keyfile import generate_secret
from service.tables import Base

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_service(reachable: bool, what: str) -> None:
    """Skip (or, in CI, fail) a test whose real server is not there."""
    if reachable:
        return
    message = f"{what} is not reachable; start it or point the TEST_* variable at one"
    if IN_CI:
        pytest.fail(f"CI=true and {message}")
    pytest.skip(message)


def _postgres_answers() -> bool:
    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means "not there"
        return False
    finally:
        engine.dispose()
    return True


def _redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The machine's Redis server."""
    require_service(_redis_answers(), f"Redis at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[str]:
    """A PostgreSQL URL whose search path is a schema of its own, migrated, dropped at the end."""
    require_service(_postgres_answers(), f"PostgreSQL at {POSTGRES_URL}")
    with migrated_schema(POSTGRES_URL, f"test_{uuid.uuid4().hex[:12]}") as url:
        yield url


def _truncate(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database for each test to copy: migrating one takes a fifth of a second."""
    path = tmp_path_factory.mktemp("sqlite") / "moderation.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    if path.with_name(f"{path.name}-wal").exists():  # the last connection to close checkpoints it
        raise RuntimeError(f"{path} kept its write-ahead log after its last connection closed")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage test runs twice: on a fresh SQLite file and on the real PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "moderation.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_schema")
    _truncate(url)
    yield url


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model registry with the seed model trained and active, shared by the session."""
    directory = tmp_path_factory.mktemp("models")
    train_seed_model(directory)
    return directory


@pytest.fixture
def own_models(model_dir: Path, tmp_path: Path) -> Path:
    """A copy of the seed registry that one test may change (train, activate, set a shadow)."""
    target = tmp_path / "models"
    shutil.copytree(model_dir, target)
    return target


@pytest.fixture
def queue_name() -> str:
    """A queue of the test's own, so tests sharing one Redis server never see each other's jobs."""
    return f"classify-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def settings_overrides(
    database_url: str, redis_url: str, model_dir: Path, tmp_path: Path, queue_name: str
) -> dict[str, Any]:
    """Settings for one test: its own data folder, database, queue and key."""
    return {
        "data_dir": tmp_path / "instance",
        "database_url": database_url,
        "redis_url": redis_url,
        "model_dir": model_dir,
        "secret_key": generate_secret(),
        "queue_name": queue_name,
        "retrain_queue": f"{queue_name}-retrain",
        "allowed_redirect_hosts": ("news.example",),
        # Tests post many comments from one address and email; tests/service/test_flood.py
        # turns the limits on.
        "comment_limit_per_address": "",
        "comment_limit_per_commenter": "",
    }


@pytest.fixture
def app(settings_overrides: dict[str, Any]) -> Iterator[Flask]:
    """The app wired to real servers."""
    application = create_app(settings_overrides)
    yield application
    services: Services = application.extensions["moderation"]
    services.queue.queue.empty()
    services.queue.queue.connection.delete(services.queue.inbox)
    services.retrain_queue.empty()
    services.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for ``app``."""
    return app.test_client()


@pytest.fixture
def services(app: Flask) -> Services:
    """The app's services (sessions, queue, keys)."""
    return app.extensions["moderation"]  # type: ignore[no-any-return]


@pytest.fixture
def moderator_headers(services: Services) -> dict[str, str]:
    """An Authorization header with a fresh moderator token."""
    with services.sessions() as session:
        token = create_token(session, "Mod Erator")
        session.commit()
    return {"Authorization": f"Bearer {token}"}
