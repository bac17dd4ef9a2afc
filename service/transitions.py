"""Every change of a comment's status, each a named function that writes its audit event.

The callers own the transaction: each function adds rows to the session and the
caller commits, so a status, its verdict, its audit event and its label land together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from sqlalchemy import Dialect, bindparam, cast, column, select, update, values
from sqlalchemy.orm import Session

from models import without_author
from service.driver_sql import DriverStatement, execute_rows, many_rows_cursor, multi_row_insert, numbered
from service.errors import ConflictError, NotFoundError
from service.privacy import ERASED_EMAIL
from service.reasons import without_timing
from service.statuses import Action, CommentStatus, DecisionReason
from service.tables import AuditEvent, Comment, Label, ModeratorToken, Verdict, utcnow


@dataclass(frozen=True)
class VerdictRecord:
    """The classifier's scores for one comment and where the policy routed it."""

    spam: float | None
    abuse: float | None
    reasons: list[str]
    model_version: str
    outcome: CommentStatus
    why: str

    @property
    def score(self) -> float | None:
        """The higher of the two heads: how suspicious the comment is overall."""
        present = [value for value in (self.spam, self.abuse) if value is not None]
        return max(present) if present else None


def moderator_actor(moderator: ModeratorToken) -> str:
    """How the audit trail names a moderator: ``moderator:NAME``."""
    return f"moderator:{moderator.name}"


def add_audit_event(
    session: Session,
    comment_id: int,
    action: str,
    actor: str,
    *,
    from_status: CommentStatus | None,
    to_status: CommentStatus | None,
    reason: str | None = None,
    note: str | None = None,
) -> None:
    """Add one audit event to ``session``: ``actor`` did ``action`` to the comment."""
    session.add(
        AuditEvent(
            comment_id=comment_id,
            action=action,
            actor=actor,
            from_status=from_status,
            to_status=to_status,
            reason=reason,
            note=note,
        )
    )


def _leave_received(
    session: Session, comment_id: int, outcome: CommentStatus, **scores: float | None
) -> bool:
    # The WHERE on status makes a repeated or concurrent job a no-op: only one wins.
    result = session.execute(
        update(Comment)
        .where(Comment.id == comment_id, Comment.status == CommentStatus.RECEIVED)
        .values(status=outcome, updated_at=utcnow(), **scores)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


# Each verdict's values, by the column of `comments` they go to.
_VERDICT_VALUES = {
    "comment_id": "id",
    "outcome": "status",
    "spam": "spam_score",
    "abuse": "abuse_score",
    "score": "score",
}
_VERDICT_COLUMNS = ("comment_id", "spam", "abuse", "reasons", "model_version", "outcome", "created_at")
_AUDIT_COLUMNS = ("comment_id", "action", "actor", "from_status", "to_status", "reason", "note", "created_at")


@cache
def _move_to_verdicts(dialect: Dialect, rows: int) -> DriverStatement:
    """Move ``rows`` comments still ``received`` to their verdicts' outcomes and scores in
    one statement, returning each moved comment's id and whether its email was erased.

    The WHERE on status makes a repeated or concurrent job a no-op: only one wins.
    """
    columns = Comment.__table__.c
    types = {name: columns[target].type for name, target in _VERDICT_VALUES.items()}
    # Each value cast to its column's type: PostgreSQL takes a VALUES column's type from
    # its rows, and a column of NULLs (a head the model lacks) would be text.
    verdicts = (
        values(*(column(name, kind) for name, kind in types.items()), name="verdicts")
        .data(
            [
                tuple(cast(bindparam(numbered(name, row), type_=kind), kind) for name, kind in types.items())
                for row in range(rows)
            ]
        )
        .cte("verdicts")
    )
    statement = (
        update(Comment)
        .where(Comment.id == verdicts.c.comment_id, Comment.status == bindparam("received"))
        .values(
            status=verdicts.c.outcome,
            spam_score=verdicts.c.spam,
            abuse_score=verdicts.c.abuse,
            score=verdicts.c.score,
            updated_at=bindparam("now"),
        )
        .returning(Comment.id, Comment.email_digest == bindparam("erased"))
    )
    return DriverStatement(statement, dialect)


def record_verdicts(session: Session, verdicts: Mapping[int, VerdictRecord]) -> list[int]:
    """Move each ``received`` comment to its verdict's outcome, with its verdict and audit
    event; return the ids moved, in the order of ``verdicts``. A comment that had left
    ``received`` is skipped.

    Three statements for a batch, compiled once per batch size and run in the session's
    transaction on a cursor of its DBAPI connection (`many_rows_cursor`): the guarded
    UPDATE of every comment (returning the ones it won), then the verdicts and the audit
    events as one multi-row INSERT each. With an UPDATE a comment and SQLAlchemy's
    executemany (one statement a row on PostgreSQL), a batch of 50 cost PostgreSQL 1.6
    times the CPU and the worker 2.5 times.
    """
    now = utcnow()
    cursor, dialect = many_rows_cursor(session.connection())
    try:
        won = execute_rows(
            cursor,
            lambda rows: _move_to_verdicts(dialect, rows),
            [
                {
                    "comment_id": comment_id,
                    "outcome": verdict.outcome,
                    "spam": verdict.spam,
                    "abuse": verdict.abuse,
                    "score": verdict.score,
                }
                for comment_id, verdict in verdicts.items()
            ],
            {"received": CommentStatus.RECEIVED, "now": now, "erased": ERASED_EMAIL},
        )
        # Erased since the worker read it: the reasons may quote the name it read, and the
        # policy's the time it took to post. The UPDATE holds the row until commit, so no
        # erasure comes between it and the inserts.
        erased = {int(comment_id) for comment_id, was_erased in won if was_erased}
        moved_ids = {int(comment_id) for comment_id, _erased in won}
        moved = [comment_id for comment_id in verdicts if comment_id in moved_ids]
        execute_rows(
            cursor,
            lambda rows: multi_row_insert(Verdict.__table__, _VERDICT_COLUMNS, dialect, rows),
            [
                {
                    "comment_id": comment_id,
                    "spam": verdicts[comment_id].spam,
                    "abuse": verdicts[comment_id].abuse,
                    "reasons": (
                        without_author(verdicts[comment_id].reasons)
                        if comment_id in erased
                        else verdicts[comment_id].reasons
                    ),
                    "model_version": verdicts[comment_id].model_version,
                    "outcome": verdicts[comment_id].outcome,
                    "created_at": now,
                }
                for comment_id in moved
            ],
        )
        execute_rows(
            cursor,
            lambda rows: multi_row_insert(AuditEvent.__table__, _AUDIT_COLUMNS, dialect, rows),
            [
                {
                    "comment_id": comment_id,
                    "action": "classified",
                    "actor": f"model:{verdicts[comment_id].model_version}",
                    "from_status": CommentStatus.RECEIVED,
                    "to_status": verdicts[comment_id].outcome,
                    "reason": (
                        without_timing(verdicts[comment_id].why)
                        if comment_id in erased
                        else verdicts[comment_id].why
                    )[:255],
                    "note": None,
                    "created_at": now,
                }
                for comment_id in moved
            ],
        )
    finally:
        cursor.close()
    return moved


def flag_unclassified(session: Session, comment_id: int, error: str) -> bool:
    """Hand a comment whose classification keeps failing to a human; False if already decided."""
    if not _leave_received(session, comment_id, CommentStatus.FLAGGED):
        return False
    add_audit_event(
        session,
        comment_id,
        "classification_failed",
        "worker",
        from_status=CommentStatus.RECEIVED,
        to_status=CommentStatus.FLAGGED,
        reason=f"classification failed: {error}"[:255],
    )
    return True


def _label_values(action: Action, reason: DecisionReason | None) -> tuple[bool | None, bool | None]:
    """(spam, abuse) as a training label; None where the decision says nothing about a head."""
    if action is Action.APPROVE:
        return False, False
    return (
        True if reason is DecisionReason.SPAM else None,
        True if reason is DecisionReason.ABUSE else None,
    )


@dataclass(frozen=True)
class Decision:
    """What a moderator decided about a comment, and what they saw of it, if they said:
    its status, and the time it last changed (its ``updated_at``)."""

    action: Action
    reason: DecisionReason | None = None
    note: str | None = None
    expected: CommentStatus | None = None
    expected_updated_at: datetime | None = None


def _conflict(comment: Comment, decision: Decision) -> str | None:
    """Why ``decision`` was made on another state of ``comment`` than it has now, or None."""
    if decision.expected is not None and comment.status is not decision.expected:
        return f"is {comment.status.value} now, not {decision.expected.value}"
    # A decision that kept the status (a rejection for spam made one for abuse, with a
    # note) changes the time only.
    seen = decision.expected_updated_at
    if seen is not None and comment.updated_at != seen:
        return f"last changed at {comment.updated_at.isoformat()}, not {seen.astimezone(UTC).isoformat()}"
    return None


def decide(session: Session, comment_id: int, moderator: ModeratorToken, decision: Decision) -> CommentStatus:
    """Apply a moderator's decision: new status, audit event, and the comment's training
    label; return the status the comment had before.

    Two decisions on one comment at once are applied one after the other, the later one
    winning; each audit event records the status the comment really had before it. With
    an ``expected`` status or ``expected_updated_at`` (what the moderator saw), a comment
    that has changed since raises ``ConflictError`` and nothing is applied (the caller
    rolls back).
    """
    # Writing first takes the row (PostgreSQL) or the database's write lock (SQLite)
    # before the comment is read. A read first, as SELECT ... FOR UPDATE does on
    # PostgreSQL, takes no lock at all on SQLite: both decisions read the same status.
    # The write keeps the time, which the check below compares.
    touched = session.execute(
        update(Comment)
        .where(Comment.id == comment_id)
        .values(updated_at=Comment.updated_at)
        .execution_options(synchronize_session=False)
    )
    if not getattr(touched, "rowcount", 0):
        raise NotFoundError(f"comment {comment_id} does not exist")
    comment = session.get(Comment, comment_id, populate_existing=True)
    assert comment is not None  # the UPDATE above found it, and holds it
    conflict = _conflict(comment, decision)
    if conflict is not None:
        raise ConflictError(
            f"comment {comment_id} {conflict}: it was decided, classified or erased meanwhile; "
            "look at it again before deciding"
        )
    action, reason = decision.action, decision.reason
    previous = comment.status
    comment.status = action.status
    comment.updated_at = utcnow()  # also when the status stays: the next decision must see a change
    add_audit_event(
        session,
        comment_id,
        action.value,
        moderator_actor(moderator),
        from_status=previous,
        to_status=action.status,
        reason=reason.value if reason else None,
        note=decision.note,
    )
    spam, abuse = _label_values(action, reason)
    label = session.scalar(select(Label).where(Label.comment_id == comment_id))
    if label is None:
        label = Label(comment_id=comment_id)
        session.add(label)
    label.spam, label.abuse, label.reason, label.moderator_id = spam, abuse, reason, moderator.id
    return previous
