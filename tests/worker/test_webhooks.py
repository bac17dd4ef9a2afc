"""Webhooks: events written with each change, posted signed to a real HTTP endpoint, retried."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from standardwebhooks import Webhook

from service.app import Services, create_app
from service.auth import create_token
from service.errors import ConfigError
from service.personal_data import ERASED_NAME, erase_personal_data
from service.privacy import KeyRing
from service.statuses import CommentStatus
from service.tables import Comment, WebhookEvent, utcnow
from service.webhook_signing import new_secret
from service.webhooks import EventType, record_events, retry_failed
from tests.integration.processes import Worker, free_port, service_environment, wait_for
from tests.worker.test_jobs import BrokenClassifier, BrokenModels
from worker import webhooks
from worker.context import WorkerContext, build_context, install_context
from worker.jobs import ClassificationError, classify_comments, classify_waiting
from worker.webhooks import WebhookSender, deliver_due, start_webhook_sender

pytestmark = pytest.mark.integration

SECRET = new_secret()
FORM = {"name": "Ann", "email": "ann@example.com", "comment": "A fine article.", "thread": "/t"}


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Say nothing when the sender hangs up mid-answer, as it does on a long one."""


class Endpoint:
    """A site's webhook endpoint on a port of its own: records each post, answers as told."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[int] = []  # statuses to give, in order; 204 once they run out
        self.answer_body = b""  # sent with every answer, chunked when `chunked`
        self.chunked = False
        self.connections: set[int] = set()  # client ports seen: how many connections were opened
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # connections kept alive, as a real site's server keeps them

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                endpoint.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                endpoint.connections.add(self.client_address[1])
                self.send_response(endpoint.answers.pop(0) if endpoint.answers else 200)
                if endpoint.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(
                        b"%x\r\n%s\r\n0\r\n\r\n" % (len(endpoint.answer_body), endpoint.answer_body)
                    )
                else:
                    self.send_header("Content-Length", str(len(endpoint.answer_body)))
                    self.end_headers()
                    self.wfile.write(endpoint.answer_body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/comments"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def payloads(self) -> list[Any]:
        """Each post's body, checked against its signature as a receiving site checks it."""
        return [Webhook(SECRET).verify(body, headers) for headers, body in self.posts]


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    """The site's endpoint, stopped after the test."""
    running = Endpoint()
    yield running
    running.server.shutdown()
    running.server.server_close()


@pytest.fixture
def settings_overrides(settings_overrides: dict[str, Any], endpoint: Endpoint) -> dict[str, Any]:
    """The usual test settings with the webhook pointing at ``endpoint``."""
    return {
        **settings_overrides,
        "webhook_url": endpoint.url,
        "webhook_secret": SECRET,
        "webhook_timeout": 2.0,
    }


@dataclass(frozen=True)
class Site:
    """The service with its webhook pointed at ``endpoint``, a worker context, a moderator's token."""

    client: FlaskClient
    services: Services
    context: WorkerContext
    endpoint: Endpoint
    moderator: dict[str, str]

    def post(self, **fields: str) -> int:
        """Post a comment as a reader; its id."""
        return int(self.client.post("/v1/comments", json={**FORM, **fields}).get_json()["id"])

    def decide(self, comment_id: int, decision: dict[str, str]) -> None:
        """Decide as the moderator, through the API."""
        response = self.client.post(
            f"/v1/comments/{comment_id}/decision", json=decision, headers=self.moderator
        )
        assert response.status_code == 200, response.get_json()

    def deliver(self, url: str | None = None) -> webhooks.Round:
        """One round of sending, as the worker's thread sends, to ``url`` or the endpoint."""
        sender = WebhookSender(url or self.endpoint.url, SECRET, 2.0)
        try:
            with self.context.sessions() as session:
                return deliver_due(session, sender, self.services.keys)
        finally:
            sender.close()

    def events(self) -> list[WebhookEvent]:
        """The events not yet taken, oldest first."""
        return _events(self.services)

    def make_due(self) -> None:
        """Bring every waiting event's next attempt to now."""
        with self.services.sessions() as session:
            session.execute(update(WebhookEvent).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
            session.commit()


@pytest.fixture
def site(
    client: FlaskClient,
    services: Services,
    context: WorkerContext,
    endpoint: Endpoint,
    moderator_headers: dict[str, str],
) -> Site:
    """Everything a webhook test works with."""
    return Site(client, services, context, endpoint, moderator_headers)


def _events(services: Services) -> list[WebhookEvent]:
    with services.sessions() as session:
        return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


def test_a_verdict_reaches_the_site_signed_and_without_the_email(site: Site) -> None:
    comment_id = site.post()
    assert site.events() == []  # received is no event: the 202 said so
    status = classify_comments(site.context, [comment_id])[comment_id]
    (event,) = site.events()
    assert (event.comment_id, event.event_type) == (comment_id, f"comment.{status.value}")
    assert site.deliver() == webhooks.Round(due=1, taken=1, reached=True)
    (payload,) = site.endpoint.payloads()
    assert payload["type"] == f"comment.{status.value}"
    assert payload["data"]["id"] == comment_id and payload["data"]["status"] == status.value
    headers, body = site.endpoint.posts[0]
    assert headers["webhook-id"] == event.message_id and event.message_id.startswith("msg_")
    assert headers["content-type"] == "application/json"
    assert FORM["email"].encode() not in body
    assert site.events() == []  # taken: never posted again
    assert site.deliver() == webhooks.Round(due=0, taken=0, reached=True)


def test_decisions_and_an_erasure_are_told_in_order_with_the_comment_as_it_is_when_sent(site: Site) -> None:
    comment_id = site.post()
    site.decide(comment_id, {"action": "reject", "reason": "spam"})
    site.decide(comment_id, {"action": "approve"})
    with site.services.sessions() as session:
        erased = erase_personal_data(session, site.services.keys, FORM["email"], "test", notify=True)
        session.commit()
    assert erased == [comment_id]
    assert site.deliver().taken == 3
    payloads = site.endpoint.payloads()
    assert [p["type"] for p in payloads] == ["comment.rejected", "comment.approved", "comment.erased"]
    for payload in payloads:
        # Sent after all three changes: each tells the state the site must show now.
        data = payload["data"]
        assert data["status"] == "approved" and data["thread"] == "/t"
        assert data["name"] == ERASED_NAME and data["comment"] == FORM["comment"]
        assert data["avatar"] is None and data["url"] is None
    assert all(FORM["email"].encode() not in body for _headers, body in site.endpoint.posts)


def test_a_decision_that_leaves_the_status_as_it_was_is_not_told_again(site: Site) -> None:
    comment_id = site.post()
    site.decide(comment_id, {"action": "reject", "reason": "spam"})
    site.decide(comment_id, {"action": "reject", "reason": "abuse"})
    site.decide(comment_id, {"action": "approve"})
    site.decide(comment_id, {"action": "approve"})
    assert site.deliver().taken == 2
    assert [p["type"] for p in site.endpoint.payloads()] == ["comment.rejected", "comment.approved"]


def test_each_event_has_a_message_id_of_its_own_even_after_the_table_empties(site: Site) -> None:
    comment_id = site.post()
    seen = []
    for decision in ({"action": "approve"}, {"action": "reject", "reason": "spam"}):
        site.decide(comment_id, decision)
        assert site.deliver().taken == 1 and site.events() == []
        seen.append(site.endpoint.posts[-1][0]["webhook-id"])
    assert len(set(seen)) == 2  # SQLite hands the second row the first one's id


def test_the_database_refuses_a_second_event_with_the_same_message_id(site: Site) -> None:
    comment_id = site.post()
    site.decide(comment_id, {"action": "approve"})
    (event,) = site.events()
    with site.services.sessions() as session:
        session.add(WebhookEvent(message_id=event.message_id, comment_id=comment_id, event_type="rejected"))
        with pytest.raises(IntegrityError):
            session.commit()
    assert [row.message_id for row in site.events()] == [event.message_id]


def test_each_post_tells_the_comment_as_it_is_then_though_the_sender_read_it_before(site: Site) -> None:
    comment_id = site.post()
    site.decide(comment_id, {"action": "approve"})
    sender = WebhookSender(site.endpoint.url, SECRET, 2.0)
    # One session for both rounds, as the sending thread keeps one for its whole life.
    with site.context.sessions() as session:
        assert deliver_due(session, sender, site.services.keys).taken == 1
        with site.services.sessions() as other:
            erase_personal_data(other, site.services.keys, FORM["email"], "test", notify=True)
            other.commit()
        assert deliver_due(session, sender, site.services.keys).taken == 1
    sender.close()
    names = [payload["data"]["name"] for payload in site.endpoint.payloads()]
    assert names == ["Ann", ERASED_NAME]


def test_a_change_made_during_a_round_is_in_the_posts_after_it(site: Site) -> None:
    first, second = site.post(), site.post(email="bob@example.com", name="Bob")
    site.decide(first, {"action": "approve"})
    site.decide(second, {"action": "approve"})
    asked = []

    def holding() -> bool:
        if len(asked) == 1:  # the first event is posted; erase the second's commenter now
            with site.services.sessions() as session:
                erase_personal_data(session, site.services.keys, "bob@example.com", "test", notify=False)
                session.commit()
        asked.append(True)
        return True

    sender = WebhookSender(site.endpoint.url, SECRET, 2.0)
    with site.context.sessions() as session:
        assert deliver_due(session, sender, site.services.keys, holding=holding).taken == 2
    sender.close()
    names = [payload["data"]["name"] for payload in site.endpoint.payloads()]
    assert names == ["Ann", ERASED_NAME]


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("size", [200, 300_000])
def test_an_answer_of_any_length_leaves_the_next_post_a_clean_connection(
    site: Site, chunked: bool, size: int
) -> None:
    for _comment in range(3):
        site.decide(site.post(), {"action": "approve"})
    site.endpoint.answer_body, site.endpoint.chunked = b"x" * size, chunked
    assert site.deliver().taken == 3
    assert len(site.endpoint.payloads()) == 3  # each post whole, none garbled by the last answer
    # A short answer is read to its end and its connection kept; a long one is cut off.
    assert len(site.endpoint.connections) == (1 if size < webhooks.MAX_ANSWER_BYTES else 3)


def test_an_answer_cut_off_while_read_has_its_connection_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[bool] = []

    class CutOff:
        status = 200

        def read(self, amount: int) -> bytes:
            raise urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead")

        def close(self) -> None:
            closed.append(True)

    sender = WebhookSender("http://127.0.0.1:9/hooks", SECRET, 2.0)
    monkeypatch.setattr(sender._http, "request", lambda *args, **kwargs: CutOff())
    attempt = sender.post("msg_1", "{}", utcnow())
    assert attempt == webhooks.Attempt("ProtocolError: Connection broken: IncompleteRead", reached=False)
    assert closed == [True]


class _DrippingEndpoint(ThreadingHTTPServer):
    """Answers its first post a byte every tenth of a second, each byte well within a read
    timeout, the whole far beyond it, and the rest at once when ``stop`` is set; answers
    later posts at once."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.posts = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                server.posts += 1
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                if server.posts > 1:
                    self.wfile.write(b"x" * 100)
                    return
                sent = 0
                while sent < 100 and not server.stop.wait(0.1):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    sent += 1
                self.wfile.write(b"x" * (100 - sent))

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_an_answer_that_drips_in_is_given_up_at_the_timeout_and_holds_one_thread_at_most() -> None:
    endpoint = _DrippingEndpoint()
    sender = WebhookSender(f"http://127.0.0.1:{endpoint.server_address[1]}/hooks", SECRET, 2.0)
    try:
        assert sender.post("msg_1", "{}", utcnow()) == webhooks.Attempt(
            "no whole answer within 2 s", reached=False
        )
        assert sender.waiting and sender.taken_late() is None
        endpoint.stop.set()  # the rest of the answer comes at once: the endpoint took the post
        assert sender._stalled is not None
        sender._stalled[1].join(5)
        assert not sender.waiting
        assert sender.taken_late() == "msg_1" and sender.taken_late() is None  # told once
        assert sender.post("msg_2", "{}", utcnow()) == webhooks.Attempt()
    finally:
        endpoint.stop.set()
        sender.close()
        endpoint.shutdown()
        endpoint.server_close()


def _first_post_taken_when_answered(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> tuple[WebhookSender, threading.Event]:
    """An approved comment's event, and a sender whose first post the endpoint takes only
    once the event returned is set: after the sender gave up on it (its timeout is 2 s)."""
    site.decide(site.post(), {"action": "approve"})
    sender = WebhookSender(site.endpoint.url, SECRET, 2.0)
    answered = threading.Event()
    stalled = threading.Event()
    post = sender._post

    def slow_first(message_id: str, body: str, at: Any) -> webhooks.Attempt:
        if not stalled.is_set():
            stalled.set()
            answered.wait(10)
        return post(message_id, body, at)

    monkeypatch.setattr(sender, "_post", slow_first)
    return sender, answered


def test_a_round_sends_nothing_while_a_post_is_stalled_and_deletes_it_once_taken(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, answered = _first_post_taken_when_answered(site, monkeypatch)
    with site.services.sessions() as session:
        given_up = deliver_due(session, sender, site.services.keys)
        assert (given_up.taken, given_up.reached) == (0, False)
        (event,) = site.events()
        assert event.attempts == 1
        site.make_due()
        assert deliver_due(session, sender, site.services.keys).reached is False  # nothing sent beside it
        assert site.events()[0].attempts == 1 and site.endpoint.posts == []
        answered.set()
        assert sender._stalled is not None
        sender._stalled[1].join(10)
        assert deliver_due(session, sender, site.services.keys).due == 0
    assert site.events() == [] and len(site.endpoint.posts) == 1
    sender.close()


def test_a_post_taken_late_while_a_round_reads_the_due_events_is_not_sent_again(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A round asks at its start whether the post given up on was taken since; one that the
    # endpoint takes just after (while the round reads the due events) was posted again,
    # and its late outcome, still held, could be overwritten by the next post given up on.
    sender, answered = _first_post_taken_when_answered(site, monkeypatch)
    taken_late = sender.taken_late

    def answered_just_after(*args: Any) -> str | None:
        late = taken_late(*args)
        if sender._stalled is not None:
            answered.set()
            sender._stalled[1].join(10)
        return late

    with site.services.sessions() as session:
        assert deliver_due(session, sender, site.services.keys).reached is False
        site.make_due()
        monkeypatch.setattr(sender, "taken_late", answered_just_after)
        deliver_due(session, sender, site.services.keys)
    assert site.events() == [] and len(site.endpoint.posts) == 1
    sender.close()


def test_a_user_and_password_in_the_url_are_sent_as_basic_authentication(site: Site) -> None:
    site.decide(site.post(), {"action": "approve"})
    with_credentials = site.endpoint.url.replace("http://", "http://hooks:s%C3%A9cret@")
    assert site.deliver(with_credentials).taken == 1
    headers, _body = site.endpoint.posts[0]
    assert headers["authorization"] == "Basic " + base64.b64encode("hooks:sécret".encode()).decode()
    assert site.endpoint.payloads()  # the signature is over the body alone, as before


def test_a_comment_that_is_not_approved_is_told_without_its_text_or_name(site: Site) -> None:
    comment_id = site.post()
    site.decide(comment_id, {"action": "reject", "reason": "abuse"})
    site.deliver()
    (payload,) = site.endpoint.payloads()
    assert payload["data"] == {"id": comment_id, "thread": "/t", "parent_id": None, "status": "rejected"}


def test_a_flagged_comment_is_told_without_its_text_or_name(site: Site) -> None:
    comment_id = site.post()
    with site.services.sessions() as session:
        session.get_one(Comment, comment_id).status = CommentStatus.FLAGGED
        record_events(session, [(comment_id, EventType.FLAGGED)])
        session.commit()
    assert site.deliver().taken == 1
    (payload,) = site.endpoint.payloads()
    assert payload["data"] == {"id": comment_id, "thread": "/t", "parent_id": None, "status": "flagged"}


@pytest.mark.parametrize("status", [300, 301, 304])
def test_a_redirect_or_other_3xx_answer_is_not_taken(site: Site, status: int) -> None:
    site.decide(site.post(), {"action": "approve"})
    site.endpoint.answers = [status]
    assert site.deliver() == webhooks.Round(due=1, taken=0, reached=True)
    (event,) = site.events()
    assert (event.attempts, event.last_error) == (1, f"HTTP {status}")


def test_a_retried_post_keeps_the_time_of_the_change_it_tells(site: Site) -> None:
    site.decide(site.post(), {"action": "approve"})
    (event,) = site.events()
    site.endpoint.answers = [500]
    assert site.deliver().taken == 0
    site.make_due()
    assert site.deliver().taken == 1
    first, retried = site.endpoint.payloads()
    assert first["timestamp"] == retried["timestamp"] == event.created_at.isoformat()


def test_due_events_are_sent_in_the_order_they_fell_due(site: Site) -> None:
    retried, fresh = site.post(), site.post()
    site.decide(retried, {"action": "approve"})
    site.decide(fresh, {"action": "approve"})
    with site.services.sessions() as session:
        for comment_id, ago in ((retried, 1), (fresh, 60)):
            session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.comment_id == comment_id)
                .values(next_attempt_at=utcnow() - timedelta(seconds=ago))
            )
        session.commit()
    sender = WebhookSender(site.endpoint.url, SECRET, 2.0)
    with site.context.sessions() as session:
        assert deliver_due(session, sender, site.services.keys, limit=1).taken == 1
    sender.close()
    assert [payload["data"]["id"] for payload in site.endpoint.payloads()] == [fresh]


def test_a_long_error_is_cut_to_fit_its_column(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    site.decide(site.post(), {"action": "approve"})
    monkeypatch.setattr(WebhookSender, "post", lambda *args: webhooks.Attempt("E" * 400))
    assert site.deliver().taken == 0
    (event,) = site.events()
    assert (event.attempts, event.last_error) == (1, "E" * 255)


def test_retrying_the_failed_events_leaves_the_waiting_ones_on_their_schedule(site: Site) -> None:
    failed, waiting = site.post(), site.post()
    site.decide(failed, {"action": "approve"})
    site.decide(waiting, {"action": "approve"})
    later = utcnow() + timedelta(hours=1)
    with site.services.sessions() as session:
        for comment_id, values in (
            (failed, {"attempts": 8, "last_error": "HTTP 500", "failed_at": utcnow()}),
            (waiting, {"attempts": 2, "last_error": "HTTP 503", "next_attempt_at": later}),
        ):
            session.execute(
                update(WebhookEvent).where(WebhookEvent.comment_id == comment_id).values(**values)
            )
        session.commit()
        assert retry_failed(session) == 1
        session.commit()
    retried, untouched = site.events()
    assert (retried.attempts, retried.failed_at, retried.last_error) == (0, None, None)
    assert (untouched.attempts, untouched.last_error) == (2, "HTTP 503")
    assert untouched.next_attempt_at == later


def test_the_endpoint_is_named_in_the_log_without_its_credentials() -> None:
    sender = WebhookSender("https://hooks:s3cret@site.example:8443/hooks?token=t0k", SECRET, 2.0)
    try:
        assert sender.host == "site.example:8443"
    finally:
        sender.close()


def test_a_post_logged_at_debug_level_names_neither_the_endpoint_s_path_nor_its_query(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sender = WebhookSender(f"{endpoint.url}?token=t0k3n", SECRET, 2.0)
    try:
        assert sender.post("msg_debug", "{}", utcnow()).error is None
    finally:
        sender.close()
    assert len(endpoint.posts) == 1
    assert "t0k3n" not in caplog.text and "/hooks/comments" not in caplog.text


def test_a_failing_endpoint_is_tried_again_on_schedule_then_given_up(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    comment_id = site.post()
    site.decide(comment_id, {"action": "approve"})
    site.endpoint.answers = [500, 503]
    before = utcnow()
    assert site.deliver() == webhooks.Round(due=1, taken=0, reached=True)
    (event,) = site.events()
    assert (event.attempts, event.last_error, event.failed_at) == (1, "HTTP 500", None)
    wait = event.next_attempt_at - before
    assert timedelta(seconds=webhooks.RETRY_AFTER_SECONDS[0]) <= wait < timedelta(seconds=60)
    assert site.deliver().due == 0  # not before its time
    site.make_due()
    assert site.deliver().taken == 0
    site.make_due()
    assert site.deliver().taken == 1  # the third attempt is answered 204
    assert [p["type"] for p in site.endpoint.payloads()] == ["comment.approved"] * 3
    assert len({headers["webhook-id"] for headers, _body in site.endpoint.posts}) == 1  # one message, retried

    # An endpoint that keeps failing: after the last scheduled attempt the event is kept, never sent again.
    monkeypatch.setattr(webhooks, "RETRY_AFTER_SECONDS", (0, 0))
    site.decide(comment_id, {"action": "reject", "reason": "other"})
    site.endpoint.answers = [500, 500, 410]
    for _attempt in range(3):
        site.make_due()
        site.deliver()
    (event,) = site.events()
    assert (event.attempts, event.last_error) == (3, "HTTP 410") and event.failed_at is not None
    site.make_due()
    assert site.deliver().due == 0 and len(site.endpoint.posts) == 6

    # Once the endpoint is mended, the operator sends what was given up on again.
    with site.services.sessions() as session:
        assert retry_failed(session) == 1
        session.commit()
    assert site.deliver().taken == 1 and site.events() == []
    assert site.endpoint.payloads()[-1]["data"]["status"] == "rejected"


def test_an_endpoint_that_cannot_be_reached_ends_the_round(site: Site) -> None:
    for _comment in range(2):
        site.decide(site.post(), {"action": "approve"})
    closed = f"http://127.0.0.1:{free_port()}/hooks"
    assert site.deliver(closed) == webhooks.Round(due=2, taken=0, reached=False)
    first, second = site.events()
    assert first.attempts == 1 and "Connection" in (first.last_error or "")
    assert second.attempts == 0  # it would only have waited for the same failure


def test_a_round_stops_once_the_lease_is_lost(site: Site) -> None:
    for _comment in range(3):
        site.post(website="offer")  # trapped by the honeypot: one event each
    answers = iter([True, False])
    sender = WebhookSender(site.endpoint.url, SECRET, 2.0)
    with site.context.sessions() as session:
        done = deliver_due(session, sender, site.services.keys, holding=lambda: next(answers))
    sender.close()
    assert done == webhooks.Round(due=3, taken=1, reached=True) and len(site.endpoint.posts) == 1
    assert [e.attempts for e in site.events()] == [0, 0]  # left for the new holder


def test_the_honeypot_and_a_failed_classification_are_told_too(site: Site) -> None:
    trapped = site.post(website="offer")
    broken = BrokenClassifier(healthy=site.context.models.active(), poison="POISON")
    install_context(replace(site.context, models=BrokenModels(broken)))  # type: ignore[arg-type]
    poisoned = site.post(comment="POISON")
    with pytest.raises(ClassificationError):
        classify_waiting([poisoned])
    assert [(e.comment_id, e.event_type) for e in site.events()] == [
        (trapped, EventType.REJECTED.value),
        (poisoned, EventType.FLAGGED.value),
    ]


@contextlib.contextmanager
def _sending(site: Site) -> Iterator[threading.Thread]:
    """The sending thread, running for the block and stopped after it."""
    stop = threading.Event()
    thread = start_webhook_sender(site.context, stop, lease_seconds=2.0)
    try:
        yield thread
    finally:
        stop.set()
        thread.join(5)


def _approved_and_posted(site: Site) -> int:
    comment_id = site.post()
    site.decide(comment_id, {"action": "approve"})
    wait_for(lambda: len(site.endpoint.posts) == 1, 10, "the approval posted to the endpoint")
    return comment_id


def test_the_sending_thread_delivers_while_its_worker_holds_the_lease(site: Site) -> None:
    with _sending(site) as thread:
        comment_id = _approved_and_posted(site)
        assert site.endpoint.payloads()[0]["data"]["id"] == comment_id
        wait_for(lambda: site.events() == [], 5, "the event deleted once taken")
    assert not thread.is_alive()


def test_a_sender_started_while_the_database_is_down_sends_once_it_answers(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = webhooks.load_checked_keys
    tries: list[int] = []

    def database_away_twice(*args: Any) -> KeyRing:
        tries.append(1)
        if len(tries) <= 2:
            raise OperationalError("SELECT fingerprint", {}, Exception("connection refused"))
        return check(*args)

    monkeypatch.setattr("worker.webhooks.load_checked_keys", database_away_twice)
    monkeypatch.setattr("worker.webhooks.UNREACHABLE_PAUSE_SECONDS", 0.1)
    with _sending(site):
        _approved_and_posted(site)
    assert len(tries) == 3


def test_a_wrong_key_found_once_the_database_answers_stops_the_worker_and_frees_the_lease(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers: list[Exception] = [
        OperationalError("SELECT fingerprint", {}, Exception("connection refused")),
        ConfigError(
            "the secret key (MODERATION_SECRET_KEY) differs from the one the emails were stored with"
        ),
    ]

    def wrong_key_late(*args: Any) -> KeyRing:
        raise answers.pop(0)

    signals: list[tuple[int, int]] = []
    monkeypatch.setattr("worker.webhooks.load_checked_keys", wrong_key_late)
    monkeypatch.setattr("worker.webhooks.UNREACHABLE_PAUSE_SECONDS", 0.1)
    monkeypatch.setattr("worker.webhooks.os.kill", lambda pid, sig: signals.append((pid, sig)))
    with _sending(site) as thread:
        thread.join(10)
        assert not thread.is_alive()  # it ended by itself
    assert signals == [(os.getpid(), signal.SIGTERM)]
    lease = f"moderation:webhooks:{site.context.settings.queue_name}"
    assert not site.context.background_queue.queue.connection.exists(lease)


def test_without_a_webhook_no_events_are_written(settings_overrides: dict[str, Any]) -> None:
    app = create_app({**settings_overrides, "webhook_url": "", "webhook_secret": ""})
    services: Services = app.extensions["moderation"]
    try:
        with services.sessions() as session:
            token = create_token(session, "Mod Erator")
            session.commit()
        client = app.test_client()
        comment_id = int(client.post("/v1/comments", json=FORM).get_json()["id"])
        decision = client.post(
            f"/v1/comments/{comment_id}/decision",
            json={"action": "approve"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert decision.status_code == 200
        client.post("/v1/comments", json={**FORM, "website": "offer"})
        waiting = int(client.post("/v1/comments", json=FORM).get_json()["id"])
        worker_context = build_context(services.settings)
        try:
            assert classify_comments(worker_context, [waiting])
        finally:
            worker_context.engine.dispose()
            worker_context.queue.queue.connection.connection_pool.disconnect()
        with services.sessions() as session:
            erase_personal_data(
                session, services.keys, FORM["email"], "test", notify=services.settings.webhooks
            )
            session.commit()
        assert _events(services) == []
        with services.sessions() as session:
            assert session.get(Comment, comment_id).status is CommentStatus.APPROVED  # type: ignore[union-attr]
    finally:
        services.close()


@pytest.mark.slow
def test_a_worker_process_tells_the_site_of_every_verdict(
    site: Site, settings_overrides: dict[str, Any], tmp_path: Path
) -> None:
    ids = [site.post(comment=f"Comment number {n} on the harbour plan.") for n in range(5)]
    env = service_environment(
        settings_overrides, WEBHOOK_URL=site.endpoint.url, WEBHOOK_SECRET=SECRET, WEBHOOK_TIMEOUT_SECONDS="2"
    )
    worker = Worker(env, tmp_path / "worker.log")
    try:
        wait_for(
            lambda: len(site.endpoint.posts) == 5, 120, "five verdicts posted\n" + worker.output()[-3000:]
        )
    finally:
        worker.stop()
    with site.services.sessions() as session:
        statuses = dict(session.execute(select(Comment.id, Comment.status)).tuples().all())
    told = {payload["data"]["id"]: payload for payload in site.endpoint.payloads()}
    assert set(told) == set(ids)
    assert all(told[i]["type"] == f"comment.{statuses[i].value}" for i in ids)
    assert site.events() == []
