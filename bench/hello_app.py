"""The stack alone: Flask apps that parse the comment JSON and answer like the intake.

The intake benchmark runs them under the same gunicorn settings as the service:
``create_app`` does nothing else, so the ratio of the service's throughput to its
throughput is the share of the stack's ceiling the service reaches; ``create_storing_app``
also commits the body as one row of a table without indexes, on the same database and
with the same durability settings as the service, which is the least any intake that
stores a comment before answering must do.
"""

from __future__ import annotations

import json
import os
from typing import Any

import psycopg
from flask import Flask, jsonify, request
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from werkzeug.exceptions import BadRequest

from service.db import make_engine

DATABASE_ENV = "HELLO_DATABASE_URL"


def _body() -> str:
    raw = request.get_data(cache=False, as_text=True)
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the JSON body must be an object")
    return raw


def post_comment_view() -> Any:
    """Hello-world's whole view: parse the JSON body and answer 202."""
    _body()
    return jsonify(id=1, status="received"), 202


def create_app() -> Flask:
    """A Flask app with one route, ``POST /v1/comments``, that parses the body and answers 202."""
    app = Flask(__name__)
    app.post("/v1/comments")(post_comment_view)
    return app


def create_table(url: str) -> None:
    """Create the storing app's table in the database of ``url``, before any worker starts."""
    table = _Table(url)
    key = "INTEGER PRIMARY KEY" if table.placeholder == "?" else "BIGSERIAL PRIMARY KEY"
    table.connection.execute(f"CREATE TABLE hello_comments (id {key}, body TEXT NOT NULL)")
    table.connection.commit()
    table.close()


class _Table:
    """The one table, written through a DBAPI connection opened and tuned as the service's are."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            # The service's own SQLite connection: WAL, the same durability and checkpoint
            # settings, writers queued on its file lock (which its checkpoints also take).
            self._engine: Engine | None = make_engine(url)
            self._pooled = self._engine.raw_connection()
            self.connection: Any = self._pooled.driver_connection
            self.placeholder = "?"
        else:
            self._engine = None
            target = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
            self.connection = psycopg.connect(target)
            # One statement, atomic on its own, run in autocommit as the service runs it.
            self.connection.autocommit = True
            self.placeholder = "%s"
        self._insert = f"INSERT INTO hello_comments (body) VALUES ({self.placeholder}) RETURNING id"  # noqa: S608

    def close(self) -> None:
        """Close the connection (and the engine that opened a SQLite one)."""
        if self._engine is None:
            self.connection.close()
            return
        self._pooled.close()
        self._engine.dispose()

    def insert(self, body: str) -> int:
        """Store ``body`` as a new row, committed; return its id."""
        row_id = int(self.connection.execute(self._insert, (body,)).fetchone()[0])
        self.connection.commit()
        return row_id


def create_storing_app() -> Flask:
    """``create_app`` plus a committed INSERT of the body into the database of ``HELLO_DATABASE_URL``."""
    app = Flask(__name__)
    url = os.environ[DATABASE_ENV]
    opened: list[_Table] = []  # opened by the first request, in the forked worker

    @app.post("/v1/comments")
    def post_comment() -> Any:
        body = _body()
        if not opened:
            opened.append(_Table(url))
        return jsonify(id=opened[0].insert(body), status="received"), 202

    return app
