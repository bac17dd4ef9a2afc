"""The classify job and the sweeper, run in-process against the real database and Redis."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from flask.testing import FlaskClient
from rq import SimpleWorker
from sqlalchemy import func, select, update

from models import load_active
from service.app import Services
from service.statuses import CommentStatus
from service.tables import AuditEvent, Comment, Verdict, utcnow
from worker.context import WorkerContext, install_context
from worker.jobs import SKIPPED, classify_comment
from worker.sweeper import sweep

pytestmark = pytest.mark.integration

SPAM = "Buy cheap viagra now at http://pills.example/buy http://pills.example/cheap !!!"


class BrokenClassifier:
    """A classifier whose every call fails, as a corrupt model or a bug would."""

    version = "broken"
    thresholds: ClassVar[dict[str, dict[str, float]]] = {}

    def score(self, _comments: Any, reasons: bool = True) -> Any:
        raise RuntimeError("model exploded")


class BrokenModels:
    """A model holder handing out the broken classifier."""

    def active(self) -> BrokenClassifier:
        return BrokenClassifier()

    def shadow(self) -> None:
        return None


def _post(client: FlaskClient, text: str = "A thoughtful article, thank you.") -> int:
    response = client.post(
        "/v1/comments", json={"name": "Ann", "email": "ann@example.com", "comment": text, "thread": "/t"}
    )
    return int(response.get_json()["id"])


def _count(services: Services, model: type[Any], comment_id: int) -> int:
    with services.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(model).where(model.comment_id == comment_id)) or 0
        )


def test_classify_stores_verdict_and_audit_once(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    comment_id = _post(client, SPAM)
    outcome = classify_comment(comment_id)
    assert outcome in {"flagged", "rejected"}
    assert classify_comment(comment_id) == SKIPPED
    assert _count(services, Verdict, comment_id) == 1
    with services.sessions() as session:
        comment = session.get(Comment, comment_id)
        assert comment is not None and comment.status.value == outcome
        assert comment.spam_score is not None and comment.spam_score >= 0.5
        verdict = session.scalars(select(Verdict).where(Verdict.comment_id == comment_id)).one()
        assert verdict.model_version == context.models.active().version and verdict.reasons
        events = session.scalars(select(AuditEvent.action).where(AuditEvent.comment_id == comment_id)).all()
        assert events == ["received", "classified"]


def test_one_job_classifies_every_waiting_comment_in_one_batch(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    first, *others = [_post(client, f"Comment number {n} about the harbour.") for n in range(5)]
    assert classify_comment(first) in {"approved", "flagged", "rejected"}
    with services.sessions() as session:
        waiting = session.scalars(select(Comment.id).where(Comment.status == CommentStatus.RECEIVED)).all()
        assert waiting == []
    assert [classify_comment(comment_id) for comment_id in others] == [SKIPPED] * 4
    assert all(_count(services, Verdict, comment_id) == 1 for comment_id in [first, *others])


def test_batch_size_is_bounded(client: FlaskClient, services: Services, context: WorkerContext) -> None:
    install_context(replace(context, settings=replace(context.settings, classify_batch=2)))
    ids = [_post(client) for _ in range(4)]
    classify_comment(ids[0])
    with services.sessions() as session:
        waiting = session.scalars(select(Comment.id).where(Comment.status == CommentStatus.RECEIVED)).all()
    assert waiting == ids[2:]


def test_a_moderator_decision_is_never_overwritten_by_a_late_job(
    client: FlaskClient, services: Services, context: WorkerContext, moderator_headers: dict[str, str]
) -> None:
    comment_id = _post(client, SPAM)
    client.post(f"/v1/comments/{comment_id}/decision", json={"action": "approve"}, headers=moderator_headers)
    assert classify_comment(comment_id) == SKIPPED
    assert _count(services, Verdict, comment_id) == 0


def test_a_job_for_a_missing_comment_does_nothing(context: WorkerContext) -> None:
    assert classify_comment(987654) == SKIPPED


def test_last_failure_flags_the_comment_for_a_human(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    install_context(replace(context, models=BrokenModels()))  # type: ignore[arg-type]
    comment_id = _post(client)
    with pytest.raises(RuntimeError, match="model exploded"):
        classify_comment(comment_id)
    with services.sessions() as session:
        comment = session.get(Comment, comment_id)
        assert comment is not None and comment.status is CommentStatus.FLAGGED
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "classification_failed")).one()
        assert event.reason == "classification failed: RuntimeError: model exploded"


def test_failing_job_is_retried_before_the_human_gets_it(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    install_context(replace(context, models=BrokenModels()))  # type: ignore[arg-type]
    comment_id = _post(client)
    queue = services.queue.queue
    job = queue.fetch_job(services.queue.job_id(comment_id))
    assert job is not None and job.retries_left == services.settings.job_retries
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    job.refresh()
    assert job.get_status() == "scheduled" and job.retries_left == services.settings.job_retries - 1
    with services.sessions() as session:
        comment = session.get(Comment, comment_id)
        assert comment is not None and comment.status is CommentStatus.RECEIVED


def test_sweeper_requeues_only_stuck_comments_without_a_live_job(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    queued, lost, fresh = _post(client), _post(client), _post(client)
    services.queue.queue.connection.delete(f"rq:job:{services.queue.job_id(lost)}")
    with services.sessions() as session:
        an_hour_ago = utcnow() - timedelta(hours=1)
        session.execute(update(Comment).where(Comment.id.in_([queued, lost])).values(created_at=an_hour_ago))
        session.commit()
    services.queue.queue.connection.delete(f"rq:job:{services.queue.job_id(fresh)}")
    with services.sessions() as session:
        assert sweep(session, context.queue, grace_seconds=60) == 1
    assert services.queue.is_pending(lost)
    assert not services.queue.is_pending(fresh)


def test_worker_context_loads_the_active_model(context: WorkerContext, model_dir: Any) -> None:
    assert context.models.active().version == load_active(model_dir).version
