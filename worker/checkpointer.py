"""Checkpointing a SQLite database's write-ahead log outside the requests.

Every commit appends pages to the WAL; a checkpoint copies them back into the database
file and syncs it. SQLite would run it inside the commit that crosses its threshold,
usually a request's, holding the write lock for the sync. Workers run it instead, in a
thread, several times a second, so a request's commit waits at most for the short tail
copied with writers paused (see service/db.py).
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine

from service.db import checkpoint_wal

logger = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_SECONDS = 0.25


def start_checkpointer(
    engine: Engine, stop: threading.Event, interval: float = CHECKPOINT_INTERVAL_SECONDS
) -> threading.Thread | None:
    """Checkpoint ``engine``'s WAL every ``interval`` seconds in a daemon thread until ``stop`` is set.

    Returns ``None`` for databases other than SQLite, which manage their own logs.
    """
    if engine.dialect.name != "sqlite":
        return None

    def loop() -> None:
        while not stop.wait(interval):
            try:
                with engine.connect() as connection:
                    checkpoint_wal(connection)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any one failed checkpoint
                logger.warning("WAL checkpoint skipped: %s", exc)

    thread = threading.Thread(target=loop, name="wal-checkpointer", daemon=True)
    thread.start()
    return thread
