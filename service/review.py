"""Reading the review queue and the public threads."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session, selectinload

from service.errors import NotFoundError
from service.statuses import CommentStatus
from service.tables import AuditEvent, Comment

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200


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
    """What a moderator asked to see."""

    status: CommentStatus | None = None
    thread: str | None = None
    sort: Sort = Sort.QUEUE
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE


@dataclass(frozen=True)
class Page:
    """One page of comments and where it sits in the whole."""

    items: list[Comment]
    page: int
    per_page: int
    total: int

    @property
    def next_page(self) -> int | None:
        """The following page number, or None on the last page."""
        return self.page + 1 if self.page * self.per_page < self.total else None


def _ordered(statement: Select[tuple[Comment]], sort: Sort) -> Select[tuple[Comment]]:
    oldest = (Comment.created_at.asc(), Comment.id.asc())
    if sort is Sort.AGE:
        return statement.order_by(*oldest)
    by_score = (Comment.score.desc().nulls_last(), *oldest)
    if sort is Sort.SCORE:
        return statement.order_by(*by_score)
    flagged_first = case((Comment.status == CommentStatus.FLAGGED, 0), else_=1)
    return statement.order_by(flagged_first, *by_score)


def list_comments(session: Session, query: ListQuery) -> Page:
    """The comments matching ``query``, one page of them, verdicts loaded."""
    statement = select(Comment)
    if query.status is not None:
        statement = statement.where(Comment.status == query.status)
    if query.thread is not None:
        statement = statement.where(Comment.thread == query.thread)
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = session.scalars(
        _ordered(statement, query.sort)
        .options(selectinload(Comment.verdicts))
        .limit(query.per_page)
        .offset((query.page - 1) * query.per_page)
    )
    return Page(list(rows), query.page, query.per_page, total)


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
    return Page(list(rows), page, per_page, total)


def audit_trail(session: Session, comment_id: int) -> list[AuditEvent]:
    """Every status change of one comment, oldest first."""
    return list(
        session.scalars(select(AuditEvent).where(AuditEvent.comment_id == comment_id).order_by(AuditEvent.id))
    )
