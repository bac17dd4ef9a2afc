"""Reading the review queue and the public threads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, select, tuple_
from sqlalchemy.orm import Session, selectinload

from service.errors import NotFoundError
from service.keyset import FLAGGED_LAST, RANK, decode_cursor, encode_cursor
from service.statuses import CommentStatus
from service.tables import AuditEvent, Comment

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200
# Deeper than any real listing, and shallow enough that the offset, (page - 1) * per_page,
# stays far inside the signed 64-bit integer SQL takes.
MAX_PAGE = 1_000_000_000


class Sort(StrEnum):
    """Orders the review queue can be read in."""

    QUEUE = "queue"
    """Flagged first, then the most suspicious, then the oldest."""
    SCORE = "score"
    """Most suspicious first."""
    AGE = "age"
    """Oldest first: the order comments arrived in."""


@dataclass(frozen=True)
class ListQuery:
    """What a moderator asked to see: a numbered ``page`` (with a total), else the page after ``cursor``."""

    status: CommentStatus | None = None
    thread: str | None = None
    sort: Sort = Sort.QUEUE
    page: int | None = None
    cursor: str | None = None
    per_page: int = DEFAULT_PER_PAGE


@dataclass(frozen=True)
class Page:
    """One page of comments and how to get the next one."""

    items: list[Comment]
    per_page: int
    page: int | None = None
    total: int | None = None
    next_cursor: str | None = None

    @property
    def next_page(self) -> int | None:
        """The following page number (numbered pages only), or None on the last page."""
        if self.page is None or self.total is None:
            return None
        return self.page + 1 if self.page * self.per_page < self.total else None


# Each order as ascending keys with the Python type of their values, for the cursor.
SORT_KEYS: dict[Sort, tuple[tuple[Any, type], ...]] = {
    Sort.AGE: ((Comment.created_at, datetime), (Comment.id, int)),
    Sort.SCORE: ((RANK, float), (Comment.created_at, datetime), (Comment.id, int)),
    Sort.QUEUE: ((FLAGGED_LAST, int), (RANK, float), (Comment.created_at, datetime), (Comment.id, int)),
}


def _filtered(query: ListQuery, *columns: ColumnElement[Any]) -> Select[Any]:
    statement = select(Comment, *columns).options(selectinload(Comment.verdicts))
    if query.status is not None:
        statement = statement.where(Comment.status == query.status)
    if query.thread is not None:
        statement = statement.where(Comment.thread == query.thread)
    return statement


def _numbered(session: Session, query: ListQuery, page: int) -> Page:
    columns = [column for column, _kind in SORT_KEYS[query.sort]]
    statement = _filtered(query)
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = session.scalars(
        statement.order_by(*columns).limit(query.per_page).offset((page - 1) * query.per_page)
    )
    return Page(list(rows), query.per_page, page=page, total=total)


def list_comments(session: Session, query: ListQuery) -> Page:
    """The comments matching ``query``, one page of them, verdicts loaded.

    Without a page number the listing is keyset-paginated: each page is found through
    the order's index however deep it is, and carries the cursor of the next.
    """
    if query.page is not None:
        return _numbered(session, query, query.page)
    keys = SORT_KEYS[query.sort]
    columns = [column for column, _kind in keys]
    statement = _filtered(query, *columns)
    if query.cursor:
        after = decode_cursor(query.cursor, tuple(kind for _column, kind in keys))
        bounds = [
            literal(value, column.type) if kind is datetime else literal(value)
            for (column, kind), value in zip(keys, after, strict=True)
        ]
        statement = statement.where(tuple_(*columns) > tuple_(*bounds))
    rows = session.execute(statement.order_by(*columns).limit(query.per_page + 1)).all()
    more = len(rows) > query.per_page
    rows = rows[: query.per_page]
    cursor = encode_cursor(tuple(rows[-1][1:])) if more else None
    return Page([row[0] for row in rows], query.per_page, next_cursor=cursor)


def get_comment(session: Session, comment_id: int) -> Comment:
    """One comment by id; raises ``NotFoundError``."""
    comment = session.get(Comment, comment_id, options=[selectinload(Comment.verdicts)])
    if comment is None:
        raise NotFoundError(f"comment {comment_id} does not exist")
    return comment


def list_published(session: Session, thread: str, page: int, per_page: int) -> Page:
    """Approved comments of one thread, oldest first, as the public sees them."""
    statement = select(Comment).where(Comment.thread == thread, Comment.status == CommentStatus.APPROVED)
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = session.scalars(
        statement.order_by(Comment.created_at.asc(), Comment.id.asc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return Page(list(rows), per_page, page=page, total=total)


def audit_trail(session: Session, comment_id: int) -> list[AuditEvent]:
    """Every audit event of one comment, oldest first."""
    return list(
        session.scalars(select(AuditEvent).where(AuditEvent.comment_id == comment_id).order_by(AuditEvent.id))
    )
