"""Migration 0005 leaves at most one open retraining run and keeps it that way."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from service.db import alembic_config, make_engine

INSERT_RUN = text(
    "INSERT INTO training_runs (trigger, status, requested_at, labels_until) "
    "VALUES ('api', :status, '2026-11-28 06:00:00', '2026-11-28 06:00:00')"
)


def test_0005_closes_all_open_runs_but_the_oldest_and_refuses_another(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    config = alembic_config(url)
    command.upgrade(config, "0004")
    engine = make_engine(url)
    with engine.begin() as connection:
        for status in ("succeeded", "running", "queued", "queued"):
            connection.execute(INSERT_RUN, {"status": status})
    command.upgrade(config, "0005")
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, status, error IS NOT NULL FROM training_runs ORDER BY id"))
        assert rows.all() == [(1, "succeeded", 0), (2, "running", 0), (3, "failed", 1), (4, "failed", 1)]
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(INSERT_RUN, {"status": "queued"})
    command.downgrade(config, "0004")
    with engine.begin() as connection:
        connection.execute(INSERT_RUN, {"status": "queued"})
    engine.dispose()
