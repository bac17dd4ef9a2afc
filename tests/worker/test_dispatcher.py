"""The dispatcher: outbox entries move to the queue's inbox, and survive a Redis outage."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from rq import Queue
from sqlalchemy import create_engine, delete, select, text
from sqlalchemy.orm import Session, sessionmaker

from service.app import Services
from service.config import load_settings
from service.queueing import ClassifyQueue, connect_redis
from service.tables import OutboxEntry
from tests.integration.processes import free_port, silent_server
from worker import dispatcher
from worker.context import WorkerContext, build_context
from worker.dispatcher import dispatch, dispatch_all, start_dispatcher
from worker.lease import Lease

pytestmark = pytest.mark.integration

FORM = {"name": "Ann", "email": "ann@example.com", "comment": "A fine article.", "thread": "/t"}


def _outbox(services: Services) -> list[int]:
    with services.sessions() as session:
        return list(session.scalars(select(OutboxEntry.comment_id).order_by(OutboxEntry.comment_id)))


def _inbox(services: Services) -> list[int]:
    return [int(raw) for raw in services.queue.queue.connection.lrange(services.queue.inbox, 0, -1)]


def _store_newest_first(session: Session, ids: list[int]) -> None:
    """Put the outbox entries of ``ids`` back newest first, as entries put back after a
    failure or a restore may be stored."""
    session.execute(delete(OutboxEntry))
    for comment_id in reversed(ids):
        session.add(OutboxEntry(comment_id=comment_id))
        session.flush()
    session.commit()


def test_dispatch_moves_the_outbox_to_the_inbox_with_one_job(client: FlaskClient, services: Services) -> None:
    ids = [client.post("/v1/comments", json=FORM).get_json()["id"] for _ in range(3)]
    with services.sessions() as session:
        assert dispatch(session, services.queue, limit=2) == 2
        assert dispatch(session, services.queue, limit=2) == 1
        assert dispatch(session, services.queue, limit=2) == 0
    assert _outbox(services) == [] and _inbox(services) == ids
    (job,) = services.queue.queue.jobs
    assert job.func_name == "worker.jobs.classify_waiting"


def test_dispatch_hands_over_the_oldest_entries_first(client: FlaskClient, services: Services) -> None:
    ids = [client.post("/v1/comments", json=FORM).get_json()["id"] for _ in range(3)]
    with services.sessions() as session:
        _store_newest_first(session, ids)
        assert dispatch(session, services.queue, limit=2) == 2
    assert _inbox(services) == ids[:2] and _outbox(services) == ids[2:]


def test_a_redis_outage_leaves_entries_in_the_outbox(client: FlaskClient, services: Services) -> None:
    comment_id = client.post("/v1/comments", json=FORM).get_json()["id"]
    with services.sessions() as session, pytest.raises(redis.ConnectionError):
        dispatch(session, _unreachable_queue())
    assert _outbox(services) == [comment_id]
    with services.sessions() as session:
        assert dispatch(session, services.queue) == 1
    assert _inbox(services) == [comment_id]


def test_a_round_that_redis_failed_leaves_nothing_for_the_sessions_next_commit(
    client: FlaskClient, services: Services
) -> None:
    comment_id = client.post("/v1/comments", json=FORM).get_json()["id"]
    with services.sessions() as session:
        with pytest.raises(redis.ConnectionError):
            dispatch(session, _unreachable_queue())
        session.commit()  # a caller going on with the same session
        assert dispatch(session, services.queue) == 1
    assert _inbox(services) == [comment_id] and _outbox(services) == []


def test_the_dispatcher_thread_feeds_the_queue_and_reports_an_outage_once(
    client: FlaskClient,
    services: Services,
    context: WorkerContext,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stop = threading.Event()
    thread = start_dispatcher(context, stop)
    try:
        comment_id = client.post("/v1/comments", json=FORM).get_json()["id"]
        # Redis takes the id first, then the entry is deleted.
        _wait(lambda: _inbox(services) == [comment_id] and _outbox(services) == [])
    finally:
        stop.set()
        thread.join(5)
    # Rounds fail fast and often: several fail while the test watches.
    monkeypatch.setattr(dispatcher, "FAILURE_PAUSE_SECONDS", 0.01)
    attempts = 0
    hold = Lease.hold

    def counted(lease: Lease) -> bool:
        nonlocal attempts
        attempts += 1
        return hold(lease)

    monkeypatch.setattr(Lease, "hold", counted)
    stop = threading.Event()
    caplog.set_level(logging.WARNING, logger="worker.dispatcher")
    thread = start_dispatcher(replace(context, background_queue=_unreachable_queue()), stop)
    try:
        stranded = client.post("/v1/comments", json=FORM).get_json()["id"]
        _wait(lambda: attempts >= 5)
    finally:
        stop.set()
        thread.join(5)
    assert _outbox(services) == [stranded]
    assert [record.message.split(":")[0] for record in caplog.records] == [
        "dispatching paused, entries stay in the outbox"
    ]


def test_entries_of_a_round_that_redis_failed_go_in_the_next_round(
    client: FlaskClient, services: Services, context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On PostgreSQL the round deletes its entries before Redis takes their ids: the failed
    # round's deletes must be rolled back, not committed by the next round's commit.
    monkeypatch.setattr(dispatcher, "FAILURE_PAUSE_SECONDS", 0.01)
    submit, failures = ClassifyQueue.submit, [redis.ConnectionError("Redis went away")]

    def failing_once(queue: ClassifyQueue, comment_ids: list[int]) -> None:
        if failures:
            raise failures.pop()
        submit(queue, comment_ids)

    monkeypatch.setattr(ClassifyQueue, "submit", failing_once)
    comment_id = client.post("/v1/comments", json=FORM).get_json()["id"]
    stop = threading.Event()
    thread = start_dispatcher(context, stop)
    try:
        _wait(lambda: not failures and _inbox(services) == [comment_id] and _outbox(services) == [])
    finally:
        stop.set()
        thread.join(5)


def test_a_redis_that_stops_answering_holds_the_dispatcher_no_longer_than_its_timeout(
    client: FlaskClient,
    services: Services,
    settings_overrides: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dispatcher, "FAILURE_PAUSE_SECONDS", 0.01)
    caplog.set_level(logging.WARNING, logger="worker.dispatcher")
    with silent_server() as url:
        # A host gone or a network path gone dark: connections open, nothing ever answers.
        overrides = {**settings_overrides, "redis_url": url, "redis_timeout": 0.2}
        silent = build_context(load_settings({}, overrides))
        stop = threading.Event()
        thread = start_dispatcher(silent, stop)
        try:
            stranded = client.post("/v1/comments", json=FORM).get_json()["id"]
            _wait(lambda: caplog.records)
        finally:
            stop.set()
            thread.join(2)
        assert not thread.is_alive()
        silent.engine.dispose()
    assert [record.message.split(":")[0] for record in caplog.records] == [
        "dispatching paused, entries stay in the outbox"
    ]
    assert _outbox(services) == [stranded]


def test_ids_pushed_by_a_round_whose_job_was_not_enqueued_still_get_a_job(
    client: FlaskClient, services: Services, context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    enqueue = ClassifyQueue.enqueue_drain
    failures = [redis.ConnectionError("connection lost after the push")]

    def lost_once(queue: ClassifyQueue, comment_ids: Any = ()) -> Any:
        if failures:
            raise failures.pop()
        return enqueue(queue, comment_ids)

    monkeypatch.setattr(ClassifyQueue, "enqueue_drain", lost_once)
    comment_id = client.post("/v1/comments", json=FORM).get_json()["id"]
    stop = threading.Event()
    thread = start_dispatcher(
        replace(context, settings=replace(context.settings, dispatch_interval=0.02)), stop
    )
    try:
        # Pushed twice (the failed round's entry stayed in the outbox), and a job to take it.
        _wait(lambda: _outbox(services) == [] and services.queue.queue.count == 1)
    finally:
        stop.set()
        thread.join(5)
    assert _inbox(services) == [comment_id, comment_id] and not failures


def test_ids_a_later_round_pushed_without_their_job_get_one_too(
    client: FlaskClient, services: Services, context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As above, but the round that fails comes after others that went well.
    enqueue = ClassifyQueue.enqueue_drain
    failures: list[Exception] = []

    def lost_when_armed(queue: ClassifyQueue, comment_ids: Any = ()) -> Any:
        if failures:
            raise failures.pop()
        return enqueue(queue, comment_ids)

    monkeypatch.setattr(ClassifyQueue, "enqueue_drain", lost_when_armed)
    stop = threading.Event()
    thread = start_dispatcher(
        replace(context, settings=replace(context.settings, dispatch_interval=0.02)), stop
    )
    try:
        first = client.post("/v1/comments", json=FORM).get_json()["id"]
        # Its job, and the one a worker's first round after taking the lease enqueues.
        _wait(lambda: _inbox(services) == [first] and services.queue.queue.count == 2)
        # A worker takes the first comment and its job; the next push finds the inbox empty.
        services.queue.queue.empty()
        services.queue.queue.connection.delete(services.queue.inbox)
        failures.append(redis.ConnectionError("connection lost after the push"))
        second = client.post("/v1/comments", json=FORM).get_json()["id"]
        _wait(lambda: _outbox(services) == [] and services.queue.queue.count == 1)
    finally:
        stop.set()
        thread.join(5)
    assert _inbox(services) == [second, second] and not failures


class _Rounds(threading.Event):
    """A stop event whose waits return at once and are recorded: the loop's pauses without
    the time they take. After ``then_at`` waits it calls ``then``; three later it is set."""

    def __init__(self, then_at: int, then: Callable[[], object]) -> None:
        super().__init__()
        self.waits: list[float | None] = []
        self._then_at, self._then = then_at, then

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        if len(self.waits) == self._then_at:
            self._then()
        if len(self.waits) >= self._then_at + 3:
            self.set()
        return self.is_set()


def test_an_idle_dispatcher_polls_less_and_still_picks_up_the_next_comment(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    posted: list[int] = []
    rounds = _Rounds(6, lambda: posted.append(client.post("/v1/comments", json=FORM).get_json()["id"]))
    busy = replace(context.settings, dispatch_interval=0.02)
    start_dispatcher(replace(context, settings=busy), rounds).join(10)
    # Idle, the pause doubles up to its cap; a round that moves a comment waits out the
    # pause it had, and the next starts over from the busy interval.
    assert rounds.waits == pytest.approx([0.02, 0.04, 0.08, 0.1, 0.1, 0.1, 0.1, 0.02, 0.04])
    assert _inbox(services) == posted


def test_a_round_that_fills_its_batch_starts_the_next_at_once(
    client: FlaskClient, services: Services, context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A batch of two: the first round moves exactly a full batch, so more may be waiting.
    monkeypatch.setattr(dispatcher, "BATCH", 2)
    ids = [client.post("/v1/comments", json=FORM).get_json()["id"] for _ in range(2)]
    rounds = _Rounds(1, lambda: None)
    busy = replace(context.settings, dispatch_interval=0.02)
    start_dispatcher(replace(context, settings=busy), rounds).join(10)
    # No pause after the full round (a pause of 0 is no wait); then the idle ones double.
    assert rounds.waits == pytest.approx([0.02, 0.04, 0.08, 0.1])
    assert _inbox(services) == ids


def test_one_worker_dispatches_and_another_takes_over_when_it_stops(
    client: FlaskClient, services: Services, context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    rounds: Counter[str] = Counter()

    def counted(session: Session, queue: ClassifyQueue, limit: int = dispatcher.BATCH) -> int:
        rounds[threading.current_thread().name] += 1
        return dispatch(session, queue, limit)

    monkeypatch.setattr(dispatcher, "dispatch", counted)
    stops = {"first": threading.Event(), "second": threading.Event()}
    threads = {}
    for name, stop in stops.items():
        threads[name] = start_dispatcher(context, stop, lease_seconds=1.0)
        threads[name].name = name
        time.sleep(0.2)  # the first one started takes the lease
    try:
        first = client.post("/v1/comments", json=FORM).get_json()["id"]
        _wait(lambda: _inbox(services) == [first])
        time.sleep(0.3)
        assert rounds["first"] > 0 and rounds["second"] == 0
        stops["first"].set()
        threads["first"].join(5)
        second = client.post("/v1/comments", json=FORM).get_json()["id"]
        _wait(lambda: _inbox(services) == [first, second], seconds=2.0)  # a quarter lease, and a round
        assert rounds["second"] > 0
    finally:
        for name, stop in stops.items():
            stop.set()
            threads[name].join(5)


def test_dispatch_all_empties_the_outbox(
    client: FlaskClient, services: Services, context: WorkerContext
) -> None:
    for _ in range(3):
        client.post("/v1/comments", json=FORM)
    assert dispatch_all(context) == 3 and _outbox(services) == []


def test_a_round_hands_its_entries_over_oldest_first_whatever_order_the_database_returns(
    client: FlaskClient, services: Services
) -> None:
    # PostgreSQL's DELETE ... RETURNING gives rows in the order it met them: with the table's
    # statistics known, a hash join meets them in their physical order, newest first here.
    ids = [client.post("/v1/comments", json=FORM).get_json()["id"] for _ in range(5)]
    with services.sessions() as session:
        _store_newest_first(session, ids)
        if session.connection().dialect.name == "postgresql":
            session.execute(text(f"ANALYZE {OutboxEntry.__tablename__}"))
            session.commit()
        assert dispatch(session, services.queue) == 5
    assert _inbox(services) == ids


def test_two_dispatchers_at_once_each_count_only_the_entries_they_took(
    client: FlaskClient, services: Services, settings_overrides: dict[str, Any]
) -> None:
    # A second dispatcher runs its round while the first waits for Redis. On PostgreSQL it
    # skips the rows the first one holds, rather than waiting for them; on SQLite both read
    # the same entries, and the one that deletes them second took none of them.
    ids = [client.post("/v1/comments", json=FORM).get_json()["id"] for _ in range(3)]
    other = create_engine(settings_overrides["database_url"])
    inner: list[int] = []

    class SlowQueue(ClassifyQueue):
        def submit(self, comment_ids: Sequence[int]) -> None:
            with Session(other) as session:
                if other.dialect.name == "postgresql":
                    # Waiting for the first round's locks would wait for ever: fail instead.
                    session.execute(text("SET lock_timeout = '2s'"))
                inner.append(dispatch(session, services.queue, limit=2))
            super().submit(comment_ids)

    slow = SlowQueue(services.queue.queue, job_timeout=60, retries=0)
    try:
        with services.sessions() as session:
            outer = dispatch(session, slow, limit=2)
            # Nor does a round that took nothing leave its transaction open: on SQLite its
            # DELETE holds the writers' lock, which the intake would wait for until the next
            # round that takes something.
            assert not session.in_transaction()
    finally:
        other.dispose()
    if other.dialect.name == "postgresql":
        assert (outer, inner) == (2, [1]) and _inbox(services) == [ids[2], *ids[:2]]
        assert _outbox(services) == []
    else:
        assert (outer, inner) == (0, [2]) and _inbox(services) == [*ids[:2], *ids[:2]]
        assert _outbox(services) == [ids[2]]


def test_an_idle_dispatcher_enqueues_one_drain_job_for_its_lease_not_one_a_round(
    services: Services, context: WorkerContext
) -> None:
    # The drain job after taking the lease covers ids a failed round may have pushed; a job
    # every round would fill the queue with jobs that find the inbox empty.
    rounds = _Rounds(3, lambda: None)
    start_dispatcher(context, rounds).join(10)
    assert len(rounds.waits) == 6 and services.queue.queue.count == 1


def test_an_idle_dispatcher_never_polls_faster_than_its_configured_interval(context: WorkerContext) -> None:
    # The idle pause grows up to its cap, but an interval configured above the cap is kept.
    rounds = _Rounds(1, lambda: None)
    slow = replace(context.settings, dispatch_interval=0.3)
    start_dispatcher(replace(context, settings=slow), rounds).join(10)
    assert rounds.waits == pytest.approx([0.3, 0.3, 0.3, 0.3])


def _unreachable_queue() -> ClassifyQueue:
    dead = connect_redis(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2)
    return ClassifyQueue(Queue("unreachable", connection=dead), job_timeout=60, retries=0)


def _wait(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


class _OneRound(threading.Event):
    """A stop event set at the loop's first wait: the loop runs one round, then ends."""

    def wait(self, timeout: float | None = None) -> bool:
        self.set()
        return True


def test_ids_a_failed_round_pushed_get_a_job_when_another_worker_takes_the_lease_over(
    client: FlaskClient, services: Services, context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Redis goes away between the push and the enqueue; the outage outlasts the lease, so
    # the worker that fails is not the one that dispatches next.
    enqueue = ClassifyQueue.enqueue_drain

    def lost(queue: ClassifyQueue, comment_ids: Any = ()) -> Any:
        raise redis.ConnectionError("connection lost after the push")

    comment_id = client.post("/v1/comments", json=FORM).get_json()["id"]
    monkeypatch.setattr(ClassifyQueue, "enqueue_drain", lost)
    start_dispatcher(context, _OneRound()).join(5)
    assert _inbox(services) == [comment_id] and _outbox(services) == [comment_id]
    assert services.queue.queue.count == 0
    monkeypatch.setattr(ClassifyQueue, "enqueue_drain", enqueue)
    other = build_context(context.settings)
    stop = threading.Event()
    thread = start_dispatcher(other, stop)
    try:
        _wait(lambda: _outbox(services) == [])
        # Pushed again onto the inbox no longer empty, which enqueued nothing by itself.
        _wait(lambda: services.queue.queue.count == 1, seconds=2.0)
    finally:
        stop.set()
        thread.join(5)
        other.engine.dispose()
    assert _inbox(services) == [comment_id, comment_id]


def test_a_worker_whose_rounds_keep_failing_lets_another_dispatch(
    client: FlaskClient, services: Services, context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database is out of this worker's reach only (its host lost the route, say), while
    # Redis answers it: its lease must not keep the healthy worker from the outbox.
    monkeypatch.setattr(dispatcher, "FAILURE_PAUSE_SECONDS", 0.05)
    unreachable = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test")
    sick = replace(context, sessions=sessionmaker(unreachable))
    stops = {"sick": threading.Event(), "healthy": threading.Event()}
    threads = {"sick": start_dispatcher(sick, stops["sick"], lease_seconds=1.0)}
    try:
        _wait(lambda: services.queue.queue.connection.exists(services.queue.dispatcher_lease))
        threads["healthy"] = start_dispatcher(context, stops["healthy"], lease_seconds=1.0)
        comment_id = client.post("/v1/comments", json=FORM).get_json()["id"]
        _wait(lambda: _inbox(services) == [comment_id], seconds=3.0)
    finally:
        for name, thread in threads.items():
            stops[name].set()
            thread.join(5)
        unreachable.dispose()
