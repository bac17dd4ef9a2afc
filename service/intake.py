"""Accepting a comment: count it for flood control, store it and its outbox entry, in one transaction.

This is the hottest path of the service, so it touches only the database: the flood
counters (service/flood.py), the comment and its outbox entry (the job to classify it,
recorded durably) go in with Core statements compiled once per engine and run on the
DBAPI cursor (see service/driver_sql.py), one statement on PostgreSQL, with no ORM unit
of work and no audit row; the comment row and its ``created_at`` are the record of its
receipt. The dispatcher in the workers (worker/dispatcher.py) moves outbox entries to
Redis.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Integer, LargeBinary, Select, and_, bindparam, insert, or_, select
from sqlalchemy.sql import ClauseElement

from service.driver_sql import DriverStatement
from service.errors import ValidationError
from service.flood import (
    TooManyCommentsError,
    Window,
    count_statement,
    milliseconds,
    read_counts,
    refusal,
    window_parameters,
)
from service.privacy import KeyRing, email_digest, encrypt_email
from service.statuses import CommentStatus
from service.tables import AuditEvent, Comment, OutboxEntry, Verdict, utcnow
from service.validation import Submission, SubmissionError
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
# A reply's parent must be a comment the site shows: a reply to a hidden one could never
# be shown in its place, and a different answer for a hidden id would tell it exists.
_PARENT_IN_THREAD = select(Comment.id).where(
    Comment.id == bindparam("parent_id"),
    Comment.thread == bindparam("thread"),
    Comment.status == CommentStatus.APPROVED,
)


def _counted_insert(dialect: str, windows: int) -> Select[Any]:
    """PostgreSQL's intake as one statement: count the post in its ``windows`` flood
    counters and, unless one is over its limit, insert the comment and its outbox entry;
    one row per counter (key, count, window end, the new comment's id or NULL)."""
    counted = count_statement(dialect, windows).cte("counted")
    over = or_(
        *(
            and_(
                counted.c.key == bindparam(f"flood_key_{index}", type_=LargeBinary),
                counted.c.count > bindparam(f"flood_limit_{index}", type_=Integer),
            )
            for index in range(windows)
        )
    )
    comment = Comment.__table__.c
    values = select(*(bindparam(name, type_=comment[name].type) for name in _COLUMNS)).where(
        ~select(counted.c.key).where(over).exists()
    )
    new_comment = insert(Comment).from_select(list(_COLUMNS), values).returning(Comment.id).cte("new_comment")
    new_outbox = (
        insert(OutboxEntry)
        .from_select(["comment_id"], select(new_comment.c.id))
        .returning(OutboxEntry.comment_id)
        .cte("new_outbox")
    )
    stored = select(new_outbox.c.comment_id).scalar_subquery()
    return select(counted.c.key, counted.c.count, counted.c.window_ends_ms, stored)


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
    # Met in the ordinary course when a moderator hides a comment while a reader writes a
    # reply to it, so the commenter is told that rather than that the form is broken. Any
    # id that names no published comment gets the same words: a hidden one is not told apart.
    return SubmissionError(
        {"parent_id": f"parent_id {row['parent_id']} is not a published comment in this thread"},
        {"parent_id": PARENT_NOT_SHOWN},
    )


PARENT_NOT_SHOWN = (
    "The comment you replied to is no longer shown, so your reply was not sent. "
    "You can post it as a new comment instead."
)


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
        # Statements by builder and number of windows (a handful, fixed by the
        # configuration): compiled on first use.
        self._by_windows: dict[tuple[Callable[[str, int], ClauseElement], int], DriverStatement] = {}

    def submit(self, keys: KeyRing, submission: Submission, windows: Sequence[Window] = ()) -> Receipt:
        """Count the post in its flood-control ``windows``, then store ``submission``, its
        email encrypted, and its classification job; commit; return its receipt.

        Raises ``TooManyCommentsError`` when a window is over its limit, and
        ``ValidationError`` when ``parent_id`` names no published comment in the same thread; then
        no comment is written, but the post stays counted. The foreign key still guards
        the insert against a parent deleted in between.
        """
        now = utcnow()
        now_ms = milliseconds(now)
        row = _row(keys, submission, now)
        # One statement is atomic on its own: on PostgreSQL autocommit makes it one round
        # trip instead of three (BEGIN, INSERT, COMMIT).
        with self._cursor(autocommit=self._one_statement) as (connection, cursor):
            if submission.parent_id is not None and not self._parent_exists(cursor, row):
                refused = self._count(cursor, windows, now_ms)
                connection.commit()
                raise refused or _no_parent(row)
            if self._one_statement:
                comment_id, refused = self._store_counted_in_one_statement(cursor, row, windows, now_ms)
            else:
                refused = self._count(cursor, windows, now_ms)
                comment_id = None if refused else self._store(cursor, row)
            connection.commit()
        if refused is not None:
            raise refused
        if comment_id is None:
            raise RuntimeError("the database stored no comment for a post within its limits")
        return Receipt(comment_id, CommentStatus.RECEIVED)

    def count(self, windows: Sequence[Window]) -> None:
        """Count a post that will not be stored as a classified comment (a broken post, or
        one caught by the honeypot) in its flood-control ``windows``; commit.

        Raises ``TooManyCommentsError`` when a window is over its limit.
        """
        if not windows:
            return
        with self._cursor(autocommit=self._one_statement) as (connection, cursor):
            now_ms = milliseconds(utcnow())
            refused = self._count(cursor, windows, now_ms)
            connection.commit()
        if refused is not None:
            raise refused

    @contextmanager
    def _cursor(self, *, autocommit: bool) -> Iterator[tuple[Any, Any]]:
        """A pooled connection and a cursor on it, in autocommit for the block if asked."""
        connection = self._engine.raw_connection()
        driver: Any = connection.driver_connection
        cursor = None
        try:
            cursor = connection.cursor()
            if autocommit:
                driver.autocommit = True
            try:
                yield connection, cursor
            finally:
                # A connection the server dropped cannot change mode; it is discarded below.
                if autocommit and not driver.broken:
                    driver.autocommit = False
        except self._dbapi_error as exc:
            # SQLAlchemy does not see errors raised on the bare cursor, so a connection the
            # server dropped, or one left in autocommit, is discarded here (only this one)
            # rather than handed to the next request.
            left_in_autocommit = autocommit and driver.autocommit
            if left_in_autocommit or self._dialect.is_disconnect(exc, driver, cursor):
                connection.invalidate(exc)
            raise
        finally:
            # Back to the pool, which rolls back whatever a failure left open.
            connection.close()

    def submit_trapped(self, keys: KeyRing, submission: Submission, *, notify: bool) -> Receipt:
        """Store a post that filled in the honeypot field as rejected spam, with its verdict
        and audit event (and, with ``notify``, its webhook event), and no classification job;
        return the receipt any post gets.

        Not the hot path: it runs through SQLAlchemy's own execution. Raises
        ``ValidationError`` for a ``parent_id`` that names no published comment of the
        thread, as ``submit`` does.
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

    def _for_windows(self, build: Callable[[str, int], ClauseElement], windows: int) -> DriverStatement:
        statement = self._by_windows.get((build, windows))
        if statement is None:
            statement = DriverStatement(build(self._dialect.name, windows), self._dialect)
            self._by_windows[build, windows] = statement
        return statement

    def _parent_exists(self, cursor: Any, row: dict[str, Any]) -> bool:
        cursor.execute(self._parent.sql, self._parent.parameters(row))
        return cursor.fetchone() is not None

    def _count(self, cursor: Any, windows: Sequence[Window], now_ms: int) -> TooManyCommentsError | None:
        if not windows:
            return None
        statement = self._for_windows(count_statement, len(windows))
        cursor.execute(statement.sql, statement.parameters(window_parameters(windows, now_ms)))
        return refusal(windows, read_counts(cursor.fetchall()), now_ms)

    def _store(self, cursor: Any, row: dict[str, Any]) -> int:
        cursor.execute(self._insert_comment.sql, self._insert_comment.parameters(row))
        comment_id = int(cursor.fetchone()[0])
        cursor.execute(self._insert_outbox.sql, self._insert_outbox.parameters({"comment_id": comment_id}))
        return comment_id

    def _store_counted_in_one_statement(
        self, cursor: Any, row: dict[str, Any], windows: Sequence[Window], now_ms: int
    ) -> tuple[int | None, TooManyCommentsError | None]:
        if not windows:
            cursor.execute(self._insert_both.sql, self._insert_both.parameters(row))
            return int(cursor.fetchone()[0]), None
        statement = self._for_windows(_counted_insert, len(windows))
        cursor.execute(statement.sql, statement.parameters({**row, **window_parameters(windows, now_ms)}))
        rows = cursor.fetchall()
        comment_id = rows[0][3]
        return (None if comment_id is None else int(comment_id)), refusal(windows, read_counts(rows), now_ms)
