"""A commenter's personal data, found by their email address: export it, or erase it.

These are the privacy tools a blog platform gives a site owner for a commenter's
request. Comments are found by the keyed digest of the address, so a search decrypts
nothing. An erasure anonymises, as those platforms do: the name becomes "Anonymous",
and the email (ciphertext and digest), the website and the verdict reasons that quote
the name or website are removed. The text stays, so the threads it belongs to still
read. Each erased comment gets an audit event naming who erased it, and nothing about
whom.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from models import quotes_author
from service.privacy import ERASED_EMAIL, KeyRing, email_digest, readable_email
from service.review import get_comment
from service.tables import Comment, utcnow
from service.transitions import add_audit_event

ERASED_NAME = "Anonymous"
ERASED_ACTION = "personal_data_erased"
REVEALED_ACTION = "email_revealed"


def reveal_email(
    session: Session, keys: KeyRing, comment_id: int, actor: str, note: str | None
) -> str | None:
    """The full email of a comment, recorded in its audit trail as revealed to ``actor``.

    None when it was erased or the current key cannot decrypt it; the attempt is recorded
    all the same. Raises ``NotFoundError`` for an unknown comment. The caller commits.
    """
    comment = get_comment(session, comment_id)
    add_audit_event(session, comment_id, REVEALED_ACTION, actor, from_status=None, to_status=None, note=note)
    return readable_email(keys, comment.email_ciphertext)


def comments_by_email(session: Session, keys: KeyRing, email: str) -> list[Comment]:
    """Every comment posted with ``email`` (in any letter case), oldest first."""
    digest = email_digest(keys, email)
    statement = (
        select(Comment)
        .where(Comment.email_digest == digest)
        .options(selectinload(Comment.verdicts))
        .order_by(Comment.id)
    )
    return list(session.scalars(statement))


def personal_data(comment: Comment, keys: KeyRing) -> dict[str, Any]:
    """What one comment holds about its commenter, email included, for an export."""
    return {
        "id": comment.id,
        "thread": comment.thread,
        "parent_id": comment.parent_id,
        "name": comment.name,
        "email": readable_email(keys, comment.email_ciphertext),
        "url": comment.url,
        "comment": comment.body,
        "status": comment.status.value,
        "created_at": comment.created_at.isoformat(),
    }


def export_personal_data(session: Session, keys: KeyRing, email: str) -> list[dict[str, Any]]:
    """Everything stored about the commenter of ``email``: each of their comments, oldest first."""
    return [personal_data(comment, keys) for comment in comments_by_email(session, keys, email)]


def erase_personal_data(session: Session, keys: KeyRing, email: str, actor: str) -> list[int]:
    """Anonymise every comment of ``email`` and audit each as erased by ``actor``; return their ids.

    The caller commits. A comment erased while a worker classifies it (in the fraction
    of a second after it was posted) may still get a verdict whose reasons quote the
    name the worker read.
    """
    comments = comments_by_email(session, keys, email)
    now = utcnow()
    for comment in comments:
        comment.name = ERASED_NAME
        comment.email_ciphertext = ERASED_EMAIL
        comment.email_digest = ERASED_EMAIL
        comment.url = None
        comment.updated_at = now
        for verdict in comment.verdicts:
            verdict.reasons = [reason for reason in verdict.reasons if not quotes_author(reason)]
        add_audit_event(session, comment.id, ERASED_ACTION, actor, from_status=None, to_status=None)
    return [comment.id for comment in comments]
