"""Posting webhook events to the site, and trying again later when it does not answer.

One worker at a time sends (the holder of a lease, as for the dispatcher), oldest event
first, each post signed (service/webhook_signing.py). A 2xx answer deletes the event. Any
other answer, or none in time, schedules the next attempt by ``RETRY_AFTER_SECONDS``;
after the last one the event is kept, marked failed, until ``moderation webhook-retry``
sends it again. An endpoint that cannot be reached ends the round: the events behind it
would only wait for the same timeout.

A post may arrive twice (the endpoint answered but the delete was lost): its
``webhook-id`` stays the same across attempts and is never given to another event, so
the receiver can skip what it has seen.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import unquote, urlsplit, urlunsplit

import urllib3
from sqlalchemy import delete, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from service.errors import ConfigError, NotMigratedError
from service.keyfile import load_checked_keys
from service.privacy import KeyRing
from service.tables import Comment, WebhookEvent, utcnow
from service.webhook_signing import parse_secret, signed_headers
from service.webhooks import event_payload
from worker.context import WorkerContext
from worker.lease import Failures, Lease, start_leased_loop

logger = logging.getLogger(__name__)

# After each failed attempt, the wait before the next: about a day in all, as Standard
# Webhooks senders do, so an endpoint that is down for a night still gets everything.
RETRY_AFTER_SECONDS = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
BATCH = 100
# How often the sending worker looks for new events, and waits after an unreachable
# endpoint before the next round.
POLL_SECONDS = 0.5
UNREACHABLE_PAUSE_SECONDS = 5.0
LEASE_SECONDS = 10.0
# Only the status matters; a longer answer is cut off rather than read into memory.
MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = "comment-moderation-webhooks/1"


@dataclass(frozen=True)
class Attempt:
    """How one post went: ``error`` is None when the endpoint took it."""

    error: str | None = None
    reached: bool = True


class WebhookSender:
    """Signs and posts one event body at a time to the site's endpoint, over kept-alive connections.

    A user name and password in the URL are sent as HTTP basic authentication.
    """

    def __init__(self, url: str, secret: str, timeout: float) -> None:
        parts = urlsplit(url)
        # What the log names: the endpoint's path or query may hold a token, its URL a password.
        self.host = parts.netloc.rpartition("@")[2]
        self._url = urlunsplit(parts._replace(netloc=self.host))
        self._headers = {"content-type": "application/json", "user-agent": USER_AGENT}
        if parts.username is not None:
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self._headers["authorization"] = "Basic " + base64.b64encode(credentials).decode()
        self._key = parse_secret(secret)
        self._timeout = timeout
        self._http = urllib3.PoolManager(num_pools=1, timeout=urllib3.Timeout(total=timeout), retries=False)
        # At LOG_LEVEL=DEBUG urllib3 logs each request's path and query, where a site may
        # keep the endpoint's token; what it logs above that names the host only.
        logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)
        # A post given up at its timeout, still read in its own thread: its message id, the
        # thread, and its outcome once it has one.
        self._stalled: tuple[str, threading.Thread, list[Attempt | Exception]] | None = None

    @property
    def waiting(self) -> bool:
        """Whether a post given up at its timeout still waits for its answer. Until it ends
        no other post is sent, so a stalled endpoint holds one thread at most."""
        return self._stalled is not None and self._stalled[1].is_alive()

    def taken_late(self) -> str | None:
        """The message id of a post given up at its timeout that the endpoint has taken
        (2xx) since; None otherwise. Each such post is told once."""
        if self._stalled is None or self._stalled[1].is_alive():
            return None
        message_id, _thread, done = self._stalled
        self._stalled = None
        outcome = done[0] if done else None
        if isinstance(outcome, Exception):
            logger.warning("webhook post %s failed after its timeout: %s", message_id, outcome)
        elif outcome is not None and outcome.error is None:
            return message_id
        return None

    def post(self, message_id: str, body: str, at: datetime) -> Attempt:
        """Post ``body`` as message ``message_id``, signed at ``at``, and wait at most the
        timeout for the whole answer; not while ``waiting``.

        The connection's timeout bounds each read only, so an endpoint sending its answer a
        little at a time would hold the sender past its lease, and another worker would send
        the same events. So the post runs in a thread of its own, left behind when its time
        is up, and counts as failed; ``taken_late`` says if the endpoint took it after all.
        """
        done: list[Attempt | Exception] = []

        def attempt() -> None:
            try:
                done.append(self._post(message_id, body, at))
            except Exception as exc:  # noqa: BLE001 - raised again below, where the caller counts it
                done.append(exc)

        poster = threading.Thread(target=attempt, name="webhook-post", daemon=True)
        poster.start()
        poster.join(self._timeout)
        if done:
            if isinstance(done[0], Exception):
                raise done[0]
            return done[0]
        self._stalled = (message_id, poster, done)
        return Attempt(f"no whole answer within {self._timeout:g} s", reached=False)

    def _post(self, message_id: str, body: str, at: datetime) -> Attempt:
        headers = {**self._headers, **signed_headers(self._key, message_id, at, body)}
        response = None
        try:
            response = self._http.request(
                "POST", self._url, body=body.encode(), headers=headers, redirect=False, preload_content=False
            )
            read = response.read(MAX_ANSWER_BYTES)
        except urllib3.exceptions.HTTPError as exc:
            if response is not None:
                response.close()  # an answer cut off while read: its connection cannot serve again
            return Attempt(f"{type(exc).__name__}: {exc}", reached=False)
        if response.length_remaining == 0 or len(read) < MAX_ANSWER_BYTES:
            response.release_conn()  # the whole answer is read: the connection serves the next post
        else:
            response.close()  # the rest of a long answer is not worth reading
        if 200 <= response.status < 300:
            return Attempt()
        return Attempt(f"HTTP {response.status}")

    def close(self) -> None:
        """Close the kept-alive connections."""
        self._http.clear()


def _outcome(event: WebhookEvent, attempt: Attempt, now: datetime) -> dict[str, object] | None:
    """The event's new values after ``attempt``; None when it was taken (and is deleted)."""
    if attempt.error is None:
        return None
    attempts = event.attempts + 1
    values: dict[str, object] = {"attempts": attempts, "last_error": attempt.error[:255]}
    if attempts > len(RETRY_AFTER_SECONDS):
        logger.warning(
            "webhook event %s (%s of comment %s) given up after %d attempts: %s",
            event.id,
            event.event_type,
            event.comment_id,
            attempts,
            attempt.error,
        )
        return {**values, "failed_at": now}
    return {**values, "next_attempt_at": now + timedelta(seconds=RETRY_AFTER_SECONDS[attempts - 1])}


def _send(session: Session, sender: WebhookSender, keys: KeyRing, event: WebhookEvent) -> Attempt:
    """Post ``event`` with its comment as the database has it now."""
    comment = session.get(Comment, event.comment_id, populate_existing=True)
    session.commit()  # no transaction stays open while the endpoint answers
    if comment is None:  # deleted, and its events with it
        return Attempt()
    now = utcnow()
    try:
        body = json.dumps(
            event_payload(event.event_type, event.created_at, comment, keys), ensure_ascii=False
        )
        return sender.post(event.message_id, body, now)
    except Exception as exc:  # counted as a failed attempt, so one event cannot hold up the rest for ever
        logger.exception("webhook event %s could not be sent", event.id)
        return Attempt(f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class Round:
    """What one round of sending did."""

    due: int
    taken: int
    reached: bool


def _forget_taken_late(session: Session, sender: WebhookSender) -> str | None:
    """Delete the event of the post given up on at its timeout that the endpoint has taken
    since, if any; return its message id."""
    late = sender.taken_late()
    if late is not None:
        session.execute(delete(WebhookEvent).where(WebhookEvent.message_id == late))
        session.commit()
    return late


def deliver_due(
    session: Session,
    sender: WebhookSender,
    keys: KeyRing,
    limit: int = BATCH,
    holding: Callable[[], bool] = lambda: True,
) -> Round:
    """Post up to ``limit`` events that are due, oldest first, until the endpoint cannot be
    reached, is still answering a post given up at its timeout, or ``holding`` says to
    stop: the worker is stopping, or no longer holds the lease (asking before each post
    keeps a lease renewed through a long round).

    Each outcome is committed as soon as it is known, so an event taken is not posted
    again because a later one failed; an event the endpoint took after its post was given
    up on is deleted before the next post, and is not posted again.
    """
    _forget_taken_late(session, sender)
    due = session.scalars(
        select(WebhookEvent)
        .where(WebhookEvent.failed_at.is_(None), WebhookEvent.next_attempt_at <= utcnow())
        .order_by(WebhookEvent.next_attempt_at, WebhookEvent.id)
        .limit(limit)
    ).all()
    session.commit()
    taken, reached = 0, True
    for event in due:
        if not holding():
            break
        if sender.waiting:  # the endpoint is still answering the last post given up on
            reached = False
            break
        # Asked again before each post: one given up on may have been taken since the round
        # began (it would be posted again), and its outcome must be read before the next
        # post given up on takes its place.
        if _forget_taken_late(session, sender) == event.message_id:
            taken += 1
            continue
        attempt = _send(session, sender, keys, event)
        values = _outcome(event, attempt, utcnow())
        if values is None:
            session.execute(delete(WebhookEvent).where(WebhookEvent.id == event.id))
            taken += 1
        else:
            session.execute(update(WebhookEvent).where(WebhookEvent.id == event.id).values(**values))
        session.commit()
        if not attempt.reached:
            reached = False
            break
    return Round(len(due), taken, reached)


def start_webhook_sender(
    context: WorkerContext, stop: threading.Event, lease_seconds: float | None = None
) -> threading.Thread:
    """Deliver webhook events in a daemon thread until ``stop`` is set, while this worker
    holds the queue's webhook lease; without it, try for the lease every quarter of it.

    The lease outlasts several posts that time out, so another worker does not take it
    (and send the same events) while this one waits for an answer.
    """
    settings = context.settings
    if lease_seconds is None:
        lease_seconds = max(LEASE_SECONDS, 4 * settings.webhook_timeout)
    # The avatar key of an approved comment must be the one its public thread shows. The
    # wrong key stops the worker here; a database still down at start is waited for by the
    # rounds below instead, so that the worker starts and classifies meanwhile.
    try:
        keys: KeyRing | None = load_checked_keys(settings, context.engine)
    except OperationalError as exc:
        logger.warning("webhooks wait for the database to check the secret key: %s", exc.orig)
        keys = None
    except NotMigratedError as exc:
        logger.warning("webhooks wait for the database to check the secret key: %s", exc)
        keys = None
    sender = WebhookSender(settings.webhook_url, settings.webhook_secret, settings.webhook_timeout)
    lease = Lease(
        context.background_queue.queue.connection, f"moderation:webhooks:{settings.queue_name}", lease_seconds
    )
    unreachable = False

    def check_keys_late() -> KeyRing:
        try:
            return load_checked_keys(settings, context.engine)  # a database error: the loop tries again
        except ConfigError as exc:
            # The wrong key: as at start, the worker stops. Retrying would hold the lease
            # for ever, and no worker with the right key would send anything.
            logger.error("stopping the worker: %s", exc)
            stop.set()  # ends this loop, which frees the lease
            os.kill(os.getpid(), signal.SIGTERM)
            raise

    def send_round(session: Session) -> float:
        nonlocal unreachable, keys
        if keys is None:
            keys = check_keys_late()
        done = deliver_due(session, sender, keys, holding=lambda: not stop.is_set() and lease.hold())
        if not done.reached and not unreachable:
            logger.warning("webhook endpoint at %s cannot be reached; events wait", sender.host)
        elif done.reached and unreachable:
            logger.info("webhook endpoint at %s reached again", sender.host)
        unreachable = not done.reached
        if unreachable:
            return UNREACHABLE_PAUSE_SECONDS
        return 0.0 if done.due >= BATCH else POLL_SECONDS

    failures = Failures(
        logger,
        "sending webhook events failed; they stay queued",
        "sending webhook events again",
        UNREACHABLE_PAUSE_SECONDS,
    )
    return start_leased_loop("webhooks", lease, stop, context.sessions, send_round, failures)
