"""Migration 0004 hands waiting comments to the outbox and folds receipts into the comment row."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import text

from service.db import alembic_config, make_engine


def test_0004_upgrade_and_downgrade_keep_waiting_comments_and_receipts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    config = alembic_config(url)
    command.upgrade(config, "0003")
    engine = make_engine(url)
    with engine.begin() as connection:
        for status in ("received", "approved"):
            connection.execute(
                text(
                    "INSERT INTO comments (thread, name, email_ciphertext, email_digest, body, status, "
                    "created_at, updated_at) VALUES ('/t', 'Ann', x'00', x'00', 'Hi', :status, "
                    "'2026-11-28 06:00:00', '2026-11-28 06:00:00')"
                ),
                {"status": status},
            )
        connection.execute(
            text(
                "INSERT INTO audit_events (comment_id, action, actor, to_status, created_at) "
                "SELECT id, 'received', 'intake', 'received', created_at FROM comments"
            )
        )
    command.upgrade(config, "0004")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT comment_id FROM classify_outbox")).scalars().all() == [1]
        assert connection.execute(text("SELECT count(*) FROM audit_events")).scalar() == 0
    command.downgrade(config, "0003")
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT comment_id, action FROM audit_events ORDER BY comment_id"))
        assert rows.all() == [(1, "received"), (2, "received")]
    engine.dispose()
