"""Core statements compiled once for a dialect give the driver its SQL and parameters."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, create_engine, insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import psycopg

from service.driver_sql import (
    ROWS_A_STATEMENT,
    DriverStatement,
    execute_rows,
    many_rows_cursor,
    multi_row_insert,
    numbered,
)
from service.statuses import CommentStatus
from service.tables import Comment

_STATEMENT = insert(Comment).values(
    thread=bindparam("thread"),
    name=bindparam("name"),
    status=bindparam("status"),
    created_at=bindparam("created_at"),
    updated_at=bindparam("created_at"),
)
_WHEN = datetime(2026, 11, 28, 8, 0, 1, 250, tzinfo=UTC)
_VALUES = {"name": "Ann", "thread": "/a/1", "status": CommentStatus.RECEIVED, "created_at": _WHEN}


def test_positional_driver_gets_values_in_sql_order_through_each_type() -> None:
    statement = DriverStatement(_STATEMENT, sqlite.dialect())
    assert statement.sql.startswith(
        "INSERT INTO comments (thread, name, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"
    )
    # The enum is stored by value, the timestamp in SQLAlchemy's SQLite text form.
    assert statement.parameters(_VALUES) == (
        "/a/1",
        "Ann",
        "received",
        "2026-11-28 08:00:01.000250",
        "2026-11-28 08:00:01.000250",
    )


def test_named_driver_gets_a_mapping() -> None:
    statement = DriverStatement(_STATEMENT, psycopg.dialect())
    assert "%(thread)s" in statement.sql and "%(created_at)s" in statement.sql
    assert statement.parameters(_VALUES) == {
        "thread": "/a/1",
        "name": "Ann",
        "status": "received",
        "created_at": _WHEN,
    }


def test_a_missing_value_names_its_parameter() -> None:
    statement = DriverStatement(_STATEMENT, sqlite.dialect())
    with pytest.raises(KeyError, match="created_at"):
        statement.parameters({name: value for name, value in _VALUES.items() if name != "created_at"})


def test_python_side_column_defaults_are_not_filled_in() -> None:
    # `updated_at` has a Python default, which only SQLAlchemy's own execution applies.
    given = {name: bindparam(name) for name in _VALUES}
    statement = DriverStatement(insert(Comment).values(given), sqlite.dialect())
    with pytest.raises(KeyError, match="updated_at"):
        statement.parameters(_VALUES)


@pytest.mark.parametrize("dialect", [sqlite.dialect(), psycopg.dialect()], ids=["positional", "named"])
def test_a_value_the_statement_holds_is_given_converted_without_being_asked_for(dialect: Any) -> None:
    held = select(Comment.id).where(
        Comment.thread == bindparam("thread"), Comment.status == CommentStatus.APPROVED
    )
    parameters = DriverStatement(held, dialect).parameters({"thread": "/a/1"})
    given = parameters if isinstance(parameters, tuple) else tuple(parameters.values())
    assert given == ("/a/1", "approved")


_NOTES = Table("notes", MetaData(), Column("id", Integer, primary_key=True), Column("text", String))


def _notes(count: int = 0) -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    connection.executemany("INSERT INTO notes VALUES (?, ?)", [(number, None) for number in range(count)])
    return connection


def test_rows_go_in_as_one_insert_a_run_and_every_row_is_stored() -> None:
    connection, runs = _notes(), []

    def statement_for(rows: int) -> DriverStatement:
        runs.append(rows)
        return multi_row_insert(_NOTES, ("id", "text"), sqlite.dialect(), rows)

    rows = [{"id": number, "text": f"note {number}"} for number in range(2 * ROWS_A_STATEMENT + 3)]
    assert execute_rows(connection.cursor(), statement_for, rows) == []
    assert runs == [ROWS_A_STATEMENT, ROWS_A_STATEMENT, 3]
    stored = connection.execute("SELECT id, text FROM notes ORDER BY id").fetchall()
    assert stored == [(row["id"], row["text"]) for row in rows]


def test_the_rows_every_run_returns_come_back_together() -> None:
    connection = _notes(count=250)

    def statement_for(rows: int) -> DriverStatement:
        ids = [bindparam(numbered("id", row)) for row in range(rows)]
        wanted = select(_NOTES.c.id).where(_NOTES.c.id.in_(ids), _NOTES.c.id >= bindparam("least"))
        return DriverStatement(wanted, sqlite.dialect())

    rows = [{"id": number} for number in range(0, 250, 2)]
    found = execute_rows(connection.cursor(), statement_for, rows, {"least": 100})
    assert sorted(found) == [(number,) for number in range(100, 250, 2)]


def test_statements_over_many_rows_reach_psycopg_in_postgresql_s_own_placeholders(
    postgres_schema: str,
) -> None:
    engine = create_engine(postgres_schema)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("CREATE TEMPORARY TABLE notes (id integer PRIMARY KEY, text text)")
            cursor, dialect = many_rows_cursor(connection)
            statement = multi_row_insert(_NOTES, ("id", "text"), dialect, 2)
            assert "VALUES ($1::INTEGER, $2::VARCHAR), ($3::INTEGER, $4::VARCHAR)" in statement.sql
            rows = [{"id": number, "text": f"note {number}"} for number in range(ROWS_A_STATEMENT + 1)]
            execute_rows(cursor, lambda count: multi_row_insert(_NOTES, ("id", "text"), dialect, count), rows)
            stored = connection.exec_driver_sql("SELECT id, text FROM notes ORDER BY id").all()
        assert [tuple(row) for row in stored] == [(row["id"], row["text"]) for row in rows]
    finally:
        engine.dispose()


def test_other_drivers_get_their_own_cursor_and_dialect(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'notes.db'}")
    try:
        with engine.connect() as connection:
            cursor, dialect = many_rows_cursor(connection)
            assert isinstance(cursor, sqlite3.Cursor) and dialect is connection.dialect
    finally:
        engine.dispose()
