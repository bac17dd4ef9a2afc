"""SQLite writers queue on a file lock: the second writer waits for the first, readers never do."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text

from service.db import make_engine
from tests.flock import flock_is_free


def _engine(path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS t (n INTEGER)"))
    return engine


def test_a_second_writer_waits_for_the_first_to_commit(tmp_path: Path) -> None:
    # Two engines stand for two processes: separate pools, separate connections.
    first, second = _engine(tmp_path / "db.sqlite"), _engine(tmp_path / "db.sqlite")
    second.dispose()

    @event.listens_for(second, "connect")
    def no_busy_wait(dbapi_connection: Any, _record: Any) -> None:
        # SQLite's own busy handler would make it wait too: the file lock alone must.
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    finished: list[float] = []

    def write_second() -> None:
        with second.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (2)"))
        finished.append(time.monotonic())

    with first.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (1)"))
        writer = threading.Thread(target=write_second)
        writer.start()
        with second.connect() as reader:
            assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 0
        time.sleep(0.3)
        assert finished == []
        committed = time.monotonic()
    writer.join(5)
    assert finished and finished[0] >= committed
    with first.connect() as connection:
        assert connection.execute(text("SELECT n FROM t ORDER BY rowid")).scalars().all() == [1, 2]
    first.dispose()
    second.dispose()


def test_the_lock_is_held_from_the_first_write_to_commit_or_rollback(tmp_path: Path) -> None:
    engine, lock = _engine(tmp_path / "db.sqlite"), tmp_path / "db.sqlite.writer-lock"
    with engine.connect() as connection:
        connection.execute(text("SELECT count(*) FROM t"))
        assert flock_is_free(lock)
        connection.execute(text("INSERT INTO t VALUES (1)"))
        assert not flock_is_free(lock)
        connection.rollback()
        assert flock_is_free(lock)
        connection.execute(text("UPDATE t SET n = 2"))
        assert not flock_is_free(lock)
        connection.commit()
        assert flock_is_free(lock)
    engine.dispose()
