"""Storing a comment: all of it or nothing, and a broken connection costs one request at most."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, event, func, select, text

from service.db import make_engine
from service.flood import FloodControl, Window
from service.intake import Intake
from service.keyfile import generate_secret
from service.privacy import KeyRing
from service.tables import Comment, FloodCounter, OutboxEntry
from service.validation import Submission

pytestmark = pytest.mark.integration

KEYS = KeyRing.from_secret(generate_secret().encode())
SUBMISSION = Submission(name="Ann", email="ann@example.com", comment="Thanks for this.", thread="/a/1")
# Limits no test here reaches: the post is counted in the statement that stores it.
WINDOWS = FloodControl(KEYS, "50 per minute", "50 per minute").windows("198.51.100.7", SUBMISSION.email)

_REFUSE_OUTBOX = {
    "sqlite": [
        "CREATE TRIGGER refuse_outbox BEFORE INSERT ON classify_outbox"
        " BEGIN SELECT RAISE(ABORT, 'outbox refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_outbox() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN RAISE EXCEPTION 'outbox refused'; END $$",
        "CREATE TRIGGER refuse_outbox BEFORE INSERT ON classify_outbox"
        " FOR EACH ROW EXECUTE FUNCTION refuse_outbox()",
    ],
}
_ALLOW_OUTBOX = {
    "sqlite": ["DROP TRIGGER refuse_outbox"],
    "postgresql": ["DROP TRIGGER refuse_outbox ON classify_outbox", "DROP FUNCTION refuse_outbox()"],
}
# A write that queues on SQLite's writer lock (schema changes do not), harmless here.
_ANOTHER_WRITE = "DELETE FROM classify_outbox"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the test's database."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _run(engine: Engine, statements: list[str]) -> None:
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def _stored(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        comments = connection.scalar(select(func.count()).select_from(Comment))
        entries = connection.scalar(select(func.count()).select_from(OutboxEntry))
    return int(comments or 0), int(entries or 0)


def _counts(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return sorted(connection.scalars(select(FloodCounter.count)))


@pytest.mark.parametrize("windows", [(), WINDOWS], ids=["unlimited", "counted"])
def test_a_failed_outbox_insert_leaves_no_comment_no_count_and_no_lock(
    engine: Engine, database_url: str, windows: tuple[Window, ...]
) -> None:
    intake = Intake(engine)
    _run(engine, _REFUSE_OUTBOX[engine.dialect.name])
    try:
        with pytest.raises(Exception, match="outbox refused"):
            intake.submit(KEYS, SUBMISSION, windows)
        assert _stored(engine) == (0, 0) and _counts(engine) == []
        # Another process can write at once: the failed request left no write lock behind.
        other = make_engine(database_url)
        writer = threading.Thread(target=_run, args=(other, [_ANOTHER_WRITE]))
        writer.start()
        writer.join(timeout=10)
        assert not writer.is_alive()
        other.dispose()
    finally:
        _run(engine, _ALLOW_OUTBOX[engine.dialect.name])
    receipt = intake.submit(KEYS, SUBMISSION, windows)
    assert receipt.id > 0 and _stored(engine) == (1, 1)
    assert _counts(engine) == [1] * len(windows)


def _backend_of_the_pool(engine: Any) -> int:
    with engine.connect() as connection:  # the pool's one connection, which the intake used
        return int(connection.scalar(text("SELECT pg_backend_pid()")))


def _terminate(url: str, backend: int) -> None:
    """End ``backend`` and wait until it has gone (pg_terminate_backend only signals it)."""
    admin = make_engine(url)
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        deadline = time.monotonic() + 5
        alive = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
        while connection.execute(alive, {"pid": backend}).scalar() and time.monotonic() < deadline:
            time.sleep(0.01)
    admin.dispose()


def _posted_once(url: str, windows: tuple[Window, ...]) -> tuple[Engine, Intake, int]:
    """An engine whose pool's one connection has stored a post, its intake, and how many
    comments there were before that post."""
    engine = make_engine(url)
    _run(engine, ["DELETE FROM flood_counters"])
    intake = Intake(engine)
    before = _stored(engine)[0]
    intake.submit(KEYS, SUBMISSION, windows)
    return engine, intake, before


def _assert_two_stored(engine: Engine, before: int, windows: tuple[Window, ...]) -> None:
    """Two posts stored and counted since ``before``; the engine is disposed of."""
    assert _stored(engine)[0] == before + 2
    assert _counts(engine) == [2] * len(windows)
    engine.dispose()


@pytest.mark.parametrize("windows", [(), WINDOWS], ids=["unlimited", "counted"])
def test_a_connection_the_server_closed_while_idle_fails_no_request(
    postgres_schema: str, windows: tuple[Window, ...]
) -> None:
    # As after a restart of PostgreSQL: the pool replaces it at checkout (service/db.py).
    engine, intake, before = _posted_once(postgres_schema, windows)
    _terminate(postgres_schema, _backend_of_the_pool(engine))
    intake.submit(KEYS, SUBMISSION, windows)
    _assert_two_stored(engine, before, windows)


@pytest.mark.parametrize("windows", [(), WINDOWS], ids=["unlimited", "counted"])
def test_a_connection_the_server_drops_during_a_request_fails_that_request_only(
    postgres_schema: str, windows: tuple[Window, ...]
) -> None:
    # Dropped after checkout, where only the intake's own handling of the bare cursor sees it.
    engine, intake, before = _posted_once(postgres_schema, windows)
    backend = _backend_of_the_pool(engine)
    dropped: list[int] = []

    @event.listens_for(engine, "checkout")
    def drop_once(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if not dropped:
            dropped.append(backend)
            _terminate(postgres_schema, backend)

    with pytest.raises(psycopg.OperationalError, match="terminating connection"):
        intake.submit(KEYS, SUBMISSION, windows)
    intake.submit(KEYS, SUBMISSION, windows)
    _assert_two_stored(engine, before, windows)
