"""The JSON API under /v1: public intake and threads, and the moderators' review queue."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from functools import cache, wraps
from importlib import resources
from typing import IO, Any, TypeVar, cast
from urllib.parse import parse_qsl

from flask import (
    Blueprint,
    Flask,
    Request,
    Response,
    g,
    jsonify,
    redirect,
    render_template,
    request,
)
from flask.blueprints import BlueprintSetupState
from werkzeug.datastructures import FileStorage, Headers, MultiDict
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge, UnsupportedMediaType
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.routing import BaseConverter, IntegerConverter, Map
from werkzeug.utils import cached_property

from models.records import parse_json
from service.app import get_session, services
from service.auth import authenticate
from service.errors import ConflictError, ForbiddenError, QueueUnavailableError, ValidationError
from service.http_errors import FORM_TYPES, is_form_post
from service.personal_data import erase_personal_data, export_personal_data, reveal_email
from service.presenters import moderator_view, page_view, public_view, trail_view
from service.redirects import safe_target, with_notice
from service.review import (
    MAX_PAGE,
    MAX_PER_PAGE,
    ListQuery,
    Sort,
    audit_trail,
    commenter_of,
    get_comment,
    list_comments,
    list_published,
    published_parents,
)
from service.statuses import Action, CommentStatus, DecisionReason
from service.tables import ModeratorToken
from service.transitions import Decision, decide, moderator_actor
from service.validation import (
    MAX_ID,
    email_address,
    moderator_note,
    parse_submission,
    seen_time,
    thread_key,
    whole_number,
)
from service.webhooks import event_for, record_events

bp = Blueprint("api", __name__, url_prefix="/v1")
logger = logging.getLogger(__name__)

# The media type registered for OpenAPI documents in JSON.
OPENAPI_MEDIA_TYPE = "application/vnd.oai.openapi+json;version=3.1"


class ThreadConverter(BaseConverter):
    """A thread key as sites use them: an id, a path ("/2026/11/story") or a whole permalink."""

    regex = ".+?"
    part_isolating = False


class IdConverter(IntegerConverter):
    """A row id: ASCII digits up to a 64-bit column's largest value; a larger one is simply not found."""

    regex = "[0-9]+"  # \d would also take other scripts' digits, which int() reads

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, max=MAX_ID)


_NOT_UTF8 = "the form body is not valid UTF-8"
_FormParse = tuple[IO[bytes], MultiDict[str, Any], MultiDict[str, Any]]


class _StrictMultiPartParser(MultiPartParser):
    """Werkzeug's multipart parser, refusing a text field that is not UTF-8 rather than
    storing it with U+FFFD in place of the bytes it could not read, and counting its parts
    itself.

    Werkzeug's count of parts answers 413, as a field over its memory limit does, and a
    commenter would be told that their comment is too long. The body's limit
    (MAX_BODY_BYTES) already bounds what decoding parts past the count costs.
    """

    def __init__(self, *, max_parts: int | None, **options: Any) -> None:
        super().__init__(**options, max_form_parts=None)
        self.max_parts = max_parts

    def get_part_charset(self, headers: Headers) -> str:
        """Latin-1 for every field, so that its bytes reach ``parse`` whole."""
        # Werkzeug decodes fields with errors="replace" and has no setting for that (the
        # charset and errors options went in 3.0); Latin-1 maps each byte to one character,
        # so nothing is replaced and parse() decodes the bytes again, strictly. Every form
        # is read as UTF-8, as urlencoded ones are, whatever charset a part declares.
        return "latin-1"

    def parse(
        self, stream: IO[bytes], boundary: bytes, content_length: int | None
    ) -> tuple[MultiDict[str, str], MultiDict[str, FileStorage]]:
        """The form's text fields and files; ``BadRequest`` when a text field is not UTF-8
        or there are more than ``max_parts`` parts."""
        form, files = super().parse(stream, boundary, content_length)
        # Every part counts: a MultiDict's len() is its number of distinct names.
        items = list(form.items(multi=True))
        parts = len(items) + sum(1 for _ in files.items(multi=True))
        if self.max_parts is not None and parts > self.max_parts:
            raise BadRequest(f"the multipart form body has more than {self.max_parts:,} parts")
        try:
            fields = [(name, value.encode("latin-1").decode()) for name, value in items]
        except UnicodeDecodeError:
            raise BadRequest(_NOT_UTF8) from None
        return self.cls(fields), files


class _StrictFormDataParser(FormDataParser):
    """Werkzeug's form parser, refusing with 400 a form body it cannot read whole.

    Werkzeug reads a urlencoded body that is not UTF-8, or a malformed multipart one, as
    an empty form (every field "required"), keeps a %-escape that is not UTF-8 as text,
    and patches multipart fields with U+FFFD.
    """

    def _parse_urlencoded(
        self, stream: IO[bytes], mimetype: str, content_length: int | None, options: dict[str, str]
    ) -> _FormParse:
        try:
            items = parse_qsl(stream.read().decode(), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            raise BadRequest(_NOT_UTF8) from None
        return stream, self.cls(items), self.cls()

    def _parse_multipart(
        self, stream: IO[bytes], mimetype: str, content_length: int | None, options: dict[str, str]
    ) -> _FormParse:
        boundary = options.get("boundary", "")
        if not boundary or not boundary.isascii():
            raise BadRequest("the multipart form body names no boundary")
        parser = _StrictMultiPartParser(
            stream_factory=self.stream_factory,
            max_form_memory_size=self.max_form_memory_size,
            max_parts=self.max_form_parts,
            cls=self.cls,
        )
        try:
            form, files = parser.parse(stream, boundary.encode("ascii"), content_length)
        except ValueError as exc:
            raise BadRequest(f"the multipart form body is malformed ({exc})") from None
        return stream, form, files


class FormRequest(Request):
    """Flask's request, reading form bodies strictly as UTF-8 and whole."""

    form_data_parser_class = _StrictFormDataParser

    @cached_property
    def stream(self) -> IO[bytes]:
        """The body, refused with 413 past ``max_content_length`` however it is sent.

        A body sent chunked has no length; the server marks where its input ends (as it
        then does for any body), and Werkzeug reads it only up to the limit, quietly: a
        comment over it arrived cut short (or as broken JSON, or with its later fields
        missing). Such a body is read here up to one byte past the limit, which tells a
        body over it from one that fits exactly.
        """
        limit = self.max_content_length
        if limit is None or not self.environ.get("wsgi.input_terminated"):
            return super().stream
        body = self.environ["wsgi.input"].read(limit + 1)
        if len(body) > limit:
            raise RequestEntityTooLarge()
        return io.BytesIO(body)


@bp.record_once
def _configure_app(state: BlueprintSetupState) -> None:
    # Recorded before the routes below, so the converters exist when they are added.
    state.app.url_map.converters["thread"] = ThreadConverter
    state.app.url_map.converters["id"] = IdConverter
    # The app factory knows nothing of forms; the intake below is what reads them.
    cast(Flask, state.app).request_class = FormRequest


View = TypeVar("View", bound=Callable[..., Any])
Choice = TypeVar("Choice", bound=Enum)


def _json_object() -> dict[str, Any]:
    try:
        body = parse_json(request.get_data(cache=False))
    except ValueError as exc:
        raise BadRequest(f"the body is {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("the JSON body must be an object")
    return body


def _submitted_fields() -> dict[str, Any]:
    if request.mimetype in FORM_TYPES:
        return request.form.to_dict()
    if request.is_json:
        return _json_object()
    raise UnsupportedMediaType(
        "send application/json, application/x-www-form-urlencoded or multipart/form-data"
    )


def _honeypot_filled(fields: dict[str, Any]) -> bool:
    """Whether the post filled in the hidden honeypot field, which readers never see."""
    name = services().settings.honeypot_field
    if not name or fields.get(name) is None:
        return False
    value = fields[name]
    return not isinstance(value, str) or bool(value.strip())


@bp.post("/comments")
def post_comment() -> Any:
    """Accept a reader's comment: 202 for API clients, a redirect or a page for forms."""
    flood, intake = services().flood, services().intake
    try:
        fields = _submitted_fields()
        submission = parse_submission(fields)
    except (ValidationError, HTTPException):
        intake.count(flood.windows(request.remote_addr, None))  # a broken post counts against its address too
        raise
    windows = flood.windows(request.remote_addr, submission.email)
    if _honeypot_filled(fields):
        intake.count(windows)
        notify = services().settings.webhooks
        receipt = intake.submit_trapped(services().keys, submission, notify=notify)
    else:
        receipt = intake.submit(services().keys, submission, windows)
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
        g.answers_moderator = True
        g.moderator = authenticate(get_session(), request.headers.get("Authorization"))
        return view(*args, **kwargs)

    return guarded  # type: ignore[return-value]


@bp.after_app_request
def _kept_by_no_cache(response: Response) -> Response:
    # Answers to moderators carry personal data: kept by no cache, the browser's own
    # included. Their errors too (this runs after the error handlers), which may quote it.
    # App-wide, so the other blueprints' moderator routes (/v1/models) are covered too.
    if g.get("answers_moderator"):
        response.headers["Cache-Control"] = "no-store"
    return response


def admin_required(view: View) -> View:
    """Let the view run only for a request with a valid admin token (403 for other moderators)."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not g.moderator.admin:
            raise ForbiddenError(
                "exporting or erasing a commenter's personal data needs an admin token "
                "(moderation create-token NAME --admin)"
            )
        return view(*args, **kwargs)

    return moderator_required(cast(View, guarded))


def _choice(kind: type[Choice], field: str, raw: Any) -> Choice:
    try:
        return kind(raw)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ValidationError({field: f"{field} must be one of: {allowed}"}) from None


@contextmanager
def _refused_as(field: str) -> Iterator[None]:
    """Turn a reader's ``ValueError`` ("must be ...") into a 422 naming ``field``."""
    try:
        yield
    except ValueError as exc:
        raise ValidationError({field: f"{field} {exc}"}) from None


def _thread(raw: str) -> str:
    with _refused_as("thread"):
        return thread_key(raw)


def _commenter(raw: str) -> bytes:
    """The commenter of the comment whose id ``raw`` is, to list their comments by."""
    with _refused_as("same_commenter_as"):
        return commenter_of(get_session(), whole_number(raw, MAX_ID))


def _positive(field: str, raw: str | None, default: int, most: int, *, clamp: bool = False) -> int:
    if raw is None:
        return default
    with _refused_as(field):
        return whole_number(raw, most, clamp=clamp)


@bp.get("/comments")
@moderator_required
def list_review_queue() -> Any:
    """The review queue: filter by status and thread, sort by queue order, score or age."""
    # An empty parameter counts as one not given, as a form's empty field sends it.
    args = {name: value for name, value in request.args.items() if value}
    if "page" in args and "cursor" in args:
        raise ValidationError({"cursor": "cursor and page are two ways to page; send one of them"})
    query = ListQuery(
        status=_choice(CommentStatus, "status", args["status"]) if "status" in args else None,
        thread=_thread(args["thread"]) if "thread" in args else None,
        sort=_choice(Sort, "sort", args["sort"]) if "sort" in args else Sort.QUEUE,
        page=_positive("page", args["page"], 1, MAX_PAGE) if "page" in args else None,
        cursor=args.get("cursor"),
        per_page=_positive("per_page", args.get("per_page"), 50, MAX_PER_PAGE, clamp=True),
        commenter=_commenter(args["same_commenter_as"]) if "same_commenter_as" in args else None,
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
    trail = trail_view(comment, audit_trail(session, comment_id))
    return {**moderator_view(comment, services().keys), "audit": trail}


def _note(body: dict[str, Any]) -> str | None:
    with _refused_as("note"):
        return moderator_note(body.get("note"))


def _decision(body: dict[str, Any]) -> Decision:
    action = _choice(Action, "action", body.get("action"))
    raw_reason = body.get("reason")
    if raw_reason is None and action is Action.REJECT:
        raise ValidationError({"reason": "reason is required to reject: spam, abuse or other"})
    if raw_reason is not None and action is Action.APPROVE:
        # The training label of an approval is "neither spam nor abuse"; a reason would contradict it.
        raise ValidationError({"reason": "reason is only for rejecting; approve without one"})
    reason = _choice(DecisionReason, "reason", raw_reason) if raw_reason is not None else None
    raw_expected = body.get("expected_status")
    expected = _choice(CommentStatus, "expected_status", raw_expected) if raw_expected is not None else None
    seen = None
    if (raw_seen := body.get("expected_updated_at")) is not None:
        with _refused_as("expected_updated_at"):
            seen = seen_time(raw_seen)
    return Decision(action, reason, _note(body), expected, seen)


def _moderator_json(what: str) -> dict[str, Any]:
    """The request's JSON object; 415 naming ``what`` when the body is something else."""
    if not request.is_json:
        raise UnsupportedMediaType(f"send {what} as application/json")
    return _json_object()


def _actor() -> str:
    return moderator_actor(g.moderator)


@bp.post("/comments/<id:comment_id>/decision")
@moderator_required
def decide_comment(comment_id: int) -> Any:
    """Approve or reject a comment; the decision is audited and becomes a training label."""
    record_decision(comment_id, g.moderator, _decision(_moderator_json("the decision")))
    return moderator_view(get_comment(get_session(), comment_id), services().keys)


def record_decision(comment_id: int, moderator: ModeratorToken, decision: Decision) -> None:
    """Store a moderator's decision (status, audit event, label) and, when enough labels
    have come in, request a retraining run; the API and the moderators' pages both decide here.

    Raises ``NotFoundError`` for an unknown comment, and ``ConflictError`` when the
    decision names the status it expects and the comment has another; then nothing is stored.
    """
    session = get_session()
    try:
        previous = decide(session, comment_id, moderator, decision)
    except ConflictError:
        session.rollback()  # the row touched to lock it
        raise
    # The site hears of changes: a decision that leaves the status as it was (a rejection
    # for spam made one for abuse) tells it nothing new.
    status = decision.action.status
    if services().settings.webhooks and previous is not status:
        record_events(session, [(comment_id, event_for(status))])
    session.commit()
    # The decision is stored, and answering an error would say otherwise.
    try:
        services().retrain_trigger.after_decision(session, services().retrain_queue)
    except QueueUnavailableError as exc:
        # The run is recorded; the next decision queues it.
        logger.warning("decision on comment %s stored; %s", comment_id, exc)
    except Exception:
        # The next decision counts the labels again.
        session.rollback()
        logger.exception("decision on comment %s stored; requesting a retraining run failed", comment_id)


@bp.post("/comments/<id:comment_id>/reveal-email")
@moderator_required
def reveal_comment_email(comment_id: int) -> Any:
    """The comment's email in full, for a moderator who must contact the commenter; audited.

    An optional JSON body ``{"note": "..."}`` says why; the email is null when it was
    erased or the current key cannot decrypt it.
    """
    # The body read whole (MAX_CONTENT_LENGTH bounds it), as a chunked one gives no length.
    note = _note(_moderator_json("the note")) if request.get_data() else None
    session = get_session()
    email = reveal_email(session, services().keys, comment_id, _actor(), note)
    session.commit()
    return {"id": comment_id, "email": email}


def _commenter_email() -> str:
    body = _moderator_json("the email address")
    with _refused_as("email"):
        return email_address(body.get("email"))


@bp.post("/privacy/export")
@admin_required
def export_commenter_data() -> Any:
    """Everything stored about the commenter of an email address: each of their comments."""
    email = _commenter_email()
    session = get_session()
    comments = export_personal_data(session, services().keys, email, _actor())
    session.commit()
    logger.info("%s exported the personal data of %d comment(s)", _actor(), len(comments))
    return {"email": email, "comments": comments}


@bp.post("/privacy/erase")
@admin_required
def erase_commenter_data() -> Any:
    """Anonymise every comment of an email address (name, email, website); the text stays."""
    email = _commenter_email()
    session = get_session()
    notify = services().settings.webhooks
    flood_keys = services().flood.commenter_keys(email)
    erased = erase_personal_data(
        session, services().keys, email, _actor(), notify=notify, flood_keys=flood_keys
    )
    session.commit()
    logger.info("%s erased the personal data of %d comment(s)", _actor(), len(erased))
    return {"erased": erased}


@bp.after_request
def _readable_by_the_site_pages(response: Response) -> Response:
    # The article page shows its thread from a script, and the page is on the site's origin,
    # not this service's: a browser hands that script the answer (errors included) only with
    # this header. The listing holds what any reader may see, and no cookie goes with it.
    # The API's document, too: the tools that read it (an editor, a client generator) are
    # often pages on another origin.
    if request.endpoint in ("api.list_thread", "api.serve_openapi"):
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@cache
def openapi_document() -> bytes:
    """The API's OpenAPI document (``service/openapi.json``), as it is served."""
    return resources.files("service").joinpath("openapi.json").read_bytes()


@bp.get("/openapi.json")
def serve_openapi() -> Response:
    """The API's OpenAPI document, for anyone who integrates with it: no token needed."""
    return Response(openapi_document(), content_type=OPENAPI_MEDIA_TYPE)


# Threads are often permalinks ("https://..."), so "//" in the path must survive.
@bp.get("/threads/<thread:thread>/comments", merge_slashes=False)
def list_thread(thread: str) -> Response:
    """The approved comments of one thread, for the site to show under its article."""
    # An empty parameter counts as one not given, as in the review queue.
    page = _positive("page", request.args.get("page") or None, 1, MAX_PAGE)
    per_page = _positive("per_page", request.args.get("per_page") or None, 100, MAX_PER_PAGE, clamp=True)
    session = get_session()
    listing = list_published(session, _thread(thread), page, per_page)
    keys = services().keys
    parents = published_parents(session, listing.items)
    items = [
        public_view(comment, keys, parent_published=comment.parent_id in parents) for comment in listing.items
    ]
    return jsonify(page_view(listing, items))
