"""The ``moderation`` command's set-up and token commands."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from redis import Redis
from rq import Queue
from sqlalchemy import select

from models import Example, read_examples
from models.registry import SHADOW_FILE, shadow_version
from models.retraining import in_holdout
from service.auth import authenticate
from service.cli import main
from service.db import make_engine, make_session_factory
from service.embedded_redis import is_running, stop_embedded_redis
from service.tables import Comment, Label, ModeratorToken, WebhookEvent, utcnow
from service.webhook_signing import parse_secret


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A fresh data folder with the seed model trained by ``init``."""
    return {"MODERATION_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": "", "MODEL_DIR": ""}


def test_init_prepares_a_fresh_install_and_is_repeatable(env: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["init"], env=env)
    assert first.exit_code == 0, first.output
    assert "trained seed model" in first.output
    again = runner.invoke(main, ["init"], env=env)
    assert again.exit_code == 0 and "active model" in again.output
    assert (tmp_path / "data" / "secret.key").exists()


def test_init_makes_no_data_folder_when_nothing_is_kept_there(tmp_path: Path) -> None:
    # As in production: key, database and models configured. `init` run from a folder it may
    # not write to (a service's working directory, /) was refused for the data folder alone.
    env = {
        "MODERATION_DATA_DIR": str(tmp_path / "instance"),
        "MODERATION_SECRET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db' / 'moderation.db'}",
        "MODEL_DIR": str(tmp_path / "models"),
    }
    result = CliRunner().invoke(main, ["init"], env=env)
    assert result.exit_code == 0, result.output
    assert "trained seed model" in result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["db", "models"]


def test_model_commands_default_to_the_service_model_folder(env: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["init"], env=env).exit_code == 0
    (version,) = [path.name for path in (tmp_path / "data" / "models").iterdir() if path.name[0].isdigit()]
    listed = runner.invoke(main, ["models", "list"], env=env)
    assert listed.exit_code == 0 and f"* {version}" in listed.output
    scored = runner.invoke(main, ["score"], input='{"text": "Nice photos."}\n', env=env)
    assert scored.exit_code == 0 and json.loads(scored.output)["model_version"] == version
    # Where the settings cannot be read, the option is asked for, as on its own.
    production = runner.invoke(main, ["models", "list"], env={**env, "MODERATION_ENV": "production"})
    assert production.exit_code == 2 and "Missing option '--model'" in production.output


def test_a_model_folder_asked_for_says_which_setting_took_its_default(env: dict[str, str]) -> None:
    runner = CliRunner()
    for command in (["models", "list"], ["score"], ["train", "--data", "labels.jsonl"]):
        result = runner.invoke(main, command, env={**env, "LOG_LEVEL": "verbose"})
        assert result.exit_code == 2, result.output
        assert "no default because the service's settings cannot be read: LOG_LEVEL" in result.output


def test_init_replaces_an_active_model_this_code_cannot_load(env: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["init"], env=env).exit_code == 0
    models = tmp_path / "data" / "models"
    old = (models / "ACTIVE").read_text().strip()
    metadata = json.loads((models / old / "metadata.json").read_text())
    (models / old / "metadata.json").write_text(json.dumps({**metadata, "format": 1}))
    # set_shadow refuses the active version; a registry written before it did may still hold one.
    (models / SHADOW_FILE).write_text(old + "\n")
    result = runner.invoke(main, ["init"], env=env)
    assert result.exit_code == 0, result.output
    assert f"active model {old} cannot be used here" in result.output and "format 1" in result.output
    assert f"shadow model {old} cannot be used here and was dropped" in result.output
    assert (models / "ACTIVE").read_text().strip() != old and shadow_version(models) is None


def test_init_does_not_follow_an_active_pointer_out_of_the_model_folder(
    env: dict[str, str], tmp_path: Path
) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["init"], env=env).exit_code == 0
    models = tmp_path / "data" / "models"
    (models / "ACTIVE").write_text("../elsewhere\n")
    result = runner.invoke(main, ["init"], env=env)
    assert result.exit_code == 0, result.output
    assert "active model ../elsewhere cannot be used here: no model version" in result.output
    assert (models / "ACTIVE").read_text().strip() in os.listdir(models)


def test_create_token_prints_a_token_that_authenticates(env: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["migrate"], env=env).exit_code == 0
    result = runner.invoke(main, ["create-token", "alice"], env=env)
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    sessions = make_session_factory(make_engine(f"sqlite:///{tmp_path / 'data' / 'moderation.db'}"))
    made = runner.invoke(main, ["create-token", "root", "--admin"], env=env)
    assert made.exit_code == 0, made.output
    admin = made.output.strip()
    with sessions() as session:
        alice = authenticate(session, f"Bearer {token}")
        assert alice.name == "alice" and not alice.admin
        assert authenticate(session, f"Bearer {admin}").admin
        stored = session.scalars(select(ModeratorToken.token_digest)).all()
        assert token not in stored and admin not in stored
    revoked = runner.invoke(main, ["revoke-tokens", "alice"], env=env)
    assert revoked.output.strip() == "revoked 1 token(s) of alice"


@pytest.mark.parametrize("redirection", [">&-", ">/dev/full"], ids=["closed", "full-disk"])
def test_create_token_stores_no_token_it_could_not_show(
    env: dict[str, str], tmp_path: Path, redirection: str
) -> None:
    assert CliRunner().invoke(main, ["migrate"], env=env).exit_code == 0
    command = [sys.executable, "-m", "service", "create-token", "alice"]
    shell = ["bash", "-c", f'exec "$@" {redirection}', "bash", *command]
    result = subprocess.run(shell, env={**os.environ, **env}, capture_output=True, check=False)
    assert result.returncode == 1 and result.stderr.decode().startswith("Error: ")
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'moderation.db'}")
    with make_session_factory(engine)() as session:
        assert session.scalars(select(ModeratorToken)).all() == []
    engine.dispose()


def test_revoke_tokens_trims_the_name_as_create_token_does(env: dict[str, str]) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["migrate"], env=env).exit_code == 0
    assert runner.invoke(main, ["create-token", "alice "], env=env).exit_code == 0
    revoked = runner.invoke(main, ["revoke-tokens", " alice"], env=env)
    assert revoked.output.strip() == "revoked 1 token(s) of alice"


def test_create_token_refuses_an_empty_name(env: dict[str, str]) -> None:
    runner = CliRunner()
    runner.invoke(main, ["migrate"], env=env)
    result = runner.invoke(main, ["create-token", "  "], env=env)
    assert result.exit_code == 2 and "moderator name" in result.output


def test_revoke_tokens_refuses_an_empty_name(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["revoke-tokens", "  "], env=env)
    assert result.exit_code == 2 and "a moderator name is required" in result.output


def test_an_unmigrated_or_unreachable_database_is_one_clear_line(env: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner()
    (tmp_path / "data").mkdir()
    sqlite3.connect(tmp_path / "data" / "moderation.db").close()  # there, but never migrated
    unmigrated = runner.invoke(main, ["create-token", "alice"], env=env)
    assert unmigrated.exit_code == 1
    assert unmigrated.output.startswith("Error: the database failed: no such table")
    assert "moderation migrate" in unmigrated.output
    down = {**env, "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none"}
    unreachable = runner.invoke(main, ["revoke-tokens", "alice"], env=down)
    assert unreachable.exit_code == 1 and unreachable.output.startswith("Error: the database failed:")


@pytest.mark.parametrize(
    "arguments",
    [
        ["create-token", "alice"],
        ["revoke-tokens", "alice"],
        ["export-personal-data", "ann@example.com"],
        ["erase-personal-data", "--yes", "ann@example.com"],
        ["export-labels", "--out", "labels.jsonl"],
        ["webhook-retry"],
    ],
)
def test_a_command_run_away_from_the_install_makes_no_new_one(
    arguments: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run from another folder than the service's, the default data folder (`instance`,
    # relative) holds nothing: such a command made an empty database there (and a new key),
    # told the owner to migrate it, and then "erased" a commenter's data from it.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # Unset: the defaults, `instance` in the working folder and a key file there.
    unset = ("MODERATION_DATA_DIR", "DATABASE_URL", "MODEL_DIR", "MODERATION_SECRET_KEY", "WEBHOOK_URL")
    result = CliRunner().invoke(main, arguments, env=dict.fromkeys(unset))
    assert result.exit_code == 1, result.output
    missing = elsewhere / "instance" / "moderation.db"
    assert result.output.startswith(f"Error: no database at {missing} (relative to the working folder")
    assert "MODERATION_DATA_DIR" in result.output
    assert list(elsewhere.iterdir()) == []


def test_redis_down_and_a_path_that_cannot_be_written_are_one_clear_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["migrate"], env=env).exit_code == 0
    down = runner.invoke(main, ["sweep"], env={**env, "REDIS_URL": "redis://127.0.0.1:9/0"})
    assert down.exit_code == 1 and down.output.startswith("Error: Redis failed:")
    not_queued = runner.invoke(main, ["retrain"], env={**env, "REDIS_URL": "redis://127.0.0.1:9/0"})
    assert not_queued.exit_code == 1
    assert not_queued.output.startswith("Error: retraining run 1 is recorded but not queued")
    missing = tmp_path / "no" / "such" / "labels.jsonl"
    result = runner.invoke(main, ["export-labels", "--out", str(missing)], env=env)
    assert result.exit_code == 1 and result.output.startswith(f"Error: {missing}: No such file or directory")


def test_a_burst_worker_that_cannot_reach_redis_fails(env: dict[str, str], model_dir: Path) -> None:
    env = {**env, "MODEL_DIR": str(model_dir), "REDIS_URL": "redis://127.0.0.1:9/0"}
    runner = CliRunner()
    assert runner.invoke(main, ["migrate"], env=env).exit_code == 0
    result = runner.invoke(main, ["worker", "--burst"], env=env)
    assert result.exit_code == 1 and "Error: Redis failed:" in result.output


def test_run_refuses_zero_processes() -> None:
    for option in ("--web-workers", "--workers"):
        result = CliRunner().invoke(main, ["run", option, "0"])
        assert result.exit_code == 2 and "0 is not in the range x>=1" in result.output


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        # 0 let gunicorn pick a port nobody was told of; past 65535 failed in gunicorn, after the set-up.
        ("PORT", "0", "Invalid value for '--port' (env var: 'PORT'): 0 is not in the range 1<=x<=65535"),
        ("PORT", "70000", "Invalid value for '--port' (env var: 'PORT'): 70000 is not in the range"),
        ("WEB_CONCURRENCY", "0", "Invalid value for '--web-workers' (env var: 'WEB_CONCURRENCY')"),
    ],
)
def test_run_names_the_variable_of_a_bad_port_or_web_process_count(
    env: dict[str, str], tmp_path: Path, variable: str, value: str, message: str
) -> None:
    result = CliRunner().invoke(main, ["run"], env={**env, variable: value})
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "data").exists()  # refused before any set-up


def test_missing_production_secret_is_one_clear_line(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["migrate"], env={**env, "MODERATION_ENV": "production"})
    assert result.exit_code == 1
    assert result.output.startswith("Error: production needs MODERATION_SECRET_KEY")


def test_retrain_now_export_labels_and_shadow_commands(
    env: dict[str, str], tmp_path: Path, redis_url: str, queue_name: str
) -> None:
    env = {
        **env,
        "REDIS_URL": redis_url,
        "RETRAIN_QUEUE": f"{queue_name}-retrain",
        "CLASSIFY_QUEUE": queue_name,
    }
    runner = CliRunner()
    assert runner.invoke(main, ["init"], env=env).exit_code == 0
    run = runner.invoke(main, ["retrain", "--now"], env=env)
    assert run.exit_code == 0, run.output
    body = json.loads(run.output)
    assert body["status"] == "succeeded" and body["trigger"] == "cli" and body["labels_used"] == 0
    labels = tmp_path / "labels.jsonl"
    exported = runner.invoke(main, ["export-labels", "--out", str(labels)], env=env)
    assert exported.output.strip() == f"wrote 0 label(s) to {labels}" and labels.exists()
    version = body["candidate_version"]
    assert runner.invoke(main, ["shadow", "set", version], env=env).exit_code == 0
    report = runner.invoke(main, ["shadow", "report"], env=env)
    assert json.loads(report.output) == {
        "model_version": version,
        "comments": 0,
        "unchanged": 0,
        "changed": {},
    }
    # A name neither in the registry nor in any shadow verdict is a mistake, not a report of nothing.
    mistyped = runner.invoke(main, ["shadow", "report", version + "x"], env=env)
    assert mistyped.exit_code == 1
    assert f"no model version '{version}x'" in mistyped.output and "scored no comment" in mistyped.output
    assert runner.invoke(main, ["shadow", "clear"], env=env).output.strip() == "shadow mode off"
    assert "no version in shadow mode" in runner.invoke(main, ["shadow", "report"], env=env).output
    assert json.loads(runner.invoke(main, ["shadow", "report", version], env=env).output)["comments"] == 0


def test_shadow_report_refuses_an_empty_version_instead_of_reporting_the_shadow_one(
    env: dict[str, str], tmp_path: Path
) -> None:
    # As `shadow report "$VERSION"` with VERSION unset: the version in shadow mode was reported.
    runner = CliRunner()
    assert runner.invoke(main, ["migrate"], env=env).exit_code == 0
    models = tmp_path / "data" / "models"
    models.mkdir()
    (models / SHADOW_FILE).write_text("20260101T000000Z-0123abcd\n")
    result = runner.invoke(main, ["shadow", "report", ""], env=env)
    assert result.exit_code == 1 and "Error: no model version '' in " in result.output


@pytest.fixture
def retrain_env(env: dict[str, str], redis_url: str, queue_name: str) -> dict[str, str]:
    """The commands' environment with Redis and a retraining queue of the test's own."""
    return {**env, "REDIS_URL": redis_url, "RETRAIN_QUEUE": f"{queue_name}-retrain"}


def _initialised(env: dict[str, str]) -> CliRunner:
    """A runner, after `moderation init` (migrations and the seed model) has run in ``env``."""
    runner = CliRunner()
    assert runner.invoke(main, ["init"], env=env).exit_code == 0
    return runner


def test_a_retrain_now_that_fails_before_training_leaves_its_run_to_the_workers(
    retrain_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    env = retrain_env
    runner = CliRunner()
    assert runner.invoke(main, ["migrate"], env=env).exit_code == 0
    # No active model yet: this process cannot load one to train beside, and stops
    # before it records a run.
    failed = runner.invoke(main, ["retrain", "--now"], env=env)
    assert failed.exit_code == 1
    queue = Queue(f"{queue_name}-retrain", connection=Redis.from_url(redis_url))
    assert queue.job_ids == []
    queued = runner.invoke(main, ["retrain"], env=env)
    assert queued.exit_code == 0 and json.loads(queued.output)["id"] == 1
    assert queue.job_ids == [f"{queue_name}-retrain-1"]


def test_a_retrain_now_whose_run_a_worker_started_first_says_so(
    retrain_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = retrain_env
    runner = _initialised(env)
    # What `retrain_model` answers for a run no longer queued: a worker has started it.
    monkeypatch.setattr("worker.training.retrain_model", lambda run_id: "skipped")
    result = runner.invoke(main, ["retrain", "--now"], env=env)
    assert result.exit_code == 0
    assert "run 1 was started by a worker first: it trains there" in result.stderr
    assert json.loads(result.stdout)["id"] == 1


def test_a_retrain_now_that_cannot_start_its_run_leaves_it_to_the_workers(
    retrain_env: dict[str, str], redis_url: str, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = retrain_env
    runner = _initialised(env)

    def database_away(run_id: int) -> str:
        raise RuntimeError("the database went away before the run started")

    monkeypatch.setattr("worker.training.retrain_model", database_away)
    assert runner.invoke(main, ["retrain", "--now"], env=env).exit_code == 1
    monkeypatch.undo()
    queued = runner.invoke(main, ["retrain"], env=env)
    assert queued.exit_code == 0 and json.loads(queued.output)["status"] == "queued"
    queue = Queue(f"{queue_name}-retrain", connection=Redis.from_url(redis_url))
    assert queue.job_ids == [f"{queue_name}-retrain-1"]


def test_export_labels_can_leave_out_the_part_retraining_judges_on(
    env: dict[str, str], tmp_path: Path
) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["migrate"], env=env).exit_code == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'moderation.db'}")
    texts = [f"the harbour works, part {n}, ran late" for n in range(40)]
    with make_session_factory(engine)() as session:
        for text in texts:
            comment = Comment(thread="/t", name="Ann", email_ciphertext=b"x", email_digest=b"x", body=text)
            session.add(comment)
            session.flush()
            session.add(Label(comment_id=comment.id, spam=False, abuse=False))
        session.commit()
    engine.dispose()
    held_out = [text for text in texts if in_holdout(Example(text))]
    assert 0 < len(held_out) < len(texts)
    every, part = tmp_path / "every.jsonl", tmp_path / "part.jsonl"
    assert runner.invoke(main, ["export-labels", "--out", str(every)], env=env).exit_code == 0
    result = runner.invoke(main, ["export-labels", "--out", str(part), "--training-part"], env=env)
    kept = len(texts) - len(held_out)
    assert result.output.strip() == f"wrote {kept} label(s) to {part} ({len(held_out)} held out)"
    assert [example.text for example in read_examples(every)] == texts
    assert [example.text for example in read_examples(part)] == [t for t in texts if t not in held_out]
    # A file train would refuse to read is not written.
    unread = tmp_path / "labels.txt"
    refused = runner.invoke(main, ["export-labels", "--out", str(unread)], env=env)
    assert refused.exit_code == 2 and "unknown format; use .jsonl or .csv" in refused.output
    assert not unread.exists()


def test_sweep_needs_no_model(env: dict[str, str], redis_url: str, queue_name: str) -> None:
    env = {**env, "REDIS_URL": redis_url, "CLASSIFY_QUEUE": queue_name}
    runner = CliRunner()
    assert runner.invoke(main, ["migrate"], env=env).exit_code == 0
    result = runner.invoke(main, ["sweep"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "queued 0 comment(s) again"


def test_webhook_secret_and_retry(env: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(main, ["webhook-secret"], env=env)
    assert made.exit_code == 0 and len(parse_secret(made.output.strip())) == 32
    assert runner.invoke(main, ["webhook-secret"], env=env).output != made.output

    assert runner.invoke(main, ["migrate"], env=env).exit_code == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'moderation.db'}")
    with make_session_factory(engine)() as session:
        session.add(Comment(thread="/t", name="Ann", email_ciphertext=b"x", email_digest=b"x", body="Hi"))
        session.flush()
        gone = utcnow()
        for failed_at in (gone, None):
            session.add(
                WebhookEvent(
                    message_id=f"msg_{failed_at}",
                    comment_id=1,
                    event_type="comment.approved",
                    attempts=8,
                    failed_at=failed_at,
                    last_error="HTTP 500",
                )
            )
        session.commit()
    retried = runner.invoke(main, ["webhook-retry"], env=env)
    assert retried.output.strip() == "1 webhook event(s) will be sent again"
    with make_session_factory(engine)() as session:
        events = session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
        assert [(e.attempts, e.failed_at, e.last_error) for e in events] == [
            (0, None, None),
            (8, None, "HTTP 500"),
        ]
    engine.dispose()


def test_a_retrain_now_on_the_embedded_redis_stops_it_when_done(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # The worker context starts the embedded Redis when REDIS_URL is unset; built before
    # `scoped_redis_url`, it left that finding Redis running, not counting it as its own,
    # and the redis-server ran on after the command exited.
    data = tmp_path_factory.mktemp("rn") / "data"  # short: a Unix socket path is limited
    env = {"MODERATION_DATA_DIR": str(data), "DATABASE_URL": "", "MODEL_DIR": "", "REDIS_URL": ""}
    runner = _initialised(env)
    assert not is_running(data)
    try:
        result = runner.invoke(main, ["retrain", "--now"], env=env)
        assert result.exit_code == 0, result.output
        assert not is_running(data)
    finally:
        stop_embedded_redis(data)


@pytest.mark.parametrize(
    ("corpora", "message"),
    [
        ("seed,olid2:/srv/olid", "RETRAIN_CORPORA: olid2:/srv/olid: unknown importer 'olid2'"),
        ("seed,/srv/labels/missing.jsonl", "RETRAIN_CORPORA: /srv/labels/missing.jsonl: no such file"),
        ("youtube:/srv/corpora/none", "RETRAIN_CORPORA: youtube:/srv/corpora/none: nothing at"),
    ],
)
@pytest.mark.parametrize("command", [["worker"], ["retrain", "--now"]])
def test_commands_that_retrain_refuse_corpora_that_name_nothing(
    command: list[str], corpora: str, message: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Read only by a retraining run, perhaps days later: a worker that started with them
    # failed each run once enough labels had come in, its message not naming the setting.
    started: list[object] = []
    monkeypatch.setattr("worker.runner.run_worker", lambda *args, **kwargs: started.append(args))
    monkeypatch.setattr("service.cli._sessions", lambda *args: started.append(args))
    result = CliRunner().invoke(main, command, env={**env, "RETRAIN_CORPORA": corpora})
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert not started
