"""Checkpointing a SQLite database's write-ahead log outside the requests.

Every commit appends pages to the WAL; a checkpoint copies them back into the database
file and syncs it. SQLite would run it inside the commit that crosses its threshold,
usually a request's, holding the write lock for the sync. Workers run it instead, in a
thread, several times a second, so a request's commit waits at most for the short tail
copied with writers paused (see service/db.py).

Every worker process starts a checkpointer, but one a database is enough: each pause of
the writers is a pause for every request. So they elect one through a lock file beside
the database; the others wait, and one of them takes over within an interval when the
holder stops or its process dies (the kernel releases the lock with the process).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from service.db import checkpoint_wal

logger = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_SECONDS = 0.25


def start_checkpointer(
    engine: Engine,
    stop: threading.Event,
    interval: float = CHECKPOINT_INTERVAL_SECONDS,
    observe: Callable[[float], None] | None = None,
) -> threading.Thread | None:
    """Checkpoint ``engine``'s WAL every ``interval`` seconds in a daemon thread until ``stop`` is set.

    Only the checkpointer holding the database's checkpointer lock works; the others try
    for it every interval. ``observe``, if given, is called with each checkpoint's pause of
    the writers, in seconds (the benchmarks record them). Returns ``None`` for anything but
    a SQLite file (other databases manage their own logs) and when the lock file cannot be
    opened.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        return None
    try:
        lock = os.open(f"{database}.checkpointer-lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        # The worker still works; SQLite then checkpoints inside commits, past its threshold.
        logger.warning("no WAL checkpointer: %s", exc)
        return None
    open_lock = [lock]  # emptied before the close, so no later fork closes a reused number

    def drop_in_child() -> None:
        # A process forked from this one (RQ's scheduler is) would share the lock and hold
        # it after this process stops, keeping every other checkpointer out.
        if open_lock:
            os.close(open_lock.pop())

    os.register_at_fork(after_in_child=drop_in_child)

    def elected() -> bool:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a no-op once held
        except BlockingIOError:
            return False
        return True

    def loop() -> None:
        try:
            while not stop.wait(interval):
                if not elected():
                    continue
                try:
                    with engine.connect() as connection:
                        paused = checkpoint_wal(connection)
                except Exception as exc:  # noqa: BLE001 - the thread must outlive any one failed checkpoint
                    logger.warning("WAL checkpoint skipped: %s", exc)
                    continue
                if observe is not None:
                    observe(paused)
        finally:
            os.close(open_lock.pop())  # lets another checkpointer take over

    thread = threading.Thread(target=loop, name="wal-checkpointer", daemon=True)
    thread.start()
    return thread
