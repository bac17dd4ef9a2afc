"""Moving outbox entries to the job queue in batches.

The intake only writes the database; every worker runs this loop in a thread, so the
queue is fed as long as any worker lives. The deletion of entries commits only after
Redis took their ids: a Redis outage leaves them in the outbox for the next round, and
at worst (the delete or its commit fails after Redis took the ids) an id is handed over
twice, which the classify job's status guard makes harmless.

One worker per queue dispatches at a time, the holder of a lease in Redis
(worker/lease.py); the others only try for the lease. With every worker polling, N
workers made N times the rounds, each a database transaction and usually a job of its
own, so the batches shrank as workers were added and each verdict cost more.
"""

from __future__ import annotations

import logging
import threading
from typing import cast

from sqlalchemy import Table, bindparam, delete, select
from sqlalchemy.orm import Session

from service.queueing import ClassifyQueue
from service.tables import OutboxEntry
from worker.context import WorkerContext
from worker.lease import Failures, Lease, start_leased_loop

logger = logging.getLogger(__name__)

BATCH = 500
# After a failed round: long enough not to hammer a Redis that is down, short enough
# that the queue is fed again soon after it is back.
FAILURE_PAUSE_SECONDS = 1.0
# An empty outbox doubles the pause up to this: polling at the busy interval cost an idle
# worker about 7 % of a core (and the database as much again), which on a small machine the
# web app needs. A comment arriving after a quiet spell waits at most this long for its round.
IDLE_PAUSE_MAX_SECONDS = 0.1
# How long the dispatching worker's lease lasts unrenewed: the longest the outbox waits
# when that worker dies (one that stops frees the lease at once). Workers without it try
# for it every quarter of this.
LEASE_SECONDS = 2.0


_OUTBOX = cast(Table, OutboxEntry.__table__)  # typed as any FROM clause, which delete() refuses
# The oldest entries no other dispatcher holds (rows it locked are skipped, not waited for).
_OLDEST = (
    select(_OUTBOX.c.comment_id)
    .order_by(_OUTBOX.c.comment_id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_DELETE_TAKEN = (
    delete(_OUTBOX)
    .where(_OUTBOX.c.comment_id.in_(bindparam("ids", expanding=True)))
    .returning(_OUTBOX.c.comment_id)
)
_DELETE_OLDEST = (
    delete(_OUTBOX).where(_OUTBOX.c.comment_id.in_(_OLDEST.scalar_subquery())).returning(_OUTBOX.c.comment_id)
)


def dispatch(session: Session, queue: ClassifyQueue, limit: int = BATCH) -> int:
    """Hand up to ``limit`` outbox entries, oldest first, to the queue; return how many.

    The entries are deleted only in the transaction that commits after Redis took their
    ids, and no database write lock is held while Redis answers (SQLite's would stop the
    intake). On PostgreSQL one statement deletes the entries, locking only their rows
    until the commit and skipping rows another dispatcher holds; on SQLite they are read
    first and deleted once Redis has them, and two dispatchers may hand over the same
    ids, which the classify job's status guard makes harmless. ``queue``'s client should
    have a timeout: the rows stay locked until Redis answers.

    The statements are Core, run on the session's connection, and a busy dispatcher runs
    some fifty rounds a second: a round of 14 entries on PostgreSQL cost 0.9 ms of CPU as
    two statements through the ORM, 0.35 ms as this one.
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # RETURNING gives the rows in no set order.
        taken = sorted(connection.scalars(_DELETE_OLDEST, {"limit": limit}))
        if taken:
            try:
                queue.submit(taken)
            except BaseException:
                # Undone here, not left to the caller: a later commit on this session
                # would otherwise delete entries Redis never took.
                session.rollback()
                raise
    else:
        candidates = list(connection.scalars(_OLDEST, {"limit": limit}))
        if not candidates:
            session.rollback()
            return 0
        queue.submit(candidates)
        taken = list(connection.scalars(_DELETE_TAKEN, {"ids": candidates}))
    session.commit()
    return len(taken)


def dispatch_all(context: WorkerContext) -> int:
    """Dispatch until the outbox is empty; return how many entries were handed over."""
    total = 0
    with context.sessions() as session:
        while moved := dispatch(session, context.background_queue):
            total += moved
    return total


def start_dispatcher(
    context: WorkerContext, stop: threading.Event, lease_seconds: float = LEASE_SECONDS
) -> threading.Thread:
    """Poll the outbox every ``dispatch_interval`` seconds in a daemon thread until ``stop``
    is set, while this worker holds the queue's dispatcher lease.

    A full batch means more may be waiting, so the next round starts at once; while the
    outbox stays empty the pause doubles, up to ``IDLE_PAUSE_MAX_SECONDS``. Without the
    lease the thread tries for it every quarter of ``lease_seconds``.
    """
    queue = context.background_queue
    lease = Lease(queue.queue.connection, queue.dispatcher_lease, lease_seconds)
    busy = context.settings.dispatch_interval
    pause = busy
    # A failed round may have pushed its ids and failed to enqueue their job; its entries
    # are pushed again, onto an inbox no longer empty, which enqueues nothing. So the first
    # round that succeeds after it enqueues a drain job (one too many is harmless; a job
    # already queued may be one given its own ids, which never takes from the inbox).
    # The round that failed may have been another worker's: an outage that outlasts the
    # lease, or a holder killed between its push and its enqueue, hands the lease over.
    # A failed round of this worker's frees the lease too (`start_leased_loop`), so "after
    # a failure" is "the first round since this worker last took the lease".
    drained_at = 0  # the lease's `taken` when this worker last enqueued a drain job

    def dispatch_round(session: Session) -> float:
        nonlocal pause, drained_at
        moved = dispatch(session, queue)
        if lease.taken != drained_at:
            queue.enqueue_drain()
            drained_at = lease.taken
        wait = 0.0 if moved >= BATCH else pause
        pause = busy if moved else min(pause * 2, max(busy, IDLE_PAUSE_MAX_SECONDS))
        return wait

    return start_leased_loop(
        "dispatcher",
        lease,
        stop,
        context.sessions,
        dispatch_round,
        Failures(
            logger,
            "dispatching paused, entries stay in the outbox",
            "dispatching again",
            FAILURE_PAUSE_SECONDS,
        ),
    )
