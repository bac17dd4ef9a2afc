"""Finding comments stuck in ``received`` and putting them in the inbox again, and
purging the flood counters of windows that ended.

A comment stays in ``received`` past its dispatch when Redis lost the inbox or the
job that would take it, or when a worker died holding its batch. (While Redis is down,
comments wait in the outbox, which the dispatcher empties once it is back.) Any worker may sweep; a short
Redis lock keeps it to one sweep per interval.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any, cast

import redis
from sqlalchemy import CursorResult, delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service.db import NOT_MIGRATED, missing_table
from service.flood import milliseconds
from service.queueing import ClassifyQueue
from service.statuses import CommentStatus
from service.tables import Comment, FloodCounter, OutboxEntry, utcnow
from worker.context import WorkerContext

logger = logging.getLogger(__name__)

BATCH = 1000


def sweep(session: Session, queue: ClassifyQueue, grace_seconds: float) -> int:
    """Submit again the comments in ``received`` for longer than the grace period that the
    outbox no longer holds (the dispatcher will hand those over), and start the inbox
    again if no job would take it.

    An id that is in fact still waiting gets a second place in the inbox; the job that
    reaches it second finds it decided and skips it, which costs less than searching
    the inbox for every stuck id. Returns how many were submitted.
    """
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    in_outbox = select(OutboxEntry.comment_id).where(OutboxEntry.comment_id == Comment.id)
    stuck = session.scalars(
        select(Comment.id)
        .where(Comment.status == CommentStatus.RECEIVED, Comment.created_at < cutoff, ~in_outbox.exists())
        .order_by(Comment.id)
        .limit(BATCH)
    ).all()
    queue.submit(stuck)
    if stuck:
        logger.info("sweeper submitted %s stuck comments again", len(stuck))
    if queue.ensure_draining():
        logger.warning("the inbox held ids but no job would take them; enqueued one")
    return len(stuck)


def purge_flood_counters(session: Session) -> int:
    """Delete the flood counters whose window has ended, ``BATCH`` at a time, each batch
    committed on its own so that no write waits for the whole purge; returns how many.

    A post in an ended window starts it again, so deleting an ended counter changes
    nothing. One that a post is restarting at that moment is skipped (PostgreSQL), and
    the end is checked again on the row deleted: the purge never takes a fresh count.
    """
    now_ms = milliseconds(utcnow())
    ended = FloodCounter.window_ends_ms <= now_ms
    purged = 0
    while True:
        batch = select(FloodCounter.key).where(ended).limit(BATCH).with_for_update(skip_locked=True)
        result = session.execute(delete(FloodCounter).where(FloodCounter.key.in_(batch), ended))
        deleted = int(cast(CursorResult[Any], result).rowcount)
        session.commit()
        purged += deleted
        if deleted < BATCH:
            return purged


def _sweep_once(context: WorkerContext) -> None:
    queue = context.background_queue
    lock_seconds = max(1, int(context.settings.sweep_interval))
    try:
        held = queue.queue.connection.set(queue.sweeper_lock, "held", nx=True, ex=lock_seconds)
    except redis.RedisError:
        # The stuck comments wait for Redis; the purge needs only the database, and is
        # harmless run by every worker at once for as long as Redis is down.
        with context.sessions() as session:
            purge_flood_counters(session)
        raise
    if not held:
        return
    with context.sessions() as session:
        try:
            sweep(session, queue, context.settings.sweep_grace)
        finally:
            # Needs only the database: a Redis that failed the sweep must not keep old counts.
            session.rollback()
            purge_flood_counters(session)


def start_sweeper(context: WorkerContext, stop: threading.Event) -> threading.Thread:
    """Sweep every ``sweep_interval`` seconds in a daemon thread until ``stop`` is set."""

    def loop() -> None:
        while not stop.wait(context.settings.sweep_interval):
            try:
                _sweep_once(context)
            except (redis.RedisError, SQLAlchemyError) as exc:
                logger.warning("sweep skipped: %s", NOT_MIGRATED if missing_table(exc) else exc)
            except Exception:
                # Whatever else went wrong, the next sweep must still come: this thread is
                # what recovers stuck comments.
                logger.exception("sweep failed")

    thread = threading.Thread(target=loop, name="sweeper", daemon=True)
    thread.start()
    return thread
