"""The one place errors become responses: JSON for API clients, a small page for form posts."""

from __future__ import annotations

import logging
import sqlite3
from urllib.parse import quote

import psycopg
import sqlalchemy.exc
from flask import Flask, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from service.errors import AuthError, QueueUnavailableError, ServiceError, ValidationError
from service.flood import TooManyCommentsError
from service.validation import TYPED_FIELDS, SubmissionError

logger = logging.getLogger(__name__)

FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
# What a client is told to wait before trying again while the database is down.
RETRY_AFTER_SECONDS = 5
# What the form page says when the commenter cannot fix the problem: the request, not
# what they typed, was wrong (hidden fields, the form's encoding), or the server failed.
BROKEN_FORM = (
    "The comment form on this page is broken, so your comment was not sent. "
    "Please let the site's editors know."
)
TOO_LARGE = "Your comment is far too long to send. Please shorten it a lot and send it again."
SLOW_DOWN = (
    "You have sent several comments in a short time, so this one was not sent. "
    "Please wait {seconds} seconds and send it again."
)
TRY_LATER = "Comments cannot be received right now, so yours was not sent. Please try again in a few minutes."


# The blueprint of the moderators' pages and where they live; errors there are worded for moderators.
MODERATOR_PAGES = "pages"
MODERATOR_PAGES_PREFIX = "/moderate"


def on_moderator_pages(path: str) -> bool:
    """Whether ``path`` is under the moderators' pages, also where no page answers (an
    address that belongs to no blueprint)."""
    return path == MODERATOR_PAGES_PREFIX or path.startswith(f"{MODERATOR_PAGES_PREFIX}/")


def _logged_path() -> str:
    """The request's path as it is written in a URL, for a log line: percent-decoded, an
    address could put a line break (%0A) into the log and forge the lines after it."""
    # Escaped again as the client had to send it (RFC 3986 keeps these in a path as they are).
    return quote(request.path, safe="/:@!$&'()*+,;=~")


# The endpoint a site's reply form posts to.
COMMENT_INTAKE = "api.post_comment"


def is_form_post() -> bool:
    """True when the request came from a plain HTML form rather than an API client."""
    return request.method == "POST" and request.mimetype in FORM_TYPES


def _from_comment_form() -> bool:
    # A form posted to an address nothing answers is a reply form whose action is wrong;
    # one posted to another API endpoint comes from a client, which reads JSON errors.
    return is_form_post() and request.endpoint in (None, COMMENT_INTAKE)


def _code(name: str) -> str:
    return name.lower().replace(" ", "_").replace("'", "")


def _form_problem(status: int) -> str:
    if status == 413:
        return TOO_LARGE
    return BROKEN_FORM if status < 500 else TRY_LATER


def error_response(
    status: int,
    code: str,
    message: str,
    fields: dict[str, str] | None = None,
    advice: list[str] | None = None,
    site_problem: str | None = None,
) -> Response:
    """The error body every endpoint uses, rendered for the kind of client asking.

    A form post to the intake gets a page for the commenter: ``advice`` when given, else
    a sentence for ``status``; ``message`` and ``fields`` are the API's wording. When the
    page says the form is broken, ``site_problem`` (default ``message``) is logged for the
    site's operator. The moderators' pages get a page with ``message``.
    """
    if request.blueprint == MODERATOR_PAGES or on_moderator_pages(request.path):
        # Titled by what went wrong: a window or tab list of pages all named "Moderation"
        # tells a moderator nothing, and neither does a heading a screen reader jumps to.
        title = HTTP_STATUS_CODES.get(status, "Error")
        page = render_template("moderate_message.html", title=title, message=message)
        return Response(page, status=status)
    if _from_comment_form():
        problems = advice or [_form_problem(status)]
        if BROKEN_FORM in problems:
            # The page names no internals, so whoever the site asks to look finds them here.
            logged = message if site_problem is None else site_problem
            logger.warning("a form post to %s was refused (%s): %s", _logged_path(), status, logged)
        elif site_problem:
            # A hidden field the commenter was told of in their own words (a reply to a
            # comment no longer shown): routine, yet a form sending a wrong one shows here.
            logger.info("a form post to %s was refused (%s): %s", _logged_path(), status, site_problem)
        return Response(render_template("form_errors.html", problems=problems), status=status)
    body: dict[str, object] = {"error": code, "message": message}
    if fields:
        body["fields"] = fields
    response = jsonify(body)
    response.status_code = status
    return response


def _advice(error: ValidationError) -> tuple[list[str], str]:
    """The form page's wording of ``error``: visible fields by their label, others as a broken
    form (once); and the problems of those others, which the site's operator is to read.

    What the commenter typed in a visible field (an address the validator quotes) stays
    out of the log: it is theirs to mend, and the page tells them how.
    """
    advice = error.advice if isinstance(error, SubmissionError) else {}
    hidden = "; ".join(
        f"{name}: {problem}"
        for name, problem in error.problems.items()
        if name not in advice or name not in TYPED_FIELDS
    )
    return list(dict.fromkeys(advice.get(field, BROKEN_FORM) for field in error.problems)), hidden


def _service_error(error: ServiceError) -> Response:
    if isinstance(error, ValidationError):
        advice, hidden = _advice(error)
        response = error_response(error.status, error.code, str(error), error.problems, advice, hidden)
    elif isinstance(error, QueueUnavailableError):
        response = error_response(error.status, error.code, str(error))
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    elif isinstance(error, TooManyCommentsError):
        advice = [SLOW_DOWN.format(seconds=error.retry_after)]
        response = error_response(error.status, error.code, str(error), advice=advice)
        response.headers["Retry-After"] = str(error.retry_after)
    else:
        response = error_response(error.status, error.code, str(error))
    if isinstance(error, AuthError):
        response.headers["WWW-Authenticate"] = 'Bearer realm="moderation"'
    return response


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    message = error.description or error.name
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if status == 413 and limit:
        # Werkzeug's words ("exceeds the capacity limit") name no limit to keep under.
        message = f"the request body is larger than the {limit:,} bytes accepted (MAX_BODY_BYTES)"
    response = error_response(status, _code(error.name), message)
    # What the error says in headers stays (a 405's Allow); the body is ours.
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _database_unavailable(error: Exception) -> Response:
    cause = getattr(error, "orig", error)
    if isinstance(cause, psycopg.errors.QueryCanceled) or (
        isinstance(cause, sqlite3.OperationalError) and str(cause).startswith("database is locked")
    ):
        # The statement limit (service/app.py) or SQLite's wait for its lock ran out: a lock
        # held elsewhere, a stalled server. The database answers; it did not finish in time.
        logger.warning("%s %s: a statement ran out of time: %s", request.method, _logged_path(), error)
        message = "the database did not answer in time; try again shortly"
    else:
        logger.warning("%s %s: the database is unavailable: %s", request.method, _logged_path(), error)
        message = "the database is unavailable; try again shortly"
    response = error_response(503, "database_unavailable", message)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _unexpected(error: Exception) -> Response:
    logger.exception("%s %s failed", request.method, _logged_path())
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
