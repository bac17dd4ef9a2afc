"""``moderation run``'s checks before it sets anything up, and how it reports a child's exit.

The whole run, from a fresh folder to a verdict and its stopping, is in
tests/integration/test_quick_start.py.
"""

from __future__ import annotations

import fcntl
import json
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from gunicorn.app.wsgiapp import WSGIApplication
from gunicorn.glogging import Logger
from gunicorn.util import parse_address

from service import local_stack
from service.cli import main
from tests.integration.processes import free_port

DOCKERFILE = Path(__file__).resolve().parents[2] / "Dockerfile"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A data folder of its own."""
    return {"MODERATION_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": "", "REDIS_URL": ""}


def test_a_second_run_on_one_data_folder_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with (data / local_stack.RUN_LOCK_NAME).open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as the first run holds it
        result = CliRunner().invoke(main, ["run"], env=env)
    assert result.exit_code == 1
    assert f"another `moderation run` uses the data folder {data}" in result.output
    assert sorted(path.name for path in data.iterdir()) == [local_stack.RUN_LOCK_NAME]  # nothing set up


def test_a_port_in_use_is_refused_before_any_set_up(env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["run", "--port", str(port)], env=env)
    assert result.exit_code == 1 and f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "choose another with --port or PORT" in result.output
    assert sorted(path.name for path in (tmp_path / "data").iterdir()) == [local_stack.RUN_LOCK_NAME]


def test_a_port_taken_during_the_set_up_is_refused_before_gunicorn_starts(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    taken: list[socket.socket] = []

    def prepare_while_another_program_takes_the_port(settings: Any) -> Iterator[str]:
        taken.append(socket.create_server(("127.0.0.1", port)))
        yield "schema up to date"

    monkeypatch.setattr(local_stack, "prepare", prepare_while_another_program_takes_the_port)
    started: list[Any] = []
    monkeypatch.setattr(local_stack, "_children", lambda *arguments: started.append(arguments))
    try:
        result = CliRunner().invoke(
            main, ["run", "--port", str(port)], env={**env, "REDIS_URL": "redis://127.0.0.1:1/0"}
        )
    finally:
        for server in taken:
            server.close()
    assert result.exit_code == 1 and f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "schema up to date" in result.output and not started


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1:8000"),
        ("localhost", "localhost:8000"),
        ("::1", "[::1]:8000"),
        ("::", "[::]:8000"),
    ],
)
def test_the_address_is_one_gunicorn_and_a_browser_read(host: str, address: str) -> None:
    assert local_stack._address(host, 8000) == address
    assert parse_address(address) == (host, 8000)


def _local_stack_web_command(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    started: list[list[str]] = []
    monkeypatch.setattr(local_stack.subprocess, "Popen", lambda argv, **_options: started.append(argv))
    local_stack._children("127.0.0.1", 8000, 1, 1, {})
    web = next(argv for argv in started if "gunicorn" in argv)
    return web[web.index("gunicorn") + 1 :]


def _docker_image_web_command(_monkeypatch: pytest.MonkeyPatch) -> list[str]:
    command = next(line for line in DOCKERFILE.read_text().splitlines() if line.startswith("CMD "))
    shell, flag, script = json.loads(command.removeprefix("CMD "))
    assert (shell, flag) == ("sh", "-c")
    script = script.replace("${PORT}", "8000").replace("${WEB_CONCURRENCY:-2}", "2")
    return shlex.split(script)[2:]  # after `exec gunicorn`


@pytest.mark.parametrize("web_command", [_local_stack_web_command, _docker_image_web_command])
def test_the_access_log_names_neither_the_commenter_s_address_nor_browser(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    web_command: Callable[[pytest.MonkeyPatch], list[str]],
) -> None:
    # The web command read as gunicorn reads it, settings module included, and a post logged.
    monkeypatch.setattr(sys, "argv", ["gunicorn", *web_command(monkeypatch)])
    config = WSGIApplication().cfg
    environ = {
        "REMOTE_ADDR": "203.0.113.77",
        "REQUEST_METHOD": "POST",
        "RAW_URI": "/v1/comments",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_USER_AGENT": "CommenterBrowser/9.9",
    }
    response = SimpleNamespace(status="202 ACCEPTED", headers=[], sent=29)
    request = SimpleNamespace(headers=[("USER-AGENT", "CommenterBrowser/9.9")])
    Logger(config).access(response, request, environ, timedelta(milliseconds=3))
    line = capsys.readouterr().out
    assert '"POST /v1/comments HTTP/1.1" 202 29' in line
    assert "203.0.113.77" not in line and "CommenterBrowser" not in line


@pytest.mark.parametrize(("arguments", "workers"), [([], 3), (["--workers", "2"], 2)])
def test_worker_processes_sets_the_run_s_workers_unless_given(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, arguments: list[str], workers: int
) -> None:
    asked: dict[str, Any] = {}
    monkeypatch.setattr(local_stack, "run_local_stack", lambda settings, **options: asked.update(options))
    result = CliRunner().invoke(main, ["run", *arguments], env={**env, "WORKER_PROCESSES": "3"})
    assert result.exit_code == 0, result.output
    assert asked["queue_workers"] == workers


@pytest.fixture
def signal_handlers() -> Iterator[None]:
    """The test process's own handlers back after a test that lets the run replace them."""
    kept = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for number, handler in kept.items():
        signal.signal(number, handler)


@pytest.mark.usefixtures("signal_handlers")
def test_the_child_that_exited_is_named_with_its_code(capsys: pytest.CaptureFixture[str]) -> None:
    children = {
        "web (gunicorn)": subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]),
        "worker": subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"]),
    }
    ended = local_stack._run_children(children, "127.0.0.1", 8000)
    assert ended["worker"].returncode == 3 and ended["web (gunicorn)"].returncode is not None
    assert "worker exited with code 3; stopping" in capsys.readouterr().err


@pytest.mark.usefixtures("signal_handlers")
def test_the_embedded_redis_exiting_stops_the_run_and_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    web = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    redis = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
    local_stack._run_children({"web (gunicorn)": web}, "127.0.0.1", 8000, {"embedded Redis": redis})
    assert web.returncode is not None  # stopped because Redis went
    assert "embedded Redis exited with code 1; stopping" in capsys.readouterr().err


# As gunicorn starts: its master listens at once, and a request is answered only once a
# worker has imported the app, which takes seconds on a busy machine. Each request it
# answers is a line on its standard error, as in gunicorn's access log.
_LISTENS_AT_ONCE_ANSWERS_LATE = """
import http.server, socket, sys, time
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.BaseHTTPRequestHandler)
time.sleep(2.5)
server.serve_forever()
"""
_LISTENS_NEVER_ANSWERS = """
import socket, sys, time
server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
time.sleep(60)
"""


@pytest.mark.usefixtures("signal_handlers")
@pytest.mark.parametrize(
    ("web_app", "said"),
    [
        (_LISTENS_AT_ONCE_ANSWERS_LATE, True),
        (_LISTENS_NEVER_ANSWERS, False),
        ("import time; time.sleep(60)", False),
    ],
    ids=["answers", "listens only", "nothing"],
)
def test_where_to_post_is_said_once_the_web_app_answers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, web_app: str, said: bool
) -> None:
    port = free_port()
    with (tmp_path / "access.log").open("wb") as log:
        children = {
            "web (gunicorn)": subprocess.Popen([sys.executable, "-c", web_app, str(port)], stderr=log),
            "worker": subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"]),
        }
        local_stack._run_children(children, "0.0.0.0", port)  # noqa: S104 - reached on loopback
    assert (f"post comments to http://0.0.0.0:{port}/v1/comments" in capsys.readouterr().out) is said
    # One request, awaited, however long the app takes: not one in the log for every poll.
    assert (tmp_path / "access.log").read_text().count('"GET /healthz HTTP/1.1"') == int(said)
