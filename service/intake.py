"""Accepting a comment: store it and its outbox entry in one transaction.

This is the hottest path of the service, so it touches only the database: the
comment and its outbox entry (the job to classify it, recorded durably) go in with
Core INSERTs, one statement on PostgreSQL, with no ORM unit of work and no audit
row; the comment row and its ``created_at`` are the record of its receipt. The
dispatcher in the workers (worker/dispatcher.py) moves outbox entries to Redis.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, bindparam, insert, select

from service.errors import ValidationError
from service.privacy import KeyRing, email_digest, encrypt_email
from service.statuses import CommentStatus
from service.tables import Comment, OutboxEntry, utcnow
from service.validation import Submission

_COLUMNS = (
    "thread",
    "parent_id",
    "name",
    "email_ciphertext",
    "email_digest",
    "url",
    "body",
    "status",
    "created_at",
    "updated_at",
)
# Built once: SQLAlchemy caches the compiled form of a statement object it sees again.
_INSERT_COMMENT = insert(Comment).values({name: bindparam(name) for name in _COLUMNS}).returning(Comment.id)
_INSERT_OUTBOX = insert(OutboxEntry).values(comment_id=bindparam("comment_id"))
# PostgreSQL runs both inserts as one statement, saving a round trip per comment.
_NEW = _INSERT_COMMENT.cte("new_comment")
_INSERT_BOTH = (
    insert(OutboxEntry).from_select(["comment_id"], select(_NEW.c.id)).returning(OutboxEntry.comment_id)
)


@dataclass(frozen=True)
class Receipt:
    """What the intake tells the poster: the new comment's id and status."""

    id: int
    status: CommentStatus


def _check_parent(connection: Connection, submission: Submission) -> None:
    if submission.parent_id is None:
        return
    parent = connection.scalar(
        select(Comment.id).where(Comment.id == submission.parent_id, Comment.thread == submission.thread)
    )
    if parent is None:
        problem = f"parent_id {submission.parent_id} is not a comment in this thread"
        raise ValidationError({"parent_id": problem})


def store_comment(connection: Connection, keys: KeyRing, submission: Submission) -> int:
    """Insert a new comment in ``received``, its email encrypted, and its outbox entry; return its id.

    Raises ``ValidationError`` when ``parent_id`` names no comment in the same thread.
    """
    _check_parent(connection, submission)
    now = utcnow()
    row = {
        "thread": submission.thread,
        "parent_id": submission.parent_id,
        "name": submission.name,
        "email_ciphertext": encrypt_email(keys, submission.email),
        "email_digest": email_digest(keys, submission.email),
        "url": submission.url,
        "body": submission.comment,
        "status": CommentStatus.RECEIVED,
        "created_at": now,
        "updated_at": now,
    }
    if connection.dialect.name == "postgresql":
        return int(connection.execute(_INSERT_BOTH, row).scalar_one())
    comment_id = int(connection.execute(_INSERT_COMMENT, row).scalar_one())
    connection.execute(_INSERT_OUTBOX, {"comment_id": comment_id})
    return comment_id


def submit_comment(engine: Engine, keys: KeyRing, submission: Submission) -> Receipt:
    """Store ``submission`` and its classification job durably; the commit ends the request's work.

    On PostgreSQL the one INSERT statement is atomic on its own, so it runs in autocommit:
    one round trip instead of three (BEGIN, INSERT, COMMIT). The parent check before it
    only reads, and the foreign key still guards the insert.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            comment_id = store_comment(connection, keys, submission)
    else:
        with engine.begin() as connection:
            comment_id = store_comment(connection, keys, submission)
    return Receipt(comment_id, CommentStatus.RECEIVED)
