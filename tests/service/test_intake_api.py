"""POST /v1/comments: JSON and plain HTML form posts, and every refusal."""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, text, update

from service import app as app_module
from service import create_app
from service.app import Services
from service.db import make_engine
from service.intake import HONEYPOT_REASON, HONEYPOT_RULE
from service.privacy import decrypt_email, email_digest
from service.statuses import CommentStatus
from service.tables import AuditEvent, Comment, OutboxEntry

pytestmark = pytest.mark.integration

FORM = {"name": "Ann Reader", "email": "ann@example.com", "comment": "Thanks for this.", "thread": "/a/1"}
BROKEN_FORM = "The comment form on this page is broken"
BOUNDARY = "----form-boundary-7MA4YWxk"


def _multipart(**fields: bytes) -> bytes:
    """A multipart/form-data body of ``FORM`` with ``fields`` sent as these exact bytes."""
    values = {name: value.encode() for name, value in FORM.items()} | fields
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"
        for name, value in values.items()
    ]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def _count(services: Services) -> int:
    """How many comments are stored; with no worker running, each has its outbox entry."""
    with services.sessions() as session:
        comments = session.scalar(select(func.count()).select_from(Comment)) or 0
        assert session.scalar(select(func.count()).select_from(OutboxEntry)) == comments
        return comments


def test_json_post_is_stored_queued_and_answered_202(client: FlaskClient, services: Services) -> None:
    response = client.post("/v1/comments", json=FORM)
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "received" and set(body) == {"id", "status"}
    with services.sessions() as session:
        comment = session.get(Comment, body["id"])
        assert comment is not None and comment.status is CommentStatus.RECEIVED
        assert decrypt_email(services.keys, comment.email_ciphertext) == "ann@example.com"
        assert comment.email_digest == email_digest(services.keys, "ann@example.com")
        assert session.scalars(select(AuditEvent)).all() == []
        # The classification job is recorded in the comment's own transaction; the
        # request itself enqueues nothing (the workers' dispatcher does).
        assert session.scalars(select(OutboxEntry.comment_id)).all() == [comment.id]
    assert services.queue.waiting() == 0 and services.queue.queue.count == 0


def test_form_post_redirects_back_to_the_article(client: FlaskClient) -> None:
    response = client.post(
        "/v1/comments", data=FORM, headers={"Referer": "https://news.example/a/1?ref=home"}
    )
    assert response.status_code == 303
    location = urlsplit(response.headers["Location"])
    assert (location.hostname, location.path) == ("news.example", "/a/1")
    query = parse_qs(location.query)
    assert query["comment_status"] == ["awaiting-moderation"] and query["ref"] == ["home"]


def test_form_redirect_field_wins_over_referer(client: FlaskClient) -> None:
    data = {**FORM, "redirect": "https://news.example/thanks"}
    response = client.post("/v1/comments", data=data, headers={"Referer": "https://news.example/a/1"})
    assert response.headers["Location"].startswith("https://news.example/thanks?")


def test_a_referer_that_is_only_the_origin_still_sends_the_reader_back(client: FlaskClient) -> None:
    # What browsers send on a cross-origin post by default; the README asks for a redirect field.
    response = client.post("/v1/comments", data=FORM, headers={"Referer": "https://news.example/"})
    assert response.status_code == 303
    assert response.headers["Location"].startswith("https://news.example/?comment_status=")


def test_form_post_to_a_foreign_host_gets_a_page_not_a_redirect(client: FlaskClient) -> None:
    response = client.post("/v1/comments", data=FORM, headers={"Referer": "https://evil.example/"})
    assert response.status_code == 202
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "awaits moderation" in page
    # No link to a host the site did not name; the reader is told the way back instead.
    assert "Back button returns you to the article" in page and "evil.example" not in page


@pytest.mark.parametrize(
    ("redirect", "referer"),
    [("http://[", None), ("https://news.example:99999999/", None), (None, "http://[x")],
)
def test_a_form_whose_way_back_is_no_url_gets_the_received_page(
    client: FlaskClient, services: Services, redirect: str | None, referer: str | None
) -> None:
    data = {**FORM, "redirect": redirect} if redirect else FORM
    headers = {"Referer": referer} if referer else {}
    response = client.post("/v1/comments", data=data, headers=headers)
    # The comment is stored, so the commenter is told so, not that it failed.
    assert response.status_code == 202 and "awaits moderation" in response.get_data(as_text=True)
    assert _count(services) == 1


def test_a_way_back_that_stacks_thousands_of_marks_is_passed_over_at_once(
    client: FlaskClient, services: Services
) -> None:
    # A user name of marks in the order NFKC must reverse: urlsplit normalised it to check
    # the host, in time that grows with its square (a 250 KB body held a gunicorn worker past
    # its 30 s timeout, and it was killed with the stored comment unanswered). Passed over,
    # it is never normalised, and the poster gets the page instead of the redirect.
    marks = "\u0300" * 20_000 + "\u0316" * 20_000
    data = {**FORM, "redirect": f"https://a{marks}@news.example/a/1"}
    response = client.post("/v1/comments", data=data, content_type="multipart/form-data")
    assert response.status_code == 202 and "awaits moderation" in response.get_data(as_text=True)
    assert _count(services) == 1


def test_the_pages_a_form_post_gets_may_run_no_script_and_load_nothing(client: FlaskClient) -> None:
    received = client.post("/v1/comments", data=FORM)
    refused = client.post("/v1/comments", data={**FORM, "email": "not an address"})
    assert [received.status_code, refused.status_code] == [202, 422]
    for page in (received, refused):
        policy = page.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy
    assert "Content-Security-Policy" not in client.post("/v1/comments", json=FORM).headers


def test_no_answer_is_left_to_a_browser_to_guess_the_type_of(client: FlaskClient) -> None:
    answers = [
        client.post("/v1/comments", json=FORM),
        client.post("/v1/comments", json={**FORM, "email": "<b>not an address</b>"}),
        client.post("/v1/comments", data=FORM),
        client.get("/v1/threads/%2Fa%2F1/comments"),
        client.get("/healthz"),
        client.get("/no/such/page"),
    ]
    assert [answer.headers.get("X-Content-Type-Options") for answer in answers] == ["nosniff"] * len(answers)


def test_multipart_form_is_accepted(client: FlaskClient) -> None:
    response = client.post("/v1/comments", data=FORM, content_type="multipart/form-data")
    assert response.status_code == 202


def test_invalid_json_fields_get_422_naming_each(client: FlaskClient, services: Services) -> None:
    response = client.post("/v1/comments", json={**FORM, "email": "nope", "name": ""})
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "invalid_input"
    assert set(body["fields"]) == {"email", "name"}
    assert body["fields"]["name"] == "name is required"
    assert _count(services) == 0


def test_invalid_form_gets_422_page_with_the_messages(client: FlaskClient, services: Services) -> None:
    response = client.post("/v1/comments", data={**FORM, "email": "nope"})
    assert response.status_code == 422 and response.mimetype == "text/html"
    assert "Email: An email address must have an @-sign." in response.get_data(as_text=True)
    assert _count(services) == 0


def test_a_form_page_words_each_problem_for_the_commenter(client: FlaskClient, services: Services) -> None:
    fields = {"name": "", "email": "nope", "comment": "é" * 40_000}  # and no thread (a hidden field)
    response = client.post("/v1/comments", data=fields)
    assert response.status_code == 422 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "Name: Please fill this in." in page
    assert "Email: An email address must have an @-sign." in page
    assert "Comment: This is too long; shorten it by about 7,238 characters." in page
    assert page.count(BROKEN_FORM) == 1
    assert not {"thread", "65525", "bytes", "required"} & set(page.replace(".", " ").split())
    # API clients keep the exact field-level messages.
    same = client.post("/v1/comments", json=fields)
    assert same.get_json()["fields"] == {
        "name": "name is required",
        "email": "email is not a valid email address (An email address must have an @-sign.)",
        "comment": "comment is longer than 65525 bytes",
        "thread": "thread is required",
    }
    assert _count(services) == 0


def test_a_broken_form_logs_what_the_site_must_mend_and_not_what_the_commenter_typed(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    # The validator quotes the address's domain; the thread is the site's hidden field.
    fields = {"name": "Ann", "email": "ann@annsmith\ue000.name", "comment": "hi"}
    response = client.post("/v1/comments", data=fields)
    assert response.status_code == 422 and BROKEN_FORM in response.get_data(as_text=True)
    assert "thread: thread is required" in caplog.text
    assert "annsmith" not in caplog.text and "email" not in caplog.text


def test_a_reply_to_a_comment_no_longer_shown_says_so(
    client: FlaskClient, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    # A moderator hid the comment while the reader wrote a reply to it; an id that never
    # named a comment gets the same words, so a hidden comment is not told apart.
    parent = client.post("/v1/comments", json=FORM).get_json()["id"]
    for parent_id in (str(parent), "999"):
        response = client.post("/v1/comments", data={**FORM, "parent_id": parent_id})
        assert response.status_code == 422
        page = response.get_data(as_text=True)
        assert "The comment you replied to is no longer shown, so your reply was not sent." in page
        assert BROKEN_FORM not in page and "parent_id" not in page and "999" not in page
    # A site whose reply forms send a wrong id (or thread) finds why in the log.
    assert "parent_id: parent_id 999 is not a published comment in this thread" in caplog.text
    api = client.post("/v1/comments", json={**FORM, "parent_id": 999})
    problem = "parent_id 999 is not a published comment in this thread"
    assert api.get_json()["fields"] == {"parent_id": problem}
    assert _count(services) == 1


def test_a_form_too_large_to_read_asks_for_a_shorter_comment(client: FlaskClient, services: Services) -> None:
    response = client.post("/v1/comments", data={**FORM, "comment": "x" * 300_000})
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "Your comment is far too long to send" in page and "capacity" not in page
    assert _count(services) == 0


def test_user_input_on_the_pages_is_escaped(client: FlaskClient) -> None:
    received = client.post("/v1/comments", data={**FORM, "name": "<b>Ann</b>"})
    assert received.status_code == 202
    assert "Thank you, &lt;b&gt;Ann&lt;/b&gt;." in received.get_data(as_text=True)
    # email-validator quotes the characters it refuses.
    refused = client.post("/v1/comments", data={**FORM, "email": "ann@<b>.com"})
    page = refused.get_data(as_text=True)
    assert "invalid characters: &#39;&lt;&#39;, &#39;&gt;&#39;." in page and "<b>" not in page


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b"[1, 2]", "application/json", 400, "must be an object"),
        (b"\xff\xfe", "application/json", 400, "not valid JSON"),
        pytest.param(
            b"[" * 100_000,
            "application/json",
            400,
            "not valid JSON (it nests arrays or objects too deeply)",
            id="deep",
        ),
        pytest.param(
            b'{"parent_id": ' + b"1" * 5000 + b"}",
            "application/json",
            400,
            "number longer than 4300 digits",
            id="long",
        ),
        (b"name=Ann", "text/plain", 415, "application/json"),
        (b"name=Ann", None, 415, "application/json"),
    ],
)
def test_malformed_bodies(
    client: FlaskClient,
    services: Services,
    body: bytes,
    content_type: str | None,
    status: int,
    message: str,
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/v1/comments", data=body, headers=headers)
    assert response.status_code == status
    assert message in response.get_json()["message"]
    assert _count(services) == 0


@pytest.mark.parametrize("field", ["name", "email", "thread", "url", "comment"])
def test_a_lone_surrogate_gets_422_naming_the_field(
    client: FlaskClient, services: Services, field: str
) -> None:
    # JSON's "\ud800" escape decodes to half a UTF-16 pair, which no database column can store.
    response = client.post("/v1/comments", json={**FORM, field: "x\ud800y"})
    assert response.status_code == 422
    assert response.get_json()["fields"] == {
        field: f"{field} is not valid Unicode (it holds a lone surrogate)"
    }
    assert _count(services) == 0


URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(
            b"name=Ann+Reader&email=ann%40example.com&comment=caf\xe9&thread=%2Fa%2F1",
            URLENCODED,
            id="latin-1",
        ),
        pytest.param(
            b"name=Ann+Reader&email=ann%40example.com&comment=caf%E9&thread=%2Fa%2F1",
            URLENCODED,
            id="%-latin-1",
        ),
        pytest.param(
            b"name=Ann+Reader&email=ann%40example.com&comment=%ED%A0%80&thread=%2Fa%2F1",
            URLENCODED,
            id="%-surrogate",
        ),
        pytest.param(_multipart(comment=b"caf\xe9"), MULTIPART, id="multipart-latin-1"),
        pytest.param(_multipart(name=b"Ren\xe9e"), MULTIPART, id="multipart-latin-1-name"),
        pytest.param(_multipart(comment=b"\xed\xa0\x80"), MULTIPART, id="multipart-surrogate"),
    ],
)
def test_a_form_that_is_not_utf8_gets_400_saying_so(
    client: FlaskClient, services: Services, caplog: pytest.LogCaptureFixture, body: bytes, content_type: str
) -> None:
    response = client.post("/v1/comments", data=body, content_type=content_type)
    assert response.status_code == 400 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert BROKEN_FORM in page and "required" not in page
    assert "the form body is not valid UTF-8" in caplog.text
    assert _count(services) == 0


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        pytest.param(_multipart(), "multipart/form-data", "names no boundary", id="no-boundary"),
        pytest.param(_multipart()[:-40], MULTIPART, "is malformed", id="cut-short"),
        # Only a bot sends one; the commenter's page must not say the comment is too long.
        pytest.param(
            _multipart(**{f"extra{n}": b"" for n in range(997)}),
            MULTIPART,
            "has more than 1,000 parts",
            id="parts",
        ),
    ],
)
def test_a_multipart_form_that_cannot_be_read_gets_400(
    client: FlaskClient,
    services: Services,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    content_type: str,
    reason: str,
) -> None:
    response = client.post("/v1/comments", data=body, content_type=content_type)
    assert response.status_code == 400 and BROKEN_FORM in response.get_data(as_text=True)
    assert f"the multipart form body {reason}" in caplog.text
    assert _count(services) == 0


def test_a_multipart_form_repeating_one_name_past_the_part_limit_gets_400(
    client: FlaskClient, services: Services
) -> None:
    # A MultiDict's len() is its number of distinct names: counted so, 2,000 parts under
    # one name passed.
    repeated = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="x"\r\n\r\n\r\n'.encode() * 2000
    body = repeated + _multipart()
    assert len(body) < services.settings.max_body_bytes
    response = client.post("/v1/comments", data=body, content_type=MULTIPART)
    assert response.status_code == 400
    assert _count(services) == 0


def test_a_form_posted_to_an_address_nothing_answers_says_the_form_is_broken(client: FlaskClient) -> None:
    # A reply form whose action names the wrong address: its commenter gets the page.
    for path in ("/v1/comment", "/v1/threads/a/comments"):
        response = client.post(path, data={"comment": "Hello"})
        assert response.status_code in (404, 405) and response.mimetype == "text/html"
        assert BROKEN_FORM in response.get_data(as_text=True)


def test_a_line_break_in_the_address_of_a_form_post_cannot_forge_a_log_line(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    # The path is percent-decoded; logged as it is, %0A would start a line of the client's own.
    forged = "2026-12-01 10:00:00,000 ERROR service.auth: forged"
    response = client.post(f"/v1/x%0A{forged.replace(' ', '%20')}%E2%80%AE", data={"comment": "Hello"})
    assert response.status_code == 404
    logged = [record.getMessage() for record in caplog.records if "form post" in record.getMessage()]
    assert logged and all("\n" not in message for message in logged)
    assert "/v1/x%0A2026-12-01%2010:00:00,000%20ERROR%20service.auth:%20forged%E2%80%AE" in logged[0]


def test_a_multipart_field_holding_the_replacement_character_is_kept(
    client: FlaskClient, services: Services
) -> None:
    body = _multipart(comment="a\ufffdb".encode())
    response = client.post("/v1/comments", data=body, content_type=MULTIPART)
    assert response.status_code == 202
    with services.sessions() as session:
        assert session.scalars(select(Comment.body)).all() == ["a\ufffdb"]


def test_body_over_the_limit_gets_413(client: FlaskClient, services: Services) -> None:
    huge = json.dumps({**FORM, "comment": "x" * 300_000})
    response = client.post("/v1/comments", data=huge, content_type="application/json")
    assert response.status_code == 413
    limit = services.settings.max_body_bytes
    assert response.get_json() == {
        "error": "request_entity_too_large",
        "message": f"the request body is larger than the {limit:,} bytes accepted (MAX_BODY_BYTES)",
    }
    assert _count(services) == 0


@pytest.mark.parametrize("kind", ["json", "urlencoded"])
def test_a_chunked_body_over_the_limit_gets_413_not_cut_short(
    client: FlaskClient, services: Services, kind: str
) -> None:
    # Sent chunked, a body comes with no length: the server marks the input as ending
    # where the body does, and Werkzeug's own reading stopped quietly at the limit.
    limit = services.settings.max_body_bytes
    fields = {**FORM, "comment": "word " * (limit // 5) + "THE-END"}
    body = json.dumps(fields).encode() if kind == "json" else urlencode(fields).encode()
    content_type = "application/json" if kind == "json" else "application/x-www-form-urlencoded"
    response = client.post(
        "/v1/comments",
        input_stream=io.BytesIO(body),
        content_type=content_type,
        environ_overrides={"CONTENT_LENGTH": "", "wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert _count(services) == 0
    fitting = {**FORM, "comment": "Sent chunked."}
    body = json.dumps(fitting).encode() if kind == "json" else urlencode(fitting).encode()
    response = client.post(
        "/v1/comments",
        input_stream=io.BytesIO(body),
        content_type=content_type,
        environ_overrides={"CONTENT_LENGTH": "", "wsgi.input_terminated": True},
        headers={"Accept": "application/json"},
    )
    assert response.status_code in (202, 303)
    with services.sessions() as session:
        assert session.scalars(select(Comment.body)).all() == ["Sent chunked."]


def _published(services: Services, comment_id: int, status: CommentStatus = CommentStatus.APPROVED) -> int:
    with services.sessions() as session:
        session.execute(update(Comment).where(Comment.id == comment_id).values(status=status))
        session.commit()
    return comment_id


def test_reply_to_a_published_comment_in_the_same_thread(client: FlaskClient, services: Services) -> None:
    parent = _published(services, client.post("/v1/comments", json=FORM).get_json()["id"])
    reply = client.post("/v1/comments", json={**FORM, "parent_id": parent})
    assert reply.status_code == 202


@pytest.mark.parametrize(
    ("thread", "offset", "status"),
    [
        ("/elsewhere", 0, CommentStatus.APPROVED),
        ("/a/1", 1000, CommentStatus.APPROVED),
        ("/a/1", 0, CommentStatus.RECEIVED),
        ("/a/1", 0, CommentStatus.FLAGGED),
        ("/a/1", 0, CommentStatus.REJECTED),
    ],
    ids=["foreign", "missing", "received", "flagged", "rejected"],
)
def test_reply_to_a_missing_foreign_or_hidden_parent_is_refused_alike(
    client: FlaskClient, services: Services, thread: str, offset: int, status: CommentStatus
) -> None:
    # A hidden comment gets the answer a missing one does, so the answer tells nobody it exists.
    parent = client.post("/v1/comments", json={**FORM, "thread": "/a/1"}).get_json()["id"]
    _published(services, parent, status)
    reply: dict[str, Any] = {**FORM, "thread": thread, "parent_id": parent + offset}
    response = client.post("/v1/comments", json=reply)
    assert response.status_code == 422
    assert response.get_json()["fields"] == {
        "parent_id": f"parent_id {parent + offset} is not a published comment in this thread"
    }
    assert _count(services) == 1


def test_unicode_is_normalised_before_storage(client: FlaskClient, services: Services) -> None:
    comment_id = client.post("/v1/comments", json={**FORM, "name": " Zoe\u0301 "}).get_json()["id"]
    with services.sessions() as session:
        stored = session.get(Comment, comment_id)
        assert stored is not None and stored.name == "Zoé"


def test_health_reports_database_and_queue(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"database": "ok", "queue": "ok"}


def test_intake_and_health_survive_a_dead_queue(settings_overrides: dict[str, Any]) -> None:
    from tests.integration.processes import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app({**settings_overrides, "redis_url": dead, "redis_timeout": 0.2})
    try:
        client = app.test_client()
        assert client.post("/v1/comments", json=FORM).status_code == 202
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.get_json() == {"database": "ok", "queue": "unreachable"}
    finally:
        app.extensions["moderation"].close()


def test_the_app_starts_and_says_so_on_health_while_the_database_is_down(
    settings_overrides: dict[str, Any],
) -> None:
    from service import create_app
    from tests.integration.processes import free_port

    dead = f"postgresql+psycopg://moderation@127.0.0.1:{free_port()}/test?connect_timeout=1"
    app = create_app({**settings_overrides, "database_url": dead})
    try:
        client = app.test_client()
        assert client.get("/healthz").get_json()["database"] == "unreachable"
        response = client.post("/v1/comments", json=FORM)
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        assert response.get_json()["error"] == "database_unavailable"
    finally:
        app.extensions["moderation"].close()


# Timed by a thread: the wait on SQLite is cut short by SIGALRM, which the signal method
# of pytest-timeout would hold.
@pytest.mark.timeout(120, method="thread")
def test_a_post_held_up_by_a_locked_table_gets_503_and_stores_nothing(
    settings_overrides: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write stuck behind a lock (or a stalled server) is given up in time for a 503,
    instead of hanging until gunicorn kills the worker unanswered while the statement goes
    on and stores the comment after all. PostgreSQL cancels the statement; on SQLite the
    wait for the writers' lock is cut short."""
    url = settings_overrides["database_url"]
    monkeypatch.setattr(app_module, "STATEMENT_TIMEOUT_SECONDS", 0.5)
    app = create_app(settings_overrides)
    locker = make_engine(url)
    try:
        client = app.test_client()
        with locker.connect() as connection, connection.begin():
            if url.startswith("postgresql"):
                connection.execute(text("LOCK TABLE comments IN EXCLUSIVE MODE"))
            else:  # the first write of a transaction takes the writers' lock until it ends
                connection.execute(text("UPDATE comments SET status = status WHERE 0"))
            # The lock is held all along: only a write given up answers.
            response = client.post("/v1/comments", json=FORM)
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        assert response.get_json() == {
            "error": "database_unavailable",
            "message": "the database did not answer in time; try again shortly",
        }
        assert _count(app.extensions["moderation"]) == 0
        # The URL's own options (the test schema's search path) are kept beside the limit.
        assert client.post("/v1/comments", json=FORM).status_code == 202
    finally:
        app.extensions["moderation"].close()
        locker.dispose()


def _trapped(services: Services, comment_id: int) -> Comment:
    """The stored comment, checked to be rejected by the honeypot rule without a job."""
    with services.sessions() as session:
        comment = session.get_one(Comment, comment_id)
        assert comment.status is CommentStatus.REJECTED
        assert [(v.model_version, v.reasons, v.spam) for v in comment.verdicts] == [
            (HONEYPOT_RULE, [HONEYPOT_REASON], None)
        ]
        events = session.scalars(select(AuditEvent).where(AuditEvent.comment_id == comment_id)).all()
        assert [(e.actor, e.from_status, e.to_status) for e in events] == [
            (HONEYPOT_RULE, CommentStatus.RECEIVED, CommentStatus.REJECTED)
        ]
        assert session.scalars(select(OutboxEntry)).all() == []
        return comment


def test_a_form_that_fills_in_the_honeypot_is_answered_as_any_and_stored_as_spam(
    client: FlaskClient, services: Services
) -> None:
    headers = {"Referer": "https://news.example/a/1"}
    response = client.post("/v1/comments", data={**FORM, "website": "Great offer"}, headers=headers)
    assert response.status_code == 303
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["comment_status"] == ["awaiting-moderation"]
    comment = _trapped(services, int(query["comment_id"][0]))
    assert decrypt_email(services.keys, comment.email_ciphertext) == "ann@example.com"
    assert services.queue.waiting() == 0


def test_a_json_honeypot_of_any_value_is_trapped_and_a_blank_one_is_not(
    client: FlaskClient, services: Services
) -> None:
    trapped = client.post("/v1/comments", json={**FORM, "website": 0})
    assert trapped.status_code == 202 and trapped.get_json()["status"] == "received"
    _trapped(services, trapped.get_json()["id"])
    for blank in ("", "  ", None):
        assert client.post("/v1/comments", json={**FORM, "website": blank}).status_code == 202
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxEntry)) == 3


def test_a_trapped_post_is_still_validated(client: FlaskClient, services: Services) -> None:
    assert client.post("/v1/comments", json={**FORM, "email": "nope", "website": "x"}).status_code == 422
    foreign = client.post("/v1/comments", json={**FORM, "parent_id": 999, "website": "x"})
    assert foreign.status_code == 422 and "parent_id" in foreign.get_json()["fields"]
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Comment)) == 0
    # The trap checks a reply's parent as the intake does: published, in the thread.
    parent = client.post("/v1/comments", json=FORM).get_json()["id"]
    hidden = client.post("/v1/comments", json={**FORM, "parent_id": parent, "website": "x"})
    assert hidden.status_code == 422 and "parent_id" in hidden.get_json()["fields"]
    _published(services, parent)
    reply = client.post("/v1/comments", json={**FORM, "parent_id": parent, "website": "x"})
    assert reply.status_code == 202
    with services.sessions() as session:
        trapped = session.get_one(Comment, reply.get_json()["id"])
        assert (trapped.status, trapped.parent_id) == (CommentStatus.REJECTED, parent)


def test_the_honeypot_can_be_renamed_or_turned_off(settings_overrides: dict[str, Any]) -> None:
    for field, trapped in (("", False), ("homepage", True)):
        app = create_app({**settings_overrides, "honeypot_field": field})
        services: Services = app.extensions["moderation"]
        try:
            client = app.test_client()
            response = client.post("/v1/comments", json={**FORM, "homepage": "x", "website": "y"})
            assert response.status_code == 202
            with services.sessions() as session:
                status = session.get_one(Comment, response.get_json()["id"]).status
            assert (status is CommentStatus.REJECTED) is trapped
        finally:
            services.close()


def _seconds_to_submit(services: Services, comment_id: int) -> float | None:
    with services.sessions() as session:
        comment = session.get(Comment, comment_id)
        assert comment is not None
        return comment.seconds_to_submit


def test_the_time_taken_to_post_is_stored_as_the_page_measured_it(
    client: FlaskClient, services: Services
) -> None:
    timed = client.post("/v1/comments", json={**FORM, "seconds_to_submit": 12.5}).get_json()["id"]
    assert _seconds_to_submit(services, timed) == 12.5
    assert client.post("/v1/comments", data={**FORM, "seconds_to_submit": "0.8"}).status_code == 202
    untimed = client.post("/v1/comments", json=FORM).get_json()["id"]
    assert _seconds_to_submit(services, untimed) is None
    assert _seconds_to_submit(services, untimed - 1) == 0.8  # the form post's


def test_a_form_whose_time_taken_is_no_time_is_broken(client: FlaskClient, services: Services) -> None:
    page = client.post("/v1/comments", data={**FORM, "seconds_to_submit": "NaN"})
    assert page.status_code == 422 and BROKEN_FORM in page.get_data(as_text=True)
    api = client.post("/v1/comments", json={**FORM, "seconds_to_submit": -1})
    assert api.status_code == 422
    assert api.get_json()["fields"] == {
        "seconds_to_submit": "seconds_to_submit must be the seconds from the form being shown to its "
        "sending, 0 or more"
    }
    assert _count(services) == 0
