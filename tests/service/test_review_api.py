"""The moderators' JSON API: tokens, listing, showing, deciding."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from service.app import Services
from service.keyset import encode_cursor
from service.statuses import CommentStatus
from service.tables import Comment, Label
from service.transitions import VerdictRecord, record_verdicts

pytestmark = pytest.mark.integration

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


def test_listing_puts_flagged_first_and_masks_email(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str]
) -> None:
    approved, flagged_low, flagged_high = (_post(client) for _ in range(3))
    _classify(services, approved, 0.1, CommentStatus.APPROVED)
    _classify(services, flagged_low, 0.6, CommentStatus.FLAGGED)
    _classify(services, flagged_high, 0.8, CommentStatus.FLAGGED)
    received = _post(client)
    body = client.get("/v1/comments", headers=moderator_headers).get_json()
    assert [item["id"] for item in body["items"]] == [flagged_high, flagged_low, approved, received]
    first = body["items"][0]
    assert first["email_masked"] == "j***@example.com"
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
    page = listed("sort=age&per_page=2&page=2")
    assert [i["id"] for i in page["items"]] == ids[2:4]
    assert (page["total"], page["next_page"]) == (5, 3)
    assert listed("sort=age&per_page=2&page=3")["next_page"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=lost", "status"), ("sort=name", "sort"), ("page=0", "page"), ("per_page=x", "per_page")],
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


def test_a_second_decision_replaces_the_label(
    client: FlaskClient, services: Services, moderator_headers: dict[str, str]
) -> None:
    comment_id = _post(client)
    url = f"/v1/comments/{comment_id}/decision"
    client.post(url, json={"action": "reject", "reason": "spam"}, headers=moderator_headers)
    client.post(url, json={"action": "approve"}, headers=moderator_headers)
    with services.sessions() as session:
        labels = session.scalars(select(Label).where(Label.comment_id == comment_id)).all()
        assert [(label.spam, label.abuse) for label in labels] == [(False, False)]
        comment = session.get(Comment, comment_id)
        assert comment is not None and comment.status is CommentStatus.APPROVED


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "delete"}, "action"),
        ({"action": "reject"}, "reason"),
        ({"action": "reject", "reason": "rude"}, "reason"),
        ({"action": "approve", "note": 5}, "note"),
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


def test_decision_on_a_missing_comment_is_404(client: FlaskClient, moderator_headers: dict[str, str]) -> None:
    response = client.post(
        "/v1/comments/424242/decision", json={"action": "approve"}, headers=moderator_headers
    )
    assert response.status_code == 404


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
    ],
)
def test_a_forged_cursor_is_refused(
    client: FlaskClient, moderator_headers: dict[str, str], cursor: str
) -> None:
    response = client.get(f"/v1/comments?sort=age&cursor={cursor}", headers=moderator_headers)
    assert response.status_code == 422 and "cursor" in response.get_json()["fields"]
