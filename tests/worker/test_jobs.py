"""The classify job and the sweeper, run in-process against the real database and Redis."""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any, ClassVar

import pytest
import redis
from flask.testing import FlaskClient
from rq import SimpleWorker
from rq.timeouts import JobTimeoutException
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session

from models import load_active
from service.app import Services
from service.auth import create_token
from service.config import load_settings
from service.driver_sql import ROWS_A_STATEMENT
from service.personal_data import erase_personal_data
from service.queueing import ClassifyQueue
from service.statuses import Action, CommentStatus, DecisionReason
from service.tables import AuditEvent, Comment, ModeratorToken, OutboxEntry, ShadowVerdict, Verdict, utcnow
from service.transitions import Decision, VerdictRecord, decide, flag_unclassified, record_verdicts
from tests.integration.processes import silent_server
from worker import context as worker_context
from worker import jobs
from worker.context import WorkerContext, build_context, install_context
from worker.dispatcher import dispatch
from worker.jobs import (
    DEATHS_BEFORE_A_HUMAN,
    META_IDS,
    ClassificationError,
    classify_comments,
    classify_waiting,
)
from worker.sweeper import _sweep_once, start_sweeper, sweep

pytestmark = pytest.mark.integration

SPAM = "Buy cheap viagra now at http://pills.example/buy http://pills.example/cheap !!!"


class BrokenClassifier:
    """A classifier that fails on any batch holding a comment with ``poison`` in it."""

    version = "broken"
    thresholds: ClassVar[dict[str, dict[str, float]]] = {}

    def __init__(self, healthy: Any = None, poison: str = "", error: Exception | None = None) -> None:
        self.healthy, self.poison = healthy, poison
        self.error = error or RuntimeError("model exploded")

    def score(self, comments: Any, reasons: bool = True) -> Any:
        if self.healthy is None or any(self.poison in comment.text for comment in comments):
            raise self.error
        return self.healthy.score(comments, reasons=reasons)


class BrokenModels:
    """A model holder handing out a broken classifier, and optionally a shadow model."""

    def __init__(self, classifier: Any, shadow: Any = None) -> None:
        self.classifier, self.shadow_model = classifier, shadow

    def active(self) -> Any:
        return self.classifier

    def shadow(self) -> Any:
        return self.shadow_model


def _post(client: FlaskClient, text: str = "A thoughtful article, thank you.") -> int:
    """Post a comment and hand it to the queue, as a worker's dispatcher would."""
    response = client.post(
        "/v1/comments", json={"name": "Ann", "email": "ann@example.com", "comment": text, "thread": "/t"}
    )
    services: Services = client.application.extensions["moderation"]
    with services.sessions() as session:
        dispatch(session, services.queue)
    return int(response.get_json()["id"])


def _count(services: Services, model: type[Any], comment_id: int) -> int:
    with services.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(model).where(model.comment_id == comment_id)) or 0
        )


def _waiting(services: Services) -> list[int]:
    with services.sessions() as session:
        return list(
            session.scalars(
                select(Comment.id).where(Comment.status == CommentStatus.RECEIVED).order_by(Comment.id)
            )
        )


def _work(services: Services) -> None:
    queue = services.queue.queue
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def test_classify_stores_verdict_and_audit_once(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    comment_id = _post(client, SPAM)
    assert classify_waiting() == 1
    assert classify_comments(context, [comment_id]) == {}
    assert _count(services, Verdict, comment_id) == 1
    with services.sessions() as session:
        comment = session.get(Comment, comment_id)
        assert comment is not None and comment.status in {CommentStatus.FLAGGED, CommentStatus.REJECTED}
        assert comment.spam_score is not None and comment.spam_score >= 0.5
        verdict = session.scalars(select(Verdict).where(Verdict.comment_id == comment_id)).one()
        assert verdict.model_version == context.models.active().version and verdict.reasons
        events = session.execute(
            select(AuditEvent.action, AuditEvent.actor).where(AuditEvent.comment_id == comment_id)
        ).all()
        # The trail names the model version that decided, as a moderator's names the moderator.
        assert [tuple(event) for event in events] == [("classified", f"model:{verdict.model_version}")]


def test_one_job_is_enqueued_for_a_burst_and_the_workers_drain_it(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    ids = [_post(client, f"Comment number {n} about the harbour.") for n in range(5)]
    # The first id found the inbox empty and enqueued a job; the later ones joined it.
    assert services.queue.queue.count == 1 and services.queue.waiting() == 5
    _work(services)
    assert _waiting(services) == [] and services.queue.waiting() == 0
    assert all(_count(services, Verdict, comment_id) == 1 for comment_id in ids)


def test_a_deep_inbox_is_drained_in_bounded_batches_each_enqueueing_the_next(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    install_context(replace(context, settings=replace(context.settings, classify_batch=2)))
    ids = [_post(client) for _ in range(5)]
    assert classify_waiting() == 2
    assert _waiting(services) == ids[2:] and services.queue.waiting() == 3
    # The first job was enqueued by the intake; the one that took two ids enqueued another.
    assert services.queue.queue.count == 2
    _work(services)
    assert _waiting(services) == [] and services.queue.queue.count == 0


def test_a_job_records_the_batch_it_took_before_it_enqueues_the_next_one(
    client: FlaskClient, services: Services, context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Once out of the inbox, the ids are only in the job's record: a failure enqueueing the
    # next job must not leave the retry without them.
    install_context(replace(context, settings=replace(context.settings, classify_batch=2)))
    ids = [_post(client) for _ in range(3)]
    (job,) = services.queue.queue.jobs

    def refuse(*_args: Any) -> None:
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(ClassifyQueue, "enqueue_drain", refuse)
    _work(services)
    job.refresh()
    assert job.get_status() == "scheduled" and job.meta[META_IDS] == ids[:2]
    assert services.queue.waiting() == 1 and _waiting(services) == ids


def test_an_empty_inbox_and_a_twice_listed_comment_are_harmless(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    assert classify_waiting() == 0
    comment_id = _post(client)
    services.queue.submit([comment_id])
    assert services.queue.waiting() == 2
    _work(services)
    assert _count(services, Verdict, comment_id) == 1 and services.queue.waiting() == 0


def test_a_moderator_decision_is_never_overwritten_by_a_late_job(
    client: FlaskClient, services: Services, context: WorkerContext, moderator_headers: dict[str, str]
) -> None:
    comment_id = _post(client, SPAM)
    client.post(f"/v1/comments/{comment_id}/decision", json={"action": "approve"}, headers=moderator_headers)
    assert classify_waiting() == 0
    assert _count(services, Verdict, comment_id) == 0
    with services.sessions() as session:
        comment = session.get_one(Comment, comment_id)
        assert comment.status is CommentStatus.APPROVED and comment.spam_score is None
        trail = session.scalars(select(AuditEvent).where(AuditEvent.comment_id == comment_id)).all()
        assert [(event.action, event.actor) for event in trail][-1] == ("approve", "moderator:Mod Erator")


def test_one_batch_gives_each_comment_its_own_verdict_and_skips_the_decided_one(
    client: FlaskClient, services: Services, context: WorkerContext, moderator_headers: dict[str, str]
) -> None:
    spam, plain, decided = _post(client, SPAM), _post(client), _post(client, SPAM)
    client.post(f"/v1/comments/{decided}/decision", json={"action": "approve"}, headers=moderator_headers)
    assert set(classify_comments(context, [spam, plain, decided])) == {spam, plain}
    with services.sessions() as session:
        verdicts = {verdict.comment_id: verdict for verdict in session.scalars(select(Verdict))}
        assert set(verdicts) == {spam, plain}
        for comment_id, verdict in verdicts.items():
            comment = session.get(Comment, comment_id)
            assert comment is not None
            assert (comment.status, comment.spam_score) == (verdict.outcome, verdict.spam)
        assert verdicts[spam].spam != verdicts[plain].spam
        approved = session.get(Comment, decided)
        assert approved is not None and approved.status is CommentStatus.APPROVED
        assert approved.spam_score is None


def test_verdicts_for_more_comments_than_one_statement_takes_each_land_once(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str]
) -> None:
    post = {"name": "Ann", "email": "ann@example.com", "thread": "/t"}
    posted = [
        int(client.post("/v1/comments", json={**post, "comment": f"Note {n}"}).get_json()["id"])
        for n in range(ROWS_A_STATEMENT + 5)
    ]
    decided = posted[ROWS_A_STATEMENT + 1]
    client.post(f"/v1/comments/{decided}/decision", json={"action": "approve"}, headers=moderator_headers)
    outcomes = (CommentStatus.APPROVED, CommentStatus.FLAGGED, CommentStatus.REJECTED)
    # A head the model lacks is NULL in every row: its column must still take the type of
    # the column it goes to.
    verdicts = {
        comment_id: VerdictRecord(
            comment_id / 10_000,
            None,
            [f'"note{comment_id}" +1.0 toward spam'],
            "v-test",
            outcomes[comment_id % 3],
            f"why {comment_id}",
        )
        for comment_id in reversed(posted)
    }
    with services.sessions() as session:
        moved = record_verdicts(session, verdicts)
        session.commit()
    assert moved == [comment_id for comment_id in reversed(posted) if comment_id != decided]
    with services.sessions() as session:
        stored = {verdict.comment_id: verdict for verdict in session.scalars(select(Verdict))}
        classified = select(AuditEvent.comment_id, AuditEvent.to_status, AuditEvent.reason).where(
            AuditEvent.action == "classified"
        )
        events = [tuple(event) for event in session.execute(classified)]
        comments = {comment.id: comment for comment in session.scalars(select(Comment))}
    assert sorted(stored) == sorted(moved)
    assert sorted(events) == sorted((i, verdicts[i].outcome, f"why {i}") for i in moved)
    for comment_id in moved:
        comment, verdict, given = comments[comment_id], stored[comment_id], verdicts[comment_id]
        assert (comment.status, comment.spam_score, comment.abuse_score) == (given.outcome, given.spam, None)
        assert comment.score == given.spam
        assert (verdict.outcome, verdict.spam, verdict.abuse) == (given.outcome, given.spam, None)
        assert verdict.reasons == given.reasons and verdict.model_version == "v-test"
    assert comments[decided].status is CommentStatus.APPROVED and comments[decided].spam_score is None


def test_a_comment_another_transaction_refers_to_is_classified_not_skipped(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    if services.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no row locks: an open writer holds the whole database")
    parent = _post(client, SPAM)
    # A reply being stored, or an audit row being written, holds a key-share lock on the
    # comment it refers to until its transaction ends.
    with services.engine.connect() as other:
        other.execute(
            insert(AuditEvent).values(comment_id=parent, action="email_revealed", actor="moderator:Ann")
        )
        assert set(classify_comments(context, [parent])) == {parent}
        other.rollback()
    assert _waiting(services) == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_comment_another_transaction_holds_when_its_job_comes_gets_a_job_of_its_own_soon(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    # An erasure of its commenter (or a moderator's decision refused as stale) holds the
    # comment while its job comes: the job skipped it as another worker's, and it waited
    # without a job, in `received`, for the sweeper's grace (five minutes by default).
    comment = _post(client)
    services.queue.queue.empty()
    with services.sessions() as other:
        erase_personal_data(other, services.keys, "ann@example.com", "test", notify=False)
        assert classify_waiting() == 0
        other.commit()
    assert _waiting(services) == [comment] and services.queue.waiting() == 0
    (later,) = services.queue.queue.scheduled_job_registry.get_job_ids()
    job = services.queue.queue.fetch_job(later)
    assert job is not None and job.args == ([comment],)
    services.queue.queue.scheduled_job_registry.remove(job)
    with services.sessions() as other:
        other.execute(select(Comment).where(Comment.id == comment).with_for_update()).one()
        # Held again when that job comes: a long transaction, left to the sweeper, and the
        # job schedules no other (each submission by the sweeper would start a chain).
        services.queue.queue.enqueue_job(job)
        _work(services)
        assert services.queue.queue.scheduled_job_registry.get_job_ids() == []
        other.rollback()
    assert _waiting(services) == [comment]
    assert classify_waiting(*job.args) == 1 and _waiting(services) == []


def test_missing_comments_are_skipped(context: WorkerContext) -> None:
    assert classify_comments(context, [987654]) == {}


def _post_fine_and_poisoned(client: FlaskClient, context: WorkerContext) -> tuple[int, int]:
    """Two comments, the second of which breaks the model the workers now use."""
    broken = BrokenClassifier(healthy=context.models.active(), poison="POISON")
    install_context(replace(context, models=BrokenModels(broken)))  # type: ignore[arg-type]
    return _post(client), _post(client, "POISON in a comment")


def test_last_failure_flags_only_the_comment_that_breaks_the_model(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    fine, poisoned = _post_fine_and_poisoned(client, context)
    with pytest.raises(ClassificationError, match="1 of 2 comments failed: RuntimeError: model exploded"):
        classify_waiting()
    with services.sessions() as session:
        assert session.get(Comment, fine).status is not CommentStatus.RECEIVED  # type: ignore[union-attr]
        assert session.get(Comment, poisoned).status is CommentStatus.FLAGGED  # type: ignore[union-attr]
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "classification_failed")).one()
        assert event.comment_id == poisoned
        assert event.reason == "classification failed: RuntimeError: model exploded"


def test_a_comment_decided_before_its_last_failed_attempt_keeps_the_decision(
    client: FlaskClient, services: Services, context: WorkerContext, moderator_headers: dict[str, str]
) -> None:
    decided, waiting = _post(client), _post(client)
    client.post(f"/v1/comments/{decided}/decision", json={"action": "approve"}, headers=moderator_headers)
    # An error's message may be long (a traceback's last line): the audit keeps its first 255 characters.
    error = "RuntimeError: " + "model exploded " * 30
    with services.sessions() as session:
        assert not flag_unclassified(session, decided, error)
        assert flag_unclassified(session, waiting, error)
        session.commit()
    with services.sessions() as session:
        assert session.get_one(Comment, decided).status is CommentStatus.APPROVED
        assert session.get_one(Comment, waiting).status is CommentStatus.FLAGGED
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "classification_failed")).one()
        assert event.comment_id == waiting and event.reason == f"classification failed: {error}"[:255]


def test_failing_job_is_retried_on_the_same_batch_before_the_human_gets_it(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    install_context(replace(context, models=BrokenModels(BrokenClassifier())))  # type: ignore[arg-type]
    ids = [_post(client), _post(client)]
    (job,) = services.queue.queue.jobs
    assert job.retries_left == services.settings.job_retries
    _work(services)
    job.refresh()
    assert job.get_status() == "scheduled" and job.retries_left == services.settings.job_retries - 1
    assert job.meta[META_IDS] == ids and services.queue.waiting() == 0
    assert _waiting(services) == ids


def test_a_retry_works_on_the_comments_that_failed_only(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    fine, poisoned = _post_fine_and_poisoned(client, context)
    (job,) = services.queue.queue.jobs
    _work(services)
    job.refresh()
    assert job.get_status() == "scheduled" and job.meta[META_IDS] == [poisoned]
    assert _waiting(services) == [poisoned] and _count(services, Verdict, fine) == 1


def test_a_comment_decided_after_the_job_read_it_is_not_reported_or_shadowed_by_the_job(
    client: FlaskClient, services: Services, context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another worker (SQLite locks no rows) decides one comment between the read and the write.
    won, lost = _post(client), _post(client)

    def another_wins_first(session: Session, verdicts: Mapping[int, VerdictRecord]) -> list[int]:
        session.execute(update(Comment).where(Comment.id == lost).values(status=CommentStatus.APPROVED))
        return record_verdicts(session, verdicts)

    monkeypatch.setattr(jobs, "record_verdicts", another_wins_first)
    active = context.models.active()
    with_shadow = replace(context, models=BrokenModels(active, active))  # type: ignore[arg-type]
    assert set(classify_comments(with_shadow, [won, lost])) == {won}
    assert (_count(services, ShadowVerdict, won), _count(services, ShadowVerdict, lost)) == (1, 0)
    assert (_count(services, Verdict, won), _count(services, Verdict, lost)) == (1, 0)


def test_a_batch_out_of_time_gives_each_comment_a_job_and_the_slow_one_goes_to_a_human(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    # RQ raises JobTimeoutException inside the job when its time is up; this model does
    # so for the batch holding the slow comment.
    timeout = JobTimeoutException("Task exceeded maximum timeout value (60 seconds)")
    slow_model = BrokenClassifier(healthy=context.models.active(), poison="SLOW", error=timeout)
    install_context(replace(context, models=BrokenModels(slow_model)))  # type: ignore[arg-type]
    fine, slow = _post(client), _post(client, "SLOW to score")
    _work(services)
    # The batch handed its comments to a job each: the fine one was decided, the slow
    # one's own job ran out of time too and waits for its retry.
    assert _waiting(services) == [slow] and _count(services, Verdict, fine) == 1
    (retry,) = services.queue.queue.scheduled_job_registry.get_job_ids()
    job = services.queue.queue.fetch_job(retry)
    assert job is not None and job.args == ([slow],) and job.meta[META_IDS] == [slow]
    # The last attempt flags it for a human instead of leaving it without a verdict.
    with pytest.raises(JobTimeoutException):
        classify_waiting([slow])
    with services.sessions() as session:
        assert session.get(Comment, slow).status is CommentStatus.FLAGGED  # type: ignore[union-attr]
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "classification_failed")).one()
        assert event.comment_id == slow and "JobTimeoutException" in (event.reason or "")


def _blocked_by(locker: Connection, locker_pid: int) -> list[int]:
    """The server processes whose statements wait for a lock ``locker`` holds, given a few
    seconds to go away."""
    blocking = text("SELECT pid FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")
    deadline = time.monotonic() + 5
    while (blocked := list(locker.execute(blocking, {"pid": locker_pid}).scalars())) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    return blocked


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_job_out_of_time_in_a_statement_cancels_it_and_times_out(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    # RQ's time limit interrupts only the client: the statement waiting on the server (on a
    # lock here) went on holding the comment, the session's rollback failed on the busy
    # connection, and the comment, tried again alone, was skipped as another worker's: the
    # job ended without a verdict, or an error, and the comment waited for the sweeper.
    comment = _post(client)
    locker = services.engine.connect()
    locker_pid = locker.execute(text("SELECT pg_backend_pid()")).scalar_one()
    locker.execute(text("LOCK TABLE verdicts IN ACCESS EXCLUSIVE MODE"))

    def out_of_time(_signum: int, _frame: Any) -> None:
        raise JobTimeoutException("Task exceeded maximum timeout value (1 seconds)")

    previous = signal.signal(signal.SIGALRM, out_of_time)
    previous_timer = signal.setitimer(signal.ITIMER_REAL, 0.5)  # pytest-timeout's, if any
    try:
        with pytest.raises(JobTimeoutException):
            classify_waiting([comment])
    finally:
        signal.signal(signal.SIGALRM, previous)
        signal.setitimer(signal.ITIMER_REAL, *previous_timer)
        blocked = _blocked_by(locker, locker_pid)
        # Left running, the statement would hold the test's schema past the test's end.
        for pid in blocked:
            locker.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        locker.rollback()
        locker.close()
    assert blocked == []
    # With no retry left (no job), its one attempt out of time hands it to a human.
    with services.sessions() as session:
        assert session.get(Comment, comment).status is CommentStatus.FLAGGED  # type: ignore[union-attr]


class DeadlyClassifier(BrokenClassifier):
    """A classifier whose process dies, with no exception to catch, on a comment with ``poison``."""

    def score(self, comments: Any, reasons: bool = True) -> Any:
        if any(self.poison in comment.text for comment in comments):
            os._exit(DIED)  # as the kernel's OOM killer or a crash in native code would end it
        return self.healthy.score(comments, reasons=reasons)


DIED = 70


def _in_a_process_that_may_die(services: Services, models: Any, work: Callable[[], object]) -> int:
    """Run ``work`` in a forked worker process of its own with ``models``; its exit status."""
    pid = os.fork()
    if pid == 0:  # the child: its own connections, never the parent's
        status = 1
        try:
            # The time limit the parent's jobs have (see below).
            install_context(build_context(replace(services.settings, job_timeout=1), models=models))
            work()
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_comment_that_kills_its_worker_goes_to_a_human_and_its_batch_gets_verdicts(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    # A job's time limit of a second: an attempt older than that has no running job.
    install_context(replace(context, queue=replace(context.queue, job_timeout=1)))
    deadly = BrokenModels(DeadlyClassifier(healthy=context.models.active(), poison="FATAL"))
    fine, fatal = _post(client), _post(client, "FATAL to the process")
    assert _in_a_process_that_may_die(services, deadly, classify_waiting) == DIED
    assert _waiting(services) == [fine, fatal] and services.queue.waiting() == 0
    # The next job on that batch (RQ's retry of the dead job, or the sweeper's) splits it.
    services.queue.queue.empty()
    time.sleep(1.1)
    assert classify_waiting([fine, fatal]) == 0
    assert sorted(job.args for job in services.queue.queue.jobs) == [([fine],), ([fatal],)]
    assert _in_a_process_that_may_die(services, deadly, lambda: _work(services)) == DIED
    assert _waiting(services) == [fatal] and _count(services, Verdict, fine) == 1
    # A process died on it with its batch, and one on it alone: the next job hands it to a human.
    time.sleep(1.1)
    assert classify_waiting([fatal]) == 0
    with services.sessions() as session:
        assert session.get_one(Comment, fatal).status is CommentStatus.FLAGGED
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "classification_failed")).one()
        assert event.comment_id == fatal
        assert event.reason == (
            f"classification failed: WorkerDiedError: {DEATHS_BEFORE_A_HUMAN} worker processes ended "
            "while classifying it"
        )
    # Only the attempts of the processes that died are left (until they expire): every job
    # that ended, whatever its outcome, took its own away.
    connection, name = services.queue.queue.connection, services.queue.queue.name
    assert [connection.hlen(f"moderation:attempts:{name}:{comment}") for comment in (fine, fatal)] == [1, 2]


class WriteLockProbe(BrokenClassifier):
    """A shadow model that notes, while it scores, whether a writer holds SQLite's write lock."""

    def __init__(self, healthy: Any, lock_path: str) -> None:
        super().__init__(healthy)
        self.lock_path, self.lock_held = lock_path, [False]

    def score(self, comments: Any, reasons: bool = True) -> Any:
        descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
        except BlockingIOError:
            self.lock_held.append(True)
        finally:
            os.close(descriptor)
        return self.healthy.score(comments, reasons=reasons)


# Only SQLite has one write lock, which every intake waits on.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_shadow_model_scores_before_the_job_holds_up_the_intake(
    client: FlaskClient, services: Services, context: WorkerContext, database_url: str
) -> None:
    probe = WriteLockProbe(context.models.active(), f"{make_url(database_url).database}.writer-lock")
    install_context(replace(context, models=BrokenModels(context.models.active(), probe)))  # type: ignore[arg-type]
    comment_id = _post(client, SPAM)
    assert classify_waiting() == 1
    assert _count(services, ShadowVerdict, comment_id) == 1
    assert probe.lock_held == [False]


def test_attempts_running_beside_a_job_are_no_deaths_until_past_the_time_limit(services: Services) -> None:
    queue = replace(services.queue, job_timeout=1)
    first, deaths = queue.begin_attempt([7, 7])  # listed twice in one batch
    assert deaths == 0
    _, deaths = queue.begin_attempt([7])  # and in a second job running at once
    assert deaths == 0
    time.sleep(1.1)  # no job runs past its time limit: those two attempts died
    _, deaths = queue.begin_attempt([8, 7])
    assert deaths == 2
    queue.end_attempt([7], first)  # one ended after all: only its own record goes
    assert queue.begin_attempt([7])[1] == 1
    connection = services.queue.queue.connection
    assert connection.ttl(f"moderation:attempts:{queue.queue.name}:7") > 3600


def test_a_failing_shadow_model_costs_no_live_verdict(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    shadow = BrokenClassifier()  # fails on every batch
    install_context(replace(context, models=BrokenModels(context.models.active(), shadow)))  # type: ignore[arg-type]
    comment_id = _post(client, SPAM)
    assert classify_waiting() == 1
    assert _count(services, Verdict, comment_id) == 1
    assert _count(services, ShadowVerdict, comment_id) == 0


def test_sweeper_submits_only_comments_stuck_past_the_grace_period(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    stuck, fresh = _post(client), _post(client)
    services.queue.queue.connection.delete(services.queue.inbox)
    services.queue.queue.empty()
    with services.sessions() as session:
        an_hour_ago = utcnow() - timedelta(hours=1)
        session.execute(update(Comment).where(Comment.id == stuck).values(created_at=an_hour_ago))
        session.commit()
    with services.sessions() as session:
        assert sweep(session, context.queue, grace_seconds=60) == 1
    assert services.queue.waiting() == 1 and services.queue.queue.count == 1
    _work(services)
    assert _waiting(services) == [fresh]


def test_sweeper_leaves_a_comment_still_in_the_outbox_to_the_dispatcher(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    waiting = _post(client)
    services.queue.queue.connection.delete(services.queue.inbox)
    services.queue.queue.empty()
    with services.sessions() as session:
        an_hour_ago = utcnow() - timedelta(hours=1)
        session.execute(update(Comment).where(Comment.id == waiting).values(created_at=an_hour_ago))
        session.merge(OutboxEntry(comment_id=waiting))
        session.commit()
    with services.sessions() as session:
        assert sweep(session, context.queue, grace_seconds=60) == 0
    assert services.queue.waiting() == 0


def test_the_sweeps_of_one_queue_never_hold_back_another_sharing_the_redis_server(
    client: FlaskClient, services: Services, context: WorkerContext, settings_overrides: dict[str, Any]
) -> None:
    stuck = _post(client)
    with services.sessions() as session:
        an_hour_ago = utcnow() - timedelta(hours=1)
        session.execute(update(Comment).where(Comment.id == stuck).values(created_at=an_hour_ago))
        session.commit()
    other_queue = {"queue_name": f"{context.queue.queue.name}-b"}
    other = build_context(load_settings({}, {**settings_overrides, **other_queue}))
    connection = context.queue.queue.connection
    try:
        connection.set(context.queue.sweeper_lock, "held", ex=60)  # this queue's sweep is under way
        _sweep_once(other)
        assert other.queue.waiting() == 1
    finally:
        other.queue.queue.connection.delete(other.queue.sweeper_lock, other.queue.inbox)
        other.queue.queue.empty()
        other.sessions.kw["bind"].dispose()
        connection.delete(context.queue.sweeper_lock)


def test_a_redis_that_stops_answering_fails_a_sweep_within_its_timeout(
    settings_overrides: dict[str, Any],
) -> None:
    with silent_server() as url:
        overrides = {**settings_overrides, "redis_url": url, "redis_timeout": 0.2}
        silent = build_context(load_settings({}, overrides))
        failures: list[BaseException] = []

        def sweep_once() -> None:
            try:
                _sweep_once(silent)
            except redis.RedisError as exc:
                failures.append(exc)

        sweeper = threading.Thread(target=sweep_once, daemon=True)
        sweeper.start()
        sweeper.join(3)
        silent.engine.dispose()
    assert not sweeper.is_alive()
    assert [type(failure) for failure in failures] == [redis.TimeoutError]


def test_the_sweeper_keeps_sweeping_after_an_unexpected_error(
    context: WorkerContext, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []
    swept_again = threading.Event()

    def sweep_once(_context: WorkerContext) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("the writer lock file went away")
        swept_again.set()

    monkeypatch.setattr("worker.sweeper._sweep_once", sweep_once)
    stop = threading.Event()
    thread = start_sweeper(replace(context, settings=replace(context.settings, sweep_interval=0.01)), stop)
    try:
        assert swept_again.wait(10)
    finally:
        stop.set()
        thread.join()
    assert "sweep failed" in caplog.text and "the writer lock file went away" in caplog.text


def test_a_plain_rq_worker_builds_its_context_and_says_what_it_does_not_do(
    settings_overrides: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(worker_context, "_context", None)
    monkeypatch.setattr(worker_context, "load_settings", lambda: load_settings({}, settings_overrides))
    built = worker_context.current_context()
    assert worker_context.current_context() is built
    assert [record.message for record in caplog.records] == [worker_context.PLAIN_RQ_WORKER]
    built.engine.dispose()


def test_worker_context_loads_the_active_model(context: WorkerContext, model_dir: Any) -> None:
    assert context.models.active().version == load_active(model_dir).version


def test_sweeper_starts_an_inbox_whose_job_was_lost(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    comment_id = _post(client)
    services.queue.queue.empty()  # the drain job is gone, the id still waits
    assert services.queue.waiting() == 1 and services.queue.queue.count == 0
    with services.sessions() as session:
        assert sweep(session, context.queue, grace_seconds=3600) == 0
    assert services.queue.queue.count == 1
    assert not services.queue.ensure_draining()  # one queued job is enough
    _work(services)
    assert _waiting(services) == [] and _count(services, Verdict, comment_id) == 1


def test_a_comment_still_in_the_outbox_is_left_to_the_dispatcher(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    response = client.post(
        "/v1/comments", json={"name": "Ann", "email": "ann@example.com", "comment": "Hi", "thread": "/t"}
    )
    with services.sessions() as session:
        an_hour_ago = utcnow() - timedelta(hours=1)
        session.execute(update(Comment).values(created_at=an_hour_ago))
        session.commit()
    with services.sessions() as session:
        assert sweep(session, context.queue, grace_seconds=60) == 0
    assert response.status_code == 202 and services.queue.waiting() == 0


def _post_as(client: FlaskClient, email: str, text: str) -> int:
    response = client.post(
        "/v1/comments", json={"name": "Reader", "email": email, "comment": text, "thread": "/t"}
    )
    assert response.status_code == 202
    return int(response.get_json()["id"])


@pytest.mark.parametrize("least", [0, 2])
def test_a_commenter_with_approved_comments_and_no_rejected_one_is_trusted(
    client: FlaskClient, services: Services, settings_overrides: dict[str, Any], least: int
) -> None:
    # Every comment at least flagged, none rejected: only trust can approve one.
    settings = {**settings_overrides, "review_threshold": 1e-9, "reject_threshold": 1.0}
    context = build_context(load_settings({}, {**settings, "trusted_after_approved": least}))
    try:
        history = {
            "ann@example.com": ["approve", "approve"],  # trusted from two on
            "bob@example.com": ["approve"],  # too few
            "carol@example.com": ["approve", "approve", "reject"],  # rejected once
            "dan@example.com": ["model", "model"],  # approved by the model only
        }
        with services.sessions() as session:
            create_token(session, "Mo")
            session.commit()
        for email, decisions in history.items():
            for decision in decisions:
                comment_id = _post_as(client, email, "An earlier comment.")
                if decision == "model":
                    approved = VerdictRecord(0.01, 0.01, [], "test-model", CommentStatus.APPROVED, "test")
                    with services.sessions() as session:
                        record_verdicts(session, {comment_id: approved})
                        session.commit()
                    continue
                with services.sessions() as session:
                    action = Action(decision)
                    reason = DecisionReason.SPAM if action is Action.REJECT else None
                    decide(
                        session,
                        comment_id,
                        session.scalars(select(ModeratorToken)).one(),
                        Decision(action, reason),
                    )
                    session.commit()
        waiting = {email: _post_as(client, email.upper(), "A new comment.") for email in history}
        decided = classify_comments(context, list(waiting.values()))
        expected = dict.fromkeys(history, CommentStatus.FLAGGED)
        if least:
            expected["ann@example.com"] = CommentStatus.APPROVED
        assert {email: decided[comment_id] for email, comment_id in waiting.items()} == expected
        if least:
            with services.sessions() as session:
                why = session.scalars(
                    select(AuditEvent.reason).where(AuditEvent.comment_id == waiting["ann@example.com"])
                ).one()
            assert why is not None and why.endswith("approved, the commenter is trusted")
    finally:
        context.sessions.kw["bind"].dispose()


def test_erased_commenters_are_not_trusted_together(
    client: FlaskClient, services: Services, settings_overrides: dict[str, Any]
) -> None:
    # Every erased comment has the same empty digest: the approvals of one erased commenter
    # must not make another's erased comment, waiting, that of a trusted commenter.
    settings = {**settings_overrides, "review_threshold": 1e-9, "reject_threshold": 1.0}
    context = build_context(load_settings({}, {**settings, "trusted_after_approved": 2}))
    try:
        with services.sessions() as session:
            create_token(session, "Mo")
            session.commit()
        for _ in range(2):
            comment_id = _post_as(client, "erin@example.com", "An earlier comment.")
            with services.sessions() as session:
                moderator = session.scalars(select(ModeratorToken)).one()
                decide(session, comment_id, moderator, Decision(Action.APPROVE))
                session.commit()
        waiting = _post_as(client, "frank@example.com", "A new comment.")
        with services.sessions() as session:
            for email in ("erin@example.com", "frank@example.com"):
                erase_personal_data(session, services.keys, email, "test", notify=False)
            session.commit()
        assert classify_comments(context, [waiting]) == {waiting: CommentStatus.FLAGGED}
    finally:
        context.sessions.kw["bind"].dispose()


def test_a_comment_posted_seconds_after_its_form_was_shown_waits_for_a_moderator(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    form = {"name": "Ann", "email": "ann@example.com", "comment": "A thoughtful article.", "thread": "/t"}
    hasty = client.post("/v1/comments", json={**form, "seconds_to_submit": 0.54}).get_json()["id"]
    patient = client.post("/v1/comments", json={**form, "seconds_to_submit": 40}).get_json()["id"]
    decided = classify_comments(context, [hasty, patient])
    assert decided == {hasty: CommentStatus.FLAGGED, patient: CommentStatus.APPROVED}
    with services.sessions() as session:
        reason = session.scalars(select(AuditEvent.reason).where(AuditEvent.comment_id == hasty)).one()
    assert reason == "posted 0.5 s after its form was shown, under 3 s"
