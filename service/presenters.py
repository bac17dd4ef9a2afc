"""How comments look in responses: the moderator's view and the public's.

The public view has no email field of any kind; the moderator's carries a masked one.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from service.privacy import ERASED_EMAIL, KeyRing, avatar_key, mask_email, readable_email
from service.review import Page
from service.tables import AuditEvent, Comment

logger = logging.getLogger(__name__)
# Once per process: a replaced key leaves every older comment unreadable, and one line
# per comment shown would bury everything else in the log.
_unreadable_reported = threading.Event()


def _masked_email(comment: Comment, keys: KeyRing) -> str | None:
    """The masked email, or None when it was erased or the current key cannot decrypt it."""
    email = readable_email(keys, comment.email_ciphertext)
    if email is not None:
        return mask_email(email)
    if comment.email_ciphertext == ERASED_EMAIL:
        return None
    if not _unreadable_reported.is_set():
        _unreadable_reported.set()
        logger.warning(
            "the email of comment %s (and maybe of others; logged once) cannot be decrypted with the "
            "current secret key: another key encrypted it; moderators see it as unavailable",
            comment.id,
        )
    return None


def moderator_view(comment: Comment, keys: KeyRing) -> dict[str, Any]:
    """Everything a moderator needs to decide, with the email masked.

    An email the current key cannot decrypt does not stop the moderator: ``email_masked``
    is then null and ``email_unavailable`` true, as for an email erased at the
    commenter's request, which ``email_erased`` tells apart.
    """
    latest = comment.verdicts[-1] if comment.verdicts else None
    masked = _masked_email(comment, keys)
    return {
        "id": comment.id,
        "thread": comment.thread,
        "parent_id": comment.parent_id,
        "name": comment.name,
        "email_masked": masked,
        "email_unavailable": masked is None,
        "email_erased": comment.email_ciphertext == ERASED_EMAIL,
        "url": comment.url,
        "comment": comment.body,
        "status": comment.status.value,
        "scores": {"spam": comment.spam_score, "abuse": comment.abuse_score},
        "seconds_to_submit": comment.seconds_to_submit,
        "reasons": latest.reasons if latest else [],
        "model_version": latest.model_version if latest else None,
        "created_at": comment.created_at.isoformat(),
        "updated_at": comment.updated_at.isoformat(),
    }


def receipt_view(comment: Comment) -> dict[str, Any]:
    """The comment's arrival, first in its audit trail; the intake writes no audit row for
    it because the comment row and its ``created_at`` already record it."""
    return {
        "action": "received",
        "actor": "intake",
        "from_status": None,
        "to_status": "received",
        "reason": None,
        "note": None,
        "at": comment.created_at.isoformat(),
    }


def audit_view(event: AuditEvent) -> dict[str, Any]:
    """One audit event as the moderator's detail view lists it."""
    return {
        "action": event.action,
        "actor": event.actor,
        "from_status": event.from_status.value if event.from_status else None,
        "to_status": event.to_status.value if event.to_status else None,
        "reason": event.reason,
        "note": event.note,
        "at": event.created_at.isoformat(),
    }


def trail_view(comment: Comment, events: list[AuditEvent]) -> list[dict[str, Any]]:
    """A comment's audit trail as moderators read it, from its arrival on; ``events`` are
    its audit events, oldest first."""
    return [receipt_view(comment), *(audit_view(event) for event in events)]


def public_view(comment: Comment, keys: KeyRing, *, parent_published: bool = True) -> dict[str, Any]:
    """What any reader may see of an approved comment; an erased commenter has no avatar.

    A reply whose parent is no longer published has no ``parent_id``: the listing must not
    tell a hidden comment's id, and a site shows such a reply as a comment of its own.
    """
    erased = comment.email_digest == ERASED_EMAIL
    return {
        "id": comment.id,
        "parent_id": comment.parent_id if parent_published else None,
        "name": comment.name,
        "url": comment.url,
        "avatar": None if erased else avatar_key(keys, comment.email_digest),
        "comment": comment.body,
        "created_at": comment.created_at.isoformat(),
    }


def page_view(page: Page, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A page of already-rendered items with the way to the next: a number, or a cursor."""
    if page.page is None:
        return {"items": items, "per_page": page.per_page, "next_cursor": page.next_cursor}
    return {
        "items": items,
        "page": page.page,
        "per_page": page.per_page,
        "total": page.total,
        "next_page": page.next_page,
    }


def time_shown(moment: str) -> str:
    """An ISO 8601 time with its offset, as the views give ``created_at``, as a moderator
    reads it: to the minute, in UTC (``2026-12-01 12:16 UTC``)."""
    return datetime.fromisoformat(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
