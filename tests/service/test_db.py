"""The engines the service opens."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from service.config import load_settings
from service.db import PG_CONNECT_TIMEOUT_SECONDS, engine_for, make_engine, missing_table
from service.errors import ConfigError
from tests.conftest import POSTGRES_URL, _postgres_answers, require_service

pytestmark = pytest.mark.integration


def test_a_database_error_names_the_statement_but_not_its_values(database_url: str) -> None:
    engine = make_engine(database_url)
    personal = "ann.reader@example.com"
    try:
        with pytest.raises(DBAPIError) as raised, engine.connect() as connection:
            connection.execute(
                text("SELECT name FROM no_such_table WHERE email = :email"), {"email": personal}
            )
    finally:
        engine.dispose()
    assert "no_such_table" in str(raised.value) and personal not in str(raised.value)


def test_a_missing_table_is_told_from_other_database_errors(database_url: str) -> None:
    engine = make_engine(database_url)
    errors = []
    try:
        for statement in ("SELECT id FROM no_such_table", "SELECT no_such_column FROM comments"):
            with pytest.raises(DBAPIError) as raised, engine.connect() as connection:
                connection.execute(text(statement))
            errors.append(raised.value)
    finally:
        engine.dispose()
    assert [missing_table(error) for error in errors] == [True, False]
    assert missing_table(errors[0].orig) and not missing_table(RuntimeError("no such table"))


@pytest.mark.parametrize(
    ("url", "timeout"),
    [("postgresql://db.invalid/x", PG_CONNECT_TIMEOUT_SECONDS), ("postgres://h/x?connect_timeout=30", "30")],
)
def test_connecting_to_postgresql_gives_up_after_a_while(
    url: str, timeout: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server that drops packets would otherwise hold a request until libpq gave up: never.
    engine = make_engine(url)
    asked: dict[str, object] = {}

    def connect(*_args: object, **kwargs: object) -> None:
        asked.update(kwargs)
        raise engine.dialect.loaded_dbapi.OperationalError("no answer")

    monkeypatch.setattr(engine.dialect.loaded_dbapi, "connect", connect)
    with pytest.raises(DBAPIError):
        engine.connect()
    assert asked["connect_timeout"] == timeout
    engine.dispose()


@pytest.mark.parametrize(("full_sync", "synchronous"), [(None, 1), (False, 1), (True, 2)])
def test_sqlite_syncs_every_commit_only_when_configured(
    full_sync: bool | None, synchronous: int, tmp_path: Path
) -> None:
    overrides = (
        {"data_dir": tmp_path} if full_sync is None else {"data_dir": tmp_path, "sqlite_full_sync": full_sync}
    )
    engine = engine_for(load_settings({}, overrides))
    try:
        with engine.connect() as connection:
            # 1 is NORMAL (the log synced at checkpoints), 2 is FULL (at every commit).
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == synchronous
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()


def test_a_value_overwritten_in_sqlite_leaves_no_copy_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "erased.db"
    engine = make_engine(f"sqlite:///{path}")
    # As a SQLite built with secure_delete off by default (Debian's is built with it on).
    event.listen(
        engine, "connect", lambda dbapi, _record: dbapi.execute("PRAGMA secure_delete=OFF"), insert=True
    )
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, url TEXT)")
            for number in range(20):
                connection.execute(
                    text("INSERT INTO people (name, url) VALUES (:name, :url)"),
                    {"name": f"Reader {number}", "url": None},
                )
            connection.execute(
                text("INSERT INTO people (name, url) VALUES (:name, :url)"),
                {"name": "Wilhelmina Frobisher", "url": "https://frobisher.example"},
            )
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        with engine.begin() as connection:
            # As an erasure rewrites a commenter's rows.
            connection.exec_driver_sql("UPDATE people SET name = 'Anonymous', url = NULL WHERE id = 21")
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    assert b"Frobisher" not in path.read_bytes()


def test_a_sqlite_too_old_for_the_migrations_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.31.1")
    with pytest.raises(
        ConfigError, match=r"SQLite 3\.35 or newer is needed, and this Python's sqlite3 has 3\.31\.1"
    ):
        make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    assert not (tmp_path / "old.db").exists()


@pytest.mark.parametrize("checkout", ["connect", "raw_connection"])
def test_a_pooled_connection_the_server_closed_is_replaced_before_a_statement_fails(checkout: str) -> None:
    # As after a restart of PostgreSQL: the first statement on each pooled connection failed
    # (a 503 for the request, the health check's too). "raw_connection" is the intake's way.
    require_service(_postgres_answers(), f"PostgreSQL at {POSTGRES_URL}")
    engine, admin = make_engine(POSTGRES_URL), make_engine(POSTGRES_URL)
    try:
        with engine.connect() as connection:
            ended = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with admin.connect() as connection:
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": ended}).scalar()
            deadline = time.monotonic() + 5
            alive = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
            while connection.execute(alive, {"pid": ended}).scalar() and time.monotonic() < deadline:
                time.sleep(0.01)
        if checkout == "connect":
            with engine.connect() as connection:
                backend = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        else:
            raw = engine.raw_connection()
            try:
                cursor = raw.cursor()
                cursor.execute("SELECT pg_backend_pid()")
                backend = cursor.fetchone()[0]
            finally:
                raw.close()
        assert backend != ended
    finally:
        engine.dispose()
        admin.dispose()


def test_a_statement_timeout_keeps_the_options_libpq_reads_from_pgoptions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An `options` connection parameter makes libpq ignore PGOPTIONS: a search_path (or
    # lock_timeout) set there would hold for the workers and commands but not for the web
    # app, whose comments would then go to another schema than the workers read.
    require_service(_postgres_answers(), f"PostgreSQL at {POSTGRES_URL}")
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=1234")
    for statement_timeout in (None, 10.0):
        engine = make_engine(POSTGRES_URL, statement_timeout=statement_timeout)
        try:
            with engine.connect() as connection:
                assert connection.execute(text("SHOW lock_timeout")).scalar() == "1234ms", statement_timeout
        finally:
            engine.dispose()
