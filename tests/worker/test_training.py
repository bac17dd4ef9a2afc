"""Retraining from moderator decisions: labels, runs, the job, hot reload and shadow mode."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis.exceptions import LockNotOwnedError
from redis.lock import Lock
from rq import Queue
from rq.job import Job, JobStatus
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from models import active_version
from models.artifacts import load_artifact, write_artifact
from models.registry import list_versions, set_shadow, shadow_version
from models.retraining import Comparison, RetrainOutcome
from service import retraining
from service.app import EXTENSION, Services
from service.errors import QueueUnavailableError
from service.queueing import connect_redis, job_is_pending
from service.retraining import (
    RETRAIN_TIMEOUT_SECONDS,
    STALE_RUN_SECONDS,
    RetrainTrigger,
    export_labels,
    labels_since_last_run,
    request_retrain,
    retrain_job_id,
)
from service.statuses import RunStatus, Trigger
from service.tables import Label, ShadowVerdict, TrainingRun, utcnow
from worker import training
from worker.context import WorkerContext, install_context
from worker.jobs import classify_comments
from worker.training import retrain_model

pytestmark = pytest.mark.integration

SPAM = "Cheap pills, order {n} at http://pills{n}.example today, best price"
ORDINARY = "The council meeting on budget item {n} ran long but the debate was useful"


@pytest.fixture
def settings_overrides(settings_overrides: dict[str, Any], own_models: Path) -> dict[str, Any]:
    """The shared settings, on the test's own model folder, checking for new versions always."""
    return {**settings_overrides, "model_dir": own_models, "model_check_seconds": 0.0}


def _decide(
    client: FlaskClient, headers: dict[str, str], text: str, decision: dict[str, str], **fields: str
) -> int:
    comment = client.post(
        "/v1/comments",
        json={"name": "R", "email": "r@example.com", "comment": text, "thread": "/t", **fields},
    )
    comment_id = int(comment.get_json()["id"])
    response = client.post(f"/v1/comments/{comment_id}/decision", json=decision, headers=headers)
    assert response.status_code == 200
    return comment_id


def _label_many(client: FlaskClient, headers: dict[str, str], count: int) -> None:
    for n in range(count):
        _decide(client, headers, SPAM.format(n=n), {"action": "reject", "reason": "spam"})
        _decide(client, headers, ORDINARY.format(n=n), {"action": "approve"})


def test_decisions_export_as_canonical_labels(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str]
) -> None:
    spam = {"action": "reject", "reason": "spam"}
    _decide(client, moderator_headers, "buy pills", spam, url="https://pills.example/")
    _decide(client, moderator_headers, "you idiot", {"action": "reject", "reason": "abuse"})
    _decide(client, moderator_headers, "nice article", {"action": "approve"})
    _decide(client, moderator_headers, "off topic", {"action": "reject", "reason": "other"})
    with services.sessions() as session:
        labels = export_labels(session)
    # The name and website too: the classifier scores comments with them.
    assert [(e.text, e.author, e.url, e.spam, e.abuse, e.source) for e in labels] == [
        ("buy pills", "R", "https://pills.example/", 1, None, "moderator"),
        ("you idiot", "R", "", None, 1, "moderator"),
        ("nice article", "R", "", 0, 0, "moderator"),
    ]


def test_a_label_decided_at_a_runs_cut_off_is_in_that_run_and_not_counted_after_it(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str]
) -> None:
    _decide(client, moderator_headers, "buy pills", {"action": "reject", "reason": "spam"})
    with services.sessions() as session:
        cut_off = session.scalars(select(Label.decided_at)).one()
        session.add(TrainingRun(trigger=Trigger.CLI, status=RunStatus.SUCCEEDED, labels_until=cut_off))
        session.commit()
        assert [e.text for e in export_labels(session, until=cut_off)] == ["buy pills"]
        assert labels_since_last_run(session) == 0


def test_runs_are_not_queued_twice(services: Services) -> None:
    with services.sessions() as session:
        first = request_retrain(session, services.retrain_queue, Trigger.CLI)
        again = request_retrain(session, services.retrain_queue, Trigger.API)
        assert again.id == first.id and again.trigger is Trigger.CLI
    assert services.retrain_queue.job_ids == [retrain_job_id(services.retrain_queue, first.id)]


def test_two_requests_at_once_queue_one_job(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = services.retrain_queue
    looked = job_is_pending

    def another_request_meanwhile(connection: Any, job_id: str) -> bool:
        # Between this request's look for the job and its enqueue, another request runs.
        pending = looked(connection, job_id)
        monkeypatch.setattr("service.retraining.job_is_pending", looked)
        with services.sessions() as other:
            request_retrain(other, queue, Trigger.API)
        return pending

    monkeypatch.setattr("service.retraining.job_is_pending", another_request_meanwhile)
    with services.sessions() as session:
        run = request_retrain(session, queue, Trigger.CLI)
    assert queue.job_ids == [retrain_job_id(queue, run.id)]


def test_a_lock_that_expired_before_its_release_does_not_fail_the_request(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def expired(self: Any) -> None:
        raise LockNotOwnedError("Cannot release a lock that's no longer owned")

    monkeypatch.setattr(Lock, "release", expired)
    with services.sessions() as session:
        run = request_retrain(session, services.retrain_queue, Trigger.API)
    assert services.retrain_queue.job_ids == [retrain_job_id(services.retrain_queue, run.id)]


def test_enough_new_labels_queue_a_run_by_themselves(
    client: FlaskClient,
    services: Services,
    moderator_headers: dict[str, str],
    settings_overrides: dict[str, Any],
) -> None:
    every = services.settings.retrain_after_labels
    _label_many(client, moderator_headers, (every - 1) // 2)
    # Rejections "as other" name no head: they teach nothing, and count for nothing.
    for n in range(every):
        _decide(client, moderator_headers, f"Off topic, number {n}.", {"action": "reject", "reason": "other"})
    assert services.retrain_queue.job_ids == []
    _label_many(client, moderator_headers, 1)
    with services.sessions() as session:
        run = session.scalars(select(TrainingRun)).one()
        assert run.trigger is Trigger.LABELS and run.status is RunStatus.QUEUED
        assert labels_since_last_run(session) == 0


def test_api_triggers_and_reports_runs(client: FlaskClient, moderator_headers: dict[str, str]) -> None:
    queued = client.post("/v1/models/retrain", headers=moderator_headers)
    assert queued.status_code == 202 and queued.get_json()["status"] == "queued"
    run_id = queued.get_json()["id"]
    assert client.get(f"/v1/models/runs/{run_id}", headers=moderator_headers).get_json()["trigger"] == "api"
    assert [
        run["id"] for run in client.get("/v1/models/runs", headers=moderator_headers).get_json()["items"]
    ] == [run_id]
    assert client.get("/v1/models/runs/999", headers=moderator_headers).status_code == 404
    # Past a 64-bit id, or not ASCII digits: no run can have it, rather than a database error.
    for run_id in (str(2**63), "\u0661"):
        assert client.get(f"/v1/models/runs/{run_id}", headers=moderator_headers).status_code == 404
    assert client.post("/v1/models/retrain").status_code == 401


def test_a_run_redis_cannot_take_is_an_error_and_the_next_decision_queues_it(
    app: Flask,
    client: FlaskClient,
    services: Services,
    moderator_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    down = connect_redis("redis://127.0.0.1:9/0", timeout=1.0)
    trigger = RetrainTrigger(services.settings.retrain_after_labels, recheck_seconds=0.0)
    monkeypatch.setitem(
        app.extensions,
        EXTENSION,
        replace(
            services,
            retrain_queue=Queue(services.retrain_queue.name, connection=down),
            retrain_trigger=trigger,
        ),
    )
    refused = client.post("/v1/models/retrain", headers=moderator_headers)
    assert refused.status_code == 503 and refused.get_json()["error"] == "queue_unavailable"
    assert refused.headers["Retry-After"] == "5"
    assert refused.get_json()["message"].startswith("retraining run 1 is recorded but not queued")
    # A decision is stored and answered while the run still cannot be queued.
    _decide(client, moderator_headers, "nice article", {"action": "approve"})
    assert services.retrain_queue.job_ids == []
    app.extensions[EXTENSION] = replace(services, retrain_trigger=trigger)
    _decide(client, moderator_headers, "another nice article", {"action": "approve"})
    assert services.retrain_queue.job_ids == [retrain_job_id(services.retrain_queue, 1)]
    with services.sessions() as session:
        assert session.scalars(select(TrainingRun.id)).all() == [1]


def test_after_redis_failed_decisions_leave_it_alone_though_a_run_is_due(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str]
) -> None:
    queue = services.retrain_queue
    down = Queue(queue.name, connection=connect_redis("redis://127.0.0.1:9/0", timeout=1.0))
    trigger = RetrainTrigger(every=1)
    with services.sessions() as session:
        request_retrain(session, queue, Trigger.API)
    queue.empty()
    _decide(client, moderator_headers, "nice article", {"action": "approve"})  # a label after the run
    with services.sessions() as session:
        assert labels_since_last_run(session) >= 1
        with pytest.raises(QueueUnavailableError):
            trigger.after_decision(session, down)
        assert trigger.after_decision(session, down) is None  # not asked again for a while


def test_decisions_look_for_a_stranded_run_once_a_minute_at_most(services: Services) -> None:
    queue = services.retrain_queue
    trigger = RetrainTrigger(every=0)
    with services.sessions() as session:
        run = request_retrain(session, queue, Trigger.API)
        queue.empty()  # as a Redis restarted without its data leaves it
        assert trigger.after_decision(session, queue) == run
        assert queue.job_ids == [retrain_job_id(queue, run.id)]
        queue.empty()
        assert trigger.after_decision(session, queue) is None
    assert queue.job_ids == []


def test_retrain_job_trains_gates_and_workers_pick_up_the_new_version(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str], context: WorkerContext
) -> None:
    before = context.models.active().version
    _label_many(client, moderator_headers, 40)
    run_id = client.post("/v1/models/retrain", headers=moderator_headers).get_json()["id"]
    version = retrain_model(run_id)
    assert retrain_model(run_id) == "skipped"
    run = client.get(f"/v1/models/runs/{run_id}", headers=moderator_headers).get_json()
    assert run["status"] == "succeeded" and run["candidate_version"] == version
    assert run["labels_used"] == 80 and run["comparison"]["holdout_size"] > 0
    # Both models rank these labels perfectly, and a candidate at least as good goes live.
    assert run["comparison"]["passed"] and run["activated"]
    assert active_version(services.settings.models) == version
    assert context.models.active().version == version != before


def test_a_run_that_activates_ends_the_shadow_mode_of_an_earlier_candidate(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str], context: WorkerContext
) -> None:
    _label_many(client, moderator_headers, 40)
    install_context(replace(context, settings=replace(context.settings, retrain_auto_activate=False)))
    kept_back = retrain_model(client.post("/v1/models/retrain", headers=moderator_headers).get_json()["id"])
    assert shadow_version(services.settings.models) == kept_back
    install_context(context)
    activated = retrain_model(client.post("/v1/models/retrain", headers=moderator_headers).get_json()["id"])
    assert active_version(services.settings.models) == activated != kept_back
    assert shadow_version(services.settings.models) is None


def test_a_run_removes_all_but_the_newest_versions_it_is_told_to_keep(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str], context: WorkerContext
) -> None:
    models, seed = services.settings.models, active_version(services.settings.models)
    _label_many(client, moderator_headers, 40)
    keep_one = replace(context.settings, model_versions_kept=1, retrain_auto_activate=False)
    install_context(replace(context, settings=keep_one))
    shadowed = retrain_model(client.post("/v1/models/retrain", headers=moderator_headers).get_json()["id"])
    assert list_versions(models) == [seed, shadowed]  # the newest, and the active one besides
    install_context(replace(context, settings=replace(keep_one, retrain_auto_activate=True)))
    activated = retrain_model(client.post("/v1/models/retrain", headers=moderator_headers).get_json()["id"])
    assert list_versions(models) == [activated] and active_version(models) == activated
    install_context(context)  # 10 kept, the default
    third = retrain_model(client.post("/v1/models/retrain", headers=moderator_headers).get_json()["id"])
    assert list_versions(models) == [activated, third]


def test_shadow_model_scores_without_acting(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str], context: WorkerContext
) -> None:
    # The active model under another name: it decides as the active one does.
    models, active = services.settings.models, context.models.active().version
    pipeline, metadata = load_artifact(models / active)
    twin = f"{active}-twin"
    write_artifact(models / twin, pipeline, {**metadata, "version": twin})
    set_shadow(models, twin)
    comment = client.post(
        "/v1/comments",
        json={"name": "R", "email": "r@example.com", "comment": "Nice photos.", "thread": "/t"},
    ).get_json()["id"]
    outcome = classify_comments(context, [comment])[comment].value
    with services.sessions() as session:
        shadow = session.scalars(select(ShadowVerdict)).one()
        assert (shadow.comment_id, shadow.model_version) == (comment, twin)
        assert shadow.live_outcome.value == outcome == shadow.outcome.value
    report = client.get("/v1/models/shadow", headers=moderator_headers).get_json()
    assert report == {"model_version": twin, "comments": 1, "unchanged": 1, "changed": {}}
    unknown = client.get("/v1/models/shadow?version=no-such-version", headers=moderator_headers)
    assert unknown.status_code == 404 and "no-such-version" in unknown.get_json()["message"]
    for broken in ("a\x00b", "two words", "v" * 65):
        refused = client.get("/v1/models/shadow", query_string={"version": broken}, headers=moderator_headers)
        assert (
            refused.status_code == 422
            and "version must be a model version name" in refused.get_json()["message"]
        )


def _die_while_running(services: Services, run_id: int, *, started_ago: timedelta = timedelta()) -> None:
    """Leave run ``run_id`` as a worker killed mid-training does: `running`, nothing to finish it."""
    with services.sessions() as session:
        run = session.get_one(TrainingRun, run_id)
        run.status, run.started_at = RunStatus.RUNNING, utcnow() - started_ago
        session.commit()


def test_a_run_whose_job_is_gone_is_failed_and_a_new_one_queued(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str]
) -> None:
    queue = services.retrain_queue
    dead = client.post("/v1/models/retrain", headers=moderator_headers).get_json()["id"]
    _die_while_running(services, dead)
    assert client.post("/v1/models/retrain", headers=moderator_headers).get_json()["id"] == dead
    # What RQ records when a cold shutdown ends the job, or what a flushed Redis leaves.
    Job.fetch(retrain_job_id(queue, dead), connection=queue.connection).set_status(JobStatus.FAILED)
    fresh = client.post("/v1/models/retrain", headers=moderator_headers)
    assert fresh.status_code == 202 and fresh.get_json()["status"] == "queued"
    assert fresh.get_json()["id"] != dead
    failed = client.get(f"/v1/models/runs/{dead}", headers=moderator_headers).get_json()
    assert failed["status"] == "failed" and "worker" in failed["error"] and failed["finished_at"]
    assert retrain_job_id(queue, fresh.get_json()["id"]) in queue.job_ids


def test_a_run_that_finishes_while_its_job_is_checked_keeps_its_result_and_logs_no_failure(
    services: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    queue = services.retrain_queue
    with services.sessions() as session:
        run_id = request_retrain(session, queue, Trigger.CLI).id
    _die_while_running(services, run_id)

    def finished_meanwhile(_queue: Any, _run: Any) -> str:
        # The worker commits its success between the run being read and the job checked.
        with services.sessions() as session:
            session.get_one(TrainingRun, run_id).status = RunStatus.SUCCEEDED
            session.commit()
        return "worker lost"

    monkeypatch.setattr(retraining, "_worker_lost", finished_meanwhile)
    with services.sessions() as session:
        assert request_retrain(session, queue, Trigger.CLI).id != run_id
        assert session.get_one(TrainingRun, run_id).status is RunStatus.SUCCEEDED
    assert "failed" not in caplog.text


def test_a_run_running_past_the_job_timeout_is_failed(services: Services) -> None:
    queue = services.retrain_queue
    with services.sessions() as session:
        dead = request_retrain(session, queue, Trigger.CLI).id
    # A SIGKILL leaves the job `started` in Redis; only the time tells it is dead.
    Job.fetch(retrain_job_id(queue, dead), connection=queue.connection).set_status(JobStatus.STARTED)
    _die_while_running(services, dead, started_ago=timedelta(seconds=RETRAIN_TIMEOUT_SECONDS - 60))
    with services.sessions() as session:
        assert request_retrain(session, queue, Trigger.CLI).id == dead
    _die_while_running(services, dead, started_ago=timedelta(seconds=STALE_RUN_SECONDS + 1))
    with services.sessions() as session:
        assert request_retrain(session, queue, Trigger.CLI).id != dead
        failed = session.get_one(TrainingRun, dead)
        assert failed.status is RunStatus.FAILED and "timeout" in (failed.error or "")


def test_labels_queue_a_new_run_after_one_whose_worker_died(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str]
) -> None:
    every = services.settings.retrain_after_labels
    _label_many(client, moderator_headers, every // 2)
    with services.sessions() as session:
        dead = session.scalars(select(TrainingRun)).one().id
    _die_while_running(services, dead)
    services.retrain_queue.connection.delete(Job.key_for(retrain_job_id(services.retrain_queue, dead)))
    _label_many(client, moderator_headers, every // 2)
    with services.sessions() as session:
        runs = session.scalars(select(TrainingRun).order_by(TrainingRun.id)).all()
        assert [(run.id == dead, run.status) for run in runs] == [
            (True, RunStatus.FAILED),
            (False, RunStatus.QUEUED),
        ]


@pytest.mark.parametrize("exit_kind", [SystemExit, KeyboardInterrupt])
def test_a_run_ended_by_shutdown_is_marked_failed(
    services: Services,
    context: WorkerContext,
    monkeypatch: pytest.MonkeyPatch,
    exit_kind: type[BaseException],
) -> None:
    def shut_down(*args: object, **kwargs: object) -> None:
        raise exit_kind()

    monkeypatch.setattr("worker.training.retrain", shut_down)
    with services.sessions() as session:
        run_id = request_retrain(session, services.retrain_queue, Trigger.CLI).id
    with pytest.raises(exit_kind):
        retrain_model(run_id)
    with services.sessions() as session:
        run = session.get_one(TrainingRun, run_id)
        assert run.status is RunStatus.FAILED and run.error is not None
        assert run.error.startswith(exit_kind.__name__)


def _a_finished_retrain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand in for the training itself: a candidate `candidate-1` that went live."""
    comparison = Comparison(candidate={}, active={}, holdout_size=10, passed=True)
    outcome = RetrainOutcome("candidate-1", activated=True, comparison=comparison, training_examples=10)
    monkeypatch.setattr("worker.training.retrain", lambda *args, **kwargs: outcome)
    monkeypatch.setattr("worker.training.RECORD_FIRST_DELAY_SECONDS", 0.0)


def _database_away(monkeypatch: pytest.MonkeyPatch, times: int) -> list[int]:
    """Make recording a run's end fail ``times`` times as a lost connection does; counts the tries."""
    finish = training._finish
    tries: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> None:
        tries.append(1)
        if len(tries) <= times:
            raise OperationalError("UPDATE training_runs", {}, Exception("server closed the connection"))
        finish(*args, **kwargs)

    monkeypatch.setattr("worker.training._finish", flaky)
    return tries


def test_a_success_is_recorded_though_the_database_was_away_for_a_moment(
    services: Services, context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _a_finished_retrain(monkeypatch)
    tries = _database_away(monkeypatch, times=2)
    with services.sessions() as session:
        run_id = request_retrain(session, services.retrain_queue, Trigger.CLI).id
    assert retrain_model(run_id) == "candidate-1"
    assert len(tries) == 3
    with services.sessions() as session:
        run = session.get_one(TrainingRun, run_id)
        assert run.status is RunStatus.SUCCEEDED
        assert run.candidate_version == "candidate-1" and run.activated


def test_recording_a_success_waits_twice_as_long_after_each_failure(
    services: Services, context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _a_finished_retrain(monkeypatch)
    monkeypatch.setattr("worker.training.RECORD_FIRST_DELAY_SECONDS", 1.0)
    pauses: list[float] = []
    monkeypatch.setattr("worker.training.time", SimpleNamespace(sleep=pauses.append))
    _database_away(monkeypatch, times=3)
    with services.sessions() as session:
        run_id = request_retrain(session, services.retrain_queue, Trigger.CLI).id
    assert retrain_model(run_id) == "candidate-1"
    assert pauses == [1.0, 2.0, 4.0]


def test_a_success_that_cannot_be_recorded_says_which_model_went_live(
    services: Services,
    context: WorkerContext,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _a_finished_retrain(monkeypatch)
    tries = _database_away(monkeypatch, times=training.RECORD_ATTEMPTS)
    with services.sessions() as session:
        run_id = request_retrain(session, services.retrain_queue, Trigger.CLI).id
    with pytest.raises(OperationalError):
        retrain_model(run_id)
    assert len(tries) == training.RECORD_ATTEMPTS
    assert f"run {run_id}: model candidate-1 was activated, but the run could not be recorded" in caplog.text


def test_two_workers_given_the_same_run_train_it_once(
    services: Services, context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained: list[int] = []

    def slow_retrain(*args: object, **kwargs: object) -> None:
        trained.append(1)
        time.sleep(0.5)  # both workers are in the job by now
        raise RuntimeError("stop here: only the count matters")

    monkeypatch.setattr("worker.training.retrain", slow_retrain)
    with services.sessions() as session:
        run_id = request_retrain(session, services.retrain_queue, Trigger.CLI).id
    start = threading.Barrier(4)

    def worker() -> None:
        start.wait()
        with contextlib.suppress(RuntimeError):
            retrain_model(run_id)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert trained == [1]


def test_the_database_refuses_a_second_open_run(services: Services) -> None:
    with services.sessions() as session:
        session.add(TrainingRun(trigger=Trigger.CLI, status=RunStatus.RUNNING))
        session.commit()
        session.add(TrainingRun(trigger=Trigger.LABELS, status=RunStatus.QUEUED))
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
        session.add_all(
            TrainingRun(trigger=Trigger.API, status=status)
            for status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.FAILED)
        )
        session.commit()


def test_requests_crossing_the_check_share_one_run(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = services.retrain_queue
    with services.sessions() as session:
        first = request_retrain(session, queue, Trigger.LABELS)
    original = retraining._open_run
    stale_answers: list[TrainingRun | None] = [None]

    def checked_before_the_other_commit(session: Session, queue: Queue) -> TrainingRun | None:
        # The first check ran before the other request committed its run.
        return stale_answers.pop() if stale_answers else original(session, queue)

    monkeypatch.setattr(retraining, "_open_run", checked_before_the_other_commit)
    with services.sessions() as session:
        assert request_retrain(session, queue, Trigger.LABELS).id == first.id
        assert session.scalar(select(func.count()).select_from(TrainingRun)) == 1
    assert queue.job_ids == [retrain_job_id(queue, first.id)]
