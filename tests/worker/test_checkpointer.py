"""The workers, not the requests, copy SQLite's write-ahead log back into the database file."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from service.db import WAL_AUTOCHECKPOINT_PAGES, make_engine
from worker import checkpointer
from worker.checkpointer import start_checkpointer


def test_commits_leave_the_checkpoint_to_the_checkpointer(tmp_path: Path) -> None:
    database = tmp_path / "moderation.db"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        assert connection.scalar(text("PRAGMA wal_autocheckpoint")) == WAL_AUTOCHECKPOINT_PAGES
        connection.execute(text("CREATE TABLE t (body TEXT)"))
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (:body)"), [{"body": "x" * 500}] * 2000)
    before = database.stat().st_size
    stop = threading.Event()
    thread = start_checkpointer(engine, stop, interval=0.05)
    assert thread is not None
    deadline = time.monotonic() + 10
    while database.stat().st_size == before and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=5)
    assert database.stat().st_size > before + 500 * 1000  # the rows' pages are in the file now
    assert not thread.is_alive()
    engine.dispose()


def test_other_databases_need_no_checkpointer() -> None:
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    assert start_checkpointer(engine, threading.Event()) is None
    engine.dispose()


def test_the_wal_starts_over_while_commits_keep_coming(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'moderation.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (body TEXT)"))
    stop = threading.Event()
    commits = 0

    def write() -> None:
        nonlocal commits
        while not stop.is_set():
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO t VALUES (:body)"), {"body": "x" * 2000})
            commits += 1

    writer = threading.Thread(target=write)
    writer.start()
    checkpointer = start_checkpointer(engine, stop, interval=0.05)
    time.sleep(3)
    stop.set()
    writer.join()
    assert checkpointer is not None
    checkpointer.join()
    with engine.connect() as connection:
        _busy, frames, _copied = connection.execute(text("PRAGMA wal_checkpoint(PASSIVE)")).one()
    # Each commit adds at least one frame; a log that never started over would hold them all.
    assert commits > 200
    assert frames < commits / 4
    engine.dispose()


def test_one_checkpointer_works_a_database_and_another_takes_over_when_it_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'moderation.db'}"
    checkpoints: Counter[int] = Counter()

    def count(_connection: object) -> None:
        checkpoints[threading.get_ident()] += 1

    monkeypatch.setattr(checkpointer, "checkpoint_wal", count)
    # Two engines on one file, as two worker processes have; the lock between them is the same.
    first_engine, second_engine = make_engine(url), make_engine(url)
    first_stop, second_stop = threading.Event(), threading.Event()
    first = start_checkpointer(first_engine, first_stop, interval=0.02)
    assert first is not None and _wait_for(lambda: checkpoints[first.ident or 0] >= 3)
    second = start_checkpointer(second_engine, second_stop, interval=0.02)
    assert second is not None
    time.sleep(0.3)
    assert checkpoints[second.ident or 0] == 0
    first_stop.set()
    first.join(timeout=5)
    assert _wait_for(lambda: checkpoints[second.ident or 0] >= 3)
    second_stop.set()
    second.join(timeout=5)
    first_engine.dispose()
    second_engine.dispose()


def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
