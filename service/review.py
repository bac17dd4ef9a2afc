"""Reading the review queue and the public threads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, func, literal, select, tuple_, union_all
from sqlalchemy.orm import Session, joinedload, selectinload

from service.errors import NotFoundError
from service.keyset import FLAGGED_LAST, RANK, decode_cursor, encode_cursor, unindexed
from service.privacy import ERASED_EMAIL
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
    commenter: bytes | None = None
    """The keyed email digest of one commenter (``commenter_of``): their comments only."""


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


def sort_keys(status: CommentStatus | None, sort: Sort) -> tuple[tuple[Any, type], ...]:
    """The ascending keys a listing of ``status`` (None: every status) in ``sort`` orders by.

    Within one status, flagged-first puts every row level, so the queue order is the
    score order and is read from that status's own score index.
    """
    if sort is Sort.QUEUE and status is not None:
        return SORT_KEYS[Sort.SCORE]
    return SORT_KEYS[sort]


def _filtered(
    query: ListQuery, *columns: ColumnElement[Any], status: CommentStatus | None = None
) -> Select[Any]:
    """``columns`` of the query's comments (those of ``status`` in place of the query's, if given)."""
    statement = select(*columns)
    status = status or query.status
    # A thread's comments, or a commenter's, are found by the thread's or the digest's index,
    # and only then by status.
    narrowed = query.thread is not None or query.commenter is not None
    if status is not None:
        statement = statement.where((unindexed(Comment.status) if narrowed else Comment.status) == status)
    if query.thread is not None:
        statement = statement.where(Comment.thread == query.thread)
    if query.commenter is not None:
        statement = statement.where(Comment.email_digest == query.commenter)
    return statement


def commenter_of(session: Session, comment_id: int) -> bytes:
    """The keyed digest of the email comment ``comment_id`` was posted with, which every
    comment of the same commenter carries (in any letter case); ``ValueError`` when there
    is none: no such comment, or its commenter's data was erased."""
    digest = session.scalar(select(Comment.email_digest).where(Comment.id == comment_id))
    if digest is None:
        raise ValueError(f"names no comment: {comment_id} does not exist")
    # Every erased comment has the same empty digest: they would read as one commenter's.
    if digest == ERASED_EMAIL:
        raise ValueError(f"names comment {comment_id}, whose commenter's data was erased")
    return bytes(digest)


def list_comments(session: Session, query: ListQuery) -> Page:
    """The comments matching ``query``, one page of them, verdicts loaded.

    Without a page number the listing is keyset-paginated: each page is found through
    the order's index however deep it is, and carries the cursor of the next. The
    indexes are per status, so a listing of every status takes each status's first rows
    and merges them. A numbered page counts the listing and skips to its place.
    """
    keys = sort_keys(query.status, query.sort)
    if query.page is not None:
        total = count_comments(session, query)
        skip = (query.page - 1) * query.per_page
        keyed = _merged_keys(session, query, keys, None, skip, query.per_page)
        return Page(_loaded(session, keyed), query.per_page, page=query.page, total=total)
    after = decode_cursor(query.cursor, tuple(kind for _column, kind in keys)) if query.cursor else None
    keyed = _merged_keys(session, query, keys, after, 0, query.per_page + 1)
    more = len(keyed) > query.per_page
    keyed = keyed[: query.per_page]
    cursor = encode_cursor(tuple(keyed[-1])) if more else None
    return Page(_loaded(session, keyed), query.per_page, next_cursor=cursor)


def count_comments(session: Session, query: ListQuery, *, at_most: int | None = None) -> int:
    """How many comments ``query`` lists on all its pages together; with ``at_most``, counted
    no further than that many, so that the count reads a bounded part of the index however
    long the list is."""
    if at_most is None:
        return session.scalar(_filtered(query, func.count(Comment.id))) or 0
    first = _filtered(query, Comment.id.expression).limit(at_most).subquery()
    return session.scalar(select(func.count()).select_from(first)) or 0


def _merged_keys(
    session: Session,
    query: ListQuery,
    keys: tuple[tuple[Any, type], ...],
    after: tuple[Any, ...] | None,
    skip: int,
    take: int,
) -> list[Any]:
    """The sort keys of ``take`` comments, ``skip`` rows after ``after`` (or the start),
    from each status's first ``skip + take`` rows merged."""
    statuses = [query.status] if query.status is not None else list(CommentStatus)
    branches = [
        branch
        for status in statuses
        if (branch := _page_of(query, keys, after, skip + take, status)) is not None
    ]
    if not branches:
        return []
    merged = union_all(*(select(branch) for branch in branches)).subquery()
    return list(session.execute(select(merged).order_by(*merged.c).offset(skip).limit(take)).all())


def _loaded(session: Session, keyed: list[Any]) -> list[Comment]:
    """The comments a page's keys name, in that order, with their verdicts."""
    # Each order ends with the id: a row of keys names its comment.
    ids = [row[-1] for row in keyed]
    # Verdicts joined in, not selected after: one round trip, and a page's comments have
    # one or two verdicts each (selectin loading was about a third of a page's time).
    loaded = session.scalars(
        select(Comment).where(Comment.id.in_(ids)).options(joinedload(Comment.verdicts))
    ).unique()
    by_id = {comment.id: comment for comment in loaded}
    return [by_id[comment_id] for comment_id in ids]


def _page_of(
    query: ListQuery,
    keys: tuple[tuple[Any, type], ...],
    after: tuple[Any, ...] | None,
    limit: int,
    status: CommentStatus,
) -> Any:
    """The keys of the first ``limit`` comments of ``status`` after ``after`` in the order
    of ``keys``, as a subquery (SQLite takes a LIMIT inside a UNION only there); None when
    none of them can follow ``after``."""
    leading: list[ColumnElement[Any]] = []
    if keys[0][0] is FLAGGED_LAST:
        # Flagged-first is a constant within a status: the rest is its score order.
        level = 0 if status is CommentStatus.FLAGGED else 1
        if after is not None:
            if level < after[0]:
                return None
            after = after[1:] if level == after[0] else None
        leading, keys = [literal(level, Integer)], keys[1:]
    columns = [column for column, _kind in keys]
    labelled = [column.label(f"key_{index}") for index, column in enumerate([*leading, *columns])]
    statement = _filtered(query, *labelled, status=status)
    if after is not None:
        values = [
            literal(value, column.type) if kind is datetime else literal(value)
            for (column, kind), value in zip(keys, after, strict=True)
        ]
        statement = statement.where(tuple_(*columns) > tuple_(*values))
    return statement.order_by(*columns).limit(limit).subquery()


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


def published_parents(session: Session, comments: list[Comment]) -> set[int]:
    """The ids, among the parents of ``comments``, of those approved now.

    A parent approved once and hidden later leaves its replies published; the public
    listing then shows them without it, as comments of their own.
    """
    parent_ids = {comment.parent_id for comment in comments if comment.parent_id is not None}
    if not parent_ids:
        return set()
    return set(
        session.scalars(
            select(Comment.id).where(Comment.id.in_(parent_ids), Comment.status == CommentStatus.APPROVED)
        )
    )


def parents_of(session: Session, comments: Sequence[Comment]) -> dict[int, Comment]:
    """The comments that ``comments`` reply to, by id, whatever their status; one query."""
    parent_ids = {comment.parent_id for comment in comments if comment.parent_id is not None}
    if not parent_ids:
        return {}
    parents = session.scalars(select(Comment).where(Comment.id.in_(parent_ids)))
    return {parent.id: parent for parent in parents}


def last_moves(session: Session, comment_ids: Sequence[int]) -> dict[int, AuditEvent]:
    """The audit event that put each of ``comment_ids`` in its status: the policy's routing
    (its reason says why, "spam 0.62 at or above review threshold 0.35") or a moderator's
    decision; one query. A comment still ``received`` has none."""
    if not comment_ids:
        return {}
    # Reading the email, exporting or erasing the commenter's data moves no comment.
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.comment_id.in_(comment_ids), AuditEvent.to_status.is_not(None))
        .order_by(AuditEvent.id)
    )
    return {event.comment_id: event for event in events}


def audit_trail(session: Session, comment_id: int) -> list[AuditEvent]:
    """Every audit event of one comment, oldest first."""
    return list(
        session.scalars(select(AuditEvent).where(AuditEvent.comment_id == comment_id).order_by(AuditEvent.id))
    )
