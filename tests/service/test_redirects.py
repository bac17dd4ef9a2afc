"""Form posts send readers back only to the site's own pages."""

from __future__ import annotations

import pytest

from service.redirects import safe_target, with_notice

ALLOWED = ("news.example",)


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        (["https://news.example/a/1"], "https://news.example/a/1"),
        ([None, "https://news.example/a/1"], "https://news.example/a/1"),
        (["https://evil.example/phish"], None),
        (["https://news.example.evil.example/"], None),
        (["javascript:alert(1)"], None),
        (["//news.example/a"], None),
        # Browsers read the backslash as "/" and go to evil.example; urlsplit sees news.example.
        (["https://evil.example\\@news.example/"], None),
        (["https://evil.example\\@news.example/", "https://news.example/b"], "https://news.example/b"),
        (["https://news.example/a\x00b"], None),
        (["https://evil.example/", "https://news.example/b"], "https://news.example/b"),
        ([], None),
    ],
)
def test_only_allowed_hosts(candidates: list[str | None], expected: str | None) -> None:
    assert safe_target(candidates, ALLOWED) == expected


def test_notice_is_added_and_the_page_query_kept() -> None:
    url = with_notice("https://news.example/a?page=2#top", 41)
    assert url == "https://news.example/a?page=2&comment_status=awaiting-moderation&comment_id=41#comments"
