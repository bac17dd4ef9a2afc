"""bench/intake.py's check that every 202 is stored with its job, on a small SQLite file."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from bench import intake


def test_answered_ids_without_a_comment_or_an_outbox_entry_are_counted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    engine = create_engine(url)
    with engine.begin() as db:
        db.execute(text("CREATE TABLE comments (id INTEGER PRIMARY KEY)"))
        db.execute(text("CREATE TABLE classify_outbox (comment_id INTEGER PRIMARY KEY)"))
        db.execute(text("INSERT INTO comments (id) VALUES (1), (2), (3), (5)"))
        db.execute(text("INSERT INTO classify_outbox (comment_id) VALUES (1), (3), (5)"))
    engine.dispose()
    # 4 was answered and never stored; 2 was stored without its job; the chunks are of two.
    missing = intake.answered_but_missing(url, [1, 2, 3, 4, 5], chunk=2)
    assert missing == {
        "answered_ids_checked": 5,
        "answered_without_comment": 1,
        "answered_without_outbox_entry": 2,
    }
