"""Accepting a comment: store it and its outbox entry in one transaction.

This is the hottest path of the service, so it touches only the database: the
comment and its outbox entry (the job to classify it, recorded durably) go in with
Core INSERTs compiled once per engine and run on the DBAPI cursor (see
service/driver_sql.py), one statement on PostgreSQL, with no ORM unit of work and no
audit row; the comment row and its ``created_at`` are the record of its receipt. The
dispatcher in the workers (worker/dispatcher.py) moves outbox entries to Redis.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select

from service.driver_sql import DriverStatement
from service.errors import ValidationError
from service.privacy import KeyRing, email_digest, encrypt_email
from service.statuses import CommentStatus
from service.tables import AuditEvent, Comment, OutboxEntry, Verdict, utcnow
from service.validation import Submission
from service.webhooks import EventType, record_events

_COLUMNS = (
    "thread",
    "parent_id",
    "name",
    "email_ciphertext",
    "email_digest",
    "url",
    "body",
    "status",
    "seconds_to_submit",
    "created_at",
    "updated_at",
)
_INSERT_COMMENT = insert(Comment).values({name: bindparam(name) for name in _COLUMNS}).returning(Comment.id)
_INSERT_OUTBOX = insert(OutboxEntry).values(comment_id=bindparam("comment_id"))
# PostgreSQL runs both inserts as one statement, saving a round trip per comment.
_NEW = _INSERT_COMMENT.cte("new_comment")
_INSERT_BOTH = (
    insert(OutboxEntry).from_select(["comment_id"], select(_NEW.c.id)).returning(OutboxEntry.comment_id)
)
_PARENT_IN_THREAD = select(Comment.id).where(
    Comment.id == bindparam("parent_id"), Comment.thread == bindparam("thread")
)


# Who the verdict and audit trail of a trapped post name, and why it was rejected.
HONEYPOT_RULE = "rule:honeypot"
HONEYPOT_REASON = "the hidden honeypot field was filled in"


def _row(keys: KeyRing, submission: Submission, now: datetime) -> dict[str, Any]:
    """The comments row of ``submission``, received at ``now``, its email encrypted and digested."""
    return {
        "thread": submission.thread,
        "parent_id": submission.parent_id,
        "name": submission.name,
        "email_ciphertext": encrypt_email(keys, submission.email),
        "email_digest": email_digest(keys, submission.email),
        "url": submission.url,
        "body": submission.comment,
        "status": CommentStatus.RECEIVED,
        "seconds_to_submit": submission.seconds_to_submit,
        "created_at": now,
        "updated_at": now,
    }


def _no_parent(row: dict[str, Any]) -> ValidationError:
    return ValidationError({"parent_id": f"parent_id {row['parent_id']} is not a comment in this thread"})


@dataclass(frozen=True)
class Receipt:
    """What the intake tells the poster: the new comment's id and status."""

    id: int
    status: CommentStatus


class Intake:
    """Stores new comments in one engine's database; built once per process."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        self._engine = engine
        self._dialect = dialect
        self._dbapi_error = dialect.loaded_dbapi.Error
        self._one_statement = dialect.name == "postgresql"
        self._insert_both = DriverStatement(_INSERT_BOTH, dialect)
        self._insert_comment = DriverStatement(_INSERT_COMMENT, dialect)
        self._insert_outbox = DriverStatement(_INSERT_OUTBOX, dialect)
        self._parent = DriverStatement(_PARENT_IN_THREAD, dialect)

    def submit(self, keys: KeyRing, submission: Submission) -> Receipt:
        """Store ``submission``, its email encrypted, and its classification job; commit; return its receipt.

        Raises ``ValidationError`` when ``parent_id`` names no comment in the same thread;
        then nothing is written. The foreign key still guards the insert against a parent
        deleted in between.
        """
        row = _row(keys, submission, utcnow())
        connection = self._engine.raw_connection()
        driver: Any = connection.driver_connection
        cursor = None
        try:
            cursor = connection.cursor()
            if self._one_statement:
                # One statement is atomic on its own: autocommit makes it one round trip
                # instead of three (BEGIN, INSERT, COMMIT).
                driver.autocommit = True
            try:
                if submission.parent_id is not None:
                    self._check_parent(cursor, row)
                comment_id = self._store(cursor, row)
                connection.commit()
            finally:
                # A connection the server dropped cannot change mode; it is discarded below.
                if self._one_statement and not driver.broken:
                    driver.autocommit = False
        except self._dbapi_error as exc:
            # SQLAlchemy does not see errors raised on the bare cursor, so a connection the
            # server dropped, or one left in autocommit, is discarded here (only this one)
            # rather than handed to the next request.
            left_in_autocommit = self._one_statement and driver.autocommit
            if left_in_autocommit or self._dialect.is_disconnect(exc, driver, cursor):
                connection.invalidate(exc)
            raise
        finally:
            # Back to the pool, which rolls back whatever a failure left open.
            connection.close()
        return Receipt(comment_id, CommentStatus.RECEIVED)

    def submit_trapped(self, keys: KeyRing, submission: Submission, *, notify: bool) -> Receipt:
        """Store a post that filled in the honeypot field as rejected spam, with its verdict
        and audit event (and, with ``notify``, its webhook event), and no classification job;
        return the receipt any post gets.

        Not the hot path: it runs through SQLAlchemy's own execution. Raises
        ``ValidationError`` for a ``parent_id`` outside the thread, as ``submit`` does.
        """
        now = utcnow()
        row = {**_row(keys, submission, now), "status": CommentStatus.REJECTED}
        with self._engine.begin() as connection:
            if (
                submission.parent_id is not None
                and connection.execute(_PARENT_IN_THREAD, row).first() is None
            ):
                raise _no_parent(row)
            comment_id = int(connection.execute(_INSERT_COMMENT, row).scalar_one())
            connection.execute(
                insert(Verdict).values(
                    comment_id=comment_id,
                    reasons=[HONEYPOT_REASON],
                    model_version=HONEYPOT_RULE,
                    outcome=CommentStatus.REJECTED,
                    created_at=now,
                )
            )
            connection.execute(
                insert(AuditEvent).values(
                    comment_id=comment_id,
                    action="classified",
                    actor=HONEYPOT_RULE,
                    from_status=CommentStatus.RECEIVED,
                    to_status=CommentStatus.REJECTED,
                    reason=HONEYPOT_REASON,
                    created_at=now,
                )
            )
            if notify:
                record_events(connection, [(comment_id, EventType.REJECTED)])
        # The bot is told what any poster is told, so it learns nothing of the trap.
        return Receipt(comment_id, CommentStatus.RECEIVED)

    def _check_parent(self, cursor: Any, row: dict[str, Any]) -> None:
        cursor.execute(self._parent.sql, self._parent.parameters(row))
        if cursor.fetchone() is None:
            raise _no_parent(row)

    def _store(self, cursor: Any, row: dict[str, Any]) -> int:
        if self._one_statement:
            cursor.execute(self._insert_both.sql, self._insert_both.parameters(row))
            return int(cursor.fetchone()[0])
        cursor.execute(self._insert_comment.sql, self._insert_comment.parameters(row))
        comment_id = int(cursor.fetchone()[0])
        cursor.execute(self._insert_outbox.sql, self._insert_outbox.parameters({"comment_id": comment_id}))
        return comment_id
