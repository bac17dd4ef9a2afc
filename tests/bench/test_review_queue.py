"""The review-queue benchmark times the moderators' own page on the database it filled."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench import review_queue
from bench.all import render_review_queue
from service.db import make_engine

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_moderators_pages_are_timed_first_and_deep_with_readable_emails(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    engine = make_engine(database_url)
    app, client = review_queue.moderators_client(database_url, tmp_path)
    try:
        review_queue.fill(engine, 3000)
        pages = review_queue.measure_pages(engine, app, client, argparse.Namespace(deep_page=5, repeats=2))
        shown = client.get("/moderate/?status=&sort=age").get_data(as_text=True)
    finally:
        app.extensions["moderation"].close()
        engine.dispose()
    assert [(case["case"], case["page"]) for case in pages["cases"]] == [
        (f"{label}, page {page}", page)
        for label, _status, _sort in review_queue.PAGE_CASES
        for page in (1, 5)
    ]
    for case in pages["cases"]:
        assert case["rows"] == 20  # a full page of comments, each an <article>
        assert 0 < case["sql_median_ms"] < case["median_ms"]
    assert "r***@example.org" in shown and "unavailable" not in shown  # decrypted, then masked
    settings = {"repeats": 2}
    lines, _targets = render_review_queue({"cases": [], "settings": settings, "pages": pages})
    assert any(line.startswith("| flagged, sort=queue (default), page 5 | 20 |") for line in lines)
