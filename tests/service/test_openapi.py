"""The OpenAPI document (service/openapi.json): valid, complete, and true to what the API does."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis import Case, HookContext, Response
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import Failure
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.schemas import OpenApiSchema

from service.api import OPENAPI_MEDIA_TYPE, openapi_document
from service.app import Services
from service.auth import create_token
from service.statuses import CommentStatus, RunStatus, Trigger
from service.tables import ShadowVerdict, TrainingRun
from service.transitions import VerdictRecord, record_verdicts
from service.validation import NAME_MAX_CHARS, ONE_LINE_CONTROL, THREAD_MAX_CHARS

DOCUMENT: dict[str, Any] = json.loads(openapi_document())
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch"})
# The routes the document covers: the JSON API and the health check, not the moderators' pages.
DOCUMENTED_PREFIXES = ("/v1/", "/healthz")
# Werkzeug adds these to every route by itself.
IMPLICIT_METHODS = frozenset({"HEAD", "OPTIONS"})
# One database is enough for checks of the document and the routes.
ON_SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
SURROGATES = range(0xD800, 0xE000)
THREAD = "/2026/11/harbour"
# The document's name for a moderator's token, which the conformance run authenticates with.
TOKEN_SCHEME = "moderatorToken"
# Refusals by the rules the document states in words, as JSON Schema cannot express
# them: a text that shows nothing (format characters alone), a name holding an email
# address, a limit in bytes or on a text once trimmed, a website that is no web address
# or is too long once `http://` is added, an address email-validator refuses, a reply to a
# comment that is not published, the commenter of a comment that does not exist or was
# erased, a cursor this listing did not hand out, `page` with `cursor`, a model version
# name that is not printable. Each is recognised by what the 422 says.
RULES_IN_WORDS = (
    re.compile(r"^(name|comment|thread) is required$"),
    re.compile(r"^comment is longer than 65525 (characters|bytes)$"),
    re.compile(r"^name must not hold an email address "),
    re.compile(r"^email is longer than 100 characters$"),
    re.compile(r"^email is not a valid email address \("),
    re.compile(r"^url must be a web address "),
    re.compile(r"^url is longer than 200 characters$"),
    re.compile(r"^parent_id [0-9]+ is not a published comment in this thread$"),
    re.compile(r"^same_commenter_as names (no comment: [0-9]+ does not exist|comment [0-9]+, whose )"),
    re.compile(r"^cursor is not one this listing returned$"),
    re.compile(r"^cursor and page are two ways to page; send one of them$"),
    re.compile(r"^version must be a model version name: "),
)


def test_the_document_is_valid_openapi_3_1() -> None:
    assert DOCUMENT["openapi"].startswith("3.1.")
    validate(DOCUMENT)


@pytest.mark.parametrize(("schema", "most"), [("Name", NAME_MAX_CHARS), ("ThreadKey", THREAD_MAX_CHARS)])
def test_a_documented_one_line_text_is_the_one_the_service_takes(schema: str, most: int) -> None:
    """Its pattern refuses within it what the service refuses (``ONE_LINE_CONTROL``), lets
    either end have what the service trims (``str.strip``), and holds the service's limit."""
    pattern = re.compile(DOCUMENT["components"]["schemas"][schema]["pattern"])
    for code in range(0x10000):
        if code in SURROGATES:
            continue
        character = chr(code)
        within = ONE_LINE_CONTROL.match(character) is None
        assert (pattern.search(f"a{character}b") is not None) == within, hex(code)
        assert (pattern.search(f"{character}a{character}") is not None) == (within or character.isspace())
    assert pattern.search(f" {'x' * most}\t") and not pattern.search("x" * (most + 1))


@pytest.mark.integration
@ON_SQLITE
def test_the_document_is_served_to_anyone_as_openapi_json(client: FlaskClient) -> None:
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OPENAPI_MEDIA_TYPE
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.get_json(force=True) == DOCUMENT


def _documented_path(rule: str) -> str:
    """A Flask rule (``/v1/comments/<id:comment_id>``) written as an OpenAPI path."""
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


@pytest.mark.integration
@ON_SQLITE
def test_every_route_is_documented_and_every_documented_operation_is_routed(app: Flask) -> None:
    routed = {
        (_documented_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(DOCUMENTED_PREFIXES)
        for method in (rule.methods or set()) - IMPLICIT_METHODS
    }
    documented = {
        (path, method)
        for path, operations in DOCUMENT["paths"].items()
        for method in operations
        if method in HTTP_METHODS
    }
    assert routed == documented


def _seed(client: FlaskClient, services: Services) -> None:
    """Something for each documented lookup to find: comments of every status (ids 1-4),
    a finished training run and a shadow model's verdicts."""
    ids = []
    for name in ("Ann", "Bo", "Cy", "Di"):
        response = client.post(
            "/v1/comments",
            json={"name": name, "email": f"{name}@news.example", "comment": "Hi", "thread": THREAD},
        )
        assert response.status_code == 202
        ids.append(response.get_json()["id"])
    outcomes = [CommentStatus.APPROVED, CommentStatus.FLAGGED, CommentStatus.REJECTED]
    verdicts = {
        comment_id: VerdictRecord(0.5, 0.1, ['"hi" +0.5 toward spam'], "seed", outcome, "seed")
        for comment_id, outcome in zip(ids, outcomes, strict=False)
    }
    with services.sessions() as session:
        record_verdicts(session, verdicts)
        session.add(TrainingRun(trigger=Trigger.CLI, status=RunStatus.FAILED, error="no labels yet"))
        session.add(
            ShadowVerdict(
                comment_id=ids[0],
                model_version="shadow-1",
                spam=0.9,
                abuse=0.0,
                outcome=CommentStatus.FLAGGED,
                live_outcome=CommentStatus.APPROVED,
            )
        )
        session.commit()


@pytest.fixture
def api_schema(app: Flask, client: FlaskClient, services: Services) -> OpenApiSchema:
    """The served document, loaded by schemathesis to call ``app`` in-process with an admin
    token, against a database with something in it."""
    _seed(client, services)
    with services.sessions() as session:
        token = create_token(session, "Conformance", admin=True)
        session.commit()
    # A scheme the document does not name would send no token, and every moderator call would
    # be checked only as far as its 401.
    assert DOCUMENT["components"]["securitySchemes"][TOKEN_SCHEME]["scheme"] == "bearer"
    config = SchemathesisConfig.from_dict({"auth": {"openapi": {TOKEN_SCHEME: {"bearer": token}}}})
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", app, config=config)
    schema.hook("filter_failure")(_refused_by_rules_in_words)
    schema.hook("map_query")(_integers_as_written)
    return schema


def _integers_as_written(context: HookContext, query: dict[str, Any] | None) -> dict[str, Any] | None:
    """The query with integral floats written as integers are: ``300.0`` is an integer to JSON
    Schema, and schemathesis sends it so, but no client writes a page number that way."""
    if not query:
        return query
    return {
        name: int(value) if isinstance(value, float) and value.is_integer() else value
        for name, value in query.items()
    }


def _problems(case: Case, response: Response) -> list[str]:
    """What a 422 says is wrong, field by field; a form post's page, which speaks to the
    commenter, is asked again as JSON to learn it."""
    if response.headers.get("content-type", [""])[0].startswith("application/json"):
        return list(response.json().get("fields", {}).values())
    answer = case.operation.schema.app.test_client().post(case.formatted_path, json=dict(case.body))
    return list(answer.get_json().get("fields", {}).values())


def _refused_by_rules_in_words(
    context: HookContext, failure: Failure, case: Case, response: Response
) -> bool:
    """False (drop it) for a schema-valid request refused only by ``RULES_IN_WORDS``."""
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 422:
        return True
    problems = _problems(case, response)
    return not problems or not all(
        any(rule.match(problem) for rule in RULES_IN_WORDS) for problem in problems
    )


conformance = schemathesis.pytest.from_fixture("api_schema")


# The same cases on every run (derandomize), so that a run fails for what a change did, not for
# what chance found; a handful per operation and kind of input keeps the run under a minute.
# One database: what each one stores and refuses is the storage tests' to show, on both.
@pytest.mark.integration
@ON_SQLITE
@conformance.parametrize()
@settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_as_its_document_says(case: Case) -> None:
    case.call_and_validate()
