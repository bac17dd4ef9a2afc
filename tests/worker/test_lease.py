"""The Redis lease that lets one worker of many do a job, and another take over."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import text
from sqlalchemy.orm import Session

from service.db import NOT_MIGRATED, make_engine, make_session_factory
from tests.integration.processes import free_port
from worker.lease import Failures, Lease, start_leased_loop

pytestmark = pytest.mark.integration


@pytest.fixture
def connection(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def name(connection: redis.Redis) -> Iterator[str]:
    key = f"moderation:test-lease:{uuid.uuid4().hex[:8]}"
    yield key
    connection.delete(key)


def test_one_holder_at_a_time_and_a_release_hands_over(connection: redis.Redis, name: str) -> None:
    first, second = Lease(connection, name, 5.0), Lease(connection, name, 5.0)
    assert first.hold() and first.hold()
    assert not second.hold()
    first.release()
    assert not first.held
    assert second.hold() and not first.hold()


def test_a_holder_that_stops_renewing_loses_the_lease_when_it_runs_out(
    connection: redis.Redis, name: str
) -> None:
    stalled, waiting = Lease(connection, name, 0.2), Lease(connection, name, 0.2)
    assert stalled.hold()
    assert not waiting.hold()
    time.sleep(0.3)  # the holder neither renews nor frees it, as if its process had died
    assert waiting.hold()
    assert not stalled.hold()  # on waking it finds the lease gone, and does not take it back
    stalled.release()  # not its lease any more: nothing is freed
    assert connection.exists(name) and waiting.hold()


def test_the_holder_renews_before_the_lease_runs_out(connection: redis.Redis, name: str) -> None:
    holder, other = Lease(connection, name, 0.4), Lease(connection, name, 0.4)
    deadline = time.monotonic() + 1.2  # three leases' length
    while time.monotonic() < deadline:
        assert holder.hold()
        assert not other.hold()
        time.sleep(0.05)


def test_an_outage_is_an_error_not_a_lost_lease() -> None:
    dead = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    lease = Lease(dead, "moderation:test-lease:unreachable", 1.0)
    with pytest.raises(redis.ConnectionError):
        lease.hold()
    lease.release()  # holds nothing: no error


def test_taken_counts_each_time_the_lease_is_taken_not_its_renewals(
    connection: redis.Redis, name: str
) -> None:
    holder, other = Lease(connection, name, 0.2), Lease(connection, name, 0.2)
    assert holder.hold() and holder.taken == 1
    time.sleep(0.06)  # past a quarter of the lease: renewed, not taken again
    assert holder.hold() and holder.taken == 1
    holder.release()
    assert other.hold() and other.taken == 1
    other.release()
    assert holder.hold() and holder.taken == 2  # another held it meanwhile


def test_a_renewal_a_quarter_into_the_lease_keeps_it_past_its_first_end(
    connection: redis.Redis, name: str
) -> None:
    # Half a second of slack on each side, so that a busy machine's scheduling does not decide.
    holder, other = Lease(connection, name, 2.0), Lease(connection, name, 2.0)
    assert holder.hold()
    time.sleep(0.75)  # past a quarter of the lease: this hold renews it for a whole lease
    assert holder.hold()
    time.sleep(1.5)  # past the end of the first lease, within the renewed one
    assert not other.hold()


def test_a_round_that_fails_in_the_database_is_rolled_back_and_the_next_one_runs(
    connection: redis.Redis, name: str, database_url: str
) -> None:
    engine = make_engine(database_url)
    stop = threading.Event()
    rounds: list[str] = []

    def work(session: Session) -> float:
        if not rounds:
            rounds.append("failed")
            session.execute(text("SELECT * FROM no_such_table"))  # aborts PostgreSQL's transaction
        rounds.append(str(session.scalar(text("SELECT 'ran'"))))
        stop.set()
        return 0.0

    failures = Failures(logging.getLogger("test-lease"), "rounds fail", "rounds run again", 0.01)
    thread = start_leased_loop(
        "test-lease", Lease(connection, name, 1.0), stop, make_session_factory(engine), work, failures
    )
    try:
        thread.join(5)
        assert rounds == ["failed", "ran"]
    finally:
        stop.set()
        thread.join(5)
        engine.dispose()


def test_rounds_on_a_database_not_migrated_yet_say_to_migrate_it(
    connection: redis.Redis, name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    stop = threading.Event()
    rounds: list[str] = []

    def work(session: Session) -> float:
        rounds.append("tried")
        if len(rounds) == 2:
            stop.set()
        session.execute(text("SELECT comment_id FROM classify_outbox"))
        return 0.0

    failures = Failures(logging.getLogger("test-lease"), "rounds fail", "rounds run again", 0.01)
    with caplog.at_level(logging.WARNING, logger="test-lease"):
        thread = start_leased_loop(
            "test-lease", Lease(connection, name, 1.0), stop, make_session_factory(engine), work, failures
        )
        thread.join(5)
    engine.dispose()
    assert not thread.is_alive() and rounds == ["tried", "tried"]
    (record,) = caplog.records
    assert record.getMessage() == f"rounds fail: {NOT_MIGRATED}" and record.exc_info is None
