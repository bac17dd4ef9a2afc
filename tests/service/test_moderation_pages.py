"""The moderators' pages: sign-in by token, the queue, decisions, CSRF and sessions."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from service import moderation_pages
from service.app import Services, create_app
from service.auth import create_token, revoke_tokens
from service.personal_data import erase_personal_data
from service.reasons import posted_too_fast
from service.statuses import CommentStatus
from service.tables import AuditEvent, Comment, Label
from service.transitions import VerdictRecord, flag_unclassified, record_verdicts

pytestmark = pytest.mark.integration

FORM = {"name": "Ann Reader", "email": "jane.doe@example.com", "thread": "/a/1"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _post(client: FlaskClient, text: str) -> int:
    response = client.post("/v1/comments", json={**FORM, "comment": text})
    assert response.status_code == 202
    return int(response.get_json()["id"])


def _route(services: Services, comment_id: int, outcome: CommentStatus, why: str = "test") -> None:
    verdict = VerdictRecord(0.7, 0.01, ['"casino" +1.5 toward spam'], "test-model", outcome, why)
    with services.sessions() as session:
        assert record_verdicts(session, {comment_id: verdict}) == [comment_id]
        session.commit()


def _token(services: Services, name: str = "Mo") -> str:
    with services.sessions() as session:
        token = create_token(session, name)
        session.commit()
    return token


def _csrf(client: FlaskClient, path: str) -> str:
    match = CSRF.search(client.get(path).get_data(as_text=True))
    assert match, path
    return match.group(1)


def _messages(page: str) -> str:
    """The messages at the top of ``page`` as they read, one a line (their links are text)."""
    shown = re.findall(r'<p class="flash \w+" role="\w+">(.*?)</p>', page, flags=re.DOTALL)
    return "\n".join(html.unescape(re.sub(r"<[^>]+>", "", message)) for message in shown)


def _sign_in(client: FlaskClient, token: str) -> None:
    response = client.post(
        "/moderate/sign-in", data={"token": token, "csrf_token": _csrf(client, "/moderate/sign-in")}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/moderate/"


@pytest.fixture
def flagged(client: FlaskClient, services: Services) -> int:
    """One flagged comment beside one still waiting for its verdict."""
    _post(client, "Still being classified.")
    comment_id = _post(client, "Great casino bonus here.")
    _route(services, comment_id, CommentStatus.FLAGGED)
    return comment_id


def test_the_queue_needs_a_signed_in_moderator(client: FlaskClient, services: Services) -> None:
    response = client.get("/moderate/")
    assert response.status_code == 302 and response.headers["Location"] == "/moderate/sign-in"
    wrong = client.post(
        "/moderate/sign-in", data={"token": "mod_wrong", "csrf_token": _csrf(client, "/moderate/sign-in")}
    )
    assert wrong.status_code == 401 and "not valid" in wrong.get_data(as_text=True)
    assert client.get("/moderate/").status_code == 302


def test_a_form_without_its_csrf_token_is_refused(
    client: FlaskClient, services: Services, flagged: int
) -> None:
    token = _token(services)
    refused = client.post("/moderate/sign-in", data={"token": token})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "<title>Form not accepted · Moderation</title>" in page
    # Reloading a page that answers a POST sends the same refused form again.
    assert "Reload" not in page and "Open the review queue again" in page
    _sign_in(client, token)
    forged = client.post(f"/moderate/comments/{flagged}/decision", data={"decision": "approve"})
    assert forged.status_code == 400
    with services.sessions() as session:
        assert session.get_one(Comment, flagged).status is CommentStatus.FLAGGED


def test_a_head_request_for_the_sign_in_page_is_answered_as_its_get_and_signs_no_one_in(
    client: FlaskClient, services: Services
) -> None:
    # A HEAD carries no CSRF token: were it read as the form's POST, a body holding a token
    # would start a session.
    assert client.head("/moderate/sign-in").status_code == 200
    response = client.open("/moderate/sign-in", method="HEAD", data={"token": _token(services)})
    assert response.status_code == 200
    assert client.get("/moderate/").headers["Location"] == "/moderate/sign-in"


def test_the_queue_shows_flagged_comments_with_the_email_masked(
    client: FlaskClient, services: Services, flagged: int
) -> None:
    _sign_in(client, _token(services))
    queue = client.get("/moderate/")
    assert queue.headers["Cache-Control"] == "no-store"  # Back after signing out shows nothing
    page = queue.get_data(as_text=True)
    assert "Great casino bonus here." in page and "Still being classified." not in page
    assert "j***@example.com" in page and "jane.doe" not in page
    assert "&#34;casino&#34; +1.5 toward spam" in page and "spam 0.70" in page
    everything = client.get("/moderate/?status=").get_data(as_text=True)
    assert "Still being classified." in everything
    # Anything the links do not offer falls back to the defaults rather than failing: the
    # flagged comments, not every status.
    fallback = client.get("/moderate/?status=Flagged&sort=nope&cursor=forged")
    assert fallback.status_code == 200
    shown = fallback.get_data(as_text=True)
    assert "Great casino bonus here." in shown and "Still being classified." not in shown


def test_the_queue_says_how_many_comments_wait_in_it(client: FlaskClient, services: Services) -> None:
    # How much waits (to plan a shift, or call for help) was on no page: 20 at a time and a
    # "Next page" link.
    for number in range(22):
        _route(services, _post(client, f"Held number {number}."), CommentStatus.FLAGGED)
    elsewhere = client.post("/v1/comments", json={**FORM, "thread": "/b/2", "comment": "Held elsewhere."})
    _route(services, int(elsewhere.get_json()["id"]), CommentStatus.FLAGGED)
    _route(services, _post(client, "Published."), CommentStatus.APPROVED)
    _post(client, "Still being classified.")
    _sign_in(client, _token(services))
    for address in ("/moderate/", "/moderate/?status=approved&sort=age"):
        assert ">flagged (23)</a>" in client.get(address).get_data(as_text=True)
    # Within a thread (or one commenter's comments), that thread's.
    assert ">flagged (1)</a>" in client.get("/moderate/?thread=/b/2").get_data(as_text=True)


def test_a_long_queue_is_counted_up_to_a_bound(
    client: FlaskClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Counted exactly, a backlog of hundreds of thousands is read whole on every page view.
    monkeypatch.setattr(moderation_pages, "WAITING_COUNTED_TO", 2)
    for number in range(3):
        _route(services, _post(client, f"Held number {number}."), CommentStatus.FLAGGED)
    _sign_in(client, _token(services))
    assert ">flagged (2+)</a>" in client.get("/moderate/").get_data(as_text=True)
    monkeypatch.setattr(moderation_pages, "WAITING_COUNTED_TO", 3)
    assert ">flagged (3)</a>" in client.get("/moderate/").get_data(as_text=True)


def test_the_queue_shows_when_a_comment_came_to_the_minute_in_utc(
    client: FlaskClient, services: Services, flagged: int
) -> None:
    with services.sessions() as session:
        came = datetime(2026, 12, 1, 12, 16, 28, 7010, tzinfo=UTC)
        session.execute(update(Comment).where(Comment.id == flagged).values(created_at=came))
        session.commit()
    _sign_in(client, _token(services))
    page = client.get("/moderate/").get_data(as_text=True)
    shown = re.search(r'<time datetime="([^"]+)">([^<]+)</time>', page)
    assert shown is not None
    assert datetime.fromisoformat(shown[1]) == came
    assert shown[2] == "2026-12-01 12:16 UTC"


def test_a_decision_from_the_page_is_stored_audited_and_labelled(
    client: FlaskClient, services: Services, flagged: int
) -> None:
    _sign_in(client, _token(services, "Mo"))
    form = {"decision": "spam", "note": "casino link", "status": "flagged", "sort": "queue"}
    response = client.post(
        f"/moderate/comments/{flagged}/decision", data={**form, "csrf_token": _csrf(client, "/moderate/")}
    )
    assert response.status_code == 302
    # Back at the list, where the message is and a keyboard's next Tab goes on from.
    assert response.headers["Location"] == "/moderate/?status=flagged&sort=queue#comments"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert (
        f"Comment {flagged} rejected as spam." in _messages(page) and "Great casino bonus here." not in page
    )
    with services.sessions() as session:
        assert session.get_one(Comment, flagged).status is CommentStatus.REJECTED
        event = session.scalars(select(AuditEvent).where(AuditEvent.comment_id == flagged)).all()[-1]
        assert (event.actor, event.reason, event.note) == ("moderator:Mo", "spam", "casino link")
        label = session.scalars(select(Label).where(Label.comment_id == flagged)).one()
        assert (label.spam, label.abuse) == (True, None)


@pytest.mark.parametrize(
    ("comment", "form", "problem"),
    [
        (None, {"decision": "maybe"}, "choose approve, spam, abuse or other"),
        (
            None,
            {"decision": "approve", "note": "x" * 2001},
            "the note must be text of at most 2000 characters",
        ),
        (None, {"decision": "approve", "note": "a\x00b"}, "the note contains control characters"),
        (999999, {"decision": "approve"}, "comment 999999 does not exist"),
    ],
)
def test_a_decision_the_page_cannot_apply_is_explained(
    client: FlaskClient,
    services: Services,
    flagged: int,
    comment: int | None,
    form: dict[str, str],
    problem: str,
) -> None:
    _sign_in(client, _token(services))
    target = comment or flagged
    data = {**form, "csrf_token": _csrf(client, "/moderate/")}
    response = client.post(f"/moderate/comments/{target}/decision", data=data, follow_redirects=True)
    assert problem in response.get_data(as_text=True)
    with services.sessions() as session:
        assert session.get_one(Comment, flagged).status is CommentStatus.FLAGGED


@pytest.mark.parametrize("ended_by", ["expiry", "revocation"])
def test_a_decision_sent_after_the_session_ended_asks_to_sign_in_again(
    client: FlaskClient, services: Services, flagged: int, ended_by: str
) -> None:
    _sign_in(client, _token(services, "Mo"))
    form = {"decision": "approve", "seen_status": "flagged", "csrf_token": _csrf(client, "/moderate/")}
    if ended_by == "expiry":
        client.delete_cookie("moderation_session", path="/moderate")
    else:
        with services.sessions() as session:
            revoke_tokens(session, "Mo")
            session.commit()
    response = client.post(f"/moderate/comments/{flagged}/decision", data=form)
    assert response.status_code == 302 and response.headers["Location"] == "/moderate/sign-in"
    page = client.get("/moderate/sign-in").get_data(as_text=True)
    assert "Your session ended, so that form was not acted on: sign in again." in page
    # Announced, and still a list to a screen reader: a role on an item leaves its list
    # holding no list item.
    elements = _Elements(page).elements
    items = [(attrs, inside) for tag, attrs, inside in elements if tag == "li"]
    assert items and all(inside[-1] == "ul" and "role" not in attrs for attrs, inside in items)
    assert any(attrs.get("role") == "status" and tag != "li" for tag, attrs, _ in elements)
    with services.sessions() as session:
        assert session.get_one(Comment, flagged).status is CommentStatus.FLAGGED


def test_revoking_the_token_ends_the_session(client: FlaskClient, services: Services) -> None:
    _sign_in(client, _token(services, "Mo"))
    assert client.get("/moderate/").status_code == 200
    with services.sessions() as session:
        revoke_tokens(session, "Mo")
        session.commit()
    assert client.get("/moderate/").status_code == 302


def test_signing_out_ends_the_session_even_for_a_kept_copy_of_the_cookie(
    client: FlaskClient, services: Services
) -> None:
    token = _token(services)
    _sign_in(client, token)
    kept = client.get_cookie("moderation_session", path="/moderate")
    assert kept is not None
    other = client.application.test_client()
    _sign_in(other, token)
    signed_out = client.post(
        "/moderate/sign-out", data={"csrf_token": _csrf(client, "/moderate/")}, follow_redirects=True
    )
    page = signed_out.get_data(as_text=True)
    assert '<ul class="notices"><li>You signed out.</li></ul>' in page and "Sign in to moderate" in page
    assert client.get("/moderate/").status_code == 302
    client.set_cookie("moderation_session", kept.value, path="/moderate")
    assert client.get("/moderate/").status_code == 302
    # Signing out ends the token's other sessions too; signing in again works.
    assert other.get("/moderate/").status_code == 302
    _sign_in(client, token)
    assert client.get("/moderate/").status_code == 200


def test_the_session_cookie_is_kept_from_scripts_and_other_sites(
    client: FlaskClient, services: Services
) -> None:
    _sign_in(client, _token(services))
    cookie = client.get_cookie("moderation_session", path="/moderate")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    assert cookie.expires is not None  # an idle session ends
    # The public endpoints neither receive nor renew it.
    assert "Set-Cookie" not in client.get("/v1/threads/%2Fa%2F1/comments").headers


def test_behind_a_proxy_serving_the_app_under_a_path_the_pages_and_their_cookie_are_under_it(
    settings_overrides: dict[str, Any], services: Services
) -> None:
    token = _token(services)
    app = create_app({**settings_overrides, "trusted_proxies": 1})
    try:
        # The proxy takes /comments off the path it forwards and names it in a header.
        client = app.test_client()
        client.environ_base.update(HTTP_X_FORWARDED_PREFIX="/comments", HTTP_X_FORWARDED_FOR="192.0.2.1")
        assert client.get("/moderate/").headers["Location"] == "/comments/moderate/sign-in"
        csrf_token = _csrf(client, "/moderate/sign-in")
        cookie = client.get_cookie("moderation_session", path="/comments/moderate")
        assert cookie is not None
        # What the browser sends back to /comments/moderate/..., which the proxy forwards
        # as /moderate/... (the test client matches cookies on the forwarded path).
        client.set_cookie("moderation_session", cookie.value, path="/moderate")
        signed_in = client.post("/moderate/sign-in", data={"token": token, "csrf_token": csrf_token})
        assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/comments/moderate/"
        assert "Path=/comments/moderate;" in signed_in.headers["Set-Cookie"]
    finally:
        app.extensions["moderation"].close()


def test_a_revealed_address_is_a_mailto_link_to_that_address_only(
    client: FlaskClient, services: Services
) -> None:
    crafted = "a?bcc=spy%40evil.example&x=@example.com"
    posted = client.post("/v1/comments", json={**FORM, "email": crafted, "comment": "Hello."})
    assert posted.status_code == 202
    comment_id = int(posted.get_json()["id"])
    _route(services, comment_id, CommentStatus.FLAGGED)
    _sign_in(client, _token(services))
    response = client.post(
        f"/moderate/comments/{comment_id}/reveal-email", data={"csrf_token": _csrf(client, "/moderate/")}
    )
    page = response.get_data(as_text=True)
    assert 'href="mailto:a%3Fbcc%3Dspy%2540evil.example%26x%3D@example.com"' in page
    assert "a?bcc=spy%40evil.example&amp;x=@example.com</a>" in page


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/moderate/sign-in", 200), ("GET", "/moderate/no-such-page", 404), ("PUT", "/moderate/", 405)],
)
def test_the_pages_refuse_to_be_framed_or_kept(
    client: FlaskClient, method: str, path: str, status: int
) -> None:
    # Addresses no page answers too: they belong to no blueprint, so its own hook missed them.
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.headers["X-Frame-Options"] == "DENY"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "script-src" not in policy and "form-action 'self'" in policy
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cache-Control"] == "no-store"


def test_the_public_api_is_not_given_the_pages_headers(client: FlaskClient) -> None:
    response = client.get("/v1/threads/a/1/comments")
    assert response.status_code == 200 and "X-Frame-Options" not in response.headers


def test_errors_on_the_pages_are_worded_for_moderators(client: FlaskClient, services: Services) -> None:
    huge = {"token": "x" * (services.settings.max_body_bytes + 1)}
    response = client.post("/moderate/sign-in", data=huge)
    page = response.get_data(as_text=True)
    assert response.status_code == 413 and "<h1>Request Entity Too Large</h1>" in page
    assert "Your comment" not in page


def test_signing_out_with_a_stale_form_still_ends_this_session(
    client: FlaskClient, services: Services
) -> None:
    _sign_in(client, _token(services))
    response = client.post("/moderate/sign-out", data={"csrf_token": "stale"})
    assert response.status_code == 302 and response.headers["Location"] == "/moderate/sign-in"
    assert client.get("/moderate/").status_code == 302


def test_an_address_no_page_answers_is_worded_for_moderators(client: FlaskClient) -> None:
    response = client.post(f"/moderate/comments/{2**64}/decision", data={"decision": "approve"})
    page = response.get_data(as_text=True)
    assert response.status_code == 404 and "<h1>Not Found</h1>" in page
    assert "<title>Not Found · Moderation</title>" in page


def test_revealing_an_email_from_the_page_shows_it_once_and_records_who_saw_it(
    client: FlaskClient, services: Services, flagged: int
) -> None:
    _sign_in(client, _token(services, "Mo"))
    queue = client.get("/moderate/").get_data(as_text=True)
    assert f"/moderate/comments/{flagged}/reveal-email" in queue and "jane.doe" not in queue
    token = _csrf(client, "/moderate/")
    assert client.post(f"/moderate/comments/{flagged}/reveal-email").status_code == 400  # no CSRF token
    response = client.post(f"/moderate/comments/{flagged}/reveal-email", data={"csrf_token": token})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert 'href="mailto:jane.doe@example.com"' in response.get_data(as_text=True)
    with services.sessions() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.comment_id == flagged)).all()
    assert [(event.action, event.actor) for event in events][-1] == ("email_revealed", "moderator:Mo")
    # Nothing of it stays in the session cookie (signed, not encrypted) or on the next page.
    cookie = client.get_cookie("moderation_session", path="/moderate")
    assert cookie is not None
    app = client.application
    serializer = app.session_interface.get_signing_serializer(app)
    assert "jane.doe" not in str(serializer.loads(cookie.value))
    assert "jane.doe" not in client.get("/moderate/").get_data(as_text=True)
    missing = client.post("/moderate/comments/999999/reveal-email", data={"csrf_token": token})
    assert missing.status_code == 302
    assert "comment 999999 does not exist" in client.get("/moderate/").get_data(as_text=True)


def test_signing_in_over_https_needs_no_referer(client: FlaskClient, services: Services) -> None:
    # Browsers and proxies set to strip the Referer, or a proxy that does not pass on the
    # public Host, must not make every form fail: the CSRF token is the check.
    token = _token(services)
    https = "https://moderation.example"
    form = client.get("/moderate/sign-in", base_url=https).get_data(as_text=True)
    match = CSRF.search(form)
    assert match
    response = client.post(
        "/moderate/sign-in", data={"token": token, "csrf_token": match.group(1)}, base_url=https
    )
    assert response.status_code == 302 and response.headers["Location"] == "/moderate/"


def test_a_blank_token_is_asked_for_in_the_pages_words(client: FlaskClient) -> None:
    data = {"token": "   ", "csrf_token": _csrf(client, "/moderate/sign-in")}
    response = client.post("/moderate/sign-in", data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 401 and "Paste your moderator token." in page
    assert "Authorization" not in page


def test_a_stale_cursor_starts_the_list_again_in_the_order_asked_for(
    client: FlaskClient, services: Services
) -> None:
    for number in range(3):
        _post(client, f"Comment number {number}.")
    _sign_in(client, _token(services))
    page = client.get("/moderate/?status=received&sort=age&cursor=forged").get_data(as_text=True)
    assert 'name="sort" value="age"' in page and 'name="sort" value="queue"' not in page
    assert page.index("Comment number 0.") < page.index("Comment number 2.")


def test_signing_in_starts_a_new_session_so_a_form_token_from_before_is_refused(
    client: FlaskClient, services: Services, flagged: int
) -> None:
    before = _csrf(client, "/moderate/sign-in")  # e.g. planted with a session cookie before signing in
    _sign_in(client, _token(services))
    form = {"decision": "approve", "seen_status": "flagged", "csrf_token": before}
    response = client.post(f"/moderate/comments/{flagged}/decision", data=form)
    assert response.status_code == 400
    with services.sessions() as session:
        assert session.get_one(Comment, flagged).status is CommentStatus.FLAGGED


def test_a_decision_on_a_later_page_goes_back_to_that_page(client: FlaskClient, services: Services) -> None:
    ids = [_post(client, f"Comment number {number}.") for number in range(25)]
    _sign_in(client, _token(services))
    first = client.get("/moderate/?status=received&sort=age").get_data(as_text=True)
    cursor = re.search(r'href="/moderate/\?status=received&amp;sort=age&amp;cursor=([^"]+)"', first)
    assert cursor
    later = f"/moderate/?status=received&sort=age&cursor={cursor.group(1)}"
    page = client.get(later).get_data(as_text=True)
    assert f'name="cursor" value="{cursor.group(1)}"' in page
    form = {"decision": "approve", "status": "received", "sort": "age", "cursor": cursor.group(1)}
    response = client.post(
        f"/moderate/comments/{ids[21]}/decision", data={**form, "csrf_token": _csrf(client, later)}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"cursor={cursor.group(1)}#comments")
    back = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Comment number 22." in back and "Comment number 0." not in back
    # A later page leads back to the first, which has no such link of its own.
    assert '<a href="/moderate/?status=received&amp;sort=age">First page</a>' in back
    assert "First page" not in first


def _card(page: str, comment_id: int) -> str:
    """The article of ``comment_id`` on ``page``."""
    card = page[page.index(f'<article id="comment-{comment_id}"') :]
    return card[: card.index("</article>")]


def test_a_comments_thread_leads_to_every_comment_of_that_thread_and_decisions_stay_there(
    client: FlaskClient, services: Services
) -> None:
    # The thread was plain text: the conversation a comment is part of could not be read
    # from the pages, though the API filters by thread.
    harbour = {**FORM, "thread": "/2026/11/harbour?page=2&x=1"}
    held = int(client.post("/v1/comments", json={**harbour, "comment": "Casino bonus."}).get_json()["id"])
    _route(services, held, CommentStatus.FLAGGED)
    published = int(
        client.post("/v1/comments", json={**harbour, "comment": "The works ran late."}).get_json()["id"]
    )
    _route(services, published, CommentStatus.APPROVED)
    _route(services, _post(client, "Elsewhere entirely."), CommentStatus.FLAGGED)
    _sign_in(client, _token(services))
    queue = _card(client.get("/moderate/").get_data(as_text=True), held)
    assert "<bdi>/2026/11/harbour?page=2&amp;x=1</bdi>" in queue
    link = re.search(r'<a href="([^"]+)" aria-describedby="[^"]+">Whole thread</a>', queue)
    assert link, "the thread is a link away"
    # After the decisions, which a keyboard reaches first past the heading's link to the comment.
    heading, note = _Elements(queue).focusable()[:2]
    assert heading[1].get("href") == f"/moderate/comments/{held}" and note[1].get("name") == "note"
    thread_page = html.unescape(link.group(1))
    page = client.get(thread_page).get_data(as_text=True)
    assert "Casino bonus." in page and "The works ran late." in page and "Elsewhere entirely." not in page
    assert page.index("Casino bonus.") < page.index("The works ran late.")  # as it was posted
    assert "Thread: <bdi>/2026/11/harbour?page=2&amp;x=1</bdi>" in page
    # The filters and pages keep to the thread, and so does the page a decision leads back to.
    order_link = re.search(r'<a href="([^"]+)">score</a>', page)
    assert order_link and "thread=" in order_link.group(1)
    fields = _hidden_fields(page, f"/moderate/comments/{held}/decision")
    form = {**{name: html.unescape(value) for name, value in fields.items()}, "decision": "spam"}
    response = client.post(f"/moderate/comments/{held}/decision", data=form)
    back = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Comment {held} rejected as spam." in _messages(back)
    assert "The works ran late." in back and "Elsewhere entirely." not in back


def test_a_commenters_other_comments_are_a_link_away_and_decisions_stay_with_them(
    client: FlaskClient, services: Services
) -> None:
    # A troll's many rejected comments, or a regular's approved ones, weigh in a decision:
    # the pages showed one comment at a time, whoever posted it.
    before = _post(client, "Shut up, idiot.")
    _route(services, before, CommentStatus.REJECTED)
    again = client.post(
        "/v1/comments",
        json={**FORM, "email": "Jane.Doe@Example.com", "thread": "/b/2", "comment": "You again."},
    )
    held = int(again.get_json()["id"])
    _route(services, held, CommentStatus.FLAGGED)
    someone = client.post("/v1/comments", json={**FORM, "email": "someone@example.com", "comment": "Idiots."})
    other = int(someone.get_json()["id"])
    _route(services, other, CommentStatus.FLAGGED)
    _sign_in(client, _token(services))
    card = _card(client.get("/moderate/").get_data(as_text=True), held)
    link = re.search(r'<a href="([^"]+)" aria-describedby="[^"]+">Their comments</a>', card)
    assert link, "the commenter's comments are a link away"
    page = client.get(html.unescape(link.group(1))).get_data(as_text=True)
    assert "Shut up, idiot." in page and "You again." in page and "Idiots." not in page
    assert f"By the commenter of comment {held}" in page and "jane.doe" not in page.lower()
    fields = _hidden_fields(page, f"/moderate/comments/{held}/decision")
    response = client.post(f"/moderate/comments/{held}/decision", data={**fields, "decision": "abuse"})
    assert f"same_commenter_as={held}" in response.headers["Location"]
    back = client.get(response.headers["Location"]).get_data(as_text=True)
    assert (
        f"Comment {held} rejected as abuse." in _messages(back)
        and "Shut up, idiot." in back
        and "Idiots." not in back
    )


def test_an_erased_commenters_comments_are_no_ones_to_list(client: FlaskClient, services: Services) -> None:
    # An erasure removes the email's digest from every comment alike: listed by it, every
    # erased commenter's comments would read as one commenter's.
    erased = _post(client, "Still here, anonymously.")
    _route(services, erased, CommentStatus.FLAGGED)
    with services.sessions() as session:
        erase_personal_data(session, services.keys, FORM["email"], "cli", notify=False)
        session.commit()
    kept = client.post("/v1/comments", json={**FORM, "email": "someone@example.com", "comment": "Hello."})
    _route(services, int(kept.get_json()["id"]), CommentStatus.FLAGGED)
    _sign_in(client, _token(services))
    card = _card(client.get("/moderate/").get_data(as_text=True), erased)
    assert "email erased" in card and "Their comments" not in card
    page = client.get(f"/moderate/?status=&same_commenter_as={erased}").get_data(as_text=True)
    assert (
        "The comments of one commenter cannot be listed: the link names comment "
        f"{erased}, whose commenter&#39;s data was erased." in page
    )
    assert "Still here, anonymously." in page and "Hello." in page and "By the commenter" not in page


def test_names_links_and_threads_cannot_turn_the_line_around_them(
    client: FlaskClient, services: Services
) -> None:
    # A right-to-left override at the end of a name would reverse the rest of the line
    # (the link, the thread, the masked email) unless each is isolated. The intake now
    # refuses such a name; one stored before it did is still shown safely.
    posted = client.post(
        "/v1/comments", json={**FORM, "name": "Bob", "url": "https://bob.example/home", "comment": "שלום"}
    )
    comment_id = int(posted.get_json()["id"])
    with services.sessions() as session:
        session.execute(update(Comment).where(Comment.id == comment_id).values(name="Bob \u202e"))
        session.commit()
    _route(services, comment_id, CommentStatus.FLAGGED)
    _sign_in(client, _token(services))
    page = client.get("/moderate/").get_data(as_text=True)
    assert "<bdi>Bob \u202e</bdi>" in page and "<bdi>https://bob.example/home</bdi>" in page
    assert "<bdi>/a/1</bdi>" in page and '<div class="text" dir="auto">שלום</div>' in page


def test_a_decision_on_what_the_page_showed_before_a_change_is_not_applied(
    client: FlaskClient, services: Services, flagged: int
) -> None:
    _sign_in(client, _token(services, "Mo"))
    page = client.get("/moderate/").get_data(as_text=True)
    assert 'name="seen_status" value="flagged"' in page
    token = _csrf(client, "/moderate/")
    # Another moderator approves it meanwhile.
    other = {"decision": "approve", "seen_status": "flagged", "csrf_token": token}
    assert client.post(f"/moderate/comments/{flagged}/decision", data=other).status_code == 302
    stale = {"decision": "spam", "seen_status": "flagged", "csrf_token": token}
    response = client.post(f"/moderate/comments/{flagged}/decision", data=stale, follow_redirects=True)
    meanwhile = f"Comment {flagged} was decided, classified or erased meanwhile"
    assert meanwhile in _messages(response.get_data(as_text=True))
    with services.sessions() as session:
        assert session.get_one(Comment, flagged).status is CommentStatus.APPROVED
        assert session.scalars(select(Label).where(Label.comment_id == flagged)).one().spam is False


def _hidden_fields(page: str, action: str) -> dict[str, str]:
    """The hidden fields of the form on ``page`` that posts to ``action``."""
    form = page[page.index(action) :]
    form = form[: form.index("</form>")]
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


def _decision_form(client: FlaskClient, comment_id: int, decision: str) -> dict[str, str]:
    """The form of ``comment_id`` on the page of every status, as sent by its ``decision`` button."""
    page = client.get("/moderate/?status=").get_data(as_text=True)
    return {**_hidden_fields(page, f"/moderate/comments/{comment_id}/decision"), "decision": decision}


def _send(client: FlaskClient, comment_id: int, form: dict[str, str]) -> None:
    assert client.post(f"/moderate/comments/{comment_id}/decision", data=form).status_code == 302


def test_a_decision_on_a_comment_changed_since_with_the_same_status_is_not_applied(
    client: FlaskClient, services: Services, flagged: int
) -> None:
    _sign_in(client, _token(services, "Mo"))
    _send(client, flagged, _decision_form(client, flagged, "spam"))
    stale = _decision_form(client, flagged, "approve")
    # Another moderator makes the rejection one for abuse: the status stays.
    _send(client, flagged, _decision_form(client, flagged, "abuse"))
    response = client.post(f"/moderate/comments/{flagged}/decision", data=stale, follow_redirects=True)
    meanwhile = f"Comment {flagged} was decided, classified or erased meanwhile"
    assert meanwhile in _messages(response.get_data(as_text=True))
    with services.sessions() as session:
        assert session.get_one(Comment, flagged).status is CommentStatus.REJECTED


def test_a_decision_sent_twice_says_it_was_applied(
    client: FlaskClient, services: Services, flagged: int
) -> None:
    _sign_in(client, _token(services, "Mo"))
    form = _decision_form(client, flagged, "approve")
    _send(client, flagged, form)
    client.get("/moderate/")  # the first answer's message, shown and gone
    twice = client.post(f"/moderate/comments/{flagged}/decision", data=form, follow_redirects=True)
    page = twice.get_data(as_text=True)
    assert f"Comment {flagged} approved." in _messages(page) and "not applied" not in page
    with services.sessions() as session:
        assert session.get_one(Comment, flagged).status is CommentStatus.APPROVED
        events = session.scalars(select(AuditEvent.action).where(AuditEvent.comment_id == flagged)).all()
        assert events.count("approve") == 1


def test_a_decision_sent_twice_says_it_was_applied_though_its_email_was_read_between(
    client: FlaskClient, services: Services, flagged: int, moderator_headers: dict[str, str]
) -> None:
    # Reading the comment's email (or exporting its commenter's data) is audited but changes
    # nothing: the second send of a double click that came after it was still applied.
    _sign_in(client, _token(services, "Mo"))
    form = _decision_form(client, flagged, "approve")
    _send(client, flagged, form)
    client.get("/moderate/")  # the first answer's message, shown and gone
    revealed = client.post(f"/v1/comments/{flagged}/reveal-email", headers=moderator_headers)
    assert revealed.status_code == 200
    twice = client.post(f"/moderate/comments/{flagged}/decision", data=form, follow_redirects=True)
    page = twice.get_data(as_text=True)
    assert f"Comment {flagged} approved." in _messages(page) and "not applied" not in page
    with services.sessions() as session:
        events = session.scalars(select(AuditEvent.action).where(AuditEvent.comment_id == flagged)).all()
        assert events.count("approve") == 1


@pytest.mark.parametrize("seen", ["yesterday", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_decision_with_an_altered_seen_time_is_checked_on_its_status_alone(
    client: FlaskClient, services: Services, flagged: int, seen: str
) -> None:
    _sign_in(client, _token(services, "Mo"))
    _send(client, flagged, {**_decision_form(client, flagged, "approve"), "seen_updated_at": seen})
    with services.sessions() as session:
        assert session.get_one(Comment, flagged).status is CommentStatus.APPROVED


def test_revealing_an_email_leads_back_to_the_page_the_queue_was_on(
    client: FlaskClient, services: Services, flagged: int
) -> None:
    _sign_in(client, _token(services, "Mo"))
    page = client.get("/moderate/?status=&sort=age").get_data(as_text=True)
    fields = _hidden_fields(page, f"/moderate/comments/{flagged}/reveal-email")
    assert (fields["status"], fields["sort"]) == ("", "age")
    shown = client.post(f"/moderate/comments/{flagged}/reveal-email", data=fields).get_data(as_text=True)
    # Back at the comment, to decide it next.
    assert f'href="/moderate/?status=&amp;sort=age#comment-{flagged}">Back to the review queue' in shown
    missing = client.post("/moderate/comments/999999/reveal-email", data=fields)
    assert missing.headers["Location"] == "/moderate/?status=&sort=age#comments"


def test_a_problem_is_announced_at_once_and_each_control_names_its_comment(
    client: FlaskClient, services: Services, flagged: int
) -> None:
    _sign_in(client, _token(services, "Mo"))
    client.post(f"/moderate/comments/{flagged}/decision", data={**_decision_form(client, flagged, "maybe")})
    page = client.get("/moderate/").get_data(as_text=True)
    assert '<p class="flash problem" role="alert">' in page
    # The note, four decisions, the selection, reveal, and the links to the thread and the
    # commenter's comments.
    assert page.count(f'aria-describedby="comment-{flagged}-meta"') == 9
    assert f'<div class="meta" id="comment-{flagged}-meta">' in page


def test_the_time_to_post_reads_as_the_reason_it_was_held_for(
    client: FlaskClient, services: Services
) -> None:
    # Held for being posted under 3 s: the page must not round 2.96 up to "3.0 s", which
    # is not under 3 and leaves the moderator no reason for the comment being there.
    response = client.post(
        "/v1/comments", json={**FORM, "comment": "Lovely photos.", "seconds_to_submit": 2.96}
    )
    comment_id = int(response.get_json()["id"])
    _route(services, comment_id, CommentStatus.FLAGGED, posted_too_fast(2.96, 3.0))
    other = _post(client, "Lovely photos too.")
    _route(services, other, CommentStatus.APPROVED)
    _sign_in(client, _token(services))
    page = client.get("/moderate/?status=").get_data(as_text=True)
    assert "held: posted 2.9 s after its form was shown, under 3 s" in page and "3.0 s" not in page
    with services.sessions() as session:
        session.get_one(Comment, other).seconds_to_submit = 4.96
        session.commit()
    # Not held: the time to post is shown as it is, rounded down alike.
    page = client.get("/moderate/?status=").get_data(as_text=True)
    assert "· posted 4.9 s after its form was shown" in page


def test_a_decision_not_applied_says_what_the_comment_is_now_and_who_changed_it(
    client: FlaskClient, services: Services, flagged: int
) -> None:
    # The comment leaves the flagged queue the page goes back to: without being told, the
    # moderator cannot see that the spam they meant to reject was approved meanwhile.
    _sign_in(client, _token(services, "Mo"))
    stale = _decision_form(client, flagged, "spam")
    other = client.application.test_client()
    _sign_in(other, _token(services, "Bo"))
    _send(other, flagged, _decision_form(other, flagged, "approve"))
    response = client.post(f"/moderate/comments/{flagged}/decision", data=stale, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert f"Comment {flagged} was decided, classified or erased meanwhile" in _messages(page)
    assert "it is approved now, by moderator:Bo" in page


def test_each_comment_has_a_heading_saying_what_it_replies_to(
    client: FlaskClient, services: Services
) -> None:
    # Screen readers go from heading to heading; a short reply is judged by what it answers.
    parent = _post(client, "The harbour works ran late again.")
    _route(services, parent, CommentStatus.APPROVED)
    reply = client.post("/v1/comments", json={**FORM, "comment": "Yes, exactly.", "parent_id": parent})
    reply_id = int(reply.get_json()["id"])
    _route(services, reply_id, CommentStatus.FLAGGED)
    _sign_in(client, _token(services))
    page = client.get("/moderate/?status=").get_data(as_text=True)
    # Each heading leads to the comment's own page.
    linked = f'<a href="/moderate/comments/{reply_id}">Comment {reply_id}</a>'
    assert f"<h2>{linked}, a reply to comment {parent}</h2>" in page
    assert f'<h2><a href="/moderate/comments/{parent}">Comment {parent}</a></h2>' in page


def test_a_reply_shows_the_start_of_the_comment_it_answers(client: FlaskClient, services: Services) -> None:
    # "Yes, exactly." is judged by what it agrees with, which is published, so never on the
    # flagged queue's pages; its id alone left the moderator nothing to read.
    parent = _post(client, "The harbour works ran late again. " + "The contractor blamed the tides. " * 30)
    _route(services, parent, CommentStatus.APPROVED)
    reply = client.post("/v1/comments", json={**FORM, "comment": "Yes, exactly.", "parent_id": parent})
    reply_id = int(reply.get_json()["id"])
    _route(services, reply_id, CommentStatus.FLAGGED)
    _sign_in(client, _token(services))
    page = client.get("/moderate/").get_data(as_text=True)
    assert f'id="comment-{parent}"' not in page  # not listed itself
    quoted = page[page.index(f"Comment {reply_id}</a>, a reply") : page.index("Yes, exactly.")]
    # The whole of it, and how it was judged, a link away.
    parent_link = f'<a href="/moderate/comments/{parent}">Comment {parent}</a>'
    assert f"{parent_link} (approved), by <bdi>Ann Reader</bdi>:" in quoted
    assert "The harbour works ran late again. The contractor blamed the tides." in quoted
    assert "The contractor blamed the tides. " * 30 not in quoted and "…" in quoted  # its start only
    assert "jane.doe" not in page


def test_a_decision_not_applied_after_an_erasure_does_not_credit_the_status_to_its_author(
    client: FlaskClient, services: Services, flagged: int
) -> None:
    # The erasure moved the comment's time, not its status: whoever erased did not flag it.
    _sign_in(client, _token(services, "Mo"))
    stale = _decision_form(client, flagged, "approve")
    with services.sessions() as session:
        erase_personal_data(session, services.keys, FORM["email"], "moderator:Ad", notify=False)
        session.commit()
    response = client.post(f"/moderate/comments/{flagged}/decision", data=stale, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "(it is flagged now; last changed by moderator:Ad: personal data erased)" in page
    assert "by moderator:Ad)" not in page


@pytest.mark.parametrize(
    "why",
    ["pre-moderation holds every comment for review", "spam 0.70 at or above review threshold 0.35"],
)
def test_a_flagged_comment_says_why_it_is_held(client: FlaskClient, services: Services, why: str) -> None:
    # Its scores alone do not say it: a pre-moderated site holds a comment that scores 0.
    comment_id = _post(client, "A question about the timetable.")
    _route(services, comment_id, CommentStatus.FLAGGED, why)
    _sign_in(client, _token(services))
    page = client.get("/moderate/").get_data(as_text=True)
    assert f"· held: {why}" in page


def test_each_comment_says_who_put_it_where_it_is_and_why(
    client: FlaskClient, services: Services, flagged: int
) -> None:
    # A rejected or approved comment read the same whoever had decided it, the model, the
    # honeypot or which moderator, and how: a mistaken decision could not be told from a
    # right one, nor a colleague's checked.
    _sign_in(client, _token(services, "Mo"))
    _send(client, flagged, {**_decision_form(client, flagged, "abuse"), "note": "threatens the mayor"})
    trapped = client.post("/v1/comments", json={**FORM, "comment": "Cheap pills.", "website": "x"})
    assert trapped.status_code == 202
    approved = _post(client, "A question about the timetable.")
    _route(services, approved, CommentStatus.APPROVED, "every score below its review threshold")
    page = client.get("/moderate/?status=").get_data(as_text=True)
    card = page[page.index(f'id="comment-{flagged}"') :]
    card = card[: card.index("</article>")]
    assert re.search(
        r"Rejected as abuse by moderator:Mo,\s*<time datetime=\"[^\"]+\">[^<]+ UTC</time>: "
        r'<q dir="auto">threatens the mayor</q>',
        card,
    )
    assert "held:" not in card  # no longer held
    assert "· rejected: the hidden honeypot field was filled in" in page
    assert "· approved: every score below its review threshold" in page


def test_a_comment_whose_classification_failed_says_so(client: FlaskClient, services: Services) -> None:
    comment_id = _post(client, "A question about the timetable.")
    with services.sessions() as session:
        assert flag_unclassified(session, comment_id, "the model could not be loaded")
        session.commit()
    _sign_in(client, _token(services))
    page = client.get("/moderate/").get_data(as_text=True)
    assert "· held: classification failed: the model could not be loaded" in page


class _Elements(HTMLParser):
    """Every start tag of a page, in document order, with its attributes and the tags it is inside."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None], tuple[str, ...]]] = []
        self._open: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs), tuple(self._open)))
        if tag not in {"input", "br", "meta", "link", "img", "hr"}:
            self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            del self._open[len(self._open) - 1 - self._open[::-1].index(tag) :]

    def focusable(self) -> list[tuple[str, dict[str, str | None], tuple[str, ...]]]:
        """The elements Tab stops at, in order."""
        return [
            element
            for element in self.elements
            if element[0] in {"a", "button", "input", "textarea", "select"}
            and element[1].get("type") != "hidden"
            and "hidden" not in element[1]
            and "disabled" not in element[1]
        ]


def test_the_queue_lets_a_keyboard_skip_to_the_comments_in_its_main_landmark(
    client: FlaskClient, services: Services, flagged: int
) -> None:
    # Sign-out, five status links and three order links come before the first comment, on
    # every page a decision leads back to.
    _sign_in(client, _token(services))
    queue = _Elements(client.get("/moderate/").get_data(as_text=True))
    mains = [attrs for tag, attrs, _ in queue.elements if tag == "main"]
    assert len(mains) == 1 and mains[0].get("id")
    first_tag, first, _ = queue.focusable()[0]
    assert first_tag == "a" and first.get("href") == f"#{mains[0]['id']}"
    articles = [inside for tag, _, inside in queue.elements if tag == "article"]
    assert articles and all("main" in inside for inside in articles)
    assert all("main" not in inside for tag, _, inside in queue.elements if tag in {"nav", "header"})
    # The other pages are one main landmark each too.
    for page in (client.get("/moderate/sign-in"), client.get("/moderate/nowhere")):
        assert [tag for tag, _, _ in _Elements(page.get_data(as_text=True)).elements].count("main") == 1


@pytest.mark.parametrize("token", ["   ", "mod_not-a-token"])
def test_a_refused_token_is_tied_to_its_field(client: FlaskClient, token: str) -> None:
    # Read with the field, as a screen reader reaches it, and where the next key goes.
    data = {"token": token, "csrf_token": _csrf(client, "/moderate/sign-in")}
    page = _Elements(client.post("/moderate/sign-in", data=data).get_data(as_text=True))
    (field,) = [attrs for _, attrs, _ in page.elements if attrs.get("name") == "token"]
    assert field.get("aria-invalid") == "true" and "autofocus" in field
    described = [
        attrs.get("class") for _, attrs, _ in page.elements if attrs.get("id") == field["aria-describedby"]
    ]
    assert described == ["problems"]
    fresh = _Elements(client.get("/moderate/sign-in").get_data(as_text=True))
    (untouched,) = [attrs for _, attrs, _ in fresh.elements if attrs.get("name") == "token"]
    assert "aria-invalid" not in untouched and "aria-describedby" not in untouched


def _status(services: Services, comment_id: int) -> CommentStatus:
    """Comment ``comment_id``'s status as stored now."""
    with services.sessions() as session:
        return session.get_one(Comment, comment_id).status


@pytest.fixture
def reply(client: FlaskClient, services: Services) -> tuple[int, int]:
    """A flagged reply to an approved comment: the reply's id and its parent's."""
    parent = _post(client, "The harbour works ran late again.")
    _route(services, parent, CommentStatus.APPROVED)
    posted = client.post(
        "/v1/comments",
        json={**FORM, "url": "https://jane.example/", "comment": "Great casino bonus.", "parent_id": parent},
    )
    reply_id = int(posted.get_json()["id"])
    _route(services, reply_id, CommentStatus.FLAGGED, "spam 0.70 at or above review threshold 0.35")
    return reply_id, parent


def _trail(page: str) -> list[str]:
    """The entries of the audit trail on a comment's page, as they read."""
    trail = page[page.index('<h2 id="trail">Audit trail</h2>') :]
    return [
        re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", entry))).strip()
        for entry in re.findall(r"<li>(.*?)</li>", trail, flags=re.DOTALL)
    ]


def test_a_comments_page_shows_it_as_the_queue_does_with_its_whole_audit_trail(
    client: FlaskClient, services: Services, reply: tuple[int, int], moderator_headers: dict[str, str]
) -> None:
    # Mending a mistaken decision meant paging through the rejected list, and who did what
    # to a comment was in the API alone.
    reply_id, parent = reply
    assert client.get(f"/moderate/comments/{reply_id}").headers["Location"] == "/moderate/sign-in"
    _sign_in(client, _token(services, "Mo"))
    _send(client, reply_id, {**_decision_form(client, reply_id, "abuse"), "note": "threatens the mayor"})
    assert client.post(f"/v1/comments/{reply_id}/reveal-email", headers=moderator_headers).status_code == 200
    response = client.get(f"/moderate/comments/{reply_id}")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    assert f"<title>Comment {reply_id} · Moderation</title>" in page
    assert f"<h1>Comment {reply_id}, a reply to comment {parent}</h1>" in page
    card = _card(page, reply_id)
    assert "Great casino bonus." in card and "j***@example.com" in card and "spam 0.70" in card
    assert "&#34;casino&#34; +1.5 toward spam" in card and "· rejected" not in card
    assert re.search(r"Rejected as abuse by moderator:Mo,\s*<time", card)
    assert f'<a href="/moderate/comments/{parent}">Comment {parent}</a> (approved)' in card
    assert "The harbour works ran late again." in card
    assert "Whole thread</a>" in card and "Their comments</a>" in card
    assert f"/moderate/comments/{reply_id}/reveal-email" in card
    # Everyone's doings, oldest first, each at its time in UTC.
    assert [entry.split(" · ", 1)[1] for entry in _trail(page)] == [
        "intake · received",
        "model:test-model · classified (spam 0.70 at or above review threshold 0.35): received → flagged",
        "moderator:Mo · reject (abuse): flagged → rejected: threatens the mayor",
        "moderator:Mod Erator · email revealed",
    ]
    trail = page[page.index('<h2 id="trail">Audit trail</h2>') :]
    times = re.findall(r'<time datetime="([^"]+)">([^<]+)</time>', trail)
    assert len(times) == 4 and all(shown.endswith(" UTC") for _, shown in times)
    assert all(datetime.fromisoformat(at).tzinfo is not None for at, _ in times)
    assert "jane.doe" not in page.lower()


def _comment_page_form(client: FlaskClient, comment_id: int) -> dict[str, str]:
    """The hidden fields of the decision form on comment ``comment_id``'s page."""
    page = client.get(f"/moderate/comments/{comment_id}").get_data(as_text=True)
    return _hidden_fields(page, f"/moderate/comments/{comment_id}/decision")


def test_a_decision_from_a_comments_page_is_applied_and_comes_back_to_it(
    client: FlaskClient, services: Services, reply: tuple[int, int]
) -> None:
    reply_id, _parent = reply
    _sign_in(client, _token(services, "Mo"))
    fields = _comment_page_form(client, reply_id)
    assert "status" not in fields and "cursor" not in fields and fields["seen_status"] == "flagged"
    form = {**fields, "decision": "spam", "note": "casino link"}
    response = client.post(f"/moderate/comments/{reply_id}/decision", data=form)
    assert response.headers["Location"] == f"/moderate/comments/{reply_id}#comment"
    back = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Comment {reply_id} rejected as spam." in _messages(back)
    assert _trail(back)[-1].endswith("moderator:Mo · reject (spam): flagged → rejected: casino link")
    assert _status(services, reply_id) is CommentStatus.REJECTED
    with services.sessions() as session:
        label = session.scalars(select(Label).where(Label.comment_id == reply_id)).one()
        assert (label.spam, label.abuse) == (True, None)
    # Mended from the same page: its form now holds what the page shows.
    fields = _hidden_fields(back, f"/moderate/comments/{reply_id}/decision")
    mended = client.post(
        f"/moderate/comments/{reply_id}/decision",
        data={**fields, "decision": "approve"},
        follow_redirects=True,
    )
    assert f"Comment {reply_id} approved." in _messages(mended.get_data(as_text=True))
    # Revealing the email from the page leads back to it.
    fields = _hidden_fields(back, f"/moderate/comments/{reply_id}/reveal-email")
    shown = client.post(f"/moderate/comments/{reply_id}/reveal-email", data=fields).get_data(as_text=True)
    assert f'<a href="/moderate/comments/{reply_id}#comment">Back to comment {reply_id}</a>' in shown


def test_a_decision_from_a_comments_page_after_a_colleagues_is_refused_there(
    client: FlaskClient, services: Services, reply: tuple[int, int]
) -> None:
    reply_id, _parent = reply
    _sign_in(client, _token(services, "Mo"))
    stale = {**_comment_page_form(client, reply_id), "decision": "approve"}
    other = client.application.test_client()
    _sign_in(other, _token(services, "Bo <i>"))
    _send(other, reply_id, _decision_form(other, reply_id, "abuse"))
    response = client.post(f"/moderate/comments/{reply_id}/decision", data=stale, follow_redirects=True)
    shown = response.get_data(as_text=True)
    assert response.request.path == f"/moderate/comments/{reply_id}"
    # The message links the comment, and its words stay text.
    assert "by moderator:Bo &lt;i&gt;)" in shown and "<i>" not in shown
    assert (
        f"Comment {reply_id} was decided, classified or erased meanwhile (it is rejected now, "
        "by moderator:Bo <i>), so your decision was not applied" in _messages(shown)
    )
    assert '<p class="flash problem" role="alert">' in shown
    # What the colleague decided, to look at again.
    assert _trail(shown)[-1].endswith("moderator:Bo <i> · reject (abuse): flagged → rejected")
    assert _status(services, reply_id) is CommentStatus.REJECTED


def test_the_messages_after_a_decision_link_to_the_comments_page(
    client: FlaskClient, services: Services, flagged: int
) -> None:
    # "Comment 57 rejected as abuse." linked nowhere, and the comment had left the queue.
    _sign_in(client, _token(services, "Mo"))
    form = _decision_form(client, flagged, "abuse")
    response = client.post(f"/moderate/comments/{flagged}/decision", data=form, follow_redirects=True)
    page = response.get_data(as_text=True)
    link = f'<a href="/moderate/comments/{flagged}">Comment {flagged}</a>'
    assert f'<p class="flash done" role="status">{link} rejected as abuse.</p>' in page
    refused = client.post(f"/moderate/comments/{flagged}/decision", data=form, follow_redirects=True)
    assert f"{link} was decided" not in refused.get_data(as_text=True)  # a double click: applied
    again = client.post(
        f"/moderate/comments/{flagged}/decision", data={**form, "decision": "maybe"}, follow_redirects=True
    )
    assert f"{link}: choose approve, spam, abuse or other." in again.get_data(as_text=True)
    noted = {**_decision_form(client, flagged, "approve"), "note": "x" * 2001}
    problem = client.post(f"/moderate/comments/{flagged}/decision", data=noted, follow_redirects=True)
    assert f"{link}: the note must be text" in problem.get_data(as_text=True)


def test_a_comment_no_one_posted_has_the_pages_404(client: FlaskClient, services: Services) -> None:
    _sign_in(client, _token(services))
    for path in ("/moderate/comments/999999", f"/moderate/comments/{2**64}"):
        response = client.get(path)
        page = response.get_data(as_text=True)
        assert response.status_code == 404 and "<title>Not Found · Moderation</title>" in page
        assert "<h1>Not Found</h1>" in page and response.headers["Cache-Control"] == "no-store"


def test_an_erased_comments_page_shows_it_erased_without_personal_data(
    client: FlaskClient, services: Services, reply: tuple[int, int]
) -> None:
    erased, parent = reply
    _sign_in(client, _token(services, "Mo"))
    _send(client, erased, {**_decision_form(client, erased, "spam"), "note": "Jane again"})
    with services.sessions() as session:
        erase_personal_data(session, services.keys, FORM["email"], "moderator:Ad", notify=False)
        session.commit()
    page = client.get(f"/moderate/comments/{erased}").get_data(as_text=True)
    assert "<bdi>Anonymous</bdi>" in page and "(email erased)" in page
    assert _trail(page)[-1].endswith("moderator:Ad · personal data erased")
    for personal in ("Ann Reader", "jane", "Jane again", "Reveal email", "Their comments"):
        assert personal not in page
    # The parent it quotes was erased with it.
    assert (
        f'<a href="/moderate/comments/{parent}">Comment {parent}</a> (approved), by <bdi>Anonymous</bdi>'
        in page
    )


def test_a_comments_page_keeps_the_pages_landmarks_and_headings(
    client: FlaskClient, services: Services, reply: tuple[int, int]
) -> None:
    reply_id, parent_id = reply
    _sign_in(client, _token(services))
    page = _Elements(client.get(f"/moderate/comments/{reply_id}").get_data(as_text=True))
    mains = [attrs for tag, attrs, _ in page.elements if tag == "main"]
    assert len(mains) == 1 and mains[0].get("id") == "comment"
    skip, queue, sign_out, parent, note = [element[1] for element in page.focusable()[:5]]
    assert skip.get("href") == "#comment" and queue.get("href") == "/moderate/"
    assert sign_out.get("type") == "submit" and parent.get("href") == f"/moderate/comments/{parent_id}"
    assert note.get("name") == "note"
    headings = [tag for tag, _, _ in page.elements if tag in {"h1", "h2", "h3"}]
    assert headings == ["h1", "h2"]
    assert all("main" in inside for tag, _, inside in page.elements if tag in {"article", "section"})


SELECTED = re.compile(r'name="selected" value="([^"]+)"')


def _flagged_and_selectable(
    client: FlaskClient, services: Services, count: int, path: str
) -> tuple[list[int], dict[int, str]]:
    """``count`` flagged comments, moderator Mo signed in, and the value of each one's
    checkbox on the queue page at ``path``, by id in the page's order."""
    ids = [_post(client, f"Casino bonus number {n}.") for n in range(count)]
    for comment_id in ids:
        _route(services, comment_id, CommentStatus.FLAGGED)
    _sign_in(client, _token(services, "Mo"))
    page = client.get(path).get_data(as_text=True)
    values = [html.unescape(value) for value in SELECTED.findall(page)]
    return ids, {int(value.split(" ")[0]): value for value in values}


def test_selected_comments_are_decided_at_once_each_as_its_own_form_would(
    client: FlaskClient, services: Services
) -> None:
    ids, shown = _flagged_and_selectable(client, services, 4, "/moderate/?status=flagged&sort=age")
    assert sorted(shown) == ids
    # Another moderator approves one of them while this page is open.
    other = {"Authorization": f"Bearer {_token(services, 'Al')}"}
    approved = client.post(f"/v1/comments/{ids[3]}/decision", json={"action": "approve"}, headers=other)
    assert approved.status_code == 200
    form = {
        "decision": "spam",
        "note": "casino wave",
        "status": "flagged",
        "sort": "age",
        "selected": [shown[each] for each in ids[:3]] + [shown[ids[3]], shown[ids[0]]],
        "csrf_token": _csrf(client, "/moderate/"),
    }
    response = client.post("/moderate/decisions", data=form)
    assert response.status_code == 302
    assert response.headers["Location"] == "/moderate/?status=flagged&sort=age#comments"
    messages = _messages(client.get(response.headers["Location"]).get_data(as_text=True)).splitlines()
    assert messages == [
        f"Comment {ids[3]} was decided, classified or erased meanwhile (it is approved now, by "
        "moderator:Al), so your decision was not applied: look at it again.",
        f"3 comments rejected as spam: {ids[0]}, {ids[1]}, {ids[2]}.",
    ]
    with services.sessions() as session:
        statuses = [session.get_one(Comment, each).status for each in ids]
        assert statuses == [CommentStatus.REJECTED] * 3 + [CommentStatus.APPROVED]
        mine = select(AuditEvent.note).where(AuditEvent.actor == "moderator:Mo")
        assert session.scalars(mine.where(AuditEvent.comment_id.in_(ids))).all() == ["casino wave"] * 3
        labels = session.execute(select(Label.comment_id, Label.spam).order_by(Label.comment_id)).all()
        assert [tuple(label) for label in labels] == [*((each, True) for each in ids[:3]), (ids[3], False)]


@pytest.mark.parametrize(
    ("form", "problem"),
    [
        ({"decision": "spam"}, "Select the comments to decide first."),
        ({"decision": "maybe", "selected": "SHOWN"}, "Choose approve, spam, abuse or other for the selected"),
        (
            {"decision": "spam", "note": "x" * 2001, "selected": "SHOWN"},
            "The selected comments were not decided: the note must be text of at most 2000 characters.",
        ),
        (
            # Distinct values: the same comment named twice counts once.
            {"decision": "spam", "selected": [*map("{} flagged x".format, range(1, 101)), "SHOWN"]},
            f"Select at most {moderation_pages.MAX_SELECTED} comments at a time.",
        ),
        ({"decision": "spam", "selected": "7; DROP"}, "A selection this page does not make ('7; DROP') was"),
        (
            {"decision": "spam", "selected": "9" * 5000 + " flagged x"},
            "A selection this page does not make (",
        ),
        (
            {"decision": "spam", "selected": "999999 flagged x"},
            "Comment 999999: comment 999999 does not exist.",
        ),
    ],
    ids=[
        "none-selected",
        "unknown-decision",
        "note-too-long",
        "too-many",
        "altered-value",
        "too-long-an-id",
        "no-such-comment",
    ],
)
def test_a_decision_on_the_selected_that_cannot_be_applied_is_explained(
    client: FlaskClient, services: Services, flagged: int, form: dict[str, Any], problem: str
) -> None:
    _sign_in(client, _token(services))
    queue = client.get("/moderate/").get_data(as_text=True)
    assert f"Select comment {flagged}" in queue
    assert 'name="selected"' not in client.get(f"/moderate/comments/{flagged}").get_data(as_text=True)
    (shown,) = (html.unescape(value) for value in SELECTED.findall(queue))
    selected = form.get("selected")
    if isinstance(selected, list):
        form = {**form, "selected": [shown if value == "SHOWN" else value for value in selected]}
    elif selected == "SHOWN":
        form = {**form, "selected": shown}
    response = client.post("/moderate/decisions", data={**form, "csrf_token": _csrf(client, "/moderate/")})
    assert response.status_code == 302 and response.headers["Location"] == "/moderate/#comments"
    assert problem in _messages(client.get("/moderate/").get_data(as_text=True))
    with services.sessions() as session:
        assert session.get_one(Comment, flagged).status is CommentStatus.FLAGGED


def test_a_decision_on_the_selected_needs_a_signed_in_moderator_and_its_csrf_token(
    client: FlaskClient, services: Services, flagged: int
) -> None:
    data = {"decision": "spam", "selected": f"{flagged} flagged x"}
    assert client.post("/moderate/decisions", data=data).headers["Location"] == "/moderate/sign-in"
    _sign_in(client, _token(services))
    assert client.post("/moderate/decisions", data=data).status_code == 400  # forged: no CSRF token
    with services.sessions() as session:
        assert session.get_one(Comment, flagged).status is CommentStatus.FLAGGED


def test_an_error_in_the_middle_of_the_selected_still_tells_what_was_decided(
    client: FlaskClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, by_id = _flagged_and_selectable(client, services, 3, "/moderate/?sort=age")
    shown = list(by_id.values())
    record = moderation_pages.record_decision

    def fails_on_the_second(comment_id: int, *args: Any) -> None:
        if comment_id == ids[1]:
            raise RuntimeError("the database went away")
        record(comment_id, *args)

    monkeypatch.setattr(moderation_pages, "record_decision", fails_on_the_second)
    # The first named twice, once with a leading zero: one comment, decided once.
    selected = [*shown, f"0{shown[0]}"]
    form = {
        "decision": "spam",
        "sort": "age",
        "selected": selected,
        "csrf_token": _csrf(client, "/moderate/"),
    }
    response = client.post("/moderate/decisions", data=form)
    assert response.status_code == 302
    messages = _messages(client.get(response.headers["Location"]).get_data(as_text=True)).splitlines()
    assert messages == [
        "An error stopped the decisions: 2 of the selected comments were not decided.",
        f"1 comment rejected as spam: {ids[0]}.",
    ]
    with services.sessions() as session:
        statuses = [session.get_one(Comment, each).status for each in ids]
    assert statuses == [CommentStatus.REJECTED, CommentStatus.FLAGGED, CommentStatus.FLAGGED]
