"""`moderation worker --processes 2`: one model load, two forked workers, supervised."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from redis.client import PubSub
from rq import Worker as RQWorker
from sqlalchemy import select

from models.registry import activate, save_version
from models.seeding import seed_examples
from models.training import train
from service.app import Services, create_app
from service.statuses import CommentStatus
from service.tables import Comment, Verdict
from tests.integration.processes import (
    STOP_SECONDS,
    RedisServer,
    Worker,
    process_ids,
    process_status,
    service_environment,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _worker_pids(services: Services) -> set[int]:
    queue = services.queue.queue
    return {worker.pid for worker in RQWorker.all(queue=queue) if worker.pid}


def _parent_of(pid: int) -> int:
    return int(process_status(pid)[1])


def _group(pgid: int) -> list[int]:
    """Processes in process group ``pgid`` (a pool's worker and what it forked, such as RQ's scheduler)."""
    members = []
    for pid in process_ids():
        try:
            if int(process_status(pid)[2]) == pgid:
                members.append(pid)
        except OSError:  # ended while we looked
            continue
    return members


def _alive(pids: set[int]) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def _start_pool(
    services: Services, settings_overrides: dict[str, Any], tmp_path: Path, **environment: str
) -> Worker:
    """A `moderation worker --processes 2`, once both its workers have registered with RQ."""
    env = service_environment(settings_overrides, **environment)
    pool = Worker(env, tmp_path / "pool.log", "--processes", "2")
    try:
        wait_for(lambda: len(_worker_pids(services)) == 2, 90, "two registered workers\n" + pool.output())
    except AssertionError:
        pool.stop()
        raise
    return pool


def _waiting(services: Services) -> int:
    with services.sessions() as session:
        return len(session.scalars(select(Comment.id).where(Comment.status == CommentStatus.RECEIVED)).all())


def test_pool_loads_the_model_once_forks_workers_and_replaces_a_dead_one(
    client: FlaskClient, services: Services, settings_overrides: dict[str, Any], tmp_path: Path
) -> None:
    pool = _start_pool(services, settings_overrides, tmp_path)
    try:
        first = _worker_pids(services)
        assert {_parent_of(pid) for pid in first} == {pool.process.pid}
        for number in range(20):
            comment = {"name": "R", "email": f"r{number}@example.org", "comment": "Good.", "thread": "/p"}
            assert client.post("/v1/comments", json=comment).status_code == 202
        wait_for(lambda: _waiting(services) == 0, 60, "verdicts\n" + pool.output())

        os.kill(min(first), signal.SIGKILL)
        wait_for(
            lambda: len(_worker_pids(services) - first) == 1 and len(_worker_pids(services)) >= 2,
            60,
            "a replacement worker\n" + pool.output(),
        )
        # What the killed worker forked (RQ's scheduler) stops by itself too.
        wait_for(lambda: not _group(min(first)), 30, "the killed worker's scheduler to stop")
        workers = _worker_pids(services) - {min(first)}
    finally:
        pool.stop()
    assert pool.process.returncode == 0
    assert not _alive(workers), "a child outlived the pool"
    assert pool.output().count("loaded model") == 1
    assert re.search(r"ended \(status 9\) \d+ s after its start; starting another in 1 s", pool.output())


@pytest.fixture
def on_own_redis(
    settings_overrides: dict[str, Any], tmp_path: Path
) -> Iterator[tuple[Services, dict[str, Any]]]:
    """The app's services and the settings, on a Redis server of the test's own (whose
    configuration it may change)."""
    server = RedisServer(tmp_path)
    server.start()
    settings = {**settings_overrides, "redis_url": server.url}
    app = create_app(settings)
    try:
        yield app.extensions["moderation"], settings
    finally:
        app.extensions["moderation"].close()
        server.stop()


def test_a_stopped_pool_frees_the_dispatcher_lease_at_once(
    on_own_redis: tuple[Services, dict[str, Any]], tmp_path: Path
) -> None:
    services, settings_overrides = on_own_redis
    lease = services.queue.dispatcher_lease
    connection = services.queue.queue.connection
    pool = _start_pool(services, settings_overrides, tmp_path)
    queue = services.queue.queue

    def settled() -> bool:
        # Idle workers have set up RQ's signal handlers; a stop before that, in RQ's own
        # start-up, ends a worker with no clean-up at all.
        workers = RQWorker.all(queue=queue)
        return bool(connection.exists(lease)) and all(worker.get_state() == "idle" for worker in workers)

    # Redis reports what ends the lease: its holder deleting it, or its time running out.
    connection.config_set("notify-keyspace-events", "Kgx")
    events = connection.pubsub(ignore_subscribe_messages=True)
    try:
        try:
            wait_for(settled, 30, "idle workers, one holding the lease\n" + pool.output())
            events.subscribe(f"__keyspace@0__:{lease}")
        finally:
            pool.stop()
        ending = _lease_ending(events)
    finally:
        events.close()
    assert ending == b"del", pool.output()
    assert not connection.exists(lease)


def _lease_ending(events: PubSub) -> bytes | None:
    """The event that ended the lease (``del`` or ``expired``), of those received within 5 s."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        message = events.get_message(timeout=0.5)
        if message is not None and message["data"] in (b"del", b"expired"):
            return bytes(message["data"])
    return None


# Process supervision alone: the same on either database, so run on one.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_workers_stop_by_themselves_when_the_pool_is_killed(
    services: Services, settings_overrides: dict[str, Any], tmp_path: Path
) -> None:
    pool = _start_pool(services, settings_overrides, tmp_path)
    try:
        workers = _worker_pids(services)
        pool.process.kill()
        pool.process.wait()
        wait_for(
            lambda: not _alive(workers),
            30,
            "orphaned workers to stop\n" + pool.output(),
        )
    finally:
        pool.stop()


# Process supervision alone: the same on either database, so run on one.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_stop_during_a_respawn_starts_no_new_worker(
    services: Services, settings_overrides: dict[str, Any], tmp_path: Path
) -> None:
    pool = _start_pool(services, settings_overrides, tmp_path)
    try:
        first = _worker_pids(services)
        os.kill(min(first), signal.SIGKILL)
        wait_for(
            lambda: "starting another" in pool.output(), STOP_SECONDS, "the pool to notice\n" + pool.output()
        )
        pool.process.send_signal(signal.SIGTERM)  # inside the pause before the new fork
        pool.process.wait(STOP_SECONDS)
    finally:
        pool.stop()
    assert pool.process.returncode == 0
    assert not _alive(first)
    assert pool.output().count("worker ready") == 2, pool.output()


def test_a_newly_activated_model_is_loaded_once_and_the_workers_replaced(
    client: FlaskClient,
    services: Services,
    settings_overrides: dict[str, Any],
    own_models: Path,
    tmp_path: Path,
) -> None:
    overrides = {**settings_overrides, "model_dir": own_models}
    pool = _start_pool(services, overrides, tmp_path, MODEL_CHECK_SECONDS="0.2")
    try:
        first = _worker_pids(services)
        version = save_version(own_models, train(seed_examples(), seed=1))
        activate(own_models, version)
        wait_for(
            lambda: len(_worker_pids(services) - first) == 2 and not first & _worker_pids(services),
            60,
            "two workers forked after the new model was loaded\n" + pool.output(),
        )
        comment = {"name": "R", "email": "r@example.org", "comment": "Good piece.", "thread": "/p"}
        comment_id = client.post("/v1/comments", json=comment).get_json()["id"]
        wait_for(lambda: _waiting(services) == 0, 60, "a verdict\n" + pool.output())
        with services.sessions() as session:
            verdict = session.scalars(select(Verdict).where(Verdict.comment_id == comment_id)).one()
            assert verdict.model_version == version
    finally:
        pool.stop()
    assert pool.process.returncode == 0
    # The parent loaded it, once; no worker loaded a copy of its own.
    assert pool.output().count(f"loaded model {version}") == 1
    assert pool.output().count("now scoring with model") == 1
    assert "starting another" not in pool.output()


def _holds_stop_signals(pid: int, thread: str) -> bool:
    """Whether thread ``thread`` of process ``pid`` holds SIGINT and SIGTERM back (/proc's SigBlk)."""
    status = Path(f"/proc/{pid}/task/{thread}/status").read_text()
    blocked = int(re.search(r"^SigBlk:\s*([0-9a-f]+)$", status, re.MULTILINE).group(1), 16)  # type: ignore[union-attr]
    return all(blocked >> (stop_signal - 1) & 1 for stop_signal in (signal.SIGINT, signal.SIGTERM))


# On SQLite, whose worker runs one thread more (the checkpointer) than on PostgreSQL.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("processes", [1, 2])
def test_stop_signals_go_to_a_worker_s_main_thread_alone(
    services: Services, settings_overrides: dict[str, Any], tmp_path: Path, processes: int
) -> None:
    # Python handles signals in the main thread; one the kernel gave to another thread left
    # the main thread waiting for its next job, and a Ctrl-C of `moderation run` unheard.
    worker = Worker(
        service_environment(settings_overrides), tmp_path / "worker.log", "--processes", str(processes)
    )
    queue = services.queue.queue

    def idle() -> bool:
        workers = RQWorker.all(queue=queue)
        return len(workers) == processes and all(each.get_state() == "idle" for each in workers)

    try:
        wait_for(idle, 90, "idle workers\n" + worker.output())
        for pid in _worker_pids(services):
            threads = os.listdir(f"/proc/{pid}/task")
            assert len(threads) > 3  # dispatcher, checkpointer, RQ's listener, the orphan watch...
            assert [thread for thread in threads if not _holds_stop_signals(pid, thread)] == [str(pid)]
        worker.process.send_signal(signal.SIGINT)
        worker.process.wait(STOP_SECONDS)
    finally:
        worker.stop()
    assert worker.process.returncode == 0, worker.output()
