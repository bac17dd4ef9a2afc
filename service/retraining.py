"""Moderator decisions as training data, and the retraining runs they feed.

The database side only: exporting labels, recording and queueing runs, reporting
what the shadow model would have changed. The training itself happens in a worker.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any, cast

import redis
from rq import Queue
from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Example
from service.errors import QueueUnavailableError
from service.privacy import ERASED_EMAIL
from service.queueing import job_is_pending
from service.statuses import RunStatus, Trigger
from service.tables import OPEN_RUN_STATUSES, Comment, Label, ShadowVerdict, TrainingRun, utcnow

logger = logging.getLogger(__name__)

RETRAIN_JOB = "worker.training.retrain_model"
# Training on all public corpora takes minutes on two cores; leave ample room.
RETRAIN_TIMEOUT_SECONDS = 3600
# RQ ends a job at its timeout, and the job then records its run as failed; a run still
# `running` well after that had its worker killed outright (SIGKILL, the OOM killer).
STALE_RUN_SECONDS = RETRAIN_TIMEOUT_SECONDS + 600
MODERATOR_SOURCE = "moderator"
# A request holds the lock on queueing a run's job for milliseconds; one that died
# holding it delays the run's next request by at most this.
ENQUEUE_LOCK_SECONDS = 30
# How often one web process looks for a run left queued without a job.
STRANDED_RECHECK_SECONDS = 60.0


def _as_int(value: bool | None) -> int | None:
    return None if value is None else int(value)


# A label that names no head ("reject as other") teaches the model nothing.
_SAYS_SOMETHING = Label.spam.is_not(None) | Label.abuse.is_not(None)


def export_labels(session: Session, until: datetime | None = None) -> list[Example]:
    """Every moderator label that says something about a head, as canonical examples.

    The commenter's name and website go with the text, as the classifier scores them: a
    comment whose personal data was erased keeps its text and label, without either.
    """
    statement = (
        select(Comment.body, Comment.name, Comment.url, Comment.email_digest, Label.spam, Label.abuse)
        .join(Label, Label.comment_id == Comment.id)
        .where(_SAYS_SOMETHING)
        .order_by(Label.id)
    )
    if until is not None:
        statement = statement.where(Label.decided_at <= until)
    return [
        Example(
            text=body,
            author="" if digest == ERASED_EMAIL else name,
            spam=_as_int(spam),
            abuse=_as_int(abuse),
            source=MODERATOR_SOURCE,
            url=url or "",  # erasing clears it
        )
        for body, name, url, digest, spam, abuse in session.execute(statement)
    ]


def retrain_job_id(queue: Queue, run_id: int) -> str:
    """The job id of a run, named after its queue (job ids are global in Redis)."""
    return f"{queue.name}-{run_id}"


_OPEN_RUN = select(TrainingRun).where(TrainingRun.status.in_(OPEN_RUN_STATUSES))


def _worker_lost(queue: Queue, run: TrainingRun) -> str | None:
    """Why the worker of a ``running`` run must be gone, or None while it may still be training."""
    started_at = run.started_at or run.requested_at
    if utcnow() - started_at > timedelta(seconds=STALE_RUN_SECONDS):
        return f"worker lost: still running {STALE_RUN_SECONDS} s after it started, past the job timeout"
    job_id = retrain_job_id(queue, run.id)
    try:
        if job_is_pending(queue.connection, job_id):
            return None
    except (redis.ConnectionError, redis.TimeoutError):
        # Without the queue only the age above can tell.
        return None
    # A cold shutdown fails the job in RQ; a flushed Redis loses it.
    return f"worker lost: its job {job_id} is missing or ended without finishing the run"


def _open_run(session: Session, queue: Queue) -> TrainingRun | None:
    """The run queued or running (the database allows one), unless its worker died:
    that run is marked failed, so that a new one can be queued."""
    run = session.scalar(_OPEN_RUN)
    if run is None or run.status is not RunStatus.RUNNING:
        return run
    reason = _worker_lost(queue, run)
    if reason is None:
        return run
    # Only while still `running`: a worker finishing at this moment keeps its result.
    failed = session.execute(
        update(TrainingRun)
        .where(TrainingRun.id == run.id, TrainingRun.status == RunStatus.RUNNING)
        .values(status=RunStatus.FAILED, finished_at=utcnow(), error=reason)
    )
    session.commit()
    if cast(CursorResult[Any], failed).rowcount == 1:
        logger.warning("retraining run %s failed: %s", run.id, reason)
    return None


def _new_run(session: Session, trigger: Trigger) -> TrainingRun:
    """Insert a queued run; when another request opened one first, that run instead."""
    run = TrainingRun(trigger=trigger, status=RunStatus.QUEUED, labels_until=utcnow())
    session.add(run)
    try:
        session.commit()
    except IntegrityError:
        # The unique index on open runs refused the insert: the other run is committed.
        session.rollback()
        existing = session.scalar(_OPEN_RUN)
        if existing is None:
            raise
        return existing
    return run


def _enqueue(queue: Queue, run_id: int, job_id: str) -> None:
    queue.enqueue(
        RETRAIN_JOB,
        run_id,
        job_id=job_id,
        description=f"retraining run {run_id}",
        job_timeout=RETRAIN_TIMEOUT_SECONDS,
        result_ttl=86_400,
        failure_ttl=7 * 86_400,
    )


def request_retrain(session: Session, queue: Queue, trigger: Trigger) -> TrainingRun:
    """Record a run and queue it; a run already queued or running is returned instead.

    A ``running`` run whose worker died is marked failed first, and a new run takes
    its place. The run is committed before it is queued (a worker must find it).

    Raises ``QueueUnavailableError`` when Redis is unreachable: the run stays
    ``queued``, no worker will take it, and the next request queues it again.
    """
    run = _open_run(session, queue) or _new_run(session, trigger)
    job_id = retrain_job_id(queue, run.id)
    if run.status is RunStatus.QUEUED:
        try:
            # Two requests (two moderators' decisions crossing the label count at once)
            # could both find no job and both enqueue one; the second copy, skipped by its
            # worker, would then mark the job finished while the first still trains.
            enqueueing = queue.connection.lock(f"{job_id}:enqueueing", timeout=ENQUEUE_LOCK_SECONDS)
            if not enqueueing.acquire(blocking=False):
                return run  # another request is queueing it now
            try:
                if not job_is_pending(queue.connection, job_id):
                    _enqueue(queue, run.id, job_id)
            finally:
                # A lock that could not be released (it expired, Redis restarted) expires by itself.
                with contextlib.suppress(redis.RedisError):
                    enqueueing.release()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise QueueUnavailableError(
                f"retraining run {run.id} is recorded but not queued: the job queue (Redis) is "
                f"unreachable ({exc}); ask again once it is back"
            ) from exc
    return run


def labels_since_last_run(session: Session) -> int:
    """How many labels that say something about a head were decided after the newest
    run's cut-off (a run that failed included: a failing training is not retried on
    every decision)."""
    last = session.scalar(select(func.max(TrainingRun.labels_until)))
    statement = select(func.count()).select_from(Label).where(_SAYS_SOMETHING)
    if last is not None:
        statement = statement.where(Label.decided_at > last)
    return session.scalar(statement) or 0


class RetrainTrigger:
    """What each moderator decision asks of retraining, in one process: a run once enough
    new labels have arrived, and, at most once a ``recheck_seconds``, a run left ``queued``
    without a job (Redis was down when it was asked for, or restarted empty) queued again.

    After Redis could not be reached, decisions leave it alone for ``recheck_seconds``:
    an outage must not cost each of them a timeout.
    """

    def __init__(self, every: int, recheck_seconds: float = STRANDED_RECHECK_SECONDS) -> None:
        self.every = every
        self._recheck_seconds = recheck_seconds
        self._next_stranded_check = 0.0
        self._quiet_until = 0.0

    def after_decision(self, session: Session, queue: Queue) -> TrainingRun | None:
        """Queue a run if one is due (0 labels: never for that reason) or stranded; the run, else None.

        Raises ``QueueUnavailableError`` as ``request_retrain`` does.
        """
        now = time.monotonic()
        if now < self._quiet_until:
            return None
        if not (self.every > 0 and labels_since_last_run(session) >= self.every):
            if now < self._next_stranded_check:
                return None
            self._next_stranded_check = now + self._recheck_seconds
            if session.scalar(_OPEN_RUN.where(TrainingRun.status == RunStatus.QUEUED)) is None:
                return None
        try:
            return request_retrain(session, queue, Trigger.LABELS)
        except QueueUnavailableError:
            self._quiet_until = now + self._recheck_seconds
            raise


def run_view(run: TrainingRun) -> dict[str, Any]:
    """A run as the API and the command line show it."""
    return {
        "id": run.id,
        "trigger": run.trigger.value,
        "status": run.status.value,
        "requested_at": run.requested_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "labels_used": run.labels_used,
        "candidate_version": run.candidate_version,
        "activated": run.activated,
        "comparison": run.comparison,
        "error": run.error,
    }


def shadow_report(session: Session, version: str) -> dict[str, Any]:
    """How the shadow model's decisions differ from the live ones, comment by comment counted."""
    pairs = Counter(
        (live.value, shadow.value)
        for live, shadow in session.execute(
            select(ShadowVerdict.live_outcome, ShadowVerdict.outcome).where(
                ShadowVerdict.model_version == version
            )
        )
    )
    total = sum(pairs.values())
    changed = {
        f"{live} -> {shadow}": count for (live, shadow), count in sorted(pairs.items()) if live != shadow
    }
    return {
        "model_version": version,
        "comments": total,
        "unchanged": total - sum(changed.values()),
        "changed": changed,
    }
