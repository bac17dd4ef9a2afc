"""SQLite connections whose writers wait their turn on a file lock.

SQLite lets one writer in at a time, and a writer that finds the lock taken sleeps
in steps of 1, 2, 5, 10 ms... before trying again, while the holder needs a fraction
of a millisecond. With several gunicorn workers and the workers writing at once, most
of the time went to those sleeps. Here a connection takes an exclusive ``flock`` on a
file beside the database before its first write statement and drops it after commit
or rollback: a waiting writer is woken by the kernel the moment the lock is free.

Python's sqlite3 (in its default, legacy transaction control) begins a transaction only
before a statement whose first word is INSERT, UPDATE, DELETE or REPLACE; one beginning
with a WITH clause (the worker's verdicts UPDATE on SQLite) ran in autocommit, committed
on its own and outside the lock. Such a statement gets both here.

A forked process (the scheduler RQ forks beside a worker) shares its parent's open lock
files, and with them the lock: held by a parent that was killed, it stayed held, and every
writer waited, until the child ended too. A child closes its copies at once.

The web app's writers wait a bounded time (``wait_limit``), as SQLite's busy timeout
bounds its own waits: a writer stopped or hung while it holds the lock would otherwise
hold up every post until gunicorn killed the process unanswered, while the post went on
waiting and could still be stored afterwards. ``flock`` itself has no time limit, so the
wait is cut short by a timer signal (SIGALRM, which gunicorn leaves alone), and only in a
process's main thread, where Python runs signal handlers; a worker, whose jobs RQ times
with the same signal, waits as before.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Self

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
# What a statement beginning with a WITH clause does is its main statement's (SQLite's
# common table expressions only read); "replace(" is the string function, not REPLACE.
_WRITE_AFTER_WITH = re.compile(r"\b(?:INSERT|UPDATE|DELETE|REPLACE)\b(?!\s*\()", re.IGNORECASE)
# Python 3.12's `autocommit` attribute at its default, under which `isolation_level` rules;
# Python 3.11 has neither.
_LEGACY_CONTROL = getattr(sqlite3, "LEGACY_TRANSACTION_CONTROL", -1)


def _writes(sql: str) -> bool:
    head = sql.lstrip()[:7].upper()
    if head.startswith(_WRITES):
        return True
    return head.startswith("WITH") and _WRITE_AFTER_WITH.search(sql) is not None


class _Cursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> Self:
        self.connection.before_statement(sql)  # type: ignore[attr-defined]
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> Self:
        self.connection.before_statement(sql)  # type: ignore[attr-defined]
        return super().executemany(sql, seq_of_parameters)


# The connections of this process with their lock file open, for `_close_locks_in_child`.
_with_lock_files: weakref.WeakSet[QueuedWriterConnection] = weakref.WeakSet()


def _close_locks_in_child() -> None:
    # The parent's lock stays held while its own descriptor is open: closing the child's
    # copy releases nothing. A connection used here anyway opens a lock file of its own.
    for connection in list(_with_lock_files):
        if connection._lock_fd >= 0:
            os.close(connection._lock_fd)
        connection._lock_fd = -1
        connection._holding = False
    _with_lock_files.clear()


os.register_at_fork(after_in_child=_close_locks_in_child)


class _LockWaitTimeoutError(Exception):
    """Raised by the timer signal's handler to end a wait for the lock."""


def _end_wait(_signum: int, _frame: Any) -> None:
    raise _LockWaitTimeoutError


def _wait_for(lock_fd: int, seconds: float) -> None:
    """Take the exclusive lock on ``lock_fd``, waiting at most ``seconds`` when that can be
    timed here (the main thread, with SIGALRM free); ``sqlite3.OperationalError`` past it."""
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGALRM) not in (
        signal.SIG_DFL,
        _end_wait,
    ):
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        return
    signal.signal(signal.SIGALRM, _end_wait)
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        signal.setitimer(signal.ITIMER_REAL, 0)
    except _LockWaitTimeoutError:
        signal.setitimer(signal.ITIMER_REAL, 0)
        # The signal may have come just after the lock was taken: let go of it (letting go
        # of a lock not held does nothing).
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
        raise sqlite3.OperationalError(
            f"database is locked: another writer held it for more than {seconds:g} s"
        ) from None
    finally:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)


class QueuedWriterConnection(sqlite3.Connection):
    """A connection whose first write statement of a transaction waits for the file lock."""

    lock_path = ""  # set by `connection_class`
    wait_limit: float | None = None  # set by `connection_class`: None waits as long as it takes
    _lock_fd = -1
    _holding = False

    def cursor(self, factory: Any = None) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory or _Cursor)

    def before_statement(self, sql: str) -> None:
        """Before the first write of a transaction: wait for the write lock, and begin the
        transaction where Python's sqlite3 would not (a write beginning with WITH)."""
        if self._holding and self.in_transaction:
            return
        if not _writes(sql):
            return
        if not self._holding:
            self._acquire()
        if (
            not self.in_transaction
            and self.isolation_level is not None
            and getattr(self, "autocommit", _LEGACY_CONTROL) == _LEGACY_CONTROL
        ):
            # As sqlite3 begins one before an INSERT; commit() or rollback() ends it.
            begin = super().cursor(sqlite3.Cursor)
            try:
                begin.execute(f"BEGIN {self.isolation_level}")
            finally:
                begin.close()

    @contextmanager
    def writers_paused(self) -> Iterator[None]:
        """Hold the write lock for the block: every other connection's writer waits."""
        if self._holding:
            yield
            return
        self._acquire()
        try:
            yield
        finally:
            self._release()

    def _acquire(self) -> None:
        if self._lock_fd < 0:
            self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            _with_lock_files.add(self)
        try:
            if self.wait_limit is None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            else:
                _wait_for(self._lock_fd, self.wait_limit)
            self._holding = True
        except BaseException:
            # A signal handler's exception (a worker's job out of time) may come just after
            # the lock was taken, before it was noted as held: no commit or rollback would
            # let go of it then (letting go of a lock not held does nothing).
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            self._holding = False
            raise

    def _release(self) -> None:
        if self._holding:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            self._holding = False

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1
                _with_lock_files.discard(self)


def connection_class(lock_path: str, wait_limit: float | None = None) -> type[QueuedWriterConnection]:
    """A ``QueuedWriterConnection`` class whose writers queue on an exclusive lock of
    ``lock_path``, each waiting at most ``wait_limit`` seconds where that can be timed."""
    return type(
        "QueuedWriterConnection",
        (QueuedWriterConnection,),
        {"lock_path": lock_path, "wait_limit": wait_limit},
    )
