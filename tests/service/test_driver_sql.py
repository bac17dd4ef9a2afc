"""Core statements compiled once for a dialect give the driver its SQL and parameters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import psycopg

from service.driver_sql import DriverStatement
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
