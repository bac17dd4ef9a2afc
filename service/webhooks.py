"""What the site's webhook is told: which changes become events, and what a post says.

Every change that alters what the site should show (a verdict, a moderator's decision,
a commenter's data erased) adds an event row in the change's own transaction, so an
event is never lost and never told of a change that was rolled back. The payload is
built when the event is sent, from the comment as it is at that moment: a post that
was retried after a later change still tells the latest state, and the receiver can act
on ``data.status`` whatever order posts arrive in.

Payloads follow Standard Webhooks (``type``, ``timestamp``, ``data``). The email is
never in them; the text, name and website only while the comment is approved, i.e.
what a public thread shows anyway.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, insert, update
from sqlalchemy.orm import Session

from service.presenters import public_view
from service.privacy import KeyRing
from service.statuses import CommentStatus
from service.tables import Comment, WebhookEvent, utcnow


class EventType(StrEnum):
    """What happened to a comment, as the ``type`` of a webhook post."""

    APPROVED = "comment.approved"
    FLAGGED = "comment.flagged"
    REJECTED = "comment.rejected"
    ERASED = "comment.erased"
    """The commenter's name, email and website were erased; the site should drop its copy."""


_FOR_STATUS = {
    CommentStatus.APPROVED: EventType.APPROVED,
    CommentStatus.FLAGGED: EventType.FLAGGED,
    CommentStatus.REJECTED: EventType.REJECTED,
}


def event_for(status: CommentStatus) -> EventType:
    """The event a comment moving to ``status`` makes (never ``received``: the 202 said so)."""
    return _FOR_STATUS[status]


def record_events(session: Session | Connection, events: Iterable[tuple[int, EventType]]) -> None:
    """Add one event row per ``(comment_id, type)`` to the transaction of ``session``; the
    caller commits it with the change, and calls this only while a webhook is configured."""
    now = utcnow()
    rows = [
        {
            "message_id": f"msg_{uuid.uuid4().hex}",
            "comment_id": comment_id,
            "event_type": kind.value,
            "created_at": now,
            "next_attempt_at": now,
        }
        for comment_id, kind in events
    ]
    if rows:
        session.execute(insert(WebhookEvent), rows)


def event_payload(kind: str, at: datetime, comment: Comment, keys: KeyRing) -> dict[str, Any]:
    """The body of the post telling ``kind`` (happened ``at``) of ``comment`` as it is now."""
    data: dict[str, Any] = {
        "id": comment.id,
        "thread": comment.thread,
        "parent_id": comment.parent_id,
        "status": comment.status.value,
    }
    if comment.status is CommentStatus.APPROVED:
        data.update(public_view(comment, keys))
    return {"type": kind, "timestamp": at.isoformat(), "data": data}


def retry_failed(session: Session) -> int:
    """Schedule every event given up on for sending again now, from its first attempt;
    return how many. The caller commits."""
    result = session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.failed_at.is_not(None))
        .values(failed_at=None, attempts=0, last_error=None, next_attempt_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))
