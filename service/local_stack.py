"""``moderation run``: the whole service on one machine with the embedded defaults.

It prepares the install, starts the embedded Redis server when ``REDIS_URL`` is
unset, then runs gunicorn and the workers as child processes until interrupted, and
shuts the embedded server down again if it started it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from types import FrameType

import click

from service.bootstrap import prepare
from service.config import Settings
from service.queueing import scoped_redis_url

POLL_SECONDS = 0.5
STOP_TIMEOUT_SECONDS = 15
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _stopped_with_parent() -> Callable[[], None] | None:
    """What a child runs before it starts, on Linux: be sent SIGTERM when this process
    dies. No handler sees a SIGKILL, and without this the children would go on holding
    the port and the queue; elsewhere, nothing."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def arrange() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the call above took effect
            os._exit(1)

    return arrange


def _children(
    host: str, port: int, web_workers: int, queue_workers: int, env: dict[str, str]
) -> list[subprocess.Popen[bytes]]:
    web = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{host}:{port}",
        "--workers", str(web_workers),
        "--access-logfile", "-",
        "service:create_app()",
    ]  # fmt: skip
    # One worker command forks the workers after loading the model, so they share it.
    work = [sys.executable, "-m", "service", "worker", "--processes", str(queue_workers)]
    arrange = _stopped_with_parent()
    return [subprocess.Popen(command, env=env, preexec_fn=arrange) for command in (web, work)]


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()


def run_local_stack(
    settings: Settings, *, host: str, port: int, web_workers: int, queue_workers: int
) -> None:
    """Run web and workers until Ctrl-C, SIGTERM, or one of them exits."""
    for line in prepare(settings):
        click.echo(line)
    with scoped_redis_url(settings) as url:
        env = {**os.environ, "REDIS_URL": url}
        if not settings.redis_url:
            click.echo(f"embedded Redis at {url}")
        children = _run_children(_children(host, port, web_workers, queue_workers, env), host, port)
    if any(child.returncode not in (0, -signal.SIGTERM) for child in children):
        sys.exit(1)


def _run_children(
    children: list[subprocess.Popen[bytes]], host: str, port: int
) -> list[subprocess.Popen[bytes]]:
    """Wait until Ctrl-C, SIGTERM, SIGHUP or a child's exit, then stop them all; return them."""
    click.echo(f"post comments to http://{host}:{port}/v1/comments (Ctrl-C stops)")

    def interrupted(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Closing the terminal sends SIGHUP: without this the children would go on holding
    # the port (gunicorn reads HUP as "reload") and the embedded Redis would stay up.
    for stop_signal in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, interrupted)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(POLL_SECONDS)
        click.echo("a child process exited; stopping", err=True)
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        # A second Ctrl-C must not cut the stopping short: the children, and then the
        # embedded Redis, would be left running.
        for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(stop_signal, signal.SIG_IGN)
        _stop(children)
    return children
