"""A commenter's personal data, found by their email address: export it, or erase it.

These are the privacy tools a blog platform gives a site owner for a commenter's
request. Comments are found by the keyed digest of the address, so a search decrypts
nothing. An erasure anonymises, as those platforms do: the name becomes "Anonymous",
and the email (ciphertext and digest), the website, the verdict reasons that quote the
name or website, the time taken to post (in the comment and in the reason it was held
for) and the moderators' notes are removed. The text stays, so the threads
it belongs to still read. Each export and erasure is an audit event of each comment it
touched, naming who did it, and nothing about whom.

Model versions trained on these comments while they had their names keep those names'
words, and the websites' domains, in their author vocabulary; retraining, and removing
older versions from the registry, takes them out (see the README).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session, selectinload

from models import without_author
from service.presenters import trail_view
from service.privacy import ERASED_EMAIL, KeyRing, email_digest, readable_email
from service.reasons import without_timing
from service.review import audit_trail, get_comment
from service.tables import AuditEvent, Comment, FloodCounter, Label, Verdict, utcnow
from service.transitions import add_audit_event
from service.webhooks import EventType, record_events

# Comment ids per statement when an erasure cleans their verdicts and audit events.
ERASE_BATCH = 10_000

ERASED_NAME = "Anonymous"
ERASED_ACTION = "personal_data_erased"
EXPORTED_ACTION = "personal_data_exported"
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


def _label_view(label: Label | None) -> dict[str, Any] | None:
    """A moderator's training label as an export gives it; None when there is none."""
    if label is None:
        return None
    return {
        "spam": label.spam,
        "abuse": label.abuse,
        "reason": label.reason.value if label.reason is not None else None,
        "decided_at": label.decided_at.isoformat(),
    }


def personal_data(
    comment: Comment, keys: KeyRing, trail: list[AuditEvent], label: Label | None
) -> dict[str, Any]:
    """What one comment holds about its commenter, for an export: the comment with its
    email, the model's scores and the reasons of its verdicts, the moderators' training
    ``label`` (what retraining learns from it), and its audit trail (moderators' notes
    included) from its arrival on, as the moderators' detail view gives it."""
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
        "seconds_to_submit": comment.seconds_to_submit,
        "scores": {"spam": comment.spam_score, "abuse": comment.abuse_score},
        "verdict_reasons": [verdict.reasons for verdict in comment.verdicts],
        "label": _label_view(label),
        "audit": trail_view(comment, trail),
    }


def export_personal_data(session: Session, keys: KeyRing, email: str, actor: str) -> list[dict[str, Any]]:
    """Everything stored about the commenter of ``email``, each of their comments oldest
    first; each export is recorded in the comment's audit trail as done by ``actor``
    (after the trail it returns). The caller commits."""
    exported = []
    for comment in comments_by_email(session, keys, email):
        label = session.scalar(select(Label).where(Label.comment_id == comment.id))
        exported.append(personal_data(comment, keys, audit_trail(session, comment.id), label))
        add_audit_event(session, comment.id, EXPORTED_ACTION, actor, from_status=None, to_status=None)
    return exported


def erase_personal_data(
    session: Session,
    keys: KeyRing,
    email: str,
    actor: str,
    *,
    notify: bool,
    flood_keys: Sequence[bytes] = (),
) -> list[int]:
    """Anonymise every comment of ``email`` and audit each as erased by ``actor`` (with
    ``notify``, also tell the site's webhook), delete the commenter's flood counters
    (``flood_keys``, from ``FloodControl.commenter_keys``); return the comments' ids.

    The rows are changed first, as a moderator's decision changes them, so a worker
    deciding one of them at that moment either finishes first (and its verdict is
    cleaned below) or finds the comment erased (and ``record_verdicts`` leaves out the
    reasons that quote the name). Moderators' notes on these comments go too: they may
    name the commenter. The caller commits.
    """
    now = utcnow()
    if flood_keys:
        session.execute(delete(FloodCounter).where(FloodCounter.key.in_(flood_keys)))
    erased = sorted(
        session.scalars(
            update(Comment)
            .where(Comment.email_digest == email_digest(keys, email))
            .values(
                name=ERASED_NAME,
                email_ciphertext=ERASED_EMAIL,
                email_digest=ERASED_EMAIL,
                url=None,
                seconds_to_submit=None,
                updated_at=now,
            )
            .returning(Comment.id)
            .execution_options(synchronize_session=False)
        )
    )
    if not erased:
        return []
    # A bot posting under one address can leave more comments than a statement takes
    # parameters (65,535 with psycopg; SQLite's limit depends on its build): their ids go
    # a batch at a time.
    for start in range(0, len(erased), ERASE_BATCH):
        _clean_records_of(session, erased[start : start + ERASE_BATCH])
    # One multi-row insert: an erasure may touch many thousands of comments.
    session.execute(
        insert(AuditEvent),
        [{"comment_id": comment_id, "action": ERASED_ACTION, "actor": actor} for comment_id in erased],
    )
    if notify:
        record_events(session, [(comment_id, EventType.ERASED) for comment_id in erased])
    return erased


def _clean_records_of(session: Session, comment_ids: list[int]) -> None:
    """Take what names the commenter out of the verdicts and audit events of ``comment_ids``."""
    for verdict in session.scalars(select(Verdict).where(Verdict.comment_id.in_(comment_ids))):
        verdict.reasons = without_author(verdict.reasons)
    session.execute(
        update(AuditEvent)
        .where(AuditEvent.comment_id.in_(comment_ids))
        .values(note=None)
        .execution_options(synchronize_session=False)
    )
    for event in session.scalars(select(AuditEvent).where(AuditEvent.comment_id.in_(comment_ids))):
        if event.reason and (kept := without_timing(event.reason)) != event.reason:
            event.reason = kept
