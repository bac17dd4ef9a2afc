"""Reading JSON whatever a document holds: every failure a ValueError that says why."""

from __future__ import annotations

import pytest

from models.records import CommentText, as_comment, parse_json


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{", r"^not valid JSON \(Expecting property name enclosed in double quotes at character 2\)$"),
        (b"\xff\xfe", r"not valid JSON \(Expecting value"),  # read as UTF-16 by its byte order mark
        (b'{"a": "\xff"}', r"not valid JSON \(it is not UTF-8 text\)"),
        ("[" * 100_000, r"not valid JSON \(it nests arrays or objects too deeply\)"),
        ("1" * 5000, r"not readable JSON \(it holds a number longer than 4300 digits\)"),
    ],
)
def test_parse_json_says_why_a_document_is_refused(document: str | bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_json(document)


def test_parse_json_reads_a_document() -> None:
    assert parse_json(b'{"a": [1, 2.5, "\\u00e9"]}') == {"a": [1, 2.5, "é"]}


def test_as_comment_reads_a_plain_string_as_the_text() -> None:
    assert as_comment("hello") == CommentText("hello")


def test_as_comment_reads_missing_or_null_fields_as_empty() -> None:
    assert as_comment({"text": None, "author": None}) == CommentText("", "", "")


def test_as_comment_keeps_an_author_id_of_zero() -> None:
    assert as_comment({"text": "hi", "author": 0}) == CommentText("hi", "0")
