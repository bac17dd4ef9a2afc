"""Metadata features measure the shape of a comment, with fixed scales."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.features import FEATURE_NAMES, MetadataFeatures, describe, measure
from models.records import CommentText


def raw(comment: CommentText) -> dict[str, float]:
    return dict(zip(FEATURE_NAMES, measure(comment), strict=True))


def test_links_and_domains() -> None:
    values = raw(CommentText("see http://a.com/x http://a.com/y and b.ru"))
    assert values["links"] == 3
    assert values["link_domains"] == 2


@pytest.mark.parametrize(
    ("author", "expected"),
    [("Jane", 0.0), ("cheap-pills.ru", 1.0), ("Best SEO http://seo.example", 1.0), ("me@spam.com", 1.0)],
)
def test_author_link(author: str, expected: float) -> None:
    assert raw(CommentText("hello", author=author))["author_link"] == expected


def test_website_field() -> None:
    assert raw(CommentText("hi", url="http://x.com"))["website"] == 1.0
    assert raw(CommentText("hi"))["website"] == 0.0


def test_capitals_share_needs_enough_letters() -> None:
    assert raw(CommentText("OK"))["capitals"] == 0.0
    assert raw(CommentText("SHOUTING"))["capitals"] == 1.0  # eight letters are enough
    assert raw(CommentText("SHOUTED"))["capitals"] == 0.0
    assert raw(CommentText("THIS IS ALL SHOUTING"))["capitals"] == 1.0
    assert raw(CommentText("Half CAPS half"))["capitals"] == pytest.approx(5 / 12)


def test_repeated_punctuation_and_runs() -> None:
    values = raw(CommentText("what??? no!!!! really!?"))
    assert values["punctuation_runs"] == 2
    assert values["longest_run"] == 4
    assert raw(CommentText("good"))["longest_run"] == 2


def test_digits_count_only_real_numbers() -> None:
    assert raw(CommentText("v1agra"))["digits"] == 0
    assert raw(CommentText("call 555 123 4567 now"))["digits"] == 10
    assert raw(CommentText("call 555 123 4567 now"))["phone_numbers"] == 1
    assert raw(CommentText("it cost 20 dollars"))["phone_numbers"] == 0
    assert raw(CommentText("call 5551234"))["phone_numbers"] == 1  # seven digits are enough
    assert raw(CommentText("call 555123"))["phone_numbers"] == 0


def test_transform_is_stateless_and_scaled() -> None:
    comments = [CommentText("plain text"), CommentText("x" * 1000 + " http://a.com")]
    matrix = MetadataFeatures().transform(comments)
    assert matrix.shape == (2, len(FEATURE_NAMES))
    length = list(FEATURE_NAMES).index("length")
    # Only the part beyond a long comment counts: ordinary lengths contribute nothing.
    assert matrix[0, length] == 0.0
    assert matrix[1, length] == pytest.approx(math.log(1013 / 500))
    assert np.array_equal(MetadataFeatures().fit(comments).transform(comments), matrix)
    assert list(MetadataFeatures().get_feature_names_out()) == list(FEATURE_NAMES)


def test_only_runs_of_three_or_more_count_toward_the_longest_run() -> None:
    matrix = MetadataFeatures().transform([CommentText("good"), CommentText("nooo!!!!")])
    longest = list(FEATURE_NAMES).index("longest_run")
    assert matrix[0, longest] == 0.0
    assert matrix[1, longest] == pytest.approx(math.log1p(2))


def test_transform_accepts_strings_and_mappings() -> None:
    matrix = MetadataFeatures().transform(["http://a.com", {"text": "hi", "author": "x.ru"}])
    assert matrix.shape == (2, len(FEATURE_NAMES))


def test_descriptions_are_readable() -> None:
    names = list(FEATURE_NAMES)
    assert describe(names.index("links"), 3.0) == "3 links"
    assert describe(names.index("links"), 1.0) == "1 link"
    assert describe(names.index("capitals"), 0.62) == "62% capital letters"
