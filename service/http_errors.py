"""The one place errors become responses: JSON for API clients, a small page for form posts."""

from __future__ import annotations

import logging
import sqlite3

import psycopg
import sqlalchemy.exc
from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from service.errors import AuthError, ServiceError, ValidationError

logger = logging.getLogger(__name__)

FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
# What a client is told to wait before trying again while the database is down.
RETRY_AFTER_SECONDS = 5


def is_form_post() -> bool:
    """True when the request came from a plain HTML form rather than an API client."""
    return request.method == "POST" and request.mimetype in FORM_TYPES


def _code(name: str) -> str:
    return name.lower().replace(" ", "_").replace("'", "")


def error_response(status: int, code: str, message: str, fields: dict[str, str] | None = None) -> Response:
    """The error body every endpoint uses, rendered for the kind of client asking."""
    if is_form_post():
        problems = list(fields.values()) if fields else [message]
        response = Response(render_template("form_errors.html", problems=problems), status=status)
        return response
    body: dict[str, object] = {"error": code, "message": message}
    if fields:
        body["fields"] = fields
    response = jsonify(body)
    response.status_code = status
    return response


def _service_error(error: ServiceError) -> Response:
    fields = error.problems if isinstance(error, ValidationError) else None
    response = error_response(error.status, error.code, str(error), fields)
    if isinstance(error, AuthError):
        response.headers["WWW-Authenticate"] = 'Bearer realm="moderation"'
    return response


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    return error_response(status, _code(error.name), error.description or error.name)


def _database_unavailable(error: Exception) -> Response:
    logger.warning("%s %s: the database is unavailable: %s", request.method, request.path, error)
    response = error_response(503, "database_unavailable", "the database is unavailable; try again shortly")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _unexpected(error: Exception) -> Response:
    logger.exception("%s %s failed", request.method, request.path)
    return error_response(500, "internal_server_error", "the server failed to answer; the error was logged")


def register_error_handlers(app: Flask) -> None:
    """Route every error through one of the handlers above."""
    app.register_error_handler(ServiceError, _service_error)
    app.register_error_handler(HTTPException, _http_error)
    # The intake runs its statements on the driver's cursor, so the drivers' own errors
    # arrive here beside SQLAlchemy's.
    for unavailable in (sqlalchemy.exc.OperationalError, psycopg.OperationalError, sqlite3.OperationalError):
        app.register_error_handler(unavailable, _database_unavailable)
    app.register_error_handler(Exception, _unexpected)
