"""Migrations that move data: 0004 hands waiting comments to the outbox and folds receipts into the
comment row; 0005 leaves at most one open retraining run and keeps it that way; 0007 starts
the tokens there are at no sign-outs; 0008 makes them plain moderators' tokens, keeping who
decided each label; 0009 adds the webhook outbox and drops it cleanly; 0010 adds and drops a
column of comments in place; 0011 adds the flood counters; 0012 drops a column of the
tokens in place; 0013 takes the seconds taken to post out of erased comments' reasons; 0015
clears their earlier notes, seconds and author-quoting verdict reasons; 0016 makes webhook
message ids unique. And
the migrations together make
exactly the schema the code declares, and a run cut short leaves nothing behind."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command, op
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from service.db import alembic_config, empty_schema, make_engine, upgrade
from service.tables import Base
from tests.conftest import POSTGRES_URL, _postgres_answers, require_service

ROOT = Path(__file__).resolve().parents[2]

INSERT_RUN = text(
    "INSERT INTO training_runs (trigger, status, requested_at, labels_until) "
    "VALUES ('api', :status, '2026-11-28 06:00:00', '2026-11-28 06:00:00')"
)


INSERT_COMMENT = text(
    "INSERT INTO comments (thread, name, email_ciphertext, email_digest, body, status, "
    "created_at, updated_at) VALUES ('/t', 'Ann', x'00', x'00', 'Hi', :status, "
    "'2026-11-28 06:00:00', '2026-11-28 06:00:00')"
)

INSERT_TOKEN = (
    "INSERT INTO moderator_tokens (name, token_digest, created_at) VALUES ('Mo', 'd', '2026-11-28')"
)


def _database_at(tmp_path: Path, revision: str) -> tuple[Config, Engine]:
    """A new SQLite database migrated up to ``revision``, its Alembic config and an engine on it."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    config = alembic_config(url)
    command.upgrade(config, revision)
    return config, make_engine(url)


def test_0004_upgrade_and_downgrade_keep_waiting_comments_and_receipts(tmp_path: Path) -> None:
    config, engine = _database_at(tmp_path, "0003")
    with engine.begin() as connection:
        for status in ("received", "approved"):
            connection.execute(INSERT_COMMENT, {"status": status})
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


def test_0005_closes_all_open_runs_but_the_oldest_and_refuses_another(tmp_path: Path) -> None:
    config, engine = _database_at(tmp_path, "0004")
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


def test_0007_counts_sign_outs_from_zero_for_the_tokens_there_are(tmp_path: Path) -> None:
    config, engine = _database_at(tmp_path, "0006")
    with engine.begin() as connection:
        connection.execute(text(INSERT_TOKEN))
    command.upgrade(config, "0007")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT name, sign_outs FROM moderator_tokens")).all() == [("Mo", 0)]
    command.downgrade(config, "0006")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT name FROM moderator_tokens")).all() == [("Mo",)]
    engine.dispose()


def _token_with_a_label(engine: Engine) -> None:
    """One token, and one comment whose label that token's moderator decided."""
    with engine.begin() as connection:
        connection.execute(text(INSERT_TOKEN))
        connection.execute(
            text(
                "INSERT INTO comments (thread, name, email_ciphertext, email_digest, body, status, "
                "created_at, updated_at) VALUES ('/a', 'Ann', x'01', x'02', 'Hi', 'approved', "
                "'2026-11-28', '2026-11-28')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO labels (comment_id, spam, abuse, reason, moderator_id, decided_at) "
                "VALUES (1, 0, 0, 'other', 1, '2026-11-28')"
            )
        )


def _migrate(config: Config, engine: Engine, revision: str) -> list[Any]:
    """Up or down to ``revision`` on the service's own connection, as `moderation migrate` runs
    (foreign keys enforced); returns each label's moderator afterwards."""
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        current = MigrationContext.configure(connection).get_current_revision() or ""
        (command.upgrade if revision > current else command.downgrade)(config, revision)
    with engine.connect() as connection:
        return [row[0] for row in connection.execute(text("SELECT moderator_id FROM labels"))]


def test_0008_leaves_the_tokens_there_are_plain_and_keeps_who_decided_each_label(tmp_path: Path) -> None:
    config, engine = _database_at(tmp_path, "0007")
    _token_with_a_label(engine)
    assert _migrate(config, engine, "0008") == [1]
    with engine.connect() as connection:
        assert connection.execute(text("SELECT name, admin FROM moderator_tokens")).all() == [("Mo", 0)]
    assert _migrate(config, engine, "0007") == [1]
    assert _migrate(config, engine, "0006") == [1]
    engine.dispose()


def _comment_with_an_event(engine: Engine) -> None:
    """One comment, and a webhook event of it (which its foreign key deletes with it)."""
    with engine.begin() as connection:
        connection.execute(INSERT_COMMENT, {"status": "approved"})
        connection.execute(
            text(
                "INSERT INTO webhook_events (message_id, comment_id, event_type, created_at, attempts, "
                "next_attempt_at) VALUES ('msg_1', 1, 'comment.approved', '2026-11-29', 0, '2026-11-29')"
            )
        )


def test_0009_adds_the_webhook_outbox_and_takes_it_away_again(tmp_path: Path) -> None:
    config, engine = _database_at(tmp_path, "0009")
    _comment_with_an_event(engine)
    command.downgrade(config, "0008")
    with engine.connect() as connection:
        tables = {row[0] for row in connection.execute(text("SELECT name FROM sqlite_master"))}
        assert "webhook_events" not in tables
        assert connection.execute(text("SELECT name FROM comments")).scalars().all() == ["Ann"]
    command.upgrade(config, "0009")
    engine.dispose()


def test_0010_adds_the_time_to_post_in_place_keeping_what_points_at_comments(tmp_path: Path) -> None:
    config, engine = _database_at(tmp_path, "0009")
    _comment_with_an_event(engine)
    _migrate(config, engine, "0010")  # on the service's connection: foreign keys enforced
    with engine.begin() as connection:
        assert connection.execute(text("SELECT seconds_to_submit FROM comments")).scalars().all() == [None]
        connection.execute(text("UPDATE comments SET seconds_to_submit = 2.5"))
    _migrate(config, engine, "0009")
    with engine.connect() as connection:
        # A rebuilt comments table would have taken the event with it (ON DELETE CASCADE).
        assert connection.execute(text("SELECT comment_id FROM webhook_events")).scalars().all() == [1]
        columns = [row[1] for row in connection.execute(text("PRAGMA table_info(comments)"))]
        assert "seconds_to_submit" not in columns
    engine.dispose()


def test_0011_adds_the_flood_counters_and_takes_them_away_again(tmp_path: Path) -> None:
    config, engine = _database_at(tmp_path, "0011")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO flood_counters VALUES (x'00', 1, 1)"))
    command.downgrade(config, "0010")
    with engine.connect() as connection:
        tables = {row[0] for row in connection.execute(text("SELECT name FROM sqlite_master"))}
        assert "flood_counters" not in tables
    command.upgrade(config, "0011")
    engine.dispose()


def test_0012_drops_the_unused_column_of_the_tokens_keeping_who_decided_each_label(tmp_path: Path) -> None:
    config, engine = _database_at(tmp_path, "0011")
    _token_with_a_label(engine)
    assert _migrate(config, engine, "0012") == [1]  # foreign keys enforced: a rebuild would lose it
    with engine.connect() as connection:
        columns = [row[1] for row in connection.execute(text("PRAGMA table_info(moderator_tokens)"))]
        assert "last_used_at" not in columns and "sign_outs" in columns
    assert _migrate(config, engine, "0011") == [1]
    engine.dispose()


def test_0013_takes_the_seconds_out_of_the_reasons_of_erased_comments_only(tmp_path: Path) -> None:
    config, engine = _database_at(tmp_path, "0012")
    reasons = {
        "erased": "posted 1.2 s after its form was shown, under 3 s",
        "kept": "posted 0.4 s after its form was shown, under 2.5 s",
        "other": "spam 0.97 at or above reject threshold 0.95",
    }
    with engine.begin() as connection:
        for name, reason in reasons.items():
            comment_id = connection.execute(INSERT_COMMENT, {"status": "flagged"}).lastrowid
            digest = b"" if name != "kept" else b"\x01"
            connection.execute(
                text("UPDATE comments SET email_digest = :digest WHERE id = :id"),
                {"digest": digest, "id": comment_id},
            )
            connection.execute(
                text(
                    "INSERT INTO audit_events (comment_id, action, actor, reason, created_at) "
                    "VALUES (:id, 'classified', 'model:m', :reason, '2026-11-28 06:00:00')"
                ),
                {"id": comment_id, "reason": reason},
            )
    command.upgrade(config, "0013")
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT reason FROM audit_events ORDER BY id")).scalars().all()
    assert stored == ["posted under 3 s after its form was shown", reasons["kept"], reasons["other"]]
    command.downgrade(config, "0012")
    engine.dispose()


@pytest.mark.integration
def test_the_migrated_schema_is_the_one_the_code_declares(database_url: str) -> None:
    """Every table, column, index and key of service/tables.py, made by the migrations alone.

    Indexes on expressions are left out: SQLite does not reflect them, and PostgreSQL
    gives their expressions back in its own spelling, which never equals the declared text.
    """
    on_expressions = {
        index.name
        for table in Base.metadata.tables.values()
        for index in table.indexes
        if any(not isinstance(part, Column) for part in index.expressions)
    }
    engine = make_engine(database_url)
    with engine.connect() as connection, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # alembic's notes on the indexes it cannot compare
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert on_expressions, "the review queue's ranking indexes are on expressions"
    assert [
        difference
        for difference in differences
        if not (difference[0] in {"add_index", "remove_index"} and difference[1].name in on_expressions)
    ] == []


def _index_definitions(engine: Engine, names: set[str]) -> dict[str, str]:
    """Each named index's definition as the database itself keeps it, the schema named the same."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))
        else:
            rows = connection.execute(
                text(
                    "SELECT indexname, replace(indexdef, current_schema() || '.', '') FROM pg_indexes "
                    "WHERE schemaname = current_schema()"
                )
            )
        return {name: definition for name, definition in rows if name in names}


def test_indexes_on_expressions_and_partial_ones_are_the_declared_ones(
    database_url: str, tmp_path: Path
) -> None:
    """What the test above cannot compare, compared by the database's own text of each
    index: the migrated schema's against one made from service/tables.py."""
    special = {
        index.name
        for table in Base.metadata.tables.values()
        for index in table.indexes
        if index.name
        and (
            any(not isinstance(part, Column) for part in index.expressions)
            or index.dialect_options["sqlite"]["where"] is not None
            or index.dialect_options["postgresql"]["where"] is not None
        )
    }
    assert {"ix_comments_status_rank", "uq_training_runs_open"} <= special
    migrated = make_engine(database_url)
    kept = _index_definitions(migrated, special)
    migrated.dispose()
    with _empty_database(migrated.dialect.name, tmp_path) as url:
        declared = make_engine(url)
        Base.metadata.create_all(declared)
        expected = _index_definitions(declared, special)
        declared.dispose()
    assert kept == expected and set(kept) == special


_MIGRATE_AT = """
import sys, time
from service.db import make_engine, upgrade
engine = make_engine(sys.argv[1])
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
upgrade(engine)
"""


@contextmanager
def _empty_database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    require_service(_postgres_answers(), f"PostgreSQL at {POSTGRES_URL}")
    with empty_schema(POSTGRES_URL, f"test_race_{uuid.uuid4().hex[:12]}") as url:
        yield url


def test_0015_clears_what_an_erasure_now_takes_from_comments_erased_before(tmp_path: Path) -> None:
    config, engine = _database_at(tmp_path, "0014")
    quoting, plain = 'author name "casino" +0.9 toward spam', '"free" +1.8 toward spam'
    event = text(
        "INSERT INTO audit_events (comment_id, action, actor, note, created_at) "
        "VALUES (:id, :action, 'moderator:Mo', :note, '2026-11-28 06:00:00')"
    )
    with engine.begin() as connection:
        ids = {}
        for name, digest in (("erased", b""), ("kept", b"\x01")):
            ids[name] = comment_id = connection.execute(INSERT_COMMENT, {"status": "flagged"}).lastrowid
            connection.execute(
                text("UPDATE comments SET email_digest = :digest, seconds_to_submit = 2.5 WHERE id = :id"),
                {"digest": digest, "id": comment_id},
            )
            connection.execute(
                text(
                    "INSERT INTO verdicts (comment_id, spam, abuse, reasons, model_version, outcome, "
                    "created_at) VALUES (:id, 0.9, 0.1, :reasons, 'm', 'flagged', '2026-11-28 06:00:00')"
                ),
                {"id": comment_id, "reasons": json.dumps([quoting, plain])},
            )
            connection.execute(event, {"id": comment_id, "action": "note", "note": "Ann again"})
        connection.execute(event, {"id": ids["erased"], "action": "personal_data_erased", "note": None})
        connection.execute(event, {"id": ids["erased"], "action": "approve", "note": "after the erasure"})
    command.upgrade(config, "0015")
    with engine.connect() as connection:
        seconds = dict(connection.execute(text("SELECT id, seconds_to_submit FROM comments")).all())
        notes = connection.execute(text("SELECT comment_id, note FROM audit_events ORDER BY id")).all()
        reasons = dict(connection.execute(text("SELECT comment_id, reasons FROM verdicts")).all())
    assert seconds == {ids["erased"]: None, ids["kept"]: 2.5}
    assert notes == [
        (ids["erased"], None),
        (ids["kept"], "Ann again"),
        (ids["erased"], None),
        (ids["erased"], "after the erasure"),
    ]
    assert json.loads(reasons[ids["erased"]]) == [plain]
    assert json.loads(reasons[ids["kept"]]) == [quoting, plain]
    command.downgrade(config, "0014")
    engine.dispose()


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_processes_migrating_a_new_database_at_once_take_turns(kind: str, tmp_path: Path) -> None:
    # Two containers running `moderation init` together: without a lock both found no
    # schema, and one failed creating it (5 times in 5 on each database).
    with _empty_database(kind, tmp_path) as url:
        start = time.time() + 2  # both processes have imported the service by then
        runs = [
            subprocess.Popen(
                [sys.executable, "-c", _MIGRATE_AT, url, str(start)],
                cwd=ROOT,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        errors = [run.communicate(timeout=120)[1] for run in runs]
        assert [run.returncode for run in runs] == [0, 0], errors
        engine = make_engine(url)
        with engine.connect() as connection:
            assert (
                MigrationContext.configure(connection).get_current_revision()
                == ScriptDirectory.from_config(alembic_config(url)).get_current_head()
            )
        engine.dispose()


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_migration_failing_half_way_leaves_nothing_behind_and_runs_again(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 0004 creates its table, then copies rows into it; a failure in between (a kill, a
    # full disk) must not leave the table behind under revision 0003.
    with _empty_database(kind, tmp_path) as url:
        command.upgrade(alembic_config(url), "0003")
        engine = make_engine(url)
        execute = op.execute

        def fails_on_the_copy(statement: Any, *args: Any, **kwargs: Any) -> Any:
            if "INSERT INTO classify_outbox" in str(statement):
                raise RuntimeError("the migration was cut short")
            return execute(statement, *args, **kwargs)

        with monkeypatch.context() as patched:
            patched.setattr(op, "execute", fails_on_the_copy)
            with pytest.raises(RuntimeError, match="cut short"):
                upgrade(engine)
        with engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == "0003"
            assert not inspect(connection).has_table("classify_outbox")
        upgrade(engine)  # again, in full
        with engine.connect() as connection:
            assert inspect(connection).has_table("classify_outbox")
        engine.dispose()
