"""``moderation run``: the whole service on one machine with the embedded defaults.

It prepares the install, starts the embedded Redis server when ``REDIS_URL`` is
unset, then runs gunicorn and the workers as child processes until interrupted, and
shuts the embedded server down again. One run at a time uses a data folder: it owns
that folder's embedded server, which is its child and, on Linux, ends with it even when
the run is killed; one left running by an older run is taken over and shut down at the end.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import http.client
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import click

from service.bootstrap import prepare
from service.config import Settings
from service.embedded_redis import ensure_embedded_redis, stop_embedded_redis

POLL_SECONDS = 0.5
STOP_TIMEOUT_SECONDS = 15
RUN_LOCK_NAME = "run.lock"
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


@contextlib.contextmanager
def _only_run(data_dir: Path) -> Iterator[None]:
    """Hold the data folder for this run; refuse (``ClickException``) when another holds it."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / RUN_LOCK_NAME).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise click.ClickException(
                f"another `moderation run` uses the data folder {data_dir}; stop it first, "
                "or set MODERATION_DATA_DIR to another folder"
            ) from None
        yield


def _address(host: str, port: int) -> str:
    """``host:port`` as gunicorn's ``--bind`` and a URL read it: an IPv6 literal in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _AnswerProbe:
    """One request to the web app at the run's address (a wildcard address is tried on
    loopback), sent once it listens and awaited across polls.

    Accepting a connection is not enough: gunicorn's master listens before its workers have
    imported the app, which on a busy machine takes seconds, and a post sent meanwhile waits.
    One request awaited, rather than one a poll, leaves one line in the access log however
    long that takes. Any status will do (``/healthz`` says 503 while the database is down).
    """

    def __init__(self, host: str, port: int) -> None:
        reachable = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104 - only read here
        self._connection = http.client.HTTPConnection(reachable, port, timeout=POLL_SECONDS)
        self._sent = False

    def answered(self) -> bool:
        """Whether the app has answered the probe; waits up to ``POLL_SECONDS`` for it."""
        try:
            if not self._sent:
                self._connection.request("GET", "/healthz")
                self._sent = True
            if not select.select([self._connection.sock], [], [], POLL_SECONDS)[0]:
                return False  # no worker has taken it yet: it stays sent
            self._connection.getresponse().read()
        except (OSError, http.client.HTTPException):
            self.close()  # refused (not listening yet) or cut off: sent again next time
            return False
        self.close()
        return True

    def close(self) -> None:
        """Drop the connection, and with it the request if it is unanswered."""
        self._connection.close()
        self._sent = False


def _check_port(host: str, port: int) -> None:
    """Refuse (``ClickException``) an address this machine cannot listen on: before any
    set-up, and again before gunicorn starts."""
    try:
        family, kind, protocol, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
            probe.bind(address)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {_address(host, port)} ({exc.strerror or exc}); "
            "choose another with --port or PORT"
        ) from None


@contextlib.contextmanager
def _owned_redis(
    data_dir: Path, arrange: Callable[[], None] | None
) -> Iterator[tuple[str, subprocess.Popen[bytes] | None]]:
    """The run's embedded Redis server: its URL, and its process when this run started it
    (None for one left running by an earlier run). Shut down, its data written, at the end."""
    servers: list[subprocess.Popen[bytes]] = []

    def launch(argv: list[str]) -> None:
        # A session of its own: Ctrl-C in the terminal must not stop it before web and
        # worker have stopped using it. PDEATHSIG still ends it with the run.
        servers.append(
            subprocess.Popen(
                argv,
                preexec_fn=arrange,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    try:
        url = ensure_embedded_redis(data_dir, launch)
        yield url, (servers[0] if servers else None)
    finally:
        stop_embedded_redis(data_dir)
        _stop(servers)


def _children(
    host: str, port: int, web_workers: int, queue_workers: int, env: dict[str, str]
) -> dict[str, subprocess.Popen[bytes]]:
    web = [
        sys.executable, "-m", "gunicorn",
        "--bind", _address(host, port),
        "--workers", str(web_workers),
        "--access-logfile", "-",
        "--config", "python:service.gunicorn_settings",
        # Its control socket would sit in $HOME, shared by every gunicorn of this user.
        "--no-control-socket",
        "service:create_app()",
    ]  # fmt: skip
    # One worker command forks the workers after loading the model, so they share it.
    work = [sys.executable, "-m", "service", "worker", "--processes", str(queue_workers)]
    arrange = _stopped_with_parent()
    commands = {"web (gunicorn)": web, "worker": work}
    # Sessions of their own: a terminal's Ctrl-C reaches only this process, which stops
    # each with one SIGTERM, a graceful stop. Gunicorn's workers quit on the spot on a
    # SIGINT of their own, cutting off the answers they were writing.
    return {
        name: subprocess.Popen(argv, env=env, preexec_fn=arrange, start_new_session=True)
        for name, argv in commands.items()
    }


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
    with _only_run(settings.data_dir):
        _check_port(host, port)
        for line in prepare(settings):
            click.echo(line)
        with contextlib.ExitStack() as stack:
            url, watched = settings.redis_url, {}
            if not url:
                url, server = stack.enter_context(_owned_redis(settings.data_dir, _stopped_with_parent()))
                watched = {"embedded Redis": server} if server is not None else {}
                click.echo(f"embedded Redis at {url}")
            env = {**os.environ, "REDIS_URL": url}
            # Again: the set-up can take minutes, and another program may have taken the
            # port meanwhile (it would answer the readiness probe in gunicorn's place).
            _check_port(host, port)
            children = _children(host, port, web_workers, queue_workers, env)
            _run_children(children, host, port, watched)
    if any(child.returncode not in (0, -signal.SIGTERM) for child in children.values()):
        sys.exit(1)


def _run_children(
    children: dict[str, subprocess.Popen[bytes]],
    host: str,
    port: int,
    watched: dict[str, subprocess.Popen[bytes]] | None = None,
) -> dict[str, subprocess.Popen[bytes]]:
    """Say where to post once the web app answers; wait until Ctrl-C, SIGTERM, SIGHUP or the
    exit of a child or of a ``watched`` process (stopped by its owner), then stop the
    children; return them."""
    watching = {**children, **(watched or {})}
    announced = False
    probe = _AnswerProbe(host, port)

    def interrupted(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Closing the terminal sends SIGHUP: without this the children would go on holding
    # the port (gunicorn reads HUP as "reload") and the embedded Redis would stay up.
    for stop_signal in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, interrupted)
    try:
        while all(child.poll() is None for child in watching.values()):
            # Announced once the app answers: a post sent on reading the line must not be kept waiting.
            if not announced and probe.answered():
                click.echo(f"post comments to http://{_address(host, port)}/v1/comments (Ctrl-C stops)")
                announced = True
            time.sleep(POLL_SECONDS)
        ended = ", ".join(
            f"{name} exited with code {child.returncode}"
            for name, child in watching.items()
            if child.returncode is not None
        )
        click.echo(f"{ended}; stopping", err=True)
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        probe.close()
        # A second Ctrl-C must not cut the stopping short: the children, and then the
        # embedded Redis, would be left running.
        for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(stop_signal, signal.SIG_IGN)
        _stop(list(children.values()))
    return children
