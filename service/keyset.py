"""Keyset pagination for the review queue: an opaque cursor instead of an offset.

A page is "the next N rows after this key", which an index answers directly however
deep the page is, where OFFSET has to walk past every earlier row. Each order is a
tuple of ascending keys so one row-value comparison (`(a, b, c) > (x, y, z)`) finds
the next page; the expressions are the ones the comments table indexes.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, FunctionElement, Integer, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.compiler import SQLCompiler

from models.records import parse_json
from service.errors import ValidationError
from service.tables import RANK_SQL
from service.validation import MAX_ID, seen_time

# Highest score first and unscored comments last, as an ascending key: the very
# expression the comments table indexes.
RANK: ColumnElement[float] = literal_column(RANK_SQL, Float)
# Flagged comments first: constant within a status, so a listing of every status reads
# each status's own index and merges them, each status's rows given this key's value as
# a literal (service/review.py `_page_of`); the expression names the order, and no
# statement runs it.
FLAGGED_LAST: ColumnElement[int] = literal_column("(CASE WHEN status = 'flagged' THEN 0 ELSE 1 END)", Integer)


class unindexed(FunctionElement[Any]):  # noqa: N801 - read as a column, as SQL functions are
    """A column that SQLite compares row by row, through no index of it; other databases
    see the column itself.

    SQLite plans without statistics: told a status and a thread or an email digest, it
    reads the whole status in its index's score order (which spares it a sort) and checks
    each row's thread or digest, where their own indexes find a thread's or a commenter's
    few comments at once. A unary ``+`` is SQLite's documented way to keep a term from
    choosing the index. PostgreSQL's statistics pick the narrower index themselves.
    """

    inherit_cache = True

    def __init__(self, column: QueryableAttribute[Any]) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _column_itself(element: unindexed, compiler: SQLCompiler, **options: Any) -> str:
    return str(compiler.process(element.clauses, **options))


@compiles(unindexed, "sqlite")
def _column_through_no_index(element: unindexed, compiler: SQLCompiler, **options: Any) -> str:
    return f"+{compiler.process(element.clauses, **options)}"


def encode_cursor(values: tuple[Any, ...]) -> str:
    """The opaque cursor naming the sort key of a page's last row."""
    plain = [value.isoformat() if isinstance(value, datetime) else value for value in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kinds: tuple[type, ...]) -> tuple[Any, ...]:
    """The sort key a cursor names; ``ValidationError`` when it was not made by ``encode_cursor``."""
    try:
        raw = parse_json(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(kinds):
            raise ValueError("wrong shape")
        return tuple(_value(kind, value) for kind, value in zip(kinds, raw, strict=True))
    except (binascii.Error, ValueError, TypeError, OverflowError):
        raise ValidationError({"cursor": "cursor is not one this listing returned"}) from None


def _value(kind: type, raw: Any) -> Any:
    # Only the values encode_cursor writes: anything else (a bool, a fractional or 65-bit id,
    # an infinite score, a time past year 9999 in UTC) would fail in the database instead.
    if kind is datetime:
        return seen_time(raw)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError("a cursor's key is a number")
    if kind is int:
        if not isinstance(raw, int) or not -MAX_ID - 1 <= raw <= MAX_ID:
            raise ValueError("a cursor's id is a 64-bit whole number")
        return raw
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError("a cursor's score is a finite number")
    return value
