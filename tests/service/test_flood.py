"""Flood control on POST /v1/comments: per client address and per commenter, counted in the
database with the comment, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from sqlalchemy import func, select, update

from service import create_app, intake
from service.app import Services
from service.config import load_settings
from service.errors import ConfigError
from service.flood import ADDRESS as BY_ADDRESS
from service.flood import (
    UNREADABLE_ADDRESS,
    Counted,
    Window,
    client_identity,
    milliseconds,
    parse_limits,
    refusal,
)
from service.personal_data import erase_personal_data
from service.statuses import CommentStatus
from service.tables import Comment, FloodCounter, OutboxEntry, utcnow
from tests.integration.processes import RedisServer
from worker import sweeper
from worker.context import build_context
from worker.sweeper import purge_flood_counters

pytestmark = pytest.mark.integration

ADDRESS = "198.51.100.7"
FORM = {"name": "Ann Reader", "email": "ann@example.com", "comment": "Thanks for this.", "thread": "/a/1"}


@contextmanager
def _app(settings_overrides: dict[str, Any], **limits: Any) -> Iterator[Flask]:
    app = create_app({**settings_overrides, **limits})
    try:
        yield app
    finally:
        app.extensions["moderation"].close()


def _stored(app: Flask) -> int:
    """How many comments are stored, after checking that each one waiting has its outbox entry."""
    services: Services = app.extensions["moderation"]
    with services.sessions() as session:
        waiting = select(func.count()).select_from(Comment).where(Comment.status == CommentStatus.RECEIVED)
        assert session.scalar(select(func.count()).select_from(OutboxEntry)) == session.scalar(waiting)
        return session.scalar(select(func.count()).select_from(Comment)) or 0


def _counters(app: Flask) -> list[FloodCounter]:
    services: Services = app.extensions["moderation"]
    with services.sessions() as session:
        return list(session.scalars(select(FloodCounter)))


def _end_windows(app: Flask, *, count: int | None = None) -> int:
    """End the windows of every counter (or of those at ``count``); returns the new end."""
    services: Services = app.extensions["moderation"]
    ended_ms = int(utcnow().timestamp() * 1000) - 1
    statement = update(FloodCounter).values(window_ends_ms=ended_ms)
    if count is not None:
        statement = statement.where(FloodCounter.count == count)
    with services.sessions() as session:
        session.execute(statement)
        session.commit()
    return ended_ms


def _post(app: Flask, address: str = ADDRESS, **changes: Any) -> Any:
    return app.test_client().post(
        "/v1/comments", json={**FORM, **changes}, environ_base={"REMOTE_ADDR": address}
    )


def test_a_limit_of_zero_is_refused_rather_than_refusing_every_comment() -> None:
    assert parse_limits("") == [] and parse_limits("  ") == []
    with pytest.raises(ValueError, match="leave the setting empty to turn it off"):
        parse_limits("5 per minute; 0 per day")


def test_a_client_is_its_ipv4_address_or_its_ipv6_network() -> None:
    assert client_identity("198.51.100.7") == "198.51.100.7"
    assert (
        client_identity("2001:db8:1:2:aaaa::1")
        == client_identity("2001:db8:1:2:bbbb::9")
        == "2001:db8:1:2::/64"
    )
    assert client_identity("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert client_identity("::ffff:198.51.100.7") == "198.51.100.7"
    assert client_identity(None) == client_identity("") == ""


@pytest.mark.parametrize(
    ("written", "client"),
    [
        ("198.51.100.7:4000", "198.51.100.7"),
        (" 198.51.100.7 ", "198.51.100.7"),
        ("[2001:db8:1:2::1]:443", "2001:db8:1:2::/64"),
        ("[2001:db8:1:2::1]", "2001:db8:1:2::/64"),
        ("[::ffff:198.51.100.7]:80", "198.51.100.7"),
        ("unknown", UNREADABLE_ADDRESS),
        ("198.51.100.7:port", UNREADABLE_ADDRESS),
        ("_hidden", UNREADABLE_ADDRESS),
    ],
)
def test_an_address_is_counted_without_the_port_a_proxy_added(written: str, client: str) -> None:
    # Proxies that append the connection's port (or bracket IPv6) would otherwise give
    # every connection a count of its own, and unreadable values one each.
    assert client_identity(written) == client


def test_a_limit_that_does_not_parse_is_refused_naming_its_variable(
    settings_overrides: dict[str, Any],
) -> None:
    for spec in ("lots", "0 per minute"):
        with pytest.raises(ConfigError, match="COMMENT_LIMIT_PER_COMMENTER must read like"):
            create_app({**settings_overrides, "comment_limit_per_commenter": spec})
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES must be 0 or more"):
        create_app({**settings_overrides, "trusted_proxies": -1})


def test_an_address_over_its_limit_gets_429_and_nothing_is_stored(settings_overrides: dict[str, Any]) -> None:
    with _app(settings_overrides, comment_limit_per_address="3 per minute") as app:
        for number in range(3):
            assert _post(app, email=f"reader{number}@example.com").status_code == 202
        refused = _post(app, email="another@example.com")
        assert refused.status_code == 429
        body = refused.get_json()
        assert body["error"] == "too_many_comments"
        assert "from this address: at most 3 per 1 minute" in body["message"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert f"try again in {refused.headers['Retry-After']} s" in body["message"]
        # A broken post counts too, and once over the limit is refused before what is wrong with it.
        assert _post(app, email="not an address").status_code == 429
        assert _post(app, address="203.0.113.9").status_code == 202  # another address, its own count
        assert _stored(app) == 4


def test_broken_posts_count_against_their_address(settings_overrides: dict[str, Any]) -> None:
    with _app(settings_overrides, comment_limit_per_address="3 per minute") as app:
        assert _post(app, email="not an address").status_code == 422
        broken = app.test_client().post(
            "/v1/comments", data=b"{", content_type="application/json", environ_base={"REMOTE_ADDR": ADDRESS}
        )
        assert broken.status_code == 400
        assert _post(app).status_code == 202
        assert _post(app, email="bob@example.com").status_code == 429
        assert _stored(app) == 1


def test_a_commenter_over_the_limit_is_refused_whatever_the_letter_case(
    settings_overrides: dict[str, Any],
) -> None:
    limits = {"comment_limit_per_address": "", "comment_limit_per_commenter": "2 per minute"}
    with _app(settings_overrides, **limits) as app:
        assert _post(app, address="198.51.100.1").status_code == 202
        assert _post(app, address="198.51.100.2", email="ANN@Example.com ").status_code == 202
        refused = _post(app, address="198.51.100.3")
        assert refused.status_code == 429
        assert "from this commenter (email address)" in refused.get_json()["message"]
        assert _post(app, email="bob@example.com").status_code == 202
        assert _stored(app) == 3


def test_the_address_and_the_commenter_are_counted_in_the_same_call(
    settings_overrides: dict[str, Any],
) -> None:
    limits = {"comment_limit_per_address": "1 per minute", "comment_limit_per_commenter": "1 per minute"}
    with _app(settings_overrides, **limits) as app:
        assert _post(app, address="198.51.100.1").status_code == 202
        refused = _post(app, address="198.51.100.2")  # a fresh address, the same commenter
        assert refused.status_code == 429 and "this commenter" in refused.get_json()["message"]
        assert _post(app, address="198.51.100.1", email="bob@example.com").status_code == 429


def test_retry_after_names_the_window_that_ends_last(settings_overrides: dict[str, Any]) -> None:
    with _app(settings_overrides, comment_limit_per_address="1 per 10 seconds; 1 per hour") as app:
        assert _post(app).status_code == 202
        refused = _post(app)
        assert refused.status_code == 429
        assert 3590 <= int(refused.headers["Retry-After"]) <= 3600
        assert "at most 1 per 1 hour" in refused.get_json()["message"]


def test_a_refused_form_post_asks_the_commenter_to_wait(settings_overrides: dict[str, Any]) -> None:
    with _app(settings_overrides, comment_limit_per_address="1 per minute") as app:
        client = app.test_client()
        assert client.post("/v1/comments", data=FORM).status_code == 202
        page = client.post("/v1/comments", data=FORM)
        assert page.status_code == 429 and page.mimetype == "text/html"
        wait = page.headers["Retry-After"]
        assert f"so this one was not sent. Please wait {wait} seconds" in page.get_data(as_text=True)


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_count(
    settings_overrides: dict[str, Any],
) -> None:
    proxy = "10.0.0.2"

    def post(app: Flask, client: str) -> int:
        response = app.test_client().post(
            "/v1/comments",
            json=FORM,  # the commenter is not counted here
            headers={"X-Forwarded-For": client},
            environ_base={"REMOTE_ADDR": proxy},
        )
        return response.status_code

    with _app(settings_overrides, comment_limit_per_address="1 per minute", trusted_proxies=1) as app:
        assert [post(app, "192.0.2.1"), post(app, "192.0.2.2"), post(app, "192.0.2.1")] == [202, 202, 429]
        # Only the hop the proxy added is believed: what the client wrote before it is not.
        assert [post(app, "203.0.113.1, 192.0.2.5"), post(app, "203.0.113.2, 192.0.2.5")] == [202, 429]
        # A proxy that writes each connection's port still counts its client once.
        assert [post(app, "192.0.2.6:4000"), post(app, "192.0.2.6:4001")] == [202, 429]
    # Without a trusted proxy the header is the client's to forge: the proxy's address counts.
    with _app(settings_overrides, comment_limit_per_address="1 per minute") as app:
        assert [post(app, "192.0.2.3"), post(app, "192.0.2.4")] == [202, 429]


def test_the_database_holds_neither_the_address_nor_the_email(settings_overrides: dict[str, Any]) -> None:
    limits = {"comment_limit_per_address": "5 per minute", "comment_limit_per_commenter": "5 per minute"}
    with _app(settings_overrides, **limits) as app:
        before_ms = int(utcnow().timestamp() * 1000)
        assert _post(app, address="203.0.113.77", email="Secret.Reader@example.com").status_code == 202
        counters = _counters(app)
        flood_key = app.extensions["moderation"].keys.flood
    assert all(counter.count == 1 for counter in counters)
    assert all(0 < counter.window_ends_ms - before_ms <= 61_000 for counter in counters)
    # Each key is a digest under the secret's flood key, which no table holds: an unkeyed
    # digest of an IPv4 address could be reversed by trying them all.
    named = [b"address\x00203.0.113.77\x00", b"commenter\x00secret.reader@example.com\x00"]
    expected = {hmac.digest(flood_key, name + b"5/60", "sha256")[:16] for name in named}
    assert {counter.key for counter in counters} == expected
    assert {hashlib.sha256(name + b"5/60").digest()[:16] for name in named}.isdisjoint(expected)


def test_concurrent_posts_never_get_past_the_limit(settings_overrides: dict[str, Any]) -> None:
    with _app(settings_overrides, comment_limit_per_address="5 per minute") as app:
        start = threading.Barrier(12)

        def post() -> int:
            start.wait()
            return int(_post(app).status_code)

        with ThreadPoolExecutor(max_workers=12) as pool:
            answers = sorted(pool.map(lambda _: post(), range(12)))
        assert answers == [202] * 5 + [429] * 7
        assert _stored(app) == 5
        (counter,) = _counters(app)
        assert counter.count == 12


def test_a_window_that_ended_starts_again_at_one(settings_overrides: dict[str, Any]) -> None:
    with _app(settings_overrides, comment_limit_per_address="2 per hour") as app:
        assert [_post(app).status_code for _ in range(3)] == [202, 202, 429]
        ended_ms = _end_windows(app)
        assert [_post(app).status_code for _ in range(3)] == [202, 202, 429]
        (counter,) = _counters(app)
        assert counter.count == 3 and counter.window_ends_ms > ended_ms + 3_590_000
        assert _stored(app) == 4


def test_a_window_is_over_at_the_millisecond_it_ends(
    settings_overrides: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sweeper purges a counter whose end is now; a post at that moment starts it again.
    now = utcnow()
    monkeypatch.setattr(intake, "utcnow", lambda: now)
    with _app(settings_overrides, comment_limit_per_address="1 per hour") as app:
        assert _post(app).status_code == 202
        services: Services = app.extensions["moderation"]
        with services.sessions() as session:
            session.execute(update(FloodCounter).values(window_ends_ms=milliseconds(now)))
            session.commit()
        assert _post(app).status_code == 202
        (counter,) = _counters(app)
        assert (counter.count, counter.window_ends_ms) == (1, milliseconds(now) + 3_600_000)


def test_retry_after_is_the_wait_rounded_up_to_a_whole_second() -> None:
    (limit,) = parse_limits("1 per minute")
    window = Window(BY_ADDRESS, limit, b"k" * 16)
    now_ms = 1_800_000_000_000

    def retry_after(count: int, left_ms: int) -> int | None:
        refused = refusal([window], {window.key: Counted(count, now_ms + left_ms)}, now_ms)
        return None if refused is None else refused.retry_after

    assert retry_after(1, 30_000) is None  # within its limit
    assert [retry_after(2, left_ms) for left_ms in (60_000, 59_001, 1_500, 200, 0)] == [60, 60, 2, 1, 1]


def test_a_limit_written_twice_is_one_counter(settings_overrides: dict[str, Any]) -> None:
    with _app(settings_overrides, comment_limit_per_address="2 per minute; 2/minute") as app:
        assert [_post(app).status_code for _ in range(3)] == [202, 202, 429]
        assert len(_counters(app)) == 1


def test_a_bad_parent_is_counted_and_stores_nothing(settings_overrides: dict[str, Any]) -> None:
    with _app(settings_overrides, comment_limit_per_address="2 per minute") as app:
        missing = _post(app, parent_id=999)
        assert missing.status_code == 422 and "parent_id 999" in missing.get_json()["message"]
        assert _post(app).status_code == 202
        assert _post(app, parent_id=999).status_code == 429  # over the limit first
        assert _stored(app) == 1


def test_a_trapped_post_counts_too(settings_overrides: dict[str, Any]) -> None:
    with _app(settings_overrides, comment_limit_per_address="1 per minute") as app:
        assert _post(app, website="http://spam.example").status_code == 202
        assert _post(app).status_code == 429
        assert _stored(app) == 1  # the trapped post, stored rejected with no classification job


def test_flood_control_counts_while_redis_is_down(settings_overrides: dict[str, Any], tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        with _app(settings_overrides, comment_limit_per_address="2 per minute", redis_url=server.url) as app:
            server.stop()
            assert [_post(app).status_code for _ in range(3)] == [202, 202, 429]
            assert _stored(app) == 2
    finally:
        server.stop()


def test_the_sweeper_purges_the_counters_of_ended_windows_in_batches(
    settings_overrides: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = {"comment_limit_per_address": "5 per minute", "comment_limit_per_commenter": "5 per hour"}
    monkeypatch.setattr(sweeper, "BATCH", 2)
    with _app(settings_overrides, **limits) as app:
        for number in range(5):
            assert _post(app, address=f"198.51.100.{number}").status_code == 202
        _end_windows(app, count=1)  # the addresses' windows; the commenter posted 5
        services: Services = app.extensions["moderation"]
        with services.sessions() as session:
            batches = 0
            commit = session.commit

            def counted() -> None:
                nonlocal batches
                batches += 1
                commit()

            monkeypatch.setattr(session, "commit", counted)
            assert purge_flood_counters(session) == 5
            assert batches == 3  # two, two and one, each committed on its own
            assert purge_flood_counters(session) == 0
        (commenter,) = _counters(app)
        assert commenter.count == 5


def test_a_sweep_purges_the_counters_too(settings_overrides: dict[str, Any]) -> None:
    with _app(settings_overrides, comment_limit_per_address="5 per minute") as app:
        assert _post(app).status_code == 202
        _end_windows(app)
        context = build_context(load_settings({}, settings_overrides))
        try:
            sweeper._sweep_once(context)
        finally:
            context.queue.queue.connection.delete(context.queue.sweeper_lock)
            context.sessions.kw["bind"].dispose()
        assert _counters(app) == []


def test_a_sweep_purges_the_counters_while_redis_is_down(settings_overrides: dict[str, Any]) -> None:
    with _app(settings_overrides, comment_limit_per_address="5 per minute") as app:
        assert _post(app).status_code == 202
        _end_windows(app)
        down = {**settings_overrides, "redis_url": "redis://127.0.0.1:9/0"}
        context = build_context(load_settings({}, down))
        try:
            with pytest.raises(redis.ConnectionError):  # the sweeper's loop logs it: sweep skipped
                sweeper._sweep_once(context)
        finally:
            context.sessions.kw["bind"].dispose()
        assert _counters(app) == []


def test_erasing_a_commenter_deletes_their_counts(settings_overrides: dict[str, Any]) -> None:
    limits = {"comment_limit_per_address": "5 per minute", "comment_limit_per_commenter": "2 per minute"}
    with _app(settings_overrides, **limits) as app:
        assert [_post(app).status_code for _ in range(3)] == [202, 202, 429]
        services: Services = app.extensions["moderation"]
        with services.sessions() as session:
            keys = services.flood.commenter_keys("ANN@example.com")
            erase_personal_data(
                session, services.keys, "ann@example.com", "test", notify=False, flood_keys=keys
            )
            session.commit()
        (address,) = _counters(app)
        assert address.count == 3
        assert _post(app, email="ann@example.com").status_code == 202
