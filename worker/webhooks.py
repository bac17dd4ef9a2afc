"""Posting webhook events to the site, and trying again later when it does not answer.

One worker at a time sends (the holder of a lease, as for the dispatcher), oldest event
first, each post signed (service/webhook_signing.py). A 2xx answer deletes the event. Any
other answer, or none within ``WEBHOOK_TIMEOUT_SECONDS``, schedules the next attempt by
``RETRY_AFTER_SECONDS``; after the last one the event is kept, marked failed, and never
sent again. An endpoint that cannot be reached ends the round: the events behind it would
only wait for the same timeout.

A post may arrive twice (the endpoint answered but the delete was lost): its
``webhook-id`` stays the same across attempts, so the receiver can skip what it has seen.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import urllib3
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.keyfile import load_keys
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
USER_AGENT = "comment-moderation-webhooks/1"


@dataclass(frozen=True)
class Attempt:
    """How one post went: ``error`` is None when the endpoint took it."""

    error: str | None = None
    reached: bool = True


class WebhookSender:
    """Signs and posts one event body at a time to the site's endpoint, over kept-alive connections."""

    def __init__(self, url: str, secret: str, timeout: float) -> None:
        self.url = url
        # What the log names: a site may put a token in the endpoint's path or query.
        self.host = urlsplit(url).netloc.rpartition("@")[2]
        self._key = parse_secret(secret)
        self._http = urllib3.PoolManager(
            num_pools=1,
            timeout=urllib3.Timeout(total=timeout),
            retries=False,
            headers={"user-agent": USER_AGENT},
        )

    def post(self, message_id: str, body: str, at: datetime) -> Attempt:
        """Post ``body`` as message ``message_id``, signed at ``at``."""
        headers = {"content-type": "application/json", **signed_headers(self._key, message_id, at, body)}
        try:
            response = self._http.request(
                "POST", self.url, body=body.encode(), headers=headers, redirect=False, preload_content=True
            )
        except urllib3.exceptions.HTTPError as exc:
            return Attempt(f"{type(exc).__name__}: {exc}", reached=False)
        if 200 <= response.status < 300:
            return Attempt()
        return Attempt(f"HTTP {response.status}")

    def close(self) -> None:
        """Close the kept-alive connections."""
        self._http.clear()


def _failed(event: WebhookEvent, error: str, now: datetime) -> None:
    event.attempts += 1
    event.last_error = error[:255]
    if event.attempts > len(RETRY_AFTER_SECONDS):
        event.failed_at = now
        logger.warning(
            "webhook event %s (%s of comment %s) given up after %d attempts: %s",
            event.id,
            event.event_type,
            event.comment_id,
            event.attempts,
            error,
        )
    else:
        event.next_attempt_at = now + timedelta(seconds=RETRY_AFTER_SECONDS[event.attempts - 1])


@dataclass(frozen=True)
class Round:
    """What one round of sending did."""

    due: int
    taken: int
    reached: bool


def deliver_due(
    session: Session,
    sender: WebhookSender,
    keys: KeyRing,
    limit: int = BATCH,
    holding: Callable[[], bool] = lambda: True,
) -> Round:
    """Post up to ``limit`` events that are due, oldest first, until the endpoint cannot be
    reached or ``holding`` says this worker no longer holds the lease (it is asked before
    each post, which keeps a lease renewed through a long round).

    Each outcome is committed as soon as it is known, so an event taken is not posted
    again because a later one failed.
    """
    due = session.execute(
        select(WebhookEvent, Comment)
        .join(Comment, Comment.id == WebhookEvent.comment_id)
        .where(WebhookEvent.failed_at.is_(None), WebhookEvent.next_attempt_at <= utcnow())
        .order_by(WebhookEvent.next_attempt_at, WebhookEvent.id)
        .limit(limit)
    ).all()
    taken, reached = 0, True
    for event, comment in due:
        if not holding():
            break
        now = utcnow()
        payload = event_payload(event.event_type, event.created_at, comment, keys)
        body = json.dumps(payload, ensure_ascii=False)
        attempt = sender.post(f"msg_{event.id}", body, now)
        if attempt.error is None:
            session.delete(event)
            taken += 1
        else:
            _failed(event, attempt.error, now)
        session.commit()
        if not attempt.reached:
            reached = False
            break
    session.rollback()  # ends the read transaction when nothing was due
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
    lease_seconds = lease_seconds or max(LEASE_SECONDS, 4 * settings.webhook_timeout)
    keys = load_keys(settings)  # for the avatar key of an approved comment, as the public thread shows it
    sender = WebhookSender(settings.webhook_url, settings.webhook_secret, settings.webhook_timeout)
    lease = Lease(context.queue.queue.connection, f"moderation:webhooks:{settings.queue_name}", lease_seconds)

    unreachable = False

    def send_round(session: Session) -> float:
        nonlocal unreachable
        done = deliver_due(session, sender, keys, holding=lease.hold)
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
