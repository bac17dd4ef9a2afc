"""The classify job: take a batch of waiting comments from the inbox and decide them.

One job scores its whole batch in one model call and stores the verdicts in one
transaction, so the per-job cost of RQ, the model and the commit is paid once per
batch: a deep queue is drained many comments at a time, a shallow one a comment at a
time. The status guard in ``record_verdicts`` makes a second run, or two workers
reaching the same comment, harmless.

The job keeps the ids it took in its RQ metadata, so a retry works on the same batch.
If the batch fails, each comment is tried on its own, so one comment that breaks the
model does not hold back the others; what still fails is retried, and flagged for a
human after the last attempt. A batch that runs out of time is handed to jobs of one
comment each, each with the whole time limit and its own retries, so a comment that
takes too long is found and flagged rather than taking its batch down with it on
every attempt. A comment that kills the process scoring it (out of memory, a crash)
never reaches an ``except``: each job records its start on its comments in Redis and
removes it when it ends, so an attempt older than a job's time limit is one whose
process died. The next job on such a comment hands a batch to jobs of one comment each,
and flags a comment that processes died on ``DEATHS_BEFORE_A_HUMAN`` times.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import psycopg
import redis
from rq import get_current_job
from rq.job import Job
from rq.timeouts import JobTimeoutException
from sqlalchemy import Row, and_, bindparam, case, func, select
from sqlalchemy.orm import Session

from models import Classifier, CommentText, Score
from service.privacy import ERASED_EMAIL
from service.statuses import CommentStatus
from service.tables import Comment, Label, ShadowVerdict
from service.transitions import VerdictRecord, flag_unclassified, record_verdicts
from service.webhooks import EventType, event_for, record_events
from worker.context import WorkerContext, current_context
from worker.policy import route

logger = logging.getLogger(__name__)

META_IDS = "comment_ids"
# Marks a job given comments that another transaction held when an earlier job came.
META_HELD = "held_elsewhere"
# Processes that may die classifying one comment (on its own) before a human gets it.
DEATHS_BEFORE_A_HUMAN = 2
# When comments another transaction held are tried again: such a transaction (an erasure,
# a moderator's decision) lasts milliseconds.
HELD_RETRY_SECONDS = 2


class ClassificationError(RuntimeError):
    """Some comments of a batch could not be classified; the job will be retried."""


class WorkerDiedError(RuntimeError):
    """Worker processes ended while classifying a comment, without an error to catch."""


_WAITING = (
    select(
        Comment.id, Comment.body, Comment.name, Comment.url, Comment.email_digest, Comment.seconds_to_submit
    )
    .where(Comment.id.in_(bindparam("ids", expanding=True)), Comment.status == CommentStatus.RECEIVED)
    .order_by(Comment.id)
    # FOR NO KEY UPDATE: a row another transaction only refers to (the comment of an audit
    # row being written, as revealing or exporting its email does) holds a key-share lock,
    # which a plain FOR UPDATE would skip, leaving the comment unclassified until the
    # sweeper's next round.
    .with_for_update(skip_locked=True, key_share=True)
)


def _claim(
    session: Session, comment_ids: Sequence[int]
) -> list[Row[tuple[int, str, str, str | None, bytes, float | None]]]:
    """Id, text, name, website, email digest and time taken to post of the comments among
    ``comment_ids`` still waiting, oldest first.

    On PostgreSQL the rows are locked, and rows another worker or a moderator holds are
    skipped, not waited for: they are being decided. Only the columns scoring needs are
    read, as plain rows: loading whole ORM objects cost a third of a one-comment job.
    """
    return list(session.execute(_WAITING, {"ids": list(comment_ids)}))


def trusted_digests(session: Session, digests: set[bytes], least: int) -> set[bytes]:
    """The email digests among ``digests`` with at least ``least`` comments a moderator
    approved and no rejected comment: the commenters the policy trusts (none when ``least``
    is 0).

    Only a moderator's approval counts (its label says neither spam nor abuse): approvals
    by the model, or by trust itself, would let trust grow from nothing.
    """
    digests = digests - {ERASED_EMAIL}
    if least <= 0 or not digests:
        return set()
    by_moderator = and_(
        Comment.status == CommentStatus.APPROVED, Label.spam.is_(False), Label.abuse.is_(False)
    )
    approved = func.sum(case((by_moderator, 1), else_=0))
    rejected = func.sum(case((Comment.status == CommentStatus.REJECTED, 1), else_=0))
    statement = (
        select(Comment.email_digest)
        .outerjoin(Label, Label.comment_id == Comment.id)
        .where(Comment.email_digest.in_(digests))
        .group_by(Comment.email_digest)
        .having(approved >= least, rejected == 0)
    )
    return set(session.scalars(statement))


class Decided(NamedTuple):
    """A comment this job decided, with what the policy weighed besides its scores."""

    comment_id: int
    outcome: CommentStatus
    trusted: bool
    seconds_to_submit: float | None


class _ShadowScores(NamedTuple):
    """The shadow model and its score of each comment of a batch, by id."""

    model: Classifier
    scores: dict[int, Score]


def _shadow_scores(
    context: WorkerContext, comment_ids: Sequence[int], texts: Sequence[CommentText]
) -> _ShadowScores | None:
    """The shadow model's scores of ``texts`` (of ``comment_ids``), or None without a shadow model.

    The shadow model only reports; a failure of it is logged and costs its rows, never
    the live verdicts stored beside them.
    """
    try:
        shadow = context.models.shadow()
        if shadow is None:
            return None
        scores = shadow.score(texts, reasons=False)
        return _ShadowScores(shadow, dict(zip(comment_ids, scores, strict=True)))
    except JobTimeoutException:
        raise
    except Exception:  # whatever the failure: see the docstring
        logger.warning("the shadow model failed; no shadow verdicts for this batch", exc_info=True)
        return None


def _shadow_rows(
    context: WorkerContext, shadow: _ShadowScores | None, decided: Sequence[Decided]
) -> list[ShadowVerdict]:
    """What the shadow model would have decided for each newly decided comment."""
    if shadow is None:
        return []
    rows = []
    for row in decided:
        score = shadow.scores[row.comment_id]
        routing = route(
            context.policy,
            {"spam": score.spam, "abuse": score.abuse},
            shadow.model.thresholds,
            trusted=row.trusted,
            seconds_to_submit=row.seconds_to_submit,
        )
        rows.append(
            ShadowVerdict(
                comment_id=row.comment_id,
                model_version=shadow.model.version,
                spam=score.spam,
                abuse=score.abuse,
                outcome=routing.outcome,
                live_outcome=row.outcome,
            )
        )
    return rows


# How long cancelling a statement on the server may take before the connection is dropped anyway.
CANCEL_TIMEOUT_SECONDS = 5.0


@contextmanager
def _cancelled_when_out_of_time(session: Session) -> Iterator[None]:
    """Cancel on the server the statement a job was waiting on when its time ran out.

    RQ's time limit interrupts the client alone: on PostgreSQL the statement (held up by a
    lock, or a stalled server) went on, holding the batch's rows, so the next attempt
    skipped them as another worker's and ended without deciding them, and the session's
    rollback on the busy connection failed, putting a database error in the timeout's place.
    """
    try:
        yield
    except JobTimeoutException:
        if session.in_transaction():
            connection = session.connection()
            driver: object = connection.connection.dbapi_connection
            if isinstance(driver, psycopg.Connection):
                try:
                    driver.cancel_safe(timeout=CANCEL_TIMEOUT_SECONDS)
                except psycopg.Error:
                    logger.warning("could not cancel the statement of a job out of time", exc_info=True)
                # Closed, the server ends the transaction and lets the rows go; nothing of it is reused.
                connection.invalidate()
        raise


def _held_elsewhere(session: Session, comment_ids: Sequence[int], claimed: set[int]) -> list[int]:
    """The comments among ``comment_ids`` still waiting though ``_claim`` skipped them: another
    transaction holds them (PostgreSQL; SQLite has no row locks and skips none).

    Another worker deciding one makes it no longer wait soon; but an erasure of its
    commenter, or a moderator's decision refused as stale, lets it go still waiting, and
    no job would come for it before the sweeper's grace (five minutes by default).
    """
    skipped = set(comment_ids) - claimed
    if not skipped or session.get_bind().dialect.name != "postgresql":
        return []
    waiting = select(Comment.id).where(Comment.id.in_(skipped), Comment.status == CommentStatus.RECEIVED)
    return sorted(session.scalars(waiting))


def _try_again_soon(context: WorkerContext, comment_ids: list[int]) -> None:
    """Give ``comment_ids``, held by another transaction, a job of their own a moment later:
    by then the holder has ended, and the job finds them decided or decides them.

    Once only: a transaction that holds them still then is a long one, and the sweeper
    submits them again after its grace; a job scheduled by such a job in turn, each time
    the sweeper submitted them, would add a chain of jobs that never ends.
    """
    job = get_current_job()
    if job is not None and job.meta.get(META_HELD):
        return
    try:
        context.queue.enqueue_drain_in(HELD_RETRY_SECONDS, comment_ids, {META_HELD: True})
    except redis.RedisError:
        # Raised, it would fail the comments of the batch this job can decide; the sweeper
        # submits these again after its grace.
        logger.warning(
            "could not schedule comments %s, held by another transaction", comment_ids, exc_info=True
        )


def classify_comments(context: WorkerContext, comment_ids: Sequence[int]) -> dict[int, CommentStatus]:
    """Score the waiting comments among ``comment_ids``, route them, store verdicts and audit
    events in one transaction; return the new status of each comment this call decided.

    Waiting comments another transaction holds are skipped, and given a job of their own a
    moment later."""
    with context.sessions() as session, _cancelled_when_out_of_time(session):
        comments = _claim(session, comment_ids)
        held = _held_elsewhere(session, comment_ids, {comment.id for comment in comments})
        if held:
            _try_again_soon(context, held)
        if not comments:
            return {}
        texts = [CommentText(c.body, author=c.name, url=c.url or "") for c in comments]
        model = context.models.active()
        # Before the first write: on SQLite that takes the write lock every intake waits on.
        shadow = _shadow_scores(context, [c.id for c in comments], texts)
        trusted = trusted_digests(session, {c.email_digest for c in comments}, context.policy.trusted_after)
        verdicts: dict[int, VerdictRecord] = {}
        for comment, score in zip(comments, model.score(texts), strict=True):
            scores = {"spam": score.spam, "abuse": score.abuse}
            routing = route(
                context.policy,
                scores,
                model.thresholds,
                trusted=comment.email_digest in trusted,
                seconds_to_submit=comment.seconds_to_submit,
            )
            verdicts[comment.id] = VerdictRecord(
                score.spam,
                score.abuse,
                list(score.reasons),
                score.model_version,
                routing.outcome,
                routing.why,
            )
        moved = set(record_verdicts(session, verdicts))
        if context.settings.webhooks:
            record_events(session, [(i, event_for(verdicts[i].outcome)) for i in sorted(moved)])
        decided = [
            Decided(
                comment.id,
                verdicts[comment.id].outcome,
                comment.email_digest in trusted,
                comment.seconds_to_submit,
            )
            for comment in comments
            if comment.id in moved
        ]
        session.add_all(_shadow_rows(context, shadow, decided))
        session.commit()
        return {row.comment_id: row.outcome for row in decided}


def _assigned_ids(context: WorkerContext, job: Job | None, given: Sequence[int]) -> list[int]:
    """The batch this job works on: what is left of it after a failed attempt, else the
    comments it was given, else a batch taken from the inbox."""
    if job is not None and META_IDS in job.meta:
        return [int(comment_id) for comment_id in job.meta[META_IDS]]
    if given:
        _remember(job, given)
        return list(given)
    return context.queue.take(context.settings.classify_batch, record=lambda taken: _remember(job, taken))


def _remember(job: Job | None, comment_ids: Sequence[int]) -> None:
    if job is not None:
        job.meta[META_IDS] = list(comment_ids)
        job.save_meta()  # type: ignore[no-untyped-call]


def _one_by_one(context: WorkerContext, comment_ids: Sequence[int]) -> tuple[int, dict[int, Exception]]:
    decided, failed = 0, {}
    for comment_id in comment_ids:
        try:
            decided += len(classify_comments(context, [comment_id]))
        except JobTimeoutException:
            raise  # the job ran out of time (see `classify_waiting`)
        except Exception as exc:  # noqa: BLE001 - any failure of one comment is that comment's
            failed[comment_id] = exc
    return decided, failed


def _flag(context: WorkerContext, failed: dict[int, Exception]) -> None:
    with context.sessions() as session:
        for comment_id, exc in failed.items():
            flagged = flag_unclassified(session, comment_id, f"{type(exc).__name__}: {exc}")
            if flagged and context.settings.webhooks:
                record_events(session, [(comment_id, EventType.FLAGGED)])
        session.commit()
    logger.error("comments %s flagged for a human after their last failed attempt", sorted(failed))


def classify_waiting(comment_ids: Sequence[int] = ()) -> int:
    """Classify ``comment_ids``, or a batch taken from the inbox; return how many were decided.

    Raises ``ClassificationError`` when some comments of the batch failed, so RQ
    retries the job with just those; on the last attempt they are flagged for a human
    first. When the job runs out of time, a batch of several comments is handed to one
    job per comment and this one ends; a single comment is retried like a failure, and
    flagged for a human after the last attempt. A batch that a process died on before
    is handed to one job per comment too; a single comment that ``DEATHS_BEFORE_A_HUMAN``
    processes died on is flagged.
    """
    context = current_context()
    job = get_current_job()
    batch = _assigned_ids(context, job, comment_ids)
    if not batch:
        return 0
    token, deaths = context.queue.begin_attempt(batch)
    try:
        return _attempt(context, job, batch, deaths)
    finally:
        try:
            context.queue.end_attempt(batch, token)
        except redis.RedisError:
            # An attempt left behind counts as a death a job's time limit from now: the next
            # job on these comments after that splits them, no more.
            logger.warning("could not clear the attempt on comments %s", batch, exc_info=True)


def _attempt(context: WorkerContext, job: Job | None, batch: list[int], deaths: int) -> int:
    """Classify ``batch``, on which ``deaths`` earlier jobs ended with their process."""
    if deaths and len(batch) > 1:
        logger.warning("a process died classifying comments %s; each gets a job of its own", batch)
        return _one_job_each(context, batch)
    if deaths >= DEATHS_BEFORE_A_HUMAN:
        _flag(context, {batch[0]: WorkerDiedError(f"{deaths} worker processes ended while classifying it")})
        return 0
    try:
        decided = _classify_batch(context, job, batch)
    except JobTimeoutException as exc:
        if len(batch) > 1:
            logger.warning(
                "batch of %s ran out of time; each of its comments gets a job of its own", len(batch)
            )
            return _one_job_each(context, batch)
        if job is None or not job.retries_left:
            _flag(context, {batch[0]: exc})
        raise
    if decided > 1:
        logger.info("classified %s waiting comments in one batch", decided)
    return decided


def _one_job_each(context: WorkerContext, batch: list[int]) -> int:
    """Hand each comment of ``batch`` to a job of its own, with the whole time limit and
    its own retries; none is decided here."""
    for comment_id in batch:
        context.queue.enqueue_drain([comment_id])
    return 0


def _classify_batch(context: WorkerContext, job: Job | None, comment_ids: Sequence[int]) -> int:
    try:
        return len(classify_comments(context, comment_ids))
    except JobTimeoutException:
        raise  # `classify_waiting` gives each comment a job of its own
    except Exception:
        logger.warning("batch of %s failed; trying its comments one by one", len(comment_ids), exc_info=True)
    decided, failed = _one_by_one(context, comment_ids)
    if failed:
        if job is None or not job.retries_left:
            _flag(context, failed)
        else:
            _remember(job, list(failed))
        first = next(iter(failed.values()))
        raise ClassificationError(
            f"{len(failed)} of {len(comment_ids)} comments failed: {type(first).__name__}: {first}"
        ) from first
    return decided
