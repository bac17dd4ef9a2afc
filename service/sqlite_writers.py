"""SQLite connections whose writers wait their turn on a file lock.

SQLite lets one writer in at a time, and a writer that finds the lock taken sleeps
in steps of 1, 2, 5, 10 ms... before trying again, while the holder needs a fraction
of a millisecond. With several gunicorn workers and the workers writing at once, most
of the time went to those sleeps. Here a connection takes an exclusive ``flock`` on a
file beside the database before its first write statement and drops it after commit
or rollback: a waiting writer is woken by the kernel the moment the lock is free.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Self

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class _Cursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> Self:
        self.connection.before_statement(sql)  # type: ignore[attr-defined]
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> Self:
        self.connection.before_statement(sql)  # type: ignore[attr-defined]
        return super().executemany(sql, seq_of_parameters)


class QueuedWriterConnection(sqlite3.Connection):
    """A connection whose first write statement of a transaction waits for the file lock."""

    lock_path = ""  # set by `connection_class`
    _lock_fd = -1
    _holding = False

    def cursor(self, factory: Any = None) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory or _Cursor)

    def before_statement(self, sql: str) -> None:
        """Wait for the write lock before the first write of a transaction."""
        if not self._holding and sql.lstrip()[:7].upper().startswith(_WRITES):
            self._acquire()

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
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._holding = True

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


def connection_class(lock_path: str) -> type[QueuedWriterConnection]:
    """A ``QueuedWriterConnection`` class whose writers queue on an exclusive lock of ``lock_path``."""
    return type("QueuedWriterConnection", (QueuedWriterConnection,), {"lock_path": lock_path})
