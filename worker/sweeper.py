"""Finding comments stuck in ``received`` and queueing them again.

A comment stays in ``received`` when Redis was down as it arrived, or when Redis lost
its job. Any worker may sweep; a short Redis lock keeps it to one sweep per interval.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import redis
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service.queueing import ClassifyQueue
from service.statuses import CommentStatus
from service.tables import Comment, utcnow
from worker.context import WorkerContext

logger = logging.getLogger(__name__)

BATCH = 1000
LOCK_KEY = "moderation:sweeper-lock"


def sweep(session: Session, queue: ClassifyQueue, grace_seconds: float) -> int:
    """Re-enqueue comments in ``received`` longer than the grace period whose job is gone.

    Returns how many were queued again.
    """
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    stuck = session.scalars(
        select(Comment.id)
        .where(Comment.status == CommentStatus.RECEIVED, Comment.created_at < cutoff)
        .order_by(Comment.id)
        .limit(BATCH)
    ).all()
    requeued = 0
    for comment_id in stuck:
        if not queue.is_pending(comment_id):
            queue.enqueue(comment_id)
            requeued += 1
    if requeued:
        logger.info("sweeper queued %s stuck comments again", requeued)
    return requeued


def _sweep_once(context: WorkerContext) -> None:
    connection = context.queue.queue.connection
    lock_seconds = max(1, int(context.settings.sweep_interval))
    if not connection.set(LOCK_KEY, "held", nx=True, ex=lock_seconds):
        return
    with context.sessions() as session:
        sweep(session, context.queue, context.settings.sweep_grace)


def start_sweeper(context: WorkerContext, stop: threading.Event) -> threading.Thread:
    """Sweep every ``sweep_interval`` seconds in a daemon thread until ``stop`` is set."""

    def loop() -> None:
        while not stop.wait(context.settings.sweep_interval):
            try:
                _sweep_once(context)
            except (redis.RedisError, SQLAlchemyError) as exc:
                logger.warning("sweep skipped: %s", exc)

    thread = threading.Thread(target=loop, name="sweeper", daemon=True)
    thread.start()
    return thread
