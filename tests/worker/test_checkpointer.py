"""The workers, not the requests, copy SQLite's write-ahead log back into the database file."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text

from service import db
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


def test_an_in_memory_database_gets_no_checkpointer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # It has no file, and so no log to copy back; nor a place for a lock file beside it.
    monkeypatch.chdir(tmp_path)
    engine = make_engine("sqlite:///:memory:")
    assert start_checkpointer(engine, threading.Event()) is None
    assert list(tmp_path.iterdir()) == []  # no ":memory:.checkpointer-lock" made where it runs
    engine.dispose()


def _wal_restarts(wal: Path) -> int:
    """The WAL header's salt-1, which SQLite adds one to each time the log starts over."""
    with wal.open("rb") as log:
        header = log.read(20)
    return int.from_bytes(header[16:20], "big")


def test_the_wal_starts_over_while_commits_keep_coming(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "moderation.db"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (body TEXT)"))
    salt_before = _wal_restarts(Path(f"{database}-wal"))
    runs = 0
    checkpoint = checkpointer.checkpoint_wal

    def counted(connection: Connection) -> float:
        nonlocal runs
        paused = checkpoint(connection)
        runs += 1
        return paused

    monkeypatch.setattr(checkpointer, "checkpoint_wal", counted)
    pauses: list[float] = []
    stop = threading.Event()
    commits = 0

    def write() -> None:
        nonlocal commits
        # Commits keep coming through several checkpoints (a broken checkpointer ends the
        # writing at the deadline, and fails below).
        deadline = time.monotonic() + 60
        while (commits < 400 or runs < 5) and time.monotonic() < deadline:
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO t VALUES (:body)"), {"body": "x" * 2000})
            commits += 1

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    thread = start_checkpointer(engine, stop, interval=0.05, observe=pauses.append)
    writer.join()
    stop.set()
    assert runs >= 5
    assert thread is not None
    thread.join()
    # Each checkpoint's pause of the writers, as the benchmarks record them.
    assert len(pauses) == runs and all(0 < pause < 5 for pause in pauses)
    # Counted from the log's header rather than its length, which depends on how many
    # commits a busy machine let through after the last checkpoint. SQLite's own
    # threshold (far more pages than these commits write) never started it over.
    assert _wal_restarts(Path(f"{database}-wal")) - salt_before >= 3
    engine.dispose()


def test_a_long_pause_of_the_writers_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every post waiting to commit waits as long as the pause, which a disk slow to sync
    # stretches: the operator is told. Any pause counts as long here.
    monkeypatch.setattr(db, "SLOW_CHECKPOINT_PAUSE_SECONDS", 0.0)
    engine = make_engine(f"sqlite:///{tmp_path / 'moderation.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (body TEXT)"))
        connection.execute(text("INSERT INTO t VALUES (:body)"), [{"body": "x" * 500}] * 100)
    with engine.connect() as connection, caplog.at_level(logging.WARNING, logger="service.db"):
        paused = db.checkpoint_wal(connection)
    assert paused > 0
    assert f"a WAL checkpoint held every writer for {paused * 1000:.0f} ms" in caplog.text
    engine.dispose()


@pytest.fixture
def checkpoints(monkeypatch: pytest.MonkeyPatch) -> Counter[Engine]:
    """How many checkpoints each engine's checkpointer ran (the checkpoint itself is skipped)."""
    counts: Counter[Engine] = Counter()

    def count(connection: Connection) -> None:
        counts[connection.engine] += 1

    monkeypatch.setattr(checkpointer, "checkpoint_wal", count)
    return counts


@pytest.fixture
def two_engines(tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one database file, as two worker processes have; the lock file is shared."""
    url = f"sqlite:///{tmp_path / 'moderation.db'}"
    engines = make_engine(url), make_engine(url)
    yield engines
    for engine in engines:
        engine.dispose()


def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


Running = tuple[threading.Thread, threading.Event]


def _started(engine: Engine) -> Running:
    stop = threading.Event()
    thread = start_checkpointer(engine, stop, interval=0.02)
    assert thread is not None
    return thread, stop


def _stopped(running: Running) -> None:
    thread, stop = running
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()


@pytest.fixture
def elected(
    checkpoints: Counter[Engine], two_engines: tuple[Engine, Engine]
) -> Iterator[tuple[Running, Engine]]:
    """A checkpointer that won the election and has checkpointed, and a second engine on its database."""
    first_engine, second_engine = two_engines
    first = _started(first_engine)
    assert _wait_for(lambda: checkpoints[first_engine] >= 1)
    yield first, second_engine
    _stopped(first)


def test_one_checkpointer_works_a_database_and_another_takes_over_when_it_stops(
    checkpoints: Counter[Engine], elected: tuple[Running, Engine]
) -> None:
    first, second_engine = elected
    second = _started(second_engine)
    time.sleep(0.3)
    assert checkpoints[second_engine] == 0
    _stopped(first)
    assert _wait_for(lambda: checkpoints[second_engine] >= 3)
    _stopped(second)


def test_a_process_forked_beside_the_checkpointer_does_not_keep_its_lock(
    checkpoints: Counter[Engine], elected: tuple[Running, Engine]
) -> None:
    first, second_engine = elected
    # As RQ forks its scheduler beside a worker: the child lives on after the checkpointer stops.
    child = os.fork()
    if child == 0:
        time.sleep(10)
        os._exit(0)
    try:
        _stopped(first)
        second = _started(second_engine)
        assert _wait_for(lambda: checkpoints[second_engine] >= 1, seconds=3)
        _stopped(second)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


def test_a_lock_file_that_cannot_be_opened_leaves_the_worker_without_a_checkpointer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'moderation.db'}")
    (tmp_path / "moderation.db.checkpointer-lock").mkdir()  # a directory cannot be opened for writing
    assert start_checkpointer(engine, threading.Event()) is None
    assert "no WAL checkpointer" in caplog.text
    engine.dispose()


def test_a_checkpointer_waiting_for_the_lock_stops_when_told(elected: tuple[Running, Engine]) -> None:
    # The elected one holds the lock for as long as its worker runs: another that waited on
    # the lock, rather than trying for it, would hold up its own worker's stop as long.
    _first, second_engine = elected
    thread, stop = _started(second_engine)
    time.sleep(0.1)  # it has tried for the lock a few times
    stop.set()
    thread.join(timeout=1)
    assert not thread.is_alive()


def test_a_failed_checkpoint_is_logged_and_the_next_one_runs(
    two_engines: tuple[Engine, Engine], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkpoint can fail now and then (a disk full for a moment): the thread goes on.
    engine, _ = two_engines
    runs: list[Connection] = []

    def failing_once(connection: Connection) -> None:
        runs.append(connection)
        if len(runs) == 1:
            raise OSError("No space left on device")

    monkeypatch.setattr(checkpointer, "checkpoint_wal", failing_once)
    running = _started(engine)
    assert _wait_for(lambda: len(runs) >= 3)
    _stopped(running)
    assert "WAL checkpoint skipped: No space left on device" in caplog.text
