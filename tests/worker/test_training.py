"""Retraining from moderator decisions: labels, runs, the job, hot reload and shadow mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from models import active_version
from models.shadow import set_shadow
from service.app import Services
from service.retraining import export_labels, labels_since_last_run, request_retrain, retrain_job_id
from service.statuses import RunStatus, Trigger
from service.tables import ShadowVerdict, TrainingRun
from worker.context import WorkerContext
from worker.jobs import classify_comments
from worker.training import retrain_model

pytestmark = pytest.mark.integration

SPAM = "Cheap pills, order {n} at http://pills{n}.example today, best price"
ORDINARY = "The council meeting on budget item {n} ran long but the debate was useful"


@pytest.fixture
def settings_overrides(settings_overrides: dict[str, Any], own_models: Path) -> dict[str, Any]:
    """The shared settings, on the test's own model folder, checking for new versions always."""
    return {**settings_overrides, "model_dir": own_models, "model_check_seconds": 0.0}


def _decide(client: FlaskClient, headers: dict[str, str], text: str, decision: dict[str, str]) -> int:
    comment = client.post(
        "/v1/comments", json={"name": "R", "email": "r@example.com", "comment": text, "thread": "/t"}
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
    _decide(client, moderator_headers, "buy pills", {"action": "reject", "reason": "spam"})
    _decide(client, moderator_headers, "you idiot", {"action": "reject", "reason": "abuse"})
    _decide(client, moderator_headers, "nice article", {"action": "approve"})
    _decide(client, moderator_headers, "off topic", {"action": "reject", "reason": "other"})
    with services.sessions() as session:
        labels = export_labels(session)
    assert [(e.text, e.spam, e.abuse, e.source) for e in labels] == [
        ("buy pills", 1, None, "moderator"),
        ("you idiot", None, 1, "moderator"),
        ("nice article", 0, 0, "moderator"),
    ]


def test_runs_are_not_queued_twice(services: Services) -> None:
    with services.sessions() as session:
        first = request_retrain(session, services.retrain_queue, Trigger.CLI)
        again = request_retrain(session, services.retrain_queue, Trigger.API)
        assert again.id == first.id and again.trigger is Trigger.CLI
    assert services.retrain_queue.job_ids == [retrain_job_id(services.retrain_queue, first.id)]


def test_enough_new_labels_queue_a_run_by_themselves(
    client: FlaskClient,
    services: Services,
    moderator_headers: dict[str, str],
    settings_overrides: dict[str, Any],
) -> None:
    every = services.settings.retrain_after_labels
    _label_many(client, moderator_headers, (every - 1) // 2)
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
    assert client.post("/v1/models/retrain").status_code == 401


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
    assert run["activated"] == run["comparison"]["passed"]
    if run["activated"]:
        assert active_version(services.settings.models) == version
        assert context.models.active().version == version != before
    else:
        assert context.models.shadow() is not None and context.models.shadow().version == version


def test_shadow_model_scores_without_acting(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str], context: WorkerContext
) -> None:
    active = context.models.active().version
    set_shadow(services.settings.models, active)
    comment = client.post(
        "/v1/comments",
        json={"name": "R", "email": "r@example.com", "comment": "Nice photos.", "thread": "/t"},
    ).get_json()["id"]
    outcome = classify_comments(context, [comment])[comment].value
    with services.sessions() as session:
        shadow = session.scalars(select(ShadowVerdict)).one()
        assert (shadow.comment_id, shadow.model_version) == (comment, active)
        assert shadow.live_outcome.value == outcome == shadow.outcome.value
    report = client.get("/v1/models/shadow", headers=moderator_headers).get_json()
    assert report == {"model_version": active, "comments": 1, "unchanged": 1, "changed": {}}
