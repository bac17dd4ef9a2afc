"""The moderators' JSON API: tokens, listing, showing, deciding."""

from __future__ import annotations

import base64
import logging
import threading
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from service import presenters
from service.app import Services
from service.auth import create_token, revoke_tokens
from service.keyfile import generate_secret
from service.keyset import encode_cursor
from service.personal_data import erase_personal_data
from service.privacy import KeyRing, encrypt_email
from service.statuses import Action, CommentStatus, DecisionReason
from service.tables import Comment, Label, ModeratorToken, Verdict
from service.transitions import Decision, VerdictRecord, decide, record_verdicts

pytestmark = pytest.mark.integration

NOON = "2026-11-28T12:00:00+00:00"
FORM = {"name": "Ann Reader", "email": "jane.doe@example.com", "comment": "First!", "thread": "/a/1"}


def _post(client: FlaskClient, **changes: Any) -> int:
    response = client.post("/v1/comments", json={**FORM, **changes})
    assert response.status_code == 202
    return int(response.get_json()["id"])


def _classify(services: Services, comment_id: int, spam: float, outcome: CommentStatus) -> None:
    verdict = VerdictRecord(spam, 0.01, [f'"spam" +{spam} toward spam'], "test-model", outcome, "test")
    with services.sessions() as session:
        assert record_verdicts(session, {comment_id: verdict}) == [comment_id]
        session.commit()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer mod_wrong"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}],
)
def test_moderator_endpoints_need_a_valid_token(client: FlaskClient, headers: dict[str, str]) -> None:
    for method, path in [
        ("get", "/v1/comments"),
        ("get", "/v1/comments/1"),
        ("post", "/v1/comments/1/decision"),
    ]:
        response = getattr(client, method)(path, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.get_json()["error"] == "unauthorized"


def test_a_revoked_token_is_refused(client: FlaskClient, services: Services) -> None:
    with services.sessions() as session:
        token = create_token(session, "Mo")
        session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/comments", headers=headers).status_code == 200
    with services.sessions() as session:
        assert revoke_tokens(session, "Mo") == 1
        session.commit()
    assert client.get("/v1/comments", headers=headers).status_code == 401


def test_the_bearer_scheme_is_matched_in_any_case(client: FlaskClient, services: Services) -> None:
    with services.sessions() as session:
        token = create_token(session, "Mo")
        session.commit()
    for scheme in ("bearer", "BEARER"):
        assert client.get("/v1/comments", headers={"Authorization": f"{scheme} {token}"}).status_code == 200


def test_a_moderator_name_may_be_up_to_100_characters(services: Services) -> None:
    with services.sessions() as session:
        assert create_token(session, "M" * 100).startswith("mod_")
        session.commit()
        with pytest.raises(ValueError, match="1 to 100 characters"):
            create_token(session, "M" * 101)


@pytest.mark.parametrize("name", ["Mo\nINFO admin signed in", "Mo\x1b[2J", "\u202eoM", "Mo\u2028Jo"])
def test_a_moderator_name_with_control_characters_is_refused(services: Services, name: str) -> None:
    with services.sessions() as session:
        with pytest.raises(ValueError, match="may not hold control characters"):
            create_token(session, name)
        # Joiners are no controls: Persian names and emoji sequences need them.
        assert create_token(session, "Zoë Ångström") and create_token(session, "Mo 🙂")
        assert create_token(session, "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645")
        assert create_token(session, "Mo \U0001f469\u200d\U0001f4bb")


def test_errors_answered_to_moderators_are_kept_by_no_cache_either(
    client: FlaskClient, moderator_headers: dict[str, str]
) -> None:
    comment_id = _post(client)
    answers = [
        client.get("/v1/comments/999999", headers=moderator_headers),
        client.get("/v1/comments?sort=nope", headers=moderator_headers),
        client.post(
            f"/v1/comments/{comment_id}/decision",
            json={"action": "approve", "expected_status": "flagged"},
            headers=moderator_headers,
        ),
        client.get("/v1/comments"),
        client.get("/v1/models/runs", headers=moderator_headers),
        client.get("/v1/models/runs/999999", headers=moderator_headers),
    ]
    assert [answer.status_code for answer in answers] == [404, 422, 409, 401, 200, 404]
    assert all(answer.headers.get("Cache-Control") == "no-store" for answer in answers)
    assert "Cache-Control" not in client.get("/v1/threads/a/comments").headers


def test_listing_puts_flagged_first_and_masks_email(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str]
) -> None:
    approved, flagged_low, flagged_high = (_post(client) for _ in range(3))
    _classify(services, approved, 0.1, CommentStatus.APPROVED)
    _classify(services, flagged_low, 0.6, CommentStatus.FLAGGED)
    _classify(services, flagged_high, 0.8, CommentStatus.FLAGGED)
    received = _post(client)
    listing = client.get("/v1/comments", headers=moderator_headers)
    assert listing.headers["Cache-Control"] == "no-store"  # names and comments: no cache keeps them
    body = listing.get_json()
    assert [item["id"] for item in body["items"]] == [flagged_high, flagged_low, approved, received]
    first = body["items"][0]
    assert first["email_masked"] == "j***@example.com" and first["email_unavailable"] is False
    assert "email" not in first and "jane.doe" not in str(body)
    assert first["scores"] == {"spam": 0.8, "abuse": 0.01}
    assert first["reasons"] == ['"spam" +0.8 toward spam'] and first["model_version"] == "test-model"
    assert {"id", "thread", "name", "comment", "status", "created_at"} <= set(first)


def test_listing_filters_sorts_and_pages(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str]
) -> None:
    ids = [_post(client, thread="/a/1" if n % 2 else "/a/2") for n in range(5)]
    for n, comment_id in enumerate(ids):
        _classify(services, comment_id, 0.5 + n / 100, CommentStatus.FLAGGED)

    def listed(query: str) -> dict[str, Any]:
        response = client.get(f"/v1/comments?{query}", headers=moderator_headers)
        assert response.status_code == 200, response.get_json()
        return response.get_json()  # type: ignore[no-any-return]

    assert [i["id"] for i in listed("status=flagged&sort=age")["items"]] == ids
    assert [i["id"] for i in listed("status=flagged&sort=score")["items"]] == ids[::-1]
    assert [i["id"] for i in listed("thread=/a/2&sort=age")["items"]] == ids[0::2]
    assert listed("status=approved")["items"] == []
    # Left empty, as a form leaves a field: the default, all statuses in queue order.
    assert [i["id"] for i in listed("status=&sort=&thread=")["items"]] == ids[::-1]
    page = listed("sort=age&per_page=2&page=2")
    assert [i["id"] for i in page["items"]] == ids[2:4]
    assert (page["total"], page["next_page"]) == (5, 3)
    assert listed("sort=age&per_page=2&page=3")["next_page"] is None


def test_a_commenters_comments_are_listed_by_any_one_of_them(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str]
) -> None:
    # A commenter's history weighs in a decision (a troll's many rejected comments, a
    # regular's approved ones), and the queue could not be read by commenter.
    mine = [_post(client), _post(client, email="Jane.Doe@Example.com", thread="/a/2")]
    theirs = _post(client, email="someone@example.com")

    def listed(query: str) -> Any:
        return client.get(f"/v1/comments?{query}", headers=moderator_headers)

    for one in mine:
        assert [
            item["id"] for item in listed(f"same_commenter_as={one}&sort=age").get_json()["items"]
        ] == mine
    assert [item["id"] for item in listed(f"same_commenter_as={theirs}").get_json()["items"]] == [theirs]
    assert listed(f"same_commenter_as={theirs}&page=1").get_json()["total"] == 1
    with services.sessions() as session:
        erase_personal_data(session, services.keys, "someone@example.com", "cli", notify=False)
        session.commit()
    # Every erased comment has lost its email alike: they are no one commenter's.
    for query, message in [
        (f"same_commenter_as={theirs}", f"names comment {theirs}, whose commenter's data was erased"),
        ("same_commenter_as=999999", "names no comment: 999999 does not exist"),
        ("same_commenter_as=first", "must be a whole number of at least 1"),
    ]:
        refused = listed(query)
        assert refused.status_code == 422
        assert refused.get_json()["fields"] == {"same_commenter_as": f"same_commenter_as {message}"}


def test_a_listing_that_ends_on_a_full_page_offers_no_next_one(
    client: FlaskClient, moderator_headers: dict[str, str]
) -> None:
    ids = [_post(client) for _ in range(4)]

    def listed(query: str) -> dict[str, Any]:
        response = client.get(f"/v1/comments?sort=age&per_page=2&{query}", headers=moderator_headers)
        assert response.status_code == 200, response.get_json()
        return response.get_json()  # type: ignore[no-any-return]

    assert (listed("page=1")["next_page"], listed("page=2")["next_page"]) == (2, None)
    first = listed("cursor=")
    last = listed(f"cursor={first['next_cursor']}")
    assert [item["id"] for item in last["items"]] == ids[2:] and last["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=lost", "status"),
        ("sort=name", "sort"),
        ("page=0", "page"),
        ("per_page=x", "per_page"),
        ("page=²", "page"),  # "²".isdigit() is true, but int() refuses it
        ("page=100000000000000000", "page"),  # an offset past a 64-bit integer
        pytest.param(f"page={'9' * 5000}", "page", id="page=9...9"),  # past int()'s digit limit
    ],
)
def test_bad_listing_parameters_get_422(
    client: FlaskClient, moderator_headers: dict[str, str], query: str, field: str
) -> None:
    response = client.get(f"/v1/comments?{query}", headers=moderator_headers)
    assert response.status_code == 422
    assert field in response.get_json()["fields"]


def test_show_one_with_its_audit_trail(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str]
) -> None:
    comment_id = _post(client)
    _classify(services, comment_id, 0.7, CommentStatus.FLAGGED)
    body = client.get(f"/v1/comments/{comment_id}", headers=moderator_headers).get_json()
    assert body["status"] == "flagged"
    assert [event["action"] for event in body["audit"]] == ["received", "classified"]
    assert body["audit"][1]["actor"] == "model:test-model"
    missing = client.get("/v1/comments/999999", headers=moderator_headers)
    assert missing.status_code == 404 and "999999" in missing.get_json()["message"]


@pytest.mark.parametrize(
    ("decision", "status", "label"),
    [
        ({"action": "approve"}, "approved", (False, False)),
        ({"action": "reject", "reason": "spam"}, "rejected", (True, None)),
        ({"action": "reject", "reason": "abuse", "note": "threat"}, "rejected", (None, True)),
        ({"action": "reject", "reason": "other"}, "rejected", (None, None)),
    ],
)
def test_decision_changes_status_and_records_audit_and_label(
    client: FlaskClient,
    services: Services,
    moderator_headers: dict[str, str],
    decision: dict[str, str],
    status: str,
    label: tuple[bool | None, bool | None],
) -> None:
    comment_id = _post(client)
    _classify(services, comment_id, 0.7, CommentStatus.FLAGGED)
    response = client.post(f"/v1/comments/{comment_id}/decision", json=decision, headers=moderator_headers)
    assert response.status_code == 200 and response.get_json()["status"] == status
    audit = client.get(f"/v1/comments/{comment_id}", headers=moderator_headers).get_json()["audit"][-1]
    assert audit["actor"] == "moderator:Mod Erator" and audit["from_status"] == "flagged"
    assert audit["to_status"] == status and audit["note"] == decision.get("note")
    with services.sessions() as session:
        stored = session.scalar(select(Label).where(Label.comment_id == comment_id))
        assert stored is not None and (stored.spam, stored.abuse) == label


def test_a_decision_made_on_a_status_that_has_changed_since_is_refused(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str]
) -> None:
    comment_id = _post(client)
    _classify(services, comment_id, 0.7, CommentStatus.FLAGGED)
    first = {"action": "approve", "expected_status": "flagged"}
    answer = client.post(f"/v1/comments/{comment_id}/decision", json=first, headers=moderator_headers)
    assert answer.status_code == 200
    # A second moderator, still looking at it as flagged, rejects it.
    stale = {"action": "reject", "reason": "spam", "note": "seen as flagged", "expected_status": "flagged"}
    response = client.post(f"/v1/comments/{comment_id}/decision", json=stale, headers=moderator_headers)
    assert response.status_code == 409 and response.get_json()["error"] == "conflict"
    assert response.get_json()["message"].startswith(f"comment {comment_id} is approved now, not flagged")
    shown = client.get(f"/v1/comments/{comment_id}", headers=moderator_headers).get_json()
    assert shown["status"] == "approved" and [event["note"] for event in shown["audit"]][-1] is None
    with services.sessions() as session:
        label = session.scalars(select(Label).where(Label.comment_id == comment_id)).one()
        assert (label.spam, label.abuse) == (False, False)


def test_a_decision_made_on_a_comment_changed_since_is_refused_though_its_status_stayed(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str]
) -> None:
    comment_id = _post(client)
    _classify(services, comment_id, 0.99, CommentStatus.REJECTED)
    path = f"/v1/comments/{comment_id}/decision"
    seen = client.get(f"/v1/comments/{comment_id}", headers=moderator_headers).get_json()["updated_at"]
    # One moderator makes the automatic rejection one for abuse, with a note.
    threat = {"action": "reject", "reason": "abuse", "note": "threat", "expected_updated_at": seen}
    assert client.post(path, json=threat, headers=moderator_headers).status_code == 200
    # Another, still looking at the automatic rejection, would publish it.
    stale = {"action": "approve", "expected_status": "rejected", "expected_updated_at": seen}
    response = client.post(path, json=stale, headers=moderator_headers)
    assert response.status_code == 409 and response.get_json()["error"] == "conflict"
    assert f"comment {comment_id} last changed at " in response.get_json()["message"]
    shown = client.get(f"/v1/comments/{comment_id}", headers=moderator_headers).get_json()
    assert shown["status"] == "rejected" and shown["audit"][-1]["note"] == "threat"
    with services.sessions() as session:
        label = session.scalars(select(Label).where(Label.comment_id == comment_id)).one()
        assert (label.spam, label.abuse) == (None, True)
    # Looked at again, the decision goes through.
    fresh = {**stale, "expected_updated_at": shown["updated_at"]}
    assert client.post(path, json=fresh, headers=moderator_headers).status_code == 200


@pytest.mark.parametrize(
    "seen",
    [
        "2026-11-30T07:00:00",
        "yesterday",
        1764486000,
        "9" * 100,
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
    ],
)
def test_an_unreadable_expected_time_is_refused(
    client: FlaskClient, moderator_headers: dict[str, str], seen: Any
) -> None:
    comment_id = _post(client)
    decision = {"action": "approve", "expected_updated_at": seen}
    response = client.post(f"/v1/comments/{comment_id}/decision", json=decision, headers=moderator_headers)
    assert response.status_code == 422
    problem = "expected_updated_at must be a time with its UTC offset, as updated_at gives it"
    assert response.get_json()["fields"] == {"expected_updated_at": problem}


def test_two_decisions_at_once_are_applied_one_after_the_other(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str]
) -> None:
    comment_id = _post(client)
    _classify(services, comment_id, 0.7, CommentStatus.FLAGGED)
    with services.sessions() as first:
        moderator = first.scalars(select(ModeratorToken)).one()
        decide(first, comment_id, moderator, Decision(Action.APPROVE))

        def second_decision() -> None:
            with services.sessions() as second:
                decide(second, comment_id, moderator, Decision(Action.REJECT, DecisionReason.SPAM))
                second.commit()

        # The second decision starts while the first is still open: it must wait for it
        # and see the status it left, not the flagged status both found before.
        other = threading.Thread(target=second_decision)
        other.start()
        other.join(timeout=0.5)
        assert other.is_alive()  # held back by the first decision's row
        first.commit()
    other.join()
    audit = client.get(f"/v1/comments/{comment_id}", headers=moderator_headers).get_json()["audit"]
    moves = [(event["from_status"], event["to_status"]) for event in audit[-2:]]
    assert moves == [("flagged", "approved"), ("approved", "rejected")]
    with services.sessions() as session:
        assert session.get(Comment, comment_id).status is CommentStatus.REJECTED  # type: ignore[union-attr]


def test_a_decision_is_stored_and_answered_when_requesting_a_retrain_fails(
    client: FlaskClient,
    services: Services,
    moderator_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("the queue refused the run")

    monkeypatch.setattr(services.retrain_trigger, "after_decision", broken)
    comment_id = _post(client)
    _classify(services, comment_id, 0.7, CommentStatus.FLAGGED)
    url = f"/v1/comments/{comment_id}/decision"
    response = client.post(url, json={"action": "approve"}, headers=moderator_headers)
    assert response.status_code == 200 and response.get_json()["status"] == "approved"
    with services.sessions() as session:
        assert session.get(Comment, comment_id).status is CommentStatus.APPROVED  # type: ignore[union-attr]


def test_an_email_another_key_encrypted_is_shown_as_unavailable(
    client: FlaskClient,
    services: Services,
    moderator_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(presenters, "_unreadable_reported", threading.Event())
    readable, unreadable, other = _post(client), _post(client), _post(client)
    old_keys = KeyRing.from_secret(base64.urlsafe_b64decode(generate_secret()))
    with services.sessions() as session:
        for comment_id in (unreadable, other):
            session.get_one(Comment, comment_id).email_ciphertext = encrypt_email(old_keys, FORM["email"])
        session.commit()
    caplog.set_level(logging.WARNING, logger="service.presenters")

    listing = client.get("/v1/comments", headers=moderator_headers)
    assert listing.status_code == 200
    emails = {
        item["id"]: (item["email_masked"], item["email_unavailable"]) for item in listing.get_json()["items"]
    }
    assert emails == {readable: ("j***@example.com", False), unreadable: (None, True), other: (None, True)}
    shown = client.get(f"/v1/comments/{unreadable}", headers=moderator_headers)
    assert shown.status_code == 200 and shown.get_json()["email_masked"] is None
    url = f"/v1/comments/{unreadable}/decision"
    decided = client.post(url, json={"action": "approve"}, headers=moderator_headers)
    assert decided.status_code == 200
    assert decided.get_json()["status"] == "approved" and decided.get_json()["email_unavailable"] is True
    assert decided.get_json()["email_erased"] is False  # unreadable, not erased: the two are told apart
    warnings = [record for record in caplog.records if record.name == "service.presenters"]
    assert len(warnings) == 1 and f"comment {unreadable} " in warnings[0].getMessage()


def test_a_comment_shows_the_reasons_and_model_of_its_latest_verdict(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str]
) -> None:
    comment_id = _post(client)
    _classify(services, comment_id, 0.6, CommentStatus.FLAGGED)
    with services.sessions() as session:
        session.add(
            Verdict(
                comment_id=comment_id,
                spam=0.2,
                abuse=0.01,
                reasons=["every score below its review threshold"],
                model_version="newer-model",
                outcome=CommentStatus.APPROVED,
            )
        )
        session.commit()
    shown = client.get(f"/v1/comments/{comment_id}", headers=moderator_headers).get_json()
    assert shown["model_version"] == "newer-model"
    assert shown["reasons"] == ["every score below its review threshold"]


def test_a_second_decision_replaces_the_label(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str]
) -> None:
    comment_id = _post(client)
    url = f"/v1/comments/{comment_id}/decision"

    def labels() -> list[tuple[bool | None, bool | None]]:
        with services.sessions() as session:
            stored = session.scalars(select(Label).where(Label.comment_id == comment_id)).all()
            return [(label.spam, label.abuse) for label in stored]

    assert (
        client.post(url, json={"action": "reject", "reason": "spam"}, headers=moderator_headers).status_code
        == 200
    )
    assert labels() == [(True, None)]
    assert client.post(url, json={"action": "approve"}, headers=moderator_headers).status_code == 200
    assert labels() == [(False, False)]
    with services.sessions() as session:
        comment = session.get(Comment, comment_id)
        assert comment is not None and comment.status is CommentStatus.APPROVED


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "delete"}, "action"),
        ({"action": "reject"}, "reason"),
        ({"action": "reject", "reason": "rude"}, "reason"),
        ({"action": "approve", "reason": "spam"}, "reason"),
        ({"action": "approve", "note": 5}, "note"),
        ({"action": "approve", "expected_status": "pending"}, "expected_status"),
    ],
)
def test_bad_decisions_get_422_and_change_nothing(
    client: FlaskClient,
    services: Services,
    moderator_headers: dict[str, str],
    body: dict[str, Any],
    field: str,
) -> None:
    comment_id = _post(client)
    response = client.post(f"/v1/comments/{comment_id}/decision", json=body, headers=moderator_headers)
    assert response.status_code == 422 and field in response.get_json()["fields"]
    with services.sessions() as session:
        comment = session.get(Comment, comment_id)
        assert comment is not None and comment.status is CommentStatus.RECEIVED


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            b"[" * 100_000, "the body is not valid JSON (it nests arrays or objects too deeply)", id="deep"
        ),
        pytest.param(
            b'{"action": "approve", "note": ' + b"1" * 5000 + b"}",
            "the body is not readable JSON (it holds a number longer than 4300 digits)",
            id="long",
        ),
    ],
)
def test_unreadable_decision_bodies_get_400(
    client: FlaskClient, moderator_headers: dict[str, str], body: bytes, message: str
) -> None:
    comment_id = _post(client)
    response = client.post(
        f"/v1/comments/{comment_id}/decision",
        data=body,
        content_type="application/json",
        headers=moderator_headers,
    )
    assert response.status_code == 400 and response.get_json()["message"] == message


@pytest.mark.parametrize(
    ("note", "problem"),
    [
        ("fine\ud800", "note is not valid Unicode (it holds a lone surrogate)"),
        # PostgreSQL cannot store a NUL in text: refused here rather than failing there.
        ("fine\x00", "note contains control characters"),
    ],
)
def test_a_decision_note_the_database_cannot_store_gets_422(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str], note: str, problem: str
) -> None:
    comment_id = _post(client)
    body = {"action": "approve", "note": note}
    response = client.post(f"/v1/comments/{comment_id}/decision", json=body, headers=moderator_headers)
    assert response.status_code == 422
    assert response.get_json()["fields"] == {"note": problem}
    with services.sessions() as session:
        comment = session.get(Comment, comment_id)
        assert comment is not None and comment.status is CommentStatus.RECEIVED


def test_a_method_an_address_does_not_take_is_405_naming_those_it_does(client: FlaskClient) -> None:
    response = client.put("/v1/comments")
    assert response.status_code == 405 and response.get_json()["error"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_decision_on_a_missing_comment_is_404(client: FlaskClient, moderator_headers: dict[str, str]) -> None:
    response = client.post(
        "/v1/comments/424242/decision", json={"action": "approve"}, headers=moderator_headers
    )
    assert response.status_code == 404


def test_an_id_no_comment_can_have_is_404(client: FlaskClient, moderator_headers: dict[str, str]) -> None:
    comment_id = _post(client)
    # Past a 64-bit column, and the comment's own id in Arabic-Indic digits (which int() reads).
    other_digits = quote("".join(chr(0x660 + int(digit)) for digit in str(comment_id)))
    for path_id in (str(2**63), other_digits):
        assert client.get(f"/v1/comments/{path_id}", headers=moderator_headers).status_code == 404
        response = client.post(
            f"/v1/comments/{path_id}/decision", json={"action": "approve"}, headers=moderator_headers
        )
        assert response.status_code == 404 and response.get_json()["error"] == "not_found"


def test_public_thread_lists_approved_comments_only_without_email(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str]
) -> None:
    shown, hidden, elsewhere = _post(client), _post(client), _post(client, thread="/a/2")
    for comment_id in (shown, elsewhere):
        client.post(
            f"/v1/comments/{comment_id}/decision", json={"action": "approve"}, headers=moderator_headers
        )
    _classify(services, hidden, 0.7, CommentStatus.FLAGGED)
    response = client.get("/v1/threads//a/1/comments")
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [item["id"] for item in items] == [shown]
    assert set(items[0]) == {"id", "parent_id", "name", "url", "avatar", "comment", "created_at"}
    assert "example.com" not in response.get_data(as_text=True)


def test_a_script_on_the_site_page_may_read_the_public_thread(
    client: FlaskClient, moderator_headers: dict[str, str]
) -> None:
    # The reply form posts across origins, and the page shows its thread from a script on
    # its own origin: without this header the browser keeps the answer from that script.
    origin = {"Origin": "https://news.example"}
    listing = client.get("/v1/threads//a/1/comments", headers=origin)
    refused = client.get("/v1/threads/x/comments?per_page=0", headers=origin)
    assert [listing.status_code, refused.status_code] == [200, 422]
    assert listing.headers["Access-Control-Allow-Origin"] == "*"
    assert refused.headers["Access-Control-Allow-Origin"] == "*"
    # Nothing a moderator reads is opened to other sites.
    queue = client.get("/v1/comments", headers={**origin, **moderator_headers})
    assert queue.status_code == 200 and "Access-Control-Allow-Origin" not in queue.headers


def test_a_public_thread_is_paged_oldest_first_counting_only_the_comments_it_shows(
    client: FlaskClient, moderator_headers: dict[str, str]
) -> None:
    ids = [_post(client) for _ in range(3)]
    _post(client)  # not approved: neither shown nor counted
    elsewhere = _post(client, thread="/a/2")
    for comment_id in (*reversed(ids), elsewhere):  # the order of approval does not matter
        client.post(
            f"/v1/comments/{comment_id}/decision", json={"action": "approve"}, headers=moderator_headers
        )
    first = client.get("/v1/threads//a/1/comments?per_page=2").get_json()
    assert [item["id"] for item in first["items"]] == ids[:2] and first["next_page"] == 2
    last = client.get("/v1/threads//a/1/comments?per_page=2&page=2").get_json()
    assert [item["id"] for item in last["items"]] == ids[2:] and last["next_page"] is None


def test_a_reply_whose_parent_is_hidden_later_is_listed_without_it(
    client: FlaskClient, moderator_headers: dict[str, str]
) -> None:
    def decide_on(comment_id: int, decision: dict[str, str]) -> None:
        response = client.post(
            f"/v1/comments/{comment_id}/decision", json=decision, headers=moderator_headers
        )
        assert response.status_code == 200

    def listed() -> dict[int, int | None]:
        items = client.get("/v1/threads//a/1/comments").get_json()["items"]
        return {item["id"]: item["parent_id"] for item in items}

    parent = _post(client)
    decide_on(parent, {"action": "approve"})
    reply = _post(client, parent_id=parent)
    decide_on(reply, {"action": "approve"})
    assert listed() == {parent: None, reply: parent}
    decide_on(parent, {"action": "reject", "reason": "abuse"})
    # Neither the hidden comment nor its id: the reply stands as a comment of its own.
    assert listed() == {reply: None}
    decide_on(parent, {"action": "approve"})
    assert listed() == {parent: None, reply: parent}


# The intake stores "café" composed (NFC) and trimmed; a lookup must clean the key the same way.
@pytest.mark.parametrize("key", ["caf%C3%A9", "cafe%CC%81", "caf%C3%A9%20", "%20cafe%CC%81"])
def test_thread_lookups_clean_the_key_as_the_intake_does(
    client: FlaskClient, moderator_headers: dict[str, str], key: str
) -> None:
    comment_id = _post(client, thread="café")
    client.post(f"/v1/comments/{comment_id}/decision", json={"action": "approve"}, headers=moderator_headers)
    public = client.get(f"/v1/threads/{key}/comments").get_json()
    assert (public["total"], [item["id"] for item in public["items"]]) == (1, [comment_id])
    queue = client.get(f"/v1/comments?thread={key}", headers=moderator_headers).get_json()
    assert [item["id"] for item in queue["items"]] == [comment_id]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("%20", "thread is required"),
        ("a%07b", "thread contains control characters"),
        pytest.param("x" * 501, "thread is longer than 500 characters", id="x*501"),
    ],
)
def test_a_thread_key_no_comment_can_have_gets_422(
    client: FlaskClient, moderator_headers: dict[str, str], key: str, message: str
) -> None:
    for response in (
        client.get(f"/v1/threads/{key}/comments"),
        client.get(f"/v1/comments?thread={key}", headers=moderator_headers),
    ):
        assert response.status_code == 422
        assert response.get_json()["fields"] == {"thread": message}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("page=²", "page must be a whole number of at least 1"),
        ("page=0", "page must be a whole number of at least 1"),
        ("page=100000000000000000", "page must be at most 1000000000"),
        pytest.param(f"page={'9' * 5000}", "page must be at most 1000000000", id="page=9...9"),
        ("per_page=-1", "per_page must be a whole number of at least 1"),
    ],
)
def test_bad_public_page_parameters_get_422(client: FlaskClient, query: str, message: str) -> None:
    response = client.get(f"/v1/threads/x/comments?{query}")
    assert response.status_code == 422
    field = query.split("=")[0]
    assert response.get_json()["fields"] == {field: message}


def test_public_pages_reach_the_bound_and_per_page_is_capped(client: FlaskClient) -> None:
    deepest = client.get("/v1/threads/x/comments?page=1000000000&per_page=200")
    assert deepest.status_code == 200 and deepest.get_json()["items"] == []
    capped = client.get(f"/v1/threads/x/comments?per_page={'9' * 5000}")
    assert capped.status_code == 200 and capped.get_json()["per_page"] == 200
    empty = client.get("/v1/threads/x/comments?page=&per_page=")  # a plain GET form's empty fields
    assert empty.status_code == 200 and (empty.get_json()["page"], empty.get_json()["per_page"]) == (1, 100)


def test_empty_listing_parameters_count_as_not_given(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str]
) -> None:
    ids = [_post(client) for _ in range(3)]
    first = client.get("/v1/comments?sort=age&per_page=2", headers=moderator_headers).get_json()
    empty = "status=&thread=&page=&per_page="
    response = client.get(f"/v1/comments?sort=age&{empty}", headers=moderator_headers)
    assert response.status_code == 200 and [item["id"] for item in response.get_json()["items"]] == ids
    cursor = first["next_cursor"]
    later = client.get(f"/v1/comments?sort=age&page=&cursor={cursor}", headers=moderator_headers)
    assert later.status_code == 200 and [item["id"] for item in later.get_json()["items"]] == ids[2:]


@pytest.mark.parametrize("sort", ["queue", "score", "age"])
def test_cursor_pages_walk_the_same_order_as_numbered_pages(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str], sort: str
) -> None:
    ids = [_post(client) for _ in range(7)]
    # Ties in score, statuses mixed, two comments never scored: every key of every order matters.
    outcomes = [CommentStatus.FLAGGED] * 3 + [CommentStatus.APPROVED, CommentStatus.REJECTED]
    for comment_id, score, outcome in zip(ids, [0.7, 0.9, 0.7, 0.2, 0.95], outcomes, strict=False):
        _classify(services, comment_id, score, outcome)
    everything = client.get(
        f"/v1/comments?sort={sort}&page=1&per_page=50", headers=moderator_headers
    ).get_json()
    walked, cursor, pages = [], "", 0
    while True:
        body = client.get(
            f"/v1/comments?sort={sort}&per_page=2&cursor={cursor}", headers=moderator_headers
        ).get_json()
        assert set(body) == {"items", "per_page", "next_cursor"}
        walked += [item["id"] for item in body["items"]]
        pages += 1
        if body["next_cursor"] is None:
            break
        cursor = body["next_cursor"]
    assert walked == [item["id"] for item in everything["items"]] and sorted(walked) == ids
    assert pages == 4


@pytest.mark.parametrize(
    "cursor",
    [
        "bm90LWEtY3Vyc29y",  # base64 of text that is not JSON
        encode_cursor(("2026-11-28T00:00:00", 5)),  # a time without its zone
        encode_cursor((1, 2, 3)),  # the wrong number of keys for the order
        encode_cursor((NOON, 2**63)),  # an id past a 64-bit column
        encode_cursor((NOON, -(2**63) - 1)),
        encode_cursor((NOON, 1.5)),  # an id that is not a whole number
        encode_cursor((NOON, True)),
        encode_cursor((NOON, "5")),
        encode_cursor(("0001-01-01T00:00:00+01:00", 5)),  # a time before year 1 in UTC
        encode_cursor(("9999-12-31T23:59:59-01:00", 5)),  # ... or after year 9999
        pytest.param(
            base64.urlsafe_b64encode(b"[" * 100_000).decode(), id="deep"
        ),  # past the recursion limit
        pytest.param(
            base64.urlsafe_b64encode(b"[" + b"1" * 5000 + b", 5]").decode(), id="long"
        ),  # past int()'s
    ],
)
def test_a_forged_cursor_is_refused(
    client: FlaskClient, moderator_headers: dict[str, str], cursor: str
) -> None:
    response = client.get(f"/v1/comments?sort=age&cursor={cursor}", headers=moderator_headers)
    assert response.status_code == 422
    assert response.get_json()["fields"] == {"cursor": "cursor is not one this listing returned"}


def test_a_page_number_and_a_cursor_together_are_refused(
    client: FlaskClient, moderator_headers: dict[str, str]
) -> None:
    cursor = encode_cursor((NOON, 5))
    response = client.get(f"/v1/comments?sort=age&page=2&cursor={cursor}", headers=moderator_headers)
    assert response.status_code == 422 and "send one of them" in response.get_json()["fields"]["cursor"]


@pytest.mark.parametrize(
    "rank",
    [float("inf"), float("nan"), 10**400, "0.5", None],
)
def test_a_cursor_with_a_bad_score_is_refused(
    client: FlaskClient, moderator_headers: dict[str, str], rank: Any
) -> None:
    cursor = encode_cursor((rank, NOON, 5))
    response = client.get(f"/v1/comments?sort=score&cursor={cursor}", headers=moderator_headers)
    assert response.status_code == 422 and "cursor" in response.get_json()["fields"]


@pytest.mark.parametrize(
    ("sort", "key"),
    [("age", (NOON, 2**63 - 1)), ("queue", (0, -2.0, NOON, -(2**63)))],
)
def test_a_cursor_at_the_extremes_of_its_keys_is_read(
    client: FlaskClient, moderator_headers: dict[str, str], sort: str, key: tuple[Any, ...]
) -> None:
    _post(client)
    response = client.get(f"/v1/comments?sort={sort}&cursor={encode_cursor(key)}", headers=moderator_headers)
    assert response.status_code == 200, response.get_json()
