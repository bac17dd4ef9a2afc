"""The ``moderation`` command's set-up and token commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from service.auth import authenticate
from service.cli import main
from service.db import make_engine, make_session_factory
from service.tables import ModeratorToken


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


def test_create_token_prints_a_token_that_authenticates(env: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["migrate"], env=env).exit_code == 0
    result = runner.invoke(main, ["create-token", "alice"], env=env)
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    sessions = make_session_factory(make_engine(f"sqlite:///{tmp_path / 'data' / 'moderation.db'}"))
    with sessions() as session:
        assert authenticate(session, f"Bearer {token}").name == "alice"
        stored = session.scalars(select(ModeratorToken.token_digest)).all()
        assert token not in stored
    revoked = runner.invoke(main, ["revoke-tokens", "alice"], env=env)
    assert revoked.output.strip() == "revoked 1 token(s) of alice"


def test_create_token_refuses_an_empty_name(env: dict[str, str]) -> None:
    runner = CliRunner()
    runner.invoke(main, ["migrate"], env=env)
    result = runner.invoke(main, ["create-token", "  "], env=env)
    assert result.exit_code == 2 and "moderator name" in result.output


def test_missing_production_secret_is_one_clear_line(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["migrate"], env={**env, "MODERATION_ENV": "production"})
    assert result.exit_code == 1
    assert result.output.startswith("Error: production needs MODERATION_SECRET_KEY")
