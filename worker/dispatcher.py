"""Moving outbox entries to the job queue in batches.

The intake only writes the database; every worker runs this loop in a thread, so the
queue is fed as long as any worker lives. Entries are deleted in the same transaction
that hands their ids to Redis, and that commit comes after Redis took them: a Redis
outage leaves them in the outbox for the next round, and at worst (the commit fails
after Redis took the ids) an id is handed over twice, which the classify job's status
guard makes harmless.
"""

from __future__ import annotations

import logging
import threading

import redis
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service.queueing import ClassifyQueue
from service.tables import OutboxEntry
from worker.context import WorkerContext

logger = logging.getLogger(__name__)

BATCH = 500


def dispatch(session: Session, queue: ClassifyQueue, limit: int = BATCH) -> int:
    """Hand up to ``limit`` outbox entries, oldest first, to the queue; return how many.

    On PostgreSQL, rows another dispatcher holds are skipped. On SQLite the DELETE
    waits for the write lock, and RETURNING tells which rows this dispatcher won.
    """
    candidates = session.scalars(
        select(OutboxEntry.comment_id)
        .order_by(OutboxEntry.comment_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not candidates:
        session.rollback()
        return 0
    taken = session.scalars(
        delete(OutboxEntry).where(OutboxEntry.comment_id.in_(candidates)).returning(OutboxEntry.comment_id)
    ).all()
    queue.submit(sorted(taken))
    session.commit()
    return len(taken)


def dispatch_all(context: WorkerContext) -> int:
    """Dispatch until the outbox is empty; return how many entries were handed over."""
    total = 0
    with context.sessions() as session:
        while moved := dispatch(session, context.queue):
            total += moved
    return total


def start_dispatcher(context: WorkerContext, stop: threading.Event) -> threading.Thread:
    """Poll the outbox every ``dispatch_interval`` seconds in a daemon thread until ``stop`` is set.

    A full batch means more may be waiting, so the next round starts at once.
    """

    def loop() -> None:
        failing = False
        with context.sessions() as session:
            while not stop.is_set():
                try:
                    moved = dispatch(session, context.queue)
                except (redis.RedisError, SQLAlchemyError) as exc:
                    session.rollback()
                    if not failing:
                        logger.warning("dispatching paused, entries stay in the outbox: %s", exc)
                    failing, moved = True, 0
                else:
                    if failing:
                        logger.info("dispatching again")
                    failing = False
                if moved < BATCH:
                    stop.wait(context.settings.dispatch_interval)

    thread = threading.Thread(target=loop, name="dispatcher", daemon=True)
    thread.start()
    return thread
