"""Every keyset listing of the review queue reads the comments table through an index,
in that index's order: checked on SQLite's query plans, one per status and order."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event

from service.db import make_engine, make_session_factory, upgrade
from service.keyset import encode_cursor
from service.review import ListQuery, Sort, list_comments, sort_keys
from service.statuses import CommentStatus


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated, empty SQLite database."""
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('plans') / 'plans.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def _plan_of_the_keys(engine: Engine, query: ListQuery) -> list[str]:
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with make_session_factory(engine)() as session:
            list_comments(session, query)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    # The page's keys; the others count the listing (numbered pages) or fetch rows by id.
    ((statement, parameters),) = [(sql, values) for sql, values in statements if "key_0" in sql]
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    return [str(row[3]) for row in rows]


def _cursor(status: CommentStatus | None, sort: Sort) -> str:
    """A cursor of the order's shape, as a later page sends it."""
    examples: dict[type, Any] = {datetime: datetime(2026, 11, 28, 12, tzinfo=UTC), int: 5, float: -0.5}
    values = [examples[kind] for _column, kind in sort_keys(status, sort)]
    if status is None and sort is Sort.QUEUE:
        values[0] = 1  # past the flagged comments, among the others
    return encode_cursor(tuple(values))


@pytest.mark.parametrize("page", ["first", "later", "numbered"])
@pytest.mark.parametrize("sort", list(Sort))
@pytest.mark.parametrize("status", [None, *CommentStatus])
def test_each_listing_reads_an_index_in_its_order(
    engine: Engine, status: CommentStatus | None, sort: Sort, page: str
) -> None:
    query = ListQuery(status=status, sort=sort)
    if page == "later":
        query = ListQuery(status=status, sort=sort, cursor=_cursor(status, sort))
    elif page == "numbered":
        query = ListQuery(status=status, sort=sort, page=3)
    plan = _plan_of_the_keys(engine, query)
    reads = [line for line in plan if line.split()[1:2] == ["comments"]]
    assert reads, plan
    # No read of the whole table, nor of an index while skipping the other statuses' rows.
    for line in reads:
        assert "USING" in line and "INDEX" in line, plan
        if status is not None:
            assert line.startswith("SEARCH") and "(status=?" in line, plan
    # Sorting is left only for merging the first rows of each status (at most a page each).
    for before, line in itertools.pairwise(plan):
        if line.startswith("USE TEMP B-TREE"):
            assert before.startswith("SCAN anon_"), plan


@pytest.mark.parametrize("sort", list(Sort))
@pytest.mark.parametrize("status", [None, *CommentStatus])
def test_a_commenters_listing_reads_their_comments_by_the_digest(
    engine: Engine, status: CommentStatus | None, sort: Sort
) -> None:
    # Read through a status's order instead, every comment of that status was checked for the
    # digest: 1.3 s for one commenter among 300,000 approved comments.
    plan = _plan_of_the_keys(engine, ListQuery(status=status, sort=sort, commenter=b"\x01" * 32))
    reads = [line for line in plan if line.split()[1:2] == ["comments"]]
    assert reads, plan
    for line in reads:
        assert line.startswith("SEARCH"), plan
        assert "USING INDEX ix_comments_email_digest (email_digest=?)" in line, plan


@pytest.mark.parametrize("sort", list(Sort))
@pytest.mark.parametrize("status", [None, *CommentStatus])
def test_a_threads_listing_reads_its_comments_by_the_thread(
    engine: Engine, status: CommentStatus | None, sort: Sort
) -> None:
    # In score order SQLite read the whole status through its score index, checking each
    # row's thread: 1.1 s for a thread's comments among 300,000 approved ones.
    plan = _plan_of_the_keys(engine, ListQuery(status=status, sort=sort, thread="/2026/11/harbour"))
    reads = [line for line in plan if line.split()[1:2] == ["comments"]]
    assert reads, plan
    for line in reads:
        assert line.startswith("SEARCH"), plan
        assert "INDEX ix_comments_thread_status_created_at (thread=?)" in line, plan
