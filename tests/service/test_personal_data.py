"""A commenter's personal data by email address: export, erasure, and the audited reveal."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import func, insert, literal, select

from service import personal_data
from service.app import Services
from service.auth import create_token
from service.cli import main
from service.personal_data import ERASED_ACTION, ERASED_NAME, EXPORTED_ACTION, erase_personal_data
from service.privacy import email_digest, encrypt_email
from service.reasons import posted_too_fast
from service.retraining import export_labels
from service.statuses import Action, CommentStatus, DecisionReason
from service.tables import AuditEvent, Comment, ModeratorToken, Verdict, WebhookEvent
from service.transitions import Decision, VerdictRecord, decide, record_verdicts
from service.webhook_signing import new_secret

pytestmark = pytest.mark.integration

ANN = {
    "name": "Ann Reader",
    "email": "Ann.Reader@Example.com",
    "thread": "/a/1",
    "url": "https://ann.example",
}
BOB = {"name": "Bob Other", "email": "bob@example.org", "thread": "/a/1"}
# What the policy says of a comment posted too fast: how fast is the commenter's, and goes with an erasure.
TOO_FAST = posted_too_fast(1.26, 3.0)
WITHOUT_TIMING = "posted under 3 s after its form was shown"
REASONS = [
    '"casino" +2.1 toward spam',
    'author name "ann" +0.4 toward spam',
    "link to ann.example in the author name or website +0.9 toward spam",
    "no author name +0.1 toward spam",
]


@pytest.fixture
def moderator_headers(services: Services) -> dict[str, str]:
    """Here the moderator holds an admin token: only those may export and erase personal data."""
    with services.sessions() as session:
        token = create_token(session, "Mod Erator", admin=True)
        session.commit()
    return {"Authorization": f"Bearer {token}"}


def _post(client: FlaskClient, who: dict[str, str], text: str, **more: Any) -> int:
    response = client.post("/v1/comments", json={**who, "comment": text, **more})
    assert response.status_code == 202, response.get_json()
    return int(response.get_json()["id"])


def _approve(services: Services, comment_id: int) -> None:
    verdict = VerdictRecord(0.9, 0.01, list(REASONS), "test-model", CommentStatus.FLAGGED, TOO_FAST)
    with services.sessions() as session:
        assert record_verdicts(session, {comment_id: verdict}) == [comment_id]
        moderator = session.scalars(select(ModeratorToken)).first()
        assert moderator is not None
        decide(
            session,
            comment_id,
            moderator,
            Decision(Action.APPROVE, DecisionReason.OTHER, "Ann asked about the photo"),
        )
        session.commit()


@pytest.fixture
def posted(client: FlaskClient, services: Services, moderator_headers: dict[str, str]) -> dict[str, int]:
    """Two comments of Ann (one a reply to Bob, one approved with reasons) and one of Bob,
    approved (only a published comment takes replies)."""
    bob = _post(client, BOB, "Bob's first comment.", seconds_to_submit=9.0)
    _approve(services, bob)
    ann_first = _post(client, ANN, "Ann's first comment.", seconds_to_submit=14.0)
    ann_reply = _post(client, {**ANN, "email": "ann.reader@example.COM"}, "Ann answers Bob.", parent_id=bob)
    _approve(services, ann_first)
    return {"bob": bob, "ann_first": ann_first, "ann_reply": ann_reply}


def _export(client: FlaskClient, headers: dict[str, str], email: str) -> Any:
    response = client.post("/v1/privacy/export", json={"email": email}, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()


def test_export_finds_every_comment_of_the_address_in_any_case(
    client: FlaskClient, moderator_headers: dict[str, str], posted: dict[str, int]
) -> None:
    exported = _export(client, moderator_headers, "ann.reader@EXAMPLE.com")
    assert exported["email"] == "ann.reader@example.com"
    assert [item["id"] for item in exported["comments"]] == [posted["ann_first"], posted["ann_reply"]]
    first, reply = exported["comments"]
    assert first["email"] == "Ann.Reader@example.com" and reply["email"] == "ann.reader@example.com"
    assert first["name"] == "Ann Reader" and first["url"] == "https://ann.example"
    assert first["comment"] == "Ann's first comment." and first["status"] == "approved"
    assert first["seconds_to_submit"] == 14.0 and reply["seconds_to_submit"] is None
    assert reply["parent_id"] == posted["bob"] and reply["thread"] == "/a/1"
    assert first["verdict_reasons"] == [REASONS] and reply["verdict_reasons"] == []
    # The trail as the detail view gives it, from the comment's arrival on.
    assert [(event["action"], event["note"]) for event in first["audit"]] == [
        ("received", None),
        ("classified", None),
        ("approve", "Ann asked about the photo"),
    ]
    # Each export is in the audit trail, after what it returned.
    again = _export(client, moderator_headers, ANN["email"])["comments"][0]["audit"]
    assert [(event["action"], event["actor"]) for event in again][-1] == (
        EXPORTED_ACTION,
        "moderator:Mod Erator",
    )
    assert _export(client, moderator_headers, "nobody@example.net")["comments"] == []


def test_the_export_gives_the_model_s_scores_and_the_moderators_label(
    client: FlaskClient, moderator_headers: dict[str, str], posted: dict[str, int]
) -> None:
    first, reply = _export(client, moderator_headers, ANN["email"])["comments"]
    assert first["scores"] == {"spam": 0.9, "abuse": 0.01}
    # What retraining learns from the comment: a judgement of it, kept after an erasure.
    label = first["label"]
    assert (label["spam"], label["abuse"], label["reason"]) == (False, False, "other")
    assert label["decided_at"].startswith(first["created_at"][:10])
    assert reply["scores"] == {"spam": None, "abuse": None} and reply["label"] is None


def test_erasure_anonymises_the_comments_of_the_address_and_nothing_else(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str], posted: dict[str, int]
) -> None:
    response = client.post(
        "/v1/privacy/erase", json={"email": "ANN.READER@example.com"}, headers=moderator_headers
    )
    assert response.status_code == 200
    assert response.get_json() == {"erased": [posted["ann_first"], posted["ann_reply"]]}

    with services.sessions() as session:
        erased = session.scalars(select(Comment).where(Comment.id != posted["bob"])).all()
        for comment in erased:
            assert (
                comment.name,
                comment.url,
                comment.email_ciphertext,
                comment.email_digest,
                comment.seconds_to_submit,
            ) == (ERASED_NAME, None, b"", b"", None)
        assert sorted(comment.body for comment in erased) == ["Ann answers Bob.", "Ann's first comment."]
        reasons = session.scalars(
            select(Verdict.reasons).where(Verdict.comment_id == posted["ann_first"])
        ).one()
        assert reasons == [REASONS[0], REASONS[3]]
        trail = session.scalars(
            select(AuditEvent).where(AuditEvent.comment_id == posted["ann_first"]).order_by(AuditEvent.id)
        ).all()
        assert {event.note for event in trail} == {None}
        assert trail[0].action == "classified" and trail[0].reason == WITHOUT_TIMING
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == ERASED_ACTION)).all()
        assert sorted(event.comment_id for event in events) == [posted["ann_first"], posted["ann_reply"]]
        assert {event.actor for event in events} == {"moderator:Mod Erator"}
        bob = session.get_one(Comment, posted["bob"])
        assert bob.name == "Bob Other" and bob.email_digest != b"" and bob.seconds_to_submit == 9.0
        labels = export_labels(session)
        assert [(example.author, example.url) for example in labels] == [("Bob Other", ""), ("", "")]

    assert _export(client, moderator_headers, ANN["email"])["comments"] == []
    assert len(_export(client, moderator_headers, BOB["email"])["comments"]) == 1
    shown = client.get(f"/v1/comments/{posted['ann_first']}", headers=moderator_headers).get_json()
    assert shown["name"] == ERASED_NAME and shown["email_masked"] is None and shown["email_erased"] is True
    assert shown["audit"][-1]["action"] == ERASED_ACTION
    public = client.get("/v1/threads/%2Fa%2F1/comments").get_json()["items"]
    assert [(item["name"], item["avatar"] is None, item["url"]) for item in public] == [
        ("Bob Other", False, None),
        (ERASED_NAME, True, None),
    ]
    again = client.post("/v1/privacy/erase", json={"email": ANN["email"]}, headers=moderator_headers)
    assert again.get_json() == {"erased": []}


def test_a_verdict_on_a_comment_erased_since_the_worker_read_it_is_recorded_without_personal_data(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str]
) -> None:
    comment_id = _post(client, ANN, "Ann's comment.", seconds_to_submit=1.26)
    client.post("/v1/privacy/erase", json={"email": ANN["email"]}, headers=moderator_headers)
    verdict = VerdictRecord(0.1, 0.01, list(REASONS), "test-model", CommentStatus.FLAGGED, TOO_FAST)
    with services.sessions() as session:
        assert record_verdicts(session, {comment_id: verdict}) == [comment_id]
        session.commit()
        assert session.scalars(select(Verdict.reasons)).one() == [REASONS[0], REASONS[3]]
        classified = select(AuditEvent.reason).where(AuditEvent.action == "classified")
        assert session.scalars(classified).one() == WITHOUT_TIMING


def test_reveal_returns_the_email_and_audits_who_asked(
    client: FlaskClient, moderator_headers: dict[str, str], posted: dict[str, int]
) -> None:
    path = f"/v1/comments/{posted['ann_reply']}/reveal-email"
    response = client.post(path, json={"note": "to ask about the photo"}, headers=moderator_headers)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert response.get_json() == {"id": posted["ann_reply"], "email": "ann.reader@example.com"}
    trail = client.get(f"/v1/comments/{posted['ann_reply']}", headers=moderator_headers).get_json()["audit"]
    assert trail[-1]["action"] == "email_revealed"
    assert trail[-1]["actor"] == "moderator:Mod Erator" and trail[-1]["note"] == "to ask about the photo"
    assert client.post(path, headers=moderator_headers).status_code == 200  # the note is optional
    # A body sent in chunks has no length, and its note is kept all the same.
    chunked = client.post(
        path,
        input_stream=io.BytesIO(b'{"note": "sent in chunks"}'),
        content_type="application/json",
        headers={**moderator_headers, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert chunked.status_code == 200
    trail = client.get(f"/v1/comments/{posted['ann_reply']}", headers=moderator_headers).get_json()["audit"]
    assert trail[-1]["note"] == "sent in chunks"
    assert client.post("/v1/comments/999999/reveal-email", headers=moderator_headers).status_code == 404
    client.post("/v1/privacy/erase", json={"email": ANN["email"]}, headers=moderator_headers)
    assert client.post(path, headers=moderator_headers).get_json()["email"] is None


@pytest.mark.parametrize(
    ("path", "body", "status", "problem"),
    [
        ("/v1/privacy/export", {}, 422, "email is required"),
        ("/v1/privacy/erase", {"email": "not an address"}, 422, "email is not a valid email address"),
        ("/v1/privacy/erase", {"email": 7}, 422, "email must be a string"),
        ("/v1/comments/1/reveal-email", {"note": 3}, 422, "note must be text"),
        ("/v1/comments/1/reveal-email", {"note": "why\x00"}, 422, "note contains control characters"),
    ],
)
def test_bad_requests_name_the_field(
    client: FlaskClient, moderator_headers: dict[str, str], path: str, body: Any, status: int, problem: str
) -> None:
    response = client.post(path, json=body, headers=moderator_headers)
    assert response.status_code == status
    assert problem in json.dumps(response.get_json())


def test_the_privacy_endpoints_need_a_moderator_and_json(
    client: FlaskClient, moderator_headers: dict[str, str], posted: dict[str, int]
) -> None:
    for path in ("/v1/privacy/export", "/v1/privacy/erase", f"/v1/comments/{posted['bob']}/reveal-email"):
        assert client.post(path, json={"email": BOB["email"]}).status_code == 401
    form = client.post("/v1/privacy/erase", data={"email": BOB["email"]}, headers=moderator_headers)
    assert form.status_code == 415
    # A client posting a form to the API is told in JSON, not with the commenters' page.
    assert form.get_json()["error"] == "unsupported_media_type"
    assert len(_export(client, moderator_headers, BOB["email"])["comments"]) == 1


def test_a_moderator_without_an_admin_token_may_neither_export_nor_erase(
    client: FlaskClient, services: Services, posted: dict[str, int]
) -> None:
    with services.sessions() as session:
        plain = {"Authorization": f"Bearer {create_token(session, 'Plain Moderator')}"}
        session.commit()
    for path in ("/v1/privacy/export", "/v1/privacy/erase"):
        for body in ({"json": {"email": ANN["email"]}}, {"data": {"email": ANN["email"]}}):
            refused = client.post(path, headers=plain, **body)
            assert refused.status_code == 403
            error = refused.get_json()
            assert error["error"] == "forbidden"
            assert "needs an admin token (moderation create-token NAME --admin)" in error["message"]
    with services.sessions() as session:
        assert session.get_one(Comment, posted["ann_first"]).name == "Ann Reader"
        assert session.scalars(select(AuditEvent.action).where(AuditEvent.action != "classified")).all() == [
            "approve",
            "approve",
        ]
    # Revealing one comment's email stays every moderator's, audited.
    assert client.post(f"/v1/comments/{posted['ann_first']}/reveal-email", headers=plain).status_code == 200
    with services.sessions() as session:
        revealed = select(AuditEvent.actor).where(AuditEvent.action == "email_revealed")
        assert session.scalars(revealed).all() == ["moderator:Plain Moderator"]


def test_the_cli_exports_and_erases(services: Services, posted: dict[str, int]) -> None:
    settings = services.settings
    runner = CliRunner(
        env={
            "DATABASE_URL": settings.database,
            "MODERATION_SECRET_KEY": settings.secret_key,
            "MODERATION_DATA_DIR": str(settings.data_dir),
        }
    )
    exported = runner.invoke(main, ["export-personal-data", ANN["email"]])
    assert exported.exit_code == 0, exported.output
    assert [item["id"] for item in json.loads(exported.output)["comments"]] == [
        posted["ann_first"],
        posted["ann_reply"],
    ]
    refused = runner.invoke(main, ["erase-personal-data", ANN["email"]], input="n\n")
    assert refused.exit_code != 0
    assert (
        len(json.loads(runner.invoke(main, ["export-personal-data", ANN["email"]]).output)["comments"]) == 2
    )
    erased = runner.invoke(main, ["erase-personal-data", ANN["email"], "--yes"])
    assert erased.exit_code == 0, erased.output
    assert (
        f"erased the personal data of 2 comment(s): {posted['ann_first']}, {posted['ann_reply']}"
        in erased.output
    )
    assert "WEBHOOK_URL is not set here, so the site was not told" in erased.stderr
    with services.sessions() as session:
        actors = session.scalars(select(AuditEvent.actor).where(AuditEvent.action == ERASED_ACTION)).all()
    assert set(actors) == {"cli"}
    # With the web app's webhook settings, the site is told.
    webhook = {"WEBHOOK_URL": "https://news.example/hook", "WEBHOOK_SECRET": new_secret()}
    told = runner.invoke(main, ["erase-personal-data", BOB["email"], "--yes"], env=webhook)
    assert told.exit_code == 0 and "WEBHOOK_URL" not in told.stderr, told.output
    with services.sessions() as session:
        events = session.scalars(
            select(WebhookEvent.comment_id).where(WebhookEvent.event_type == "comment.erased")
        )
        assert list(events) == [posted["bob"]]
    bad = runner.invoke(main, ["export-personal-data", "nope"])
    assert bad.exit_code == 2 and "not a valid email address" in bad.output


def test_a_verdict_recorded_after_the_erasure_does_not_quote_the_name(
    client: FlaskClient, services: Services
) -> None:
    comment_id = _post(client, ANN, "Posted just before the erasure.")
    with services.sessions() as session:
        assert erase_personal_data(session, services.keys, ANN["email"], "test", notify=False) == [comment_id]
        session.commit()
    # The worker read the comment before the erasure and scored it with the name.
    late = VerdictRecord(0.9, 0.01, list(REASONS), "test-model", CommentStatus.FLAGGED, "test")
    with services.sessions() as session:
        assert record_verdicts(session, {comment_id: late}) == [comment_id]
        session.commit()
        stored = session.scalars(select(Verdict.reasons).where(Verdict.comment_id == comment_id)).one()
    assert stored == [REASONS[0], REASONS[3]]


def test_an_address_with_more_comments_than_a_statement_takes_parameters_is_erased(
    services: Services,
) -> None:
    # A bot posting under one address: more comments than psycopg takes parameters in
    # one statement (65,535), one of them with a moderator's note to clean.
    keys, count = services.keys, 66_000
    numbers = select(literal(1).label("n")).cte("numbers", recursive=True)
    numbers = numbers.union_all(select(numbers.c.n + 1).where(numbers.c.n < count))
    bot = {
        "thread": literal("/a/1"),
        "name": literal("Bot"),
        "email_ciphertext": literal(encrypt_email(keys, BOB["email"])),
        "email_digest": literal(email_digest(keys, BOB["email"])),
        "body": literal("spam"),
    }
    with services.sessions() as session:
        session.execute(insert(Comment).from_select(list(bot), select(*bot.values()).select_from(numbers)))
        last = session.scalar(select(func.max(Comment.id)))
        session.add(AuditEvent(comment_id=last, action="decided", actor="moderator:Mo", note="bot"))
        session.commit()
    with services.sessions() as session:
        erased = erase_personal_data(session, keys, BOB["email"], "moderator:Mo", notify=False)
        session.commit()
    assert len(erased) == count
    with services.sessions() as session:
        assert session.scalar(select(func.count()).where(Comment.name == "Bot")) == 0
        assert session.scalar(select(func.count()).where(AuditEvent.note.is_not(None))) == 0


def test_each_batch_of_an_erasure_cleans_every_comment_of_it(
    client: FlaskClient,
    services: Services,
    moderator_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Batches of two over five comments: the last id of each batch is cleaned too. The
    # moderator of `moderator_headers` is the one the approvals name.
    monkeypatch.setattr(personal_data, "ERASE_BATCH", 2)
    ids = [_post(client, ANN, f"Ann's comment number {n}.") for n in range(5)]
    for comment_id in ids:
        _approve(services, comment_id)
    with services.sessions() as session:
        erased = erase_personal_data(session, services.keys, ANN["email"], "test", notify=False)
        session.commit()
    assert erased == ids
    with services.sessions() as session:
        reasons = session.scalars(select(Verdict.reasons).order_by(Verdict.comment_id)).all()
        assert reasons == [[REASONS[0], REASONS[3]]] * len(ids)
        assert session.scalar(select(func.count()).where(AuditEvent.note.is_not(None))) == 0
        classified = select(AuditEvent.reason).where(AuditEvent.action == "classified")
        assert session.scalars(classified).all() == [WITHOUT_TIMING] * len(ids)
