"""The JSON API under /v1: public intake and threads, and the moderators' review queue."""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import Enum
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from flask import Blueprint, Response, g, jsonify, redirect, render_template, request
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import BadRequest, UnsupportedMediaType
from werkzeug.routing import BaseConverter, IntegerConverter, Map

from service.app import get_session, services
from service.auth import authenticate
from service.errors import ValidationError
from service.http_errors import FORM_TYPES, is_form_post
from service.presenters import audit_view, moderator_view, page_view, public_view, receipt_view
from service.redirects import safe_target, with_notice
from service.retraining import maybe_request_retrain
from service.review import (
    MAX_PAGE,
    MAX_PER_PAGE,
    ListQuery,
    Sort,
    audit_trail,
    get_comment,
    list_comments,
    list_published,
)
from service.statuses import Action, CommentStatus, DecisionReason
from service.transitions import decide
from service.validation import MAX_ID, check_unicode, parse_json, parse_submission, whole_number

bp = Blueprint("api", __name__, url_prefix="/v1")
logger = logging.getLogger(__name__)


class ThreadConverter(BaseConverter):
    """A thread key as sites use them: an id, a path ("/2026/11/story") or a whole permalink."""

    regex = ".+?"
    part_isolating = False


class IdConverter(IntegerConverter):
    """A row id: ASCII digits up to a 64-bit column's largest value; a larger one is simply not found."""

    regex = "[0-9]+"  # \d would also take other scripts' digits, which int() reads

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, max=MAX_ID)


@bp.record_once
def _register_converter(state: BlueprintSetupState) -> None:
    # Recorded before the routes below, so the converters exist when they are added.
    state.app.url_map.converters["thread"] = ThreadConverter
    state.app.url_map.converters["id"] = IdConverter


NOTE_MAX_CHARS = 2000
View = TypeVar("View", bound=Callable[..., Any])
Choice = TypeVar("Choice", bound=Enum)


def _json_object() -> dict[str, Any]:
    try:
        body = parse_json(request.get_data(cache=False))
    except ValueError as exc:
        raise BadRequest(f"the body {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("the JSON body must be an object")
    return body


def _form_fields() -> dict[str, Any]:
    if request.mimetype == "application/x-www-form-urlencoded":
        # Werkzeug silently drops a body that is not UTF-8 (and keeps a bad %-escape as
        # text), which would read as every field missing; decoding it strictly first tells.
        # The form is then parsed from the body get_data() keeps.
        try:
            parse_qsl(request.get_data().decode(), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            raise BadRequest("the form body is not valid UTF-8") from None
    return request.form.to_dict()


def _submitted_fields() -> dict[str, Any]:
    if request.mimetype in FORM_TYPES:
        return _form_fields()
    if request.is_json:
        return _json_object()
    raise UnsupportedMediaType(
        "send application/json, application/x-www-form-urlencoded or multipart/form-data"
    )


@bp.post("/comments")
def post_comment() -> Any:
    """Accept a reader's comment: 202 for API clients, a redirect or a page for forms."""
    fields = _submitted_fields()
    submission = parse_submission(fields)
    receipt = services().intake.submit(services().keys, submission)
    if not is_form_post():
        return {"id": receipt.id, "status": receipt.status.value}, 202
    back = safe_target((fields.get("redirect"), request.referrer), services().settings.allowed_redirect_hosts)
    if back:
        return redirect(with_notice(back, receipt.id), code=303)
    return render_template("form_received.html", name=submission.name), 202


def moderator_required(view: View) -> View:
    """Let the view run only for a request with a valid moderator token."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        g.moderator = authenticate(get_session(), request.headers.get("Authorization"))
        return view(*args, **kwargs)

    return guarded  # type: ignore[return-value]


def _choice(kind: type[Choice], field: str, raw: Any) -> Choice:
    try:
        return kind(raw)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ValidationError({field: f"{field} must be one of: {allowed}"}) from None


def _positive(field: str, raw: str | None, default: int, most: int, *, clamp: bool = False) -> int:
    if raw is None:
        return default
    try:
        return whole_number(raw, most, clamp=clamp)
    except ValueError as exc:
        raise ValidationError({field: f"{field} {exc}"}) from None


@bp.get("/comments")
@moderator_required
def list_review_queue() -> Any:
    """The review queue: filter by status and thread, sort by queue order, score or age."""
    args = request.args
    query = ListQuery(
        status=_choice(CommentStatus, "status", args["status"]) if args.get("status") else None,
        thread=args.get("thread") or None,
        sort=_choice(Sort, "sort", args.get("sort", Sort.QUEUE.value)),
        page=_positive("page", args.get("page"), 1, MAX_PAGE) if "page" in args else None,
        cursor=args.get("cursor") or None,
        per_page=_positive("per_page", args.get("per_page"), 50, MAX_PER_PAGE, clamp=True),
    )
    page = list_comments(get_session(), query)
    keys = services().keys
    return page_view(page, [moderator_view(comment, keys) for comment in page.items])


@bp.get("/comments/<id:comment_id>")
@moderator_required
def show_comment(comment_id: int) -> Any:
    """One comment with its verdict and its audit trail."""
    session = get_session()
    comment = get_comment(session, comment_id)
    events = audit_trail(session, comment_id)
    trail = [receipt_view(comment), *(audit_view(event) for event in events)]
    return {**moderator_view(comment, services().keys), "audit": trail}


def _decision(body: dict[str, Any]) -> tuple[Action, DecisionReason | None, str | None]:
    action = _choice(Action, "action", body.get("action"))
    raw_reason = body.get("reason")
    if raw_reason is None and action is Action.REJECT:
        raise ValidationError({"reason": "reason is required to reject: spam, abuse or other"})
    reason = _choice(DecisionReason, "reason", raw_reason) if raw_reason is not None else None
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > NOTE_MAX_CHARS):
        raise ValidationError({"note": f"note must be text of at most {NOTE_MAX_CHARS} characters"})
    if note is not None:
        try:
            check_unicode(note)
        except ValueError as exc:
            raise ValidationError({"note": f"note {exc}"}) from None
    return action, reason, note.strip() if note else None


@bp.post("/comments/<id:comment_id>/decision")
@moderator_required
def decide_comment(comment_id: int) -> Any:
    """Approve or reject a comment; the decision is audited and becomes a training label."""
    if not request.is_json:
        raise UnsupportedMediaType("send the decision as application/json")
    action, reason, note = _decision(_json_object())
    session = get_session()
    decide(session, comment_id, g.moderator, action, reason, note)
    session.commit()
    try:
        maybe_request_retrain(session, services().retrain_queue, services().settings.retrain_after_labels)
    except Exception:
        # The decision is stored, and answering 500 would say otherwise; the next
        # decision counts the labels again.
        session.rollback()
        logger.exception("decision on comment %s stored; requesting a retraining run failed", comment_id)
    return moderator_view(get_comment(session, comment_id), services().keys)


# Threads are often permalinks ("https://..."), so "//" in the path must survive.
@bp.get("/threads/<thread:thread>/comments", merge_slashes=False)
def list_thread(thread: str) -> Response:
    """The approved comments of one thread, for the site to show under its article."""
    page = _positive("page", request.args.get("page"), 1, MAX_PAGE)
    per_page = _positive("per_page", request.args.get("per_page"), 100, MAX_PER_PAGE, clamp=True)
    listing = list_published(get_session(), thread, page, per_page)
    keys = services().keys
    response = jsonify(page_view(listing, [public_view(comment, keys) for comment in listing.items]))
    return response
