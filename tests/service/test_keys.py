"""The secret key: a lost or replaced one is refused at start, and a key file's mode is watched."""

from __future__ import annotations

import base64
import logging
import os
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from service import create_app, keyfile
from service.cli import main
from service.config import Settings, load_settings
from service.db import make_engine, make_session_factory
from service.errors import ConfigError
from service.keyfile import KEY_FILE_NAME, generate_secret, load_checked_keys, load_keys
from service.privacy import ERASED_EMAIL, KeyRing, email_digest, encrypt_email
from service.tables import Comment, KeyFingerprint

pytestmark = pytest.mark.integration

REFUSED = "differs from the one the stored emails were encrypted with"


def _settings(database_url: str, tmp_path: Path, secret: str = "") -> Settings:
    return load_settings(
        {}, {"data_dir": tmp_path / "data", "database_url": database_url, "secret_key": secret}
    )


def _checked_keys(settings: Settings) -> KeyRing:
    """``load_checked_keys`` on an engine of its own, as a starting process has."""
    engine = make_engine(settings.database)
    try:
        return load_checked_keys(settings, engine)
    finally:
        engine.dispose()


def _store_comment(database_url: str, keys: KeyRing) -> None:
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        email = "ann@example.com"
        session.add(
            Comment(
                thread="/a/1",
                name="Ann",
                email_ciphertext=encrypt_email(keys, email),
                email_digest=email_digest(keys, email),
                body="Thanks.",
            )
        )
        session.commit()
    engine.dispose()


def _recorded(database_url: str) -> list[str]:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        fingerprints = list(connection.scalars(select(KeyFingerprint.fingerprint)).all())
    engine.dispose()
    return fingerprints


def test_first_start_records_a_fingerprint_that_is_not_the_key(database_url: str, tmp_path: Path) -> None:
    secret = generate_secret()
    keys = _checked_keys(_settings(database_url, tmp_path, secret))
    assert _recorded(database_url) == [keys.fingerprint]
    key = base64.urlsafe_b64decode(secret)
    assert secret not in keys.fingerprint and key.hex() not in keys.fingerprint
    _store_comment(database_url, keys)
    assert _checked_keys(_settings(database_url, tmp_path, secret)).fingerprint == keys.fingerprint


def test_another_key_is_refused_once_emails_are_stored(database_url: str, tmp_path: Path) -> None:
    secret = generate_secret()
    _store_comment(database_url, _checked_keys(_settings(database_url, tmp_path, secret)))
    with pytest.raises(ConfigError, match=REFUSED) as refused:
        _checked_keys(_settings(database_url, tmp_path, generate_secret()))
    assert "set MODERATION_SECRET_KEY to it" in str(refused.value)
    assert str(tmp_path / "data" / KEY_FILE_NAME) in str(refused.value)
    assert _checked_keys(_settings(database_url, tmp_path, secret))


def _init_env(database_url: str, tmp_path: Path, model_dir: Path, secret: str) -> dict[str, str]:
    """``moderation init``'s environment, with a model already active (nothing to train)."""
    return {
        "DATABASE_URL": database_url,
        "MODERATION_DATA_DIR": str(tmp_path / "data"),
        "MODEL_DIR": str(model_dir),
        "MODERATION_SECRET_KEY": secret,
    }


def test_another_key_is_refused_before_any_email_is_stored_unless_asked_to_replace(
    database_url: str, tmp_path: Path, model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A process started without the key (say, a worker in a shell missing the variable)
    # must not take over while the running ones encrypt with the recorded key.
    first = _checked_keys(_settings(database_url, tmp_path, generate_secret()))
    other = generate_secret()
    with pytest.raises(ConfigError, match="differs from the one recorded at the first start") as refused:
        _checked_keys(_settings(database_url, tmp_path, other))
    assert "moderation init --replace-key" in str(refused.value)
    assert _recorded(database_url) == [first.fingerprint]

    env = _init_env(database_url, tmp_path, model_dir, other)
    result = CliRunner().invoke(main, ["init", "--replace-key"], env=env)
    assert result.exit_code == 0, result.output
    assert _recorded(database_url) == [_checked_keys(_settings(database_url, tmp_path, other)).fingerprint]
    assert "replaces the recorded one; no email is stored" in caplog.text


def test_replacing_the_key_is_refused_once_emails_are_stored(
    database_url: str, tmp_path: Path, model_dir: Path
) -> None:
    first = _checked_keys(_settings(database_url, tmp_path, generate_secret()))
    _store_comment(database_url, first)
    env = _init_env(database_url, tmp_path, model_dir, generate_secret())
    result = CliRunner().invoke(main, ["init", "--replace-key"], env=env)
    assert result.exit_code == 1 and REFUSED in result.output
    assert _recorded(database_url) == [first.fingerprint]


def test_data_from_before_the_fingerprint_is_checked_against_the_newest_email(
    database_url: str, tmp_path: Path
) -> None:
    secret = generate_secret()
    _store_comment(database_url, load_keys(_settings(database_url, tmp_path, secret)))
    with pytest.raises(ConfigError, match=REFUSED):
        _checked_keys(_settings(database_url, tmp_path, generate_secret()))
    assert _recorded(database_url) == []
    keys = _checked_keys(_settings(database_url, tmp_path, secret))
    assert _recorded(database_url) == [keys.fingerprint]


def test_the_app_refuses_to_start_with_another_key(settings_overrides: dict[str, Any]) -> None:
    app = create_app(settings_overrides)
    form = {"name": "Ann", "email": "ann@example.com", "comment": "Hi", "thread": "/a/1"}
    assert app.test_client().post("/v1/comments", json=form).status_code == 202
    app.extensions["moderation"].close()
    with pytest.raises(ConfigError, match=REFUSED):
        create_app({**settings_overrides, "secret_key": generate_secret()})


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_key_unchecked_at_start_is_checked_once_the_database_answers(
    settings_overrides: dict[str, Any], database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    form = {"name": "Ann", "email": "ann@example.com", "comment": "Hi", "thread": "/a/1"}
    first = create_app(settings_overrides)
    assert first.test_client().post("/v1/comments", json=form).status_code == 202
    first.extensions["moderation"].close()
    stored = Path(database_url.removeprefix("sqlite:///"))
    # A folder where the database file should be: SQLite cannot open it, as a server that is down.
    later = tmp_path / "later.db"
    later.mkdir()
    late = {**settings_overrides, "database_url": f"sqlite:///{later}"}
    # Without a key file, a new key is made and used; the right file put back afterwards
    # is not what this process encrypts with.
    fresh = tmp_path / "fresh"
    with caplog.at_level(logging.WARNING):
        replaced = create_app({**late, "secret_key": generate_secret()}).test_client()
        made = create_app({**late, "secret_key": "", "data_dir": fresh}).test_client()
        same = create_app(late).test_client()
    assert "could not check the secret key" in caplog.text
    (fresh / KEY_FILE_NAME).write_text(settings_overrides["secret_key"])
    assert replaced.post("/v1/comments", json=form).status_code == 503
    later.rmdir()
    assert not Path(f"{stored}-wal").exists()  # closed: every commit is in the file
    stored.rename(later)
    for wrong in (replaced, made):
        refused = wrong.post("/v1/comments", json=form)
        assert refused.status_code == 500 and "misconfigured" in refused.get_json()["message"]
        assert wrong.get("/healthz").status_code == 500
    assert REFUSED in caplog.text
    assert same.post("/v1/comments", json=form).status_code == 202
    assert same.application.extensions["moderation"].keys_checked
    with make_engine(f"sqlite:///{later}").connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Comment)) == 2
    for client in (replaced, made, same):
        client.application.extensions["moderation"].close()


def test_init_refuses_a_replaced_key_file(tmp_path: Path) -> None:
    env = {"MODERATION_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": "", "MODEL_DIR": ""}
    runner = CliRunner()
    assert runner.invoke(main, ["init"], env=env).exit_code == 0
    settings = load_settings(env)
    _store_comment(settings.database, load_keys(settings))
    key_file = tmp_path / "data" / KEY_FILE_NAME
    key_file.unlink()
    result = runner.invoke(main, ["init"], env=env)
    assert result.exit_code == 1 and REFUSED in result.output, result.output
    assert f"put its key file back at {key_file}" in result.output
    assert "secret key ready" not in result.output


def test_init_refuses_a_short_key_before_migrating_anything(tmp_path: Path) -> None:
    short = base64.urlsafe_b64encode(b"x" * 16).decode()
    env = {"MODERATION_DATA_DIR": str(tmp_path), "DATABASE_URL": "", "MODERATION_SECRET_KEY": short}
    result = CliRunner().invoke(main, ["init"], env=env)
    assert result.exit_code == 1, result.output
    assert "MODERATION_SECRET_KEY holds 16 bytes; the secret key must be at least 32" in result.output
    assert "database ready" not in result.output and not (tmp_path / "moderation.db").exists()


def test_init_refuses_a_replaced_key_before_migrating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"MODERATION_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": "", "MODEL_DIR": ""}
    runner = CliRunner()
    assert runner.invoke(main, ["init"], env=env).exit_code == 0
    settings = load_settings(env)
    _store_comment(settings.database, load_keys(settings))
    (tmp_path / "data" / KEY_FILE_NAME).unlink()
    migrated: list[str] = []
    monkeypatch.setattr("service.bootstrap.upgrade", lambda engine: migrated.append(str(engine.url)))
    result = runner.invoke(main, ["init"], env=env)
    assert result.exit_code == 1 and REFUSED in result.output and migrated == []


def test_a_generated_key_file_is_announced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings({}, {"data_dir": tmp_path})
    load_keys(settings)
    load_keys(settings)
    generated = [record for record in caplog.records if "generated a new secret key" in record.getMessage()]
    assert len(generated) == 1 and str(tmp_path / KEY_FILE_NAME) in generated[0].getMessage()


def test_a_generated_key_file_reaches_the_disk_before_it_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    monkeypatch.setattr("service.keyfile.os.fsync", fsync)
    load_keys(load_settings({}, {"data_dir": tmp_path / "data"}))
    # The secret in its file (written under a temporary name), then the folder's new entry.
    assert [Path(path).name.startswith(f".{KEY_FILE_NAME}.") for path in synced] == [True, False]
    assert synced[1] == str(tmp_path / "data")


def test_a_key_file_others_can_read_is_used_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings({}, {"data_dir": tmp_path})
    keys = load_keys(settings)
    caplog.clear()
    assert load_keys(settings).fingerprint == keys.fingerprint
    assert not caplog.records
    (tmp_path / KEY_FILE_NAME).chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="service.keyfile"):
        assert load_keys(settings).fingerprint == keys.fingerprint
    assert f"key file {tmp_path / KEY_FILE_NAME} has mode 0644" in caplog.text
    caplog.clear()
    (tmp_path / KEY_FILE_NAME).chmod(0o640)  # its group alone can read it: still exposed
    with caplog.at_level(logging.WARNING, logger="service.keyfile"):
        assert load_keys(settings).fingerprint == keys.fingerprint
    assert f"key file {tmp_path / KEY_FILE_NAME} has mode 0640" in caplog.text


def test_a_key_file_of_raw_bytes_is_refused_naming_it(tmp_path: Path) -> None:
    # 32 random bytes written straight into the file, not the base64 text the service writes.
    key_file = tmp_path / KEY_FILE_NAME
    key_file.write_bytes(b"\xff\xfe" + os.urandom(30))
    key_file.chmod(0o600)
    with pytest.raises(ConfigError, match=re.escape(f"{key_file} is not valid base64")):
        load_keys(load_settings({}, {"data_dir": tmp_path}))
    env = {"MODERATION_DATA_DIR": str(tmp_path), "DATABASE_URL": "", "MODEL_DIR": ""}
    result = CliRunner().invoke(main, ["init"], env=env)
    assert result.exit_code == 1 and f"Error: {key_file} is not valid base64" in result.output
    assert "database ready" not in result.output


def test_an_erased_newest_comment_does_not_hide_the_key_in_use(database_url: str, tmp_path: Path) -> None:
    secret = generate_secret()
    _store_comment(database_url, load_keys(_settings(database_url, tmp_path, secret)))
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        erased = Comment(thread="/a/1", name="Anonymous", email_ciphertext=ERASED_EMAIL, body="Hi.")
        session.add(erased)
        erased.email_digest = ERASED_EMAIL
        session.commit()
    engine.dispose()
    with pytest.raises(ConfigError, match=REFUSED):
        _checked_keys(_settings(database_url, tmp_path, generate_secret()))
    assert _checked_keys(_settings(database_url, tmp_path, secret))


def test_of_two_first_starts_with_different_keys_at_once_one_is_refused(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # B reads that no key is recorded; A records its own before B writes.
    first, second = (
        _settings(database_url, tmp_path, generate_secret()),
        _settings(database_url, tmp_path, generate_secret()),
    )
    read = keyfile._recorded_fingerprint

    def a_starts_meanwhile(connection: Any) -> str | None:
        seen = read(connection)
        monkeypatch.setattr(keyfile, "_recorded_fingerprint", read)
        _checked_keys(first)
        return seen

    monkeypatch.setattr(keyfile, "_recorded_fingerprint", a_starts_meanwhile)
    with pytest.raises(ConfigError, match="differs from the one recorded at the first start"):
        _checked_keys(second)
    assert _recorded(database_url) == [load_keys(first).fingerprint]


def test_a_write_is_refused_while_the_late_key_check_cannot_reach_the_database(
    settings_overrides: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database failed the check and is back a moment later, by the request's write:
    # that write would be made with a key never checked.
    def down(*_args: Any) -> None:
        raise OperationalError("SELECT", {}, Exception("the database is down"))

    for checked_where in ("service.keyfile.check_keys", "service.app.check_keys"):  # at start, then late
        monkeypatch.setattr(checked_where, down)
    app = create_app(settings_overrides)
    services = app.extensions["moderation"]
    assert not services.keys_checked
    client = app.test_client()
    form = {"name": "Ann", "email": "ann@example.com", "comment": "Hi", "thread": "/a/1"}
    refused = client.post("/v1/comments", json=form)
    assert refused.status_code == 503 and refused.get_json()["error"] == "database_unavailable"
    assert client.get("/healthz").status_code == 200  # reading passes: it writes nothing
    monkeypatch.undo()
    assert client.post("/v1/comments", json=form).status_code == 202
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Comment)) == 1
    services.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_key_started_before_the_migration_is_checked_once_it_has_run(
    settings_overrides: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A web process started before `moderation migrate` (by hand, not through `init`) took
    # the missing tables for a pass, so the key recorded by the first start after the
    # migration was never compared with its own, and it stored emails no one could read.
    fresh = {**settings_overrides, "database_url": f"sqlite:///{tmp_path / 'new.db'}"}
    form = {"name": "Ann", "email": "ann@example.com", "comment": "Hi", "thread": "/a/1"}
    with caplog.at_level(logging.WARNING):
        early = create_app(fresh).test_client()
        wrong = create_app({**fresh, "secret_key": generate_secret()}).test_client()
    assert "not migrated yet" in caplog.text
    refused = early.post("/v1/comments", json=form)
    assert refused.status_code == 503 and refused.get_json()["error"] == "database_not_migrated"
    assert "moderation migrate" in refused.get_json()["message"]
    result = CliRunner().invoke(main, ["migrate"], env={"DATABASE_URL": fresh["database_url"]})
    assert result.exit_code == 0, result.output
    _checked_keys(_settings(fresh["database_url"], tmp_path, fresh["secret_key"]))  # the first start after
    mismatched = wrong.post("/v1/comments", json=form)
    assert mismatched.status_code == 500 and "misconfigured" in mismatched.get_json()["message"]
    assert early.post("/v1/comments", json=form).status_code == 202
    assert early.application.extensions["moderation"].keys_checked
    with make_engine(fresh["database_url"]).connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Comment)) == 1
    for client in (early, wrong):
        client.application.extensions["moderation"].close()
