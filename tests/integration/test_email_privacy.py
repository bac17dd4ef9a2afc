"""A commenter's email goes nowhere but, encrypted, into the database."""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from rq.job import Job
from sqlalchemy import select

from service.app import Services
from service.privacy import decrypt_email
from service.statuses import CommentStatus
from service.tables import Base, Comment
from tests.integration.processes import Worker, service_environment, wait_for
from worker.dispatcher import dispatch

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def email() -> str:
    """An address that cannot appear anywhere by chance."""
    return f"leak-check-{uuid.uuid4().hex}@example.org"


def _redis_values(connection: redis.Redis, job_ids: list[str]) -> Iterator[bytes]:
    """Every stored byte of the test's jobs, with the compressed payloads opened up."""
    for job_id in job_ids:
        for key in connection.scan_iter(match=f"*{job_id}*"):
            kind = connection.type(key)
            if kind == b"hash":
                for name, value in connection.hgetall(key).items():
                    yield name + b"=" + value
                    if name == b"data":
                        yield zlib.decompress(value)
            elif kind == b"string":
                yield connection.get(key) or b""
        job = Job.fetch(job_id, connection=connection)
        yield repr((job.func_name, job.args, job.kwargs, job.meta, job.description)).encode()


def _everything_in_redis(connection: redis.Redis) -> Iterator[bytes]:
    """Every key and stored value in the database, compressed job payloads opened up: what
    the worker left (its jobs, their results and failures, its registries) as well."""
    for key in connection.scan_iter(count=1000):
        yield key
        kind = connection.type(key)
        if kind == b"string":
            yield connection.get(key) or b""
        elif kind == b"hash":
            for name, value in connection.hgetall(key).items():
                yield name + b"=" + value
                if name == b"data":
                    with contextlib.suppress(zlib.error):
                        yield zlib.decompress(value)
        elif kind == b"list":
            yield from connection.lrange(key, 0, -1)
        elif kind == b"set":
            yield from connection.smembers(key)
        elif kind == b"zset":
            yield from connection.zrange(key, 0, -1)
        elif kind == b"stream":
            yield repr(connection.xrange(key)).encode()


def _database_rows(services: Services) -> Iterator[tuple[str, str, Any]]:
    with services.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(table.select()).mappings():
                for column, value in row.items():
                    yield table.name, column, value


def test_email_appears_nowhere_but_encrypted(
    client: FlaskClient,
    services: Services,
    settings_overrides: dict[str, Any],
    moderator_headers: dict[str, str],
    email: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []
    form = {"name": "Private Person", "email": email, "comment": "Nice article.", "thread": "/privacy"}
    for response in (
        client.post("/v1/comments", json=form),
        client.post("/v1/comments", data=form, headers={"Referer": "https://news.example/privacy"}),
        client.post("/v1/comments", data={**form, "email": email + "@"}),
    ):
        bodies.append(response.get_data(as_text=True) + str(response.headers))
    with services.sessions() as session:
        comment_ids = list(session.scalars(select(Comment.id)).all())
        dispatch(session, services.queue)  # as a worker's dispatcher would, to see what Redis holds
    connection, job_ids = services.queue.queue.connection, services.queue.queue.job_ids
    payloads = list(_redis_values(connection, job_ids))
    assert job_ids and len(payloads) >= 2 * len(job_ids)
    inbox = connection.lrange(services.queue.inbox, 0, -1)
    assert sorted(int(raw) for raw in inbox) == sorted(comment_ids)
    payloads += inbox

    worker = Worker(service_environment(settings_overrides, LOG_LEVEL="DEBUG"), tmp_path / "worker.log")
    try:
        wait_for(
            lambda: all(status is not CommentStatus.RECEIVED for status in _statuses(services)),
            120,
            "verdicts\n" + worker.output()[-3000:],
        )
    finally:
        worker.stop()
    left_in_redis = list(_everything_in_redis(connection))
    assert any(item.startswith(b"rq:job:") for item in left_in_redis)  # the worker's jobs among them
    payloads += left_in_redis
    for comment_id in comment_ids:
        for response in (
            client.post(
                f"/v1/comments/{comment_id}/decision", json={"action": "approve"}, headers=moderator_headers
            ),
            client.get(f"/v1/comments/{comment_id}", headers=moderator_headers),
        ):
            bodies.append(response.get_data(as_text=True))
    for path in ("/v1/comments", "/v1/threads//privacy/comments", "/healthz"):
        bodies.append(client.get(path, headers=moderator_headers).get_data(as_text=True))
    # The moderators' pages, signed in with the same token.
    csrf = re.search(
        r'name="csrf_token" value="([^"]+)"', client.get("/moderate/sign-in").get_data(as_text=True)
    )
    assert csrf is not None
    token = moderator_headers["Authorization"].removeprefix("Bearer ")
    client.post("/moderate/sign-in", data={"token": token, "csrf_token": csrf.group(1)})
    queue_page = client.get("/moderate/?status=").get_data(as_text=True)
    assert queue_page.count("Private Person") == len(comment_ids)
    bodies.append(queue_page)

    needle = email.split("@")[0]
    assert all(needle not in body for body in bodies)
    assert all(needle.encode() not in payload for payload in payloads)
    assert needle not in caplog.text
    assert worker.output() and needle not in worker.output()
    rows = list(_database_rows(services))
    assert [(table, column) for table, column, value in rows if needle in str(value)] == []
    # The key's fingerprint is recorded, never the key itself.
    secret = settings_overrides["secret_key"]
    assert [(table, column) for table, column, value in rows if secret in str(value)] == []
    assert ("key_fingerprint", "fingerprint", services.keys.fingerprint) in rows
    with services.sessions() as session:
        stored = session.scalars(select(Comment.email_ciphertext)).all()
    assert sorted(decrypt_email(services.keys, blob) for blob in stored) == [email, email]


def _statuses(services: Services) -> list[CommentStatus]:
    with services.sessions() as session:
        return list(session.scalars(select(Comment.status)).all())
