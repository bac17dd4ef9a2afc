"""The reply form's comment end to end: real database, real Redis, a real worker process."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from service import create_app
from service.app import Services
from service.statuses import CommentStatus
from service.tables import AuditEvent, Comment, Verdict
from tests.integration.processes import STOP_SECONDS, RedisServer, Worker, service_environment, wait_for
from tests.integration.traffic import Sample, mixed_traffic

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VERDICT_TIMEOUT = 120


def _statuses(services: Services) -> dict[int, CommentStatus]:
    with services.sessions() as session:
        return dict(session.execute(select(Comment.id, Comment.status)).tuples().all())


def _all_decided(services: Services, expected: int) -> bool:
    statuses = _statuses(services)
    return len(statuses) == expected and CommentStatus.RECEIVED not in statuses.values()


def _post(client: FlaskClient, sample: Sample, number: int) -> int:
    response = client.post(
        "/v1/comments",
        json={
            "name": sample.name,
            "email": f"reader{number}@example.net",
            "comment": sample.text,
            "thread": "https://news.example/2026/11/budget",
        },
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    return int(response.get_json()["id"])


@pytest.fixture
def worker(settings_overrides: dict[str, Any], tmp_path: Path) -> Iterator[Worker]:
    """A worker process on the test's database and queue."""
    process = Worker(service_environment(settings_overrides), tmp_path / "worker.log")
    yield process
    process.stop()


def test_two_hundred_comments_all_reach_a_verdict(
    client: FlaskClient, services: Services, worker: Worker, moderator_headers: dict[str, str]
) -> None:
    samples = mixed_traffic(200)
    posted = {_post(client, sample, number): sample for number, sample in enumerate(samples)}

    wait_for(lambda: _all_decided(services, 200), VERDICT_TIMEOUT, "200 verdicts\n" + worker.output()[-3000:])

    statuses = _statuses(services)
    wrongly_approved = [
        posted[comment_id].text
        for comment_id, status in statuses.items()
        if posted[comment_id].suspicious and status is CommentStatus.APPROVED
    ]
    assert wrongly_approved == []
    ordinary = [statuses[i] for i, sample in posted.items() if not sample.suspicious]
    assert Counter(ordinary)[CommentStatus.APPROVED] >= 0.8 * len(ordinary)
    with services.sessions() as session:
        verdicts = Counter(session.scalars(select(Verdict.comment_id)).all())
        assert set(verdicts) == set(posted) and set(verdicts.values()) == {1}

    # Whether the seed model holds a comment for review or rejects it outright depends on
    # its thresholds; a moderator can publish either.
    held = next(i for i, status in statuses.items() if status is not CommentStatus.APPROVED)
    decision = client.post(
        f"/v1/comments/{held}/decision", json={"action": "approve"}, headers=moderator_headers
    )
    assert decision.status_code == 200
    public = client.get("/v1/threads/https://news.example/2026/11/budget/comments?per_page=200")
    listed = {item["id"]: item for item in public.get_json()["items"]}
    assert held in listed
    assert set(listed[held]) == {"id", "parent_id", "name", "url", "avatar", "comment", "created_at"}
    assert "@example.net" not in public.get_data(as_text=True)
    assert all(statuses[i] is CommentStatus.APPROVED for i in listed if i != held)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of this test's own, which it may kill."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def outage_app(settings_overrides: dict[str, Any], own_redis: RedisServer) -> Iterator[Flask]:
    """The app on the test's own Redis server, with short timeouts so an outage shows fast."""
    application = create_app({**settings_overrides, "redis_url": own_redis.url, "redis_timeout": 0.5})
    yield application
    application.extensions["moderation"].close()


def test_redis_outage_loses_nothing_and_classifies_once(
    outage_app: Flask, own_redis: RedisServer, settings_overrides: dict[str, Any], tmp_path: Path
) -> None:
    services: Services = outage_app.extensions["moderation"]
    client = outage_app.test_client()
    env = service_environment({**settings_overrides, "redis_url": own_redis.url})
    worker = Worker(env, tmp_path / "worker.log")
    try:
        samples = mixed_traffic(60)
        for number, sample in enumerate(samples[:20]):
            _post(client, sample, number)
        # The outage meets a running worker, not one still starting.
        wait_for(
            lambda: _all_decided(services, 20), VERDICT_TIMEOUT, "20 verdicts\n" + worker.output()[-3000:]
        )
        own_redis.stop()
        for number, sample in enumerate(samples[20:40], start=20):
            _post(client, sample, number)
        assert sum(status is CommentStatus.RECEIVED for status in _statuses(services).values()) == 20
        own_redis.start()
        for number, sample in enumerate(samples[40:], start=40):
            _post(client, sample, number)
        wait_for(
            lambda: _all_decided(services, 60), VERDICT_TIMEOUT, "60 verdicts\n" + worker.output()[-3000:]
        )
    finally:
        worker.stop()

    with services.sessions() as session:
        verdicts = Counter(session.scalars(select(Verdict.comment_id)).all())
        classified = Counter(
            session.scalars(select(AuditEvent.comment_id).where(AuditEvent.action == "classified")).all()
        )
        total = session.scalar(select(func.count()).select_from(Comment))
    assert total == 60
    assert len(verdicts) == 60 and set(verdicts.values()) == {1}
    assert len(classified) == 60 and set(classified.values()) == {1}


# What this tests is a worker's wait for a Redis it cannot reach: one database is enough.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_worker_waiting_for_redis_stops_at_once_and_cleanly_when_told(
    own_redis: RedisServer, settings_overrides: dict[str, Any], tmp_path: Path
) -> None:
    own_redis.stop()
    env = service_environment({**settings_overrides, "redis_url": own_redis.url})
    worker = Worker(env, tmp_path / "worker.log")
    try:
        wait_for(
            lambda: "starting again" in worker.output() or worker.process.poll() is not None, 60, "a retry"
        )
        worker.process.send_signal(signal.SIGTERM)
        # Not killed by the signal, nor left waiting for the next try: it returns, and so
        # lets go of what it holds (its dispatcher's lease) at once.
        assert worker.process.wait(STOP_SECONDS) == 0, worker.output()[-3000:]
        assert "worker stopped while waiting to start again" in worker.output()
    finally:
        worker.stop()


def test_a_worker_started_while_redis_is_down_waits_for_it(
    outage_app: Flask, own_redis: RedisServer, settings_overrides: dict[str, Any], tmp_path: Path
) -> None:
    services: Services = outage_app.extensions["moderation"]
    client = outage_app.test_client()
    own_redis.stop()
    env = service_environment({**settings_overrides, "redis_url": own_redis.url})
    worker = Worker(env, tmp_path / "worker.log")
    try:
        for number, sample in enumerate(mixed_traffic(5)):
            _post(client, sample, number)
        # Started after its model is loaded, the worker keeps trying the queue.
        wait_for(
            lambda: "starting again" in worker.output() or worker.process.poll() is not None, 60, "a retry"
        )
        assert worker.process.poll() is None, worker.output()[-3000:]
        own_redis.start()
        wait_for(lambda: _all_decided(services, 5), VERDICT_TIMEOUT, "5 verdicts\n" + worker.output()[-3000:])
    finally:
        worker.stop()
