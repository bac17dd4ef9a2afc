"""The moderators' pages: sign in with a token, read the review queue or one comment, decide.

Plain server-rendered forms, so a moderator needs nothing but a browser. The pages
read the same queue and decide through the same functions as the JSON API. A moderator
signs in once by pasting an API token; the signed session cookie then holds the token's
id and how often the token had signed out, both checked against the database on every
request, so revoking the token, or signing out anywhere, ends the session at once. Every
form carries a CSRF token (Flask-WTF); the JSON API, which takes bearer tokens and no
cookies, needs none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import quote

from flask import Blueprint, Flask, Request, flash, g, redirect, render_template, request, url_for
from flask import session as browser_session
from flask.blueprints import BlueprintSetupState
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from markupsafe import Markup
from sqlalchemy import update
from werkzeug.wrappers import Response

from service.api import IdConverter, record_decision
from service.app import get_session, services
from service.auth import authenticate
from service.errors import AuthError, ConflictError, NotFoundError, ValidationError
from service.http_errors import MODERATOR_PAGES, MODERATOR_PAGES_PREFIX, on_moderator_pages
from service.personal_data import EXPORTED_ACTION, REVEALED_ACTION, reveal_email
from service.presenters import moderator_view, time_shown, trail_view
from service.reasons import seconds_shown
from service.review import (
    ListQuery,
    Sort,
    audit_trail,
    commenter_of,
    count_comments,
    get_comment,
    last_moves,
    list_comments,
    parents_of,
)
from service.statuses import Action, CommentStatus, DecisionReason
from service.tables import AuditEvent, Comment, ModeratorToken
from service.transitions import Decision, moderator_actor
from service.validation import MAX_ID, moderator_note, seen_time, thread_key, whole_number

logger = logging.getLogger(__name__)
bp = Blueprint(MODERATOR_PAGES, __name__, url_prefix=MODERATOR_PAGES_PREFIX)
csrf = CSRFProtect()

SESSION_KEY = "moderator_id"
SIGN_OUTS_KEY = "sign_outs"
SESSION_HOURS = 12
PER_PAGE = 20
# The buttons of a comment's decision form: what each one decides.
DECISIONS: dict[str, tuple[Action, DecisionReason | None]] = {
    "approve": (Action.APPROVE, None),
    "spam": (Action.REJECT, DecisionReason.SPAM),
    "abuse": (Action.REJECT, DecisionReason.ABUSE),
    "other": (Action.REJECT, DecisionReason.OTHER),
}
# Audit events that record who read a comment, not a change to it.
_READINGS = frozenset({REVEALED_ACTION, EXPORTED_ACTION})
DONE = {"approve": "approved", "spam": "rejected as spam", "abuse": "rejected as abuse", "other": "rejected"}
# The audit actions of moderators' decisions; the others that move a comment are the policy's.
DECIDED = frozenset(action.value for action in Action)
# The hidden field of a comment page's forms that sends the moderator back to that page
# after deciding, in place of the queue's filters and cursor.
RETURN_TO_COMMENT = {"return_to": "comment"}
# The flagged queue's length is counted on every page view up to this many, then shown as
# "1,000+": an exact count of a backlog of hundreds of thousands would read all of them.
WAITING_COUNTED_TO = 1000
# A page lists PER_PAGE comments: more selected than a few pages' worth is not a page's form.
MAX_SELECTED = 5 * PER_PAGE
View = TypeVar("View", bound=Callable[..., Any])


class _PageSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, read only from a request that brings cookies.

    The session cookie is sent to these pages alone, yet Flask opens a session for every
    request, building its signer each time: on the public intake that was 7 % of a post.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """An empty session without a ``Cookie`` header, else Flask's own."""
        if not request.environ.get("HTTP_COOKIE"):
            return self.session_class()
        return super().open_session(app, request)

    def get_cookie_path(self, app: Flask) -> str:
        """These pages' path, under the prefix the app is served at (a proxy's
        ``X-Forwarded-Prefix``, gunicorn's ``SCRIPT_NAME``), so the cookie is sent to them
        alone: the public endpoints neither see it nor renew it."""
        return request.script_root + MODERATOR_PAGES_PREFIX


@bp.record_once
def _configure_app(state: BlueprintSetupState) -> None:
    app = cast(Flask, state.app)
    app.url_map.converters["id"] = IdConverter
    app.secret_key = app.extensions["moderation"].keys.session
    app.session_interface = _PageSessions()
    app.config.update(
        # Only these pages check CSRF tokens (below); the JSON API and the public intake take none.
        WTF_CSRF_CHECK_DEFAULT=False,
        SESSION_COOKIE_NAME="moderation_session",
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=app.extensions["moderation"].settings.is_production,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        # A form's token lasts as long as its session, so a page left open still works.
        WTF_CSRF_TIME_LIMIT=None,
        # The token in a SameSite=Lax cookie's session is the defence. Over HTTPS,
        # Flask-WTF would also demand a Referer naming this host, which browsers and
        # proxies set to strip it, or a proxy that rewrites Host, make every form fail.
        WTF_CSRF_SSL_STRICT=False,
    )
    csrf.init_app(app)


# Worded as the reason the comment was held for: a comment held for 2.96 s, under 3, must
# not read "3.0 s" in the queue.
bp.add_app_template_filter(seconds_shown, "seconds_shown")
# The queue shows when a comment came to the minute, which a moderator can read at a
# glance; the exact time stays in the element's datetime attribute.
bp.add_app_template_filter(time_shown, "time_shown")


@bp.before_request
def _check_csrf() -> None:
    # Signing out checks its own token: it must end the browser's session whatever happens.
    if request.method != "POST" or request.endpoint == "pages.sign_out":
        return
    # A form sent after its session ended carries a token of that session: `signed_in`
    # sends it to the sign-in page, saying so, instead of a "form not accepted" that
    # reloading cannot mend. Nothing a signed-in moderator may do is done meanwhile.
    if request.endpoint != "pages.sign_in" and _signed_in_moderator() is None:
        return
    csrf.protect()


# The pages run no script and load nothing: they are escaped, and if an escape were ever
# missed, a comment's markup could still neither run a script, load anything, nor send
# a form anywhere else.
PAGES_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


@bp.after_app_request
def _private_page(response: Response) -> Response:
    # Every answer under the pages' prefix, an address no page answers (404, 405) too,
    # which the blueprint's own hook would not see.
    if not on_moderator_pages(request.path):
        return response
    # Pages whose buttons decide must not be shown inside another page (clickjacking).
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = PAGES_POLICY
    # Their addresses (filters, cursors) go to no other site, should a page ever link to one.
    response.headers["Referrer-Policy"] = "same-origin"
    # They show commenters' names and comments (and, once asked, an email): kept by no
    # cache, the browser's own included, so Back after signing out shows nothing.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(CSRFError)
def _expired_form(error: CSRFError) -> tuple[str, int]:
    # Not "reload the page": this page answers the form's POST, and reloading it sends the
    # same refused form again.
    message = (
        f"The form could not be accepted ({error.description}). "
        "Open the review queue again from the link below and send it from there."
    )
    return render_template("moderate_message.html", title="Form not accepted", message=message), 400


def _signed_in_moderator() -> ModeratorToken | None:
    token_id, sign_outs = browser_session.get(SESSION_KEY), browser_session.get(SIGN_OUTS_KEY)
    if not isinstance(token_id, int):
        return None
    moderator = get_session().get(ModeratorToken, token_id)
    if moderator is None or moderator.revoked_at is not None or moderator.sign_outs != sign_outs:
        browser_session.clear()
        return None
    return moderator


SESSION_ENDED = "Your session ended, so that form was not acted on: sign in again."
SIGNED_OUT = "You signed out."


def signed_in(view: View) -> View:
    """Let the view run only for a signed-in moderator; send anyone else to the sign-in page."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        moderator = _signed_in_moderator()
        if moderator is None:
            if request.method == "POST":
                flash(SESSION_ENDED, "problem")
            return redirect(url_for("pages.sign_in"))
        g.moderator = moderator
        return view(*args, **kwargs)

    return guarded  # type: ignore[return-value]


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    """The sign-in form; a valid token starts a session."""
    # Only a POST signs in: a HEAD, which Flask routes here beside GET and which
    # _check_csrf does not check, is answered as the GET it stands for.
    if request.method != "POST":
        return render_template("moderate_sign_in.html")
    token = request.form.get("token", "").strip()
    if not token:
        return render_template("moderate_sign_in.html", problem="Paste your moderator token."), 401
    try:
        moderator = authenticate(get_session(), f"Bearer {token}")
    except AuthError as exc:
        return render_template("moderate_sign_in.html", problem=str(exc)), 401
    browser_session.clear()
    browser_session.permanent = True  # expires SESSION_HOURS after the last request
    browser_session[SESSION_KEY] = moderator.id
    browser_session[SIGN_OUTS_KEY] = moderator.sign_outs
    return redirect(url_for("pages.queue"))


@bp.post("/sign-out")
def sign_out() -> Response:
    """End the session, and with a valid form every other page session of the same token:
    a copy of the cookie kept elsewhere is refused from now on.

    The browser's own session ends even when the form is not valid or the database fails:
    a moderator who signs out must not stay signed in.
    """
    try:
        csrf.protect()
        moderator = _signed_in_moderator()
        if moderator is not None:
            get_session().execute(
                update(ModeratorToken)
                .where(ModeratorToken.id == moderator.id)
                .values(sign_outs=ModeratorToken.sign_outs + 1)
                .execution_options(synchronize_session=False)
            )
            get_session().commit()
    except CSRFError:
        pass  # a forged or stale form ends this browser's session only
    finally:
        browser_session.clear()
    # Said on the sign-in page, which would otherwise look as if nothing had happened.
    flash(SIGNED_OUT, "done")
    return redirect(url_for("pages.sign_in"))


Choice = TypeVar("Choice", CommentStatus, Sort)


def _choice(kind: type[Choice], raw: str | None, default: Choice | None) -> Choice | None:
    """``raw`` as a member of ``kind``; ``default`` for anything else (links are all the input here)."""
    try:
        return kind(raw or "")
    except ValueError:
        return default


def _thread(raw: str | None) -> str | None:
    """The thread key ``raw`` names, cleaned as the intake cleans it; None (every thread) for
    none, or one no comment can have."""
    try:
        return thread_key(raw) if raw else None
    except ValueError:
        return None


def _commenter(raw: str | None) -> tuple[int, bytes] | None:
    """The comment ``raw`` names and its commenter, whose comments alone are listed; None
    for none, and for one that names no commenter, saying so."""
    if not raw:
        return None
    try:
        comment_id = whole_number(raw, MAX_ID)
        return comment_id, commenter_of(get_session(), comment_id)
    except ValueError as exc:
        flash(f"The comments of one commenter cannot be listed: the link {exc}.", "problem")
        return None


def _queue_query() -> tuple[ListQuery, int | None]:
    """What the queue page's address asks for, and the comment whose commenter's comments
    alone it lists, if any."""
    args = request.args
    # `status=` (empty) is the "all" link; anything unknown shows the default, flagged, not
    # more than the moderator asked for.
    status = args.get("status", CommentStatus.FLAGGED.value)
    commenter = _commenter(args.get("same_commenter_as"))
    query = ListQuery(
        status=_choice(CommentStatus, status, CommentStatus.FLAGGED) if status else None,
        thread=_thread(args.get("thread")),
        sort=_choice(Sort, args.get("sort"), Sort.QUEUE) or Sort.QUEUE,
        cursor=args.get("cursor") or None,
        per_page=PER_PAGE,
        commenter=commenter[1] if commenter else None,
    )
    return query, commenter[0] if commenter else None


@bp.get("/")
@signed_in
def queue() -> str:
    """The review queue, flagged comments first, with a decision form on each."""
    query, commenter = _queue_query()
    try:
        page = list_comments(get_session(), query)
    except ValidationError:  # a cursor of another order, or altered: start from the top
        query = replace(query, cursor=None)
        page = list_comments(get_session(), query)
    keys = services().keys
    # The queue's length, however the list is filtered and ordered: how much waits.
    waiting = count_comments(
        get_session(), replace(query, status=CommentStatus.FLAGGED), at_most=WAITING_COUNTED_TO + 1
    )
    status = query.status.value if query.status else ""
    # What the list keeps to, carried by every link and form that leads back to it.
    filters = {
        name: value
        for name, value in (("thread", query.thread), ("same_commenter_as", commenter))
        if value is not None
    }
    cursor = {"cursor": query.cursor} if query.cursor else {}
    return render_template(
        "moderate_queue.html",
        moderator=g.moderator,
        comments=[moderator_view(comment, keys) for comment in page.items],
        judged=_judged(page.items),
        cursor=query.cursor,
        next_cursor=page.next_cursor,
        status=status,
        filters=filters,
        back={"status": status, **filters, "sort": query.sort.value, **cursor},
        sort=query.sort.value,
        statuses=[status.value for status in CommentStatus],
        waiting=f"{waiting:,}" if waiting <= WAITING_COUNTED_TO else f"{WAITING_COUNTED_TO:,}+",
        sorts=[sort.value for sort in Sort],
    )


def _judged(comments: Sequence[Comment]) -> dict[int, dict[str, Any]]:
    """What a comment's card shows beside the comment, by the comment's id: the comment it
    replies to, why the policy put it where it is, and a moderator's decision that did."""
    moves = last_moves(get_session(), [comment.id for comment in comments])
    # A reply is judged by what it answers, which is seldom on the same page.
    parents = parents_of(get_session(), comments)
    return {
        comment.id: {
            "parent": parents.get(comment.parent_id) if comment.parent_id is not None else None,
            # A flagged comment's scores alone do not say why it is held (a pre-moderated
            # site, a post sent too fast, a classification that failed), nor a rejected
            # one's (the honeypot).
            "routed": _routed(move) if (move := moves.get(comment.id)) else None,
            # Without who decided, how, when and with what note, a colleague's decision, or
            # a mistaken one of one's own, read as the model's, unchecked and unmended.
            "decided": _decided(move) if move and move.action in DECIDED else None,
        }
        for comment in comments
    }


@bp.get("/comments/<id:comment_id>")
@signed_in
def show_comment(comment_id: int) -> str:
    """One comment as the queue shows it, with its whole audit trail and its decision form,
    which comes back here; the pages' 404 for an id no comment has."""
    found = get_comment(get_session(), comment_id)
    return render_template(
        "moderate_comment.html",
        moderator=g.moderator,
        comment=moderator_view(found, services().keys),
        judged=_judged([found])[comment_id],
        trail=trail_view(found, audit_trail(get_session(), comment_id)),
        back=RETURN_TO_COMMENT,
    )


def _about(comment_id: int, said: str) -> Markup:
    """A message about comment ``comment_id``: "Comment 57" and what ``said`` tells of it,
    the name a link to the comment's page. A decision takes a comment off a queue filtered
    by status, and the page is where to follow it and to mend a mistaken decision."""
    return Markup("{}{}").format(_comment_link(comment_id, f"Comment {comment_id}"), said)


def _comment_link(comment_id: int, text: str) -> Markup:
    """A link to comment ``comment_id``'s page that reads ``text``."""
    return Markup('<a href="{}">{}</a>').format(url_for("pages.show_comment", comment_id=comment_id), text)


def _routed(event: AuditEvent) -> str | None:
    """Why the policy gave a comment the status ``event`` gave it, worded for the queue
    ("held: spam 0.62 at or above review threshold 0.35"); None for a moderator's decision."""
    if event.action in DECIDED or event.to_status is None or not event.reason:
        return None
    verb = "held" if event.to_status is CommentStatus.FLAGGED else event.to_status.value
    return f"{verb}: {event.reason}"


def _decided(event: AuditEvent) -> dict[str, str | None]:
    """A moderator's decision as the queue shows it: what, by whom, when, and the note."""
    done = DONE["approve" if event.action == Action.APPROVE else event.reason or "other"]
    return {"done": done, "actor": event.actor, "at": event.created_at.isoformat(), "note": event.note}


@bp.post("/comments/<id:comment_id>/decision")
@signed_in
def decide(comment_id: int) -> Response:
    """Apply the decision a button of the comment's form names, then go back to the page
    the form was on: the queue, or the comment's own page."""
    decision = request.form.get("decision", "")
    try:
        note = moderator_note(request.form.get("note"))
    except ValueError as exc:
        flash(_about(comment_id, f": the note {exc}."), "problem")
    else:
        if decision in DECISIONS:
            _apply(comment_id, decision, note)
        else:
            flash(_about(comment_id, ": choose approve, spam, abuse or other."), "problem")
    return redirect(_page_the_form_was_on(comment_id))


def _page_the_form_was_on(comment_id: int, anchor: str = "comments") -> str:
    """The page comment ``comment_id``'s form was on. The comment's own page, at its main
    content (where the message is); else the queue page (a stale cursor falls back to the
    top of the list), at the element ``anchor`` names: by default the list, past the
    header and the filters."""
    if _from_comment_page():
        return url_for("pages.show_comment", comment_id=comment_id, _anchor="comment")
    return _queue_the_form_was_on(anchor)


def _queue_the_form_was_on(anchor: str = "comments") -> str:
    """The queue page a form was on, as its hidden fields name it, at ``anchor``."""
    form = request.form
    # The fragment moves a keyboard's next Tab there too: without it, each decision sent
    # the moderator back to the page's top, Tab on Sign out and eleven stops from the
    # next comment.
    return url_for(
        "pages.queue",
        status=form.get("status"),
        thread=form.get("thread") or None,
        same_commenter_as=form.get("same_commenter_as") or None,
        sort=form.get("sort"),
        cursor=form.get("cursor"),
        _anchor=anchor,
    )


def _from_comment_page() -> bool:
    """Whether the form sent was on a comment's own page, not on the queue."""
    return request.form.get("return_to") == RETURN_TO_COMMENT["return_to"]


def _seen_time(raw: str | None) -> datetime | None:
    try:
        return seen_time(raw)
    except ValueError:
        return None  # an altered form: the status alone is checked


def _last_change(comment_id: int) -> AuditEvent | None:
    """The comment's last audit event that changed it."""
    # Reading the email or exporting the commenter's data is audited but changes nothing
    # (nor the time a decision checks): another moderator's doing so must not stand for
    # the change that made a decision stale.
    changes = [event for event in audit_trail(get_session(), comment_id) if event.action not in _READINGS]
    return changes[-1] if changes else None


def _made_already(last: AuditEvent | None, made: Decision) -> bool:
    """True when the comment's last change is this moderator's same decision: the form was
    sent twice (a double click), and the first one was applied."""
    reason = made.reason.value if made.reason else None
    return last is not None and (last.actor, last.action, last.reason, last.note) == (
        moderator_actor(g.moderator),
        made.action.value,
        reason,
        made.note,
    )


def _now_and_by_whom(comment_id: int, last: AuditEvent | None) -> str:
    """What the comment is now and who changed it last, as the conflict message says it."""
    comment = get_session().get(Comment, comment_id)
    if comment is None or last is None:
        return ""
    now = comment.status.value
    if last.to_status is None:
        # A change that kept the status (the commenter's data erased): its author did not set it.
        return f" (it is {now} now; last changed by {last.actor}: {last.action.replace('_', ' ')})"
    return f" (it is {now} now, by {last.actor})"


def _apply(comment_id: int, decision: str, note: str | None) -> None:
    # What the page showed: another moderator, or the classifier, may have changed the
    # comment since, and a decision made on what is no longer there is not applied.
    form = request.form
    seen = _choice(CommentStatus, form.get("seen_status"), None)
    applied, message = _outcome(comment_id, decision, note, seen, _seen_time(form.get("seen_updated_at")))
    flash(message, "done" if applied else "problem")


def _outcome(
    comment_id: int, decision: str, note: str | None, seen: CommentStatus | None, seen_at: datetime | None
) -> tuple[bool, Markup]:
    """Apply ``decision`` to a comment the page showed as ``seen`` (changed last at
    ``seen_at``): whether it holds now, and what to tell the moderator."""
    action, reason = DECISIONS[decision]
    made = Decision(action, reason, note, seen, seen_at)
    try:
        record_decision(comment_id, g.moderator, made)
    except NotFoundError as exc:
        return False, Markup("Comment {}: {}.").format(comment_id, exc)
    except ConflictError:
        last = _last_change(comment_id)
        if _made_already(last, made):
            return True, _about(comment_id, f" {DONE[decision]}.")
        # The page goes back to the queue it was on, which the comment may have left: the
        # moderator is told where it went, and who moved it, to follow it up.
        return False, _about(
            comment_id,
            f" was decided, classified or erased meanwhile{_now_and_by_whom(comment_id, last)},"
            " so your decision was not applied: look at it again.",
        )
    return True, _about(comment_id, f" {DONE[decision]}.")


@bp.post("/decisions")
@signed_in
def decide_selected() -> Response:
    """Apply one decision to every comment selected on a queue page (a wave of spam is
    rejected in one go), each as its own form would, then go back to that page."""
    form = request.form
    decision, selected = form.get("decision", ""), form.getlist("selected")
    try:
        note = moderator_note(form.get("note"))
    except ValueError as exc:
        flash(f"The selected comments were not decided: the note {exc}.", "problem")
        return redirect(_queue_the_form_was_on())
    if decision not in DECISIONS:
        flash("Choose approve, spam, abuse or other for the selected comments.", "problem")
    elif not selected:
        flash("Select the comments to decide first.", "problem")
    elif len(selected) > MAX_SELECTED:
        flash(f"Select at most {MAX_SELECTED} comments at a time.", "problem")
    else:
        _decide_each(decision, note, selected)
    return redirect(_queue_the_form_was_on())


def _decide_each(decision: str, note: str | None, selected: list[str]) -> None:
    """Decide each selected comment in turn, each committed on its own, and say which were
    decided and why any was not; an error stops the rest, and what was decided is still told."""
    shown: dict[int, tuple[CommentStatus | None, datetime | None]] = {}
    for raw in selected:
        parsed = _selection(raw)
        if parsed is None:
            flash(f"A selection this page does not make ({raw[:40]!r}) was left as it is.", "problem")
        else:
            # Each comment once, in the page's order, however often the form names it.
            shown.setdefault(parsed[0], parsed[1:])
    decided: list[int] = []
    settled = 0  # decided, or told why not
    try:
        for comment_id, (status, changed_at) in shown.items():
            applied, message = _outcome(comment_id, decision, note, status, changed_at)
            if applied:
                decided.append(comment_id)
            else:
                flash(message, "problem")
            settled += 1
    except Exception:
        # The database gone, say: those decided are committed, each on its own, and the
        # moderator must hear which, and that the others were not.
        get_session().rollback()
        logger.exception("deciding the selected comments stopped")
        left = len(shown) - settled
        flash(f"An error stopped the decisions: {left} of the selected comments were not decided.", "problem")
    finally:
        if decided:
            links = Markup(", ").join(_comment_link(each, str(each)) for each in decided)
            counted = "1 comment" if len(decided) == 1 else f"{len(decided)} comments"
            flash(Markup("{} {}: {}.").format(counted, DONE[decision], links), "done")


def _selection(raw: str) -> tuple[int, CommentStatus | None, datetime | None] | None:
    """A selected comment's id, and the status and time of change its card showed, from
    its checkbox's value (``ID STATUS UPDATED_AT``); None when it is not such a value."""
    parts = raw.split(" ")
    if len(parts) != 3:
        return None
    try:
        comment_id = whole_number(parts[0], MAX_ID)
    except ValueError:
        return None
    return comment_id, _choice(CommentStatus, parts[1], None), _seen_time(parts[2])


@bp.post("/comments/<id:comment_id>/reveal-email")
@signed_in
def reveal(comment_id: int) -> Any:
    """The comment's full email on a page of its own, never stored in the browser; the
    comment's audit trail records who saw it."""
    try:
        email = reveal_email(get_session(), services().keys, comment_id, moderator_actor(g.moderator), None)
    except NotFoundError as exc:
        flash(f"Comment {comment_id}: {exc}.", "problem")
        return redirect(_page_the_form_was_on(comment_id))
    get_session().commit()
    # Percent-encoded, as RFC 6068 asks: an address may hold `?`, `&` or `%`, which a mail
    # program would read as the start of headers (`?bcc=...`) or as an escape.
    mailto = f"mailto:{quote(email, safe='@')}" if email else None
    back = _page_the_form_was_on(comment_id, f"comment-{comment_id}")  # to decide the comment next
    back_to = f"comment {comment_id}" if _from_comment_page() else "the review queue"
    page = {"comment_id": comment_id, "email": email, "mailto": mailto, "back": back, "back_to": back_to}
    return render_template("moderate_email.html", **page)
