"""Moderator decisions retrain the model through a real worker, which switches without a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from service import create_app
from service.auth import create_token
from service.tables import TrainingRun, Verdict
from tests.integration.processes import Worker, service_environment, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LABELS_PER_CLASS = 60


def _comment(client: FlaskClient, text: str) -> int:
    response = client.post(
        "/v1/comments", json={"name": "R", "email": "r@example.com", "comment": text, "thread": "/t"}
    )
    return int(response.get_json()["id"])


def test_labels_trigger_a_retrain_that_workers_pick_up(
    settings_overrides: dict[str, Any], own_models: Path, tmp_path: Path
) -> None:
    every = 2 * LABELS_PER_CLASS
    settings = {**settings_overrides, "model_dir": own_models, "retrain_after_labels": every}
    app = create_app(settings)
    client = app.test_client()
    services = app.extensions["moderation"]
    with services.sessions() as session:
        headers = {"Authorization": f"Bearer {create_token(session, 'trainer')}"}
        session.commit()
    env = service_environment(settings, RETRAIN_AFTER_LABELS=str(every), MODEL_CHECK_SECONDS="0.2")
    worker = Worker(env, tmp_path / "worker.log")
    try:
        for n in range(LABELS_PER_CLASS):
            spam = _comment(
                client, f"Discount watches {n}: order at http://watches{n}.example now, free shipping"
            )
            ordinary = _comment(client, f"Item {n} on the council agenda deserves a proper public hearing")
            for comment_id, decision in (
                (spam, {"action": "reject", "reason": "spam"}),
                (ordinary, {"action": "approve"}),
            ):
                assert (
                    client.post(
                        f"/v1/comments/{comment_id}/decision", json=decision, headers=headers
                    ).status_code
                    == 200
                )

        def finished() -> bool:
            with services.sessions() as session:
                run = session.scalar(select(TrainingRun))
                return run is not None and run.status.value in {"succeeded", "failed"}

        wait_for(finished, 300, "the retraining run\n" + worker.output()[-3000:])
        run = client.get("/v1/models/runs", headers=headers).get_json()["items"][0]
        assert run["trigger"] == "labels" and run["status"] == "succeeded", run
        assert run["labels_used"] == every and run["activated"], run

        fresh = _comment(client, "A calm and thoughtful article about the harbour.")

        def scored_by_candidate() -> bool:
            with services.sessions() as session:
                versions = session.scalars(
                    select(Verdict.model_version).where(Verdict.comment_id == fresh)
                ).all()
                return versions == [run["candidate_version"]]

        wait_for(scored_by_candidate, 60, "a verdict from the new model\n" + worker.output()[-3000:])
        assert worker.process.poll() is None
    finally:
        worker.stop()
        services.queue.queue.empty()
        services.retrain_queue.empty()
        services.close()
