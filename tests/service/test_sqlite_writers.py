"""SQLite writers queue on a file lock: the second writer waits for the first, readers never do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rq.timeouts import JobTimeoutException
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError

from service import sqlite_writers
from service.db import make_engine, make_session_factory
from service.statuses import CommentStatus
from service.transitions import VerdictRecord, record_verdicts
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


# Timed by a thread: the wait is cut short by SIGALRM, which the signal method of
# pytest-timeout would hold.
@pytest.mark.timeout(120, method="thread")
def test_a_writer_with_a_wait_limit_gives_up_and_leaves_no_timer_behind(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    holder, limited = _engine(path), make_engine(f"sqlite:///{path}", statement_timeout=0.2)
    with holder.begin() as held:
        held.execute(text("INSERT INTO t VALUES (1)"))
        # Its own limit, not SQLite's busy timeout, whose message has no such ending.
        gave_up = r"database is locked: another writer held it for more than 0\.2 s"
        with pytest.raises(OperationalError, match=gave_up), limited.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (2)"))
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL
        # Where the wait cannot be timed (another thread), it waits for the lock as before.
        written: list[int] = []

        def write_in_a_thread() -> None:
            with limited.begin() as connection:
                connection.execute(text("INSERT INTO t VALUES (3)"))
            written.append(3)

        writer = threading.Thread(target=write_in_a_thread)
        writer.start()
        time.sleep(0.5)
        assert written == []
    writer.join(5)
    assert written == [3] and flock_is_free(tmp_path / "db.sqlite.writer-lock")
    with limited.begin() as connection:  # the lock it gave up on is not held by it
        connection.execute(text("INSERT INTO t VALUES (4)"))
        assert connection.execute(text("SELECT n FROM t ORDER BY rowid")).scalars().all() == [1, 3, 4]
    holder.dispose()
    limited.dispose()


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


def test_a_write_beginning_with_a_with_clause_is_queued_and_rolled_back_with_its_transaction(
    tmp_path: Path,
) -> None:
    # Python's sqlite3 begins a transaction only before INSERT, UPDATE, DELETE or REPLACE:
    # this UPDATE ran in autocommit, outside the lock, and no rollback could undo it.
    engine, lock = _engine(tmp_path / "db.sqlite"), tmp_path / "db.sqlite.writer-lock"
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (1)"))
    with engine.connect() as connection:
        connection.execute(text("WITH v(n) AS (SELECT replace('2', '', '')) SELECT n FROM v"))
        assert flock_is_free(lock)  # replace() is a function: that one only read
        connection.execute(text("WITH v(n) AS (VALUES (2)) UPDATE t SET n = (SELECT n FROM v)"))
        assert not flock_is_free(lock)
        connection.rollback()
        assert flock_is_free(lock)
        assert connection.execute(text("SELECT n FROM t")).scalar() == 1
    engine.dispose()


@pytest.mark.integration
def test_verdicts_a_failed_job_rolled_back_leave_its_comments_waiting(database_url: str) -> None:
    # On SQLite the verdicts UPDATE (a WITH statement) committed on its own: a job failing
    # before its commit left the comment decided with no verdict nor audit event, and the
    # retry skipped it, no longer `received`.
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO comments (thread, name, email_ciphertext, email_digest, body, status, "
                "created_at, updated_at) VALUES ('/t', 'Ann', :blob, :blob, 'Hi', 'received', :at, :at)"
            ),
            {"blob": b"\x01", "at": datetime(2026, 11, 28, tzinfo=UTC)},
        )
        comment_id = connection.execute(text("SELECT id FROM comments")).scalar_one()
    with make_session_factory(engine)() as session:
        verdict = VerdictRecord(0.1, 0.1, [], "m", CommentStatus.APPROVED, "below the thresholds")
        assert record_verdicts(session, {comment_id: verdict}) == [comment_id]
        session.rollback()  # as a failure between the verdicts and the job's commit does
    with engine.connect() as connection:
        assert connection.execute(text("SELECT status FROM comments")).scalar() == "received"
        assert connection.execute(text("SELECT count(*) FROM verdicts")).scalar() == 0
    engine.dispose()


_KILLED_WRITING_AFTER_A_FORK = """
import os, signal, sys, time
from sqlalchemy import text
from service.db import make_engine
engine = make_engine(sys.argv[1])
with engine.begin() as connection:  # the pooled connection opens its lock file
    connection.execute(text("INSERT INTO t VALUES (1)"))
child = os.fork()
if child == 0:  # as RQ forks its scheduler beside a worker
    time.sleep(30)
    os._exit(0)
print(child, flush=True)
connection = engine.connect()
connection.execute(text("INSERT INTO t VALUES (2)"))
os.kill(os.getpid(), signal.SIGKILL)  # the OOM killer, say, in the middle of a write
"""


def test_a_process_forked_beside_a_writer_killed_while_writing_does_not_keep_the_lock(tmp_path: Path) -> None:
    _engine(tmp_path / "db.sqlite").dispose()
    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITING_AFTER_A_FORK, f"sqlite:///{tmp_path / 'db.sqlite'}"],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    child = int(writer.stdout.readline())
    try:
        assert writer.wait(timeout=30) == -signal.SIGKILL
        # The child shared the parent's lock file, and so its lock, until it ended.
        assert flock_is_free(tmp_path / "db.sqlite.writer-lock")
    finally:
        writer.stdout.close()
        os.kill(child, signal.SIGKILL)


def test_a_time_limit_that_strikes_as_the_lock_is_taken_leaves_it_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker waits for the lock as long as it takes, and RQ times its job with SIGALRM:
    # a handler's exception raised as `flock` returned, before the lock was noted as held,
    # left it held by a connection that no commit or rollback would let go of, and every
    # writer of every process waited (the web's for 10 s, then 503) until it wrote again.
    engine, lock = _engine(tmp_path / "db.sqlite"), tmp_path / "db.sqlite.writer-lock"
    real_flock = sqlite_writers.fcntl.flock

    def out_of_time_once_taken(descriptor: int, operation: int) -> None:
        real_flock(descriptor, operation)
        if operation == sqlite_writers.fcntl.LOCK_EX:
            raise JobTimeoutException("Task exceeded maximum timeout value (60 seconds)")

    with monkeypatch.context() as patched:
        patched.setattr(sqlite_writers.fcntl, "flock", out_of_time_once_taken)
        with pytest.raises(JobTimeoutException), engine.connect() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))
    assert flock_is_free(lock)
    engine.dispose()
