"""The README's run command on a machine with neither DATABASE_URL nor REDIS_URL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from service.embedded_redis import is_running, stop_embedded_redis
from tests.integration.processes import free_port, process_ids, process_status, wait_for

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def embedded_env(tmp_path: Path) -> dict[str, str]:
    """A newcomer's environment: no servers configured, a data folder of the test's own."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "MODEL_DIR"}
    }
    env.update(
        MODERATION_DATA_DIR=str(tmp_path / "data"),
        PORT=str(free_port()),
        ALLOWED_REDIRECT_HOSTS="news.example",
    )
    return env


@pytest.fixture
def trained_env(embedded_env: dict[str, str], model_dir: Path) -> dict[str, str]:
    """A newcomer's environment past its first start: the seed model is in the data folder
    already (the tests of stopping need no training of their own; the first run's test trains)."""
    shutil.copytree(model_dir, Path(embedded_env["MODERATION_DATA_DIR"]) / "models")
    return embedded_env


@contextmanager
def _run_command(
    env: dict[str, str], log: Path, stop_signal: signal.Signals, times: int = 1
) -> Iterator[str]:
    """``scripts/run`` started as the README says, once it says where to post; stopped with ``stop_signal``
    (sent ``times`` times, a moment apart, as an impatient Ctrl-C does). SIGINT goes to
    the whole process group, as a terminal's Ctrl-C does."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(ROOT / "scripts" / "run")],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal gives it
            preexec_fn=_as_a_terminal_starts_it,
        )
        base = f"http://127.0.0.1:{env['PORT']}"
        ready = f"post comments to {base}/v1/comments"
        try:
            # The line a newcomer waits for; the tests post as soon as it is there.
            wait_for(
                lambda: ready in log.read_text() or process.poll() is not None,
                300,
                "the run to say where to post",
            )
            assert process.poll() is None, log.read_text()
            yield base
        finally:
            for sent in range(times):
                if sent:
                    time.sleep(0.3)
                if stop_signal is signal.SIGINT:
                    os.killpg(process.pid, stop_signal)
                else:
                    process.send_signal(stop_signal)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                # What the run did with the signals (blocked, ignored, caught), read before
                # it is killed (so that it does not outlive this test).
                state = _signal_masks(process.pid)
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
                pytest.fail(f"the run did not stop; its signals: {state}; its log:\n{log.read_text()}")
    assert "stopping" in log.read_text()


def _as_a_terminal_starts_it() -> None:
    """Ctrl-C and Ctrl-\\ at their defaults, as in a terminal's foreground job: a run started
    with them ignored keeps them so (as a job started with `&` in a script should). In one CI
    run the run had both ignored from its start, inherited from the test process, and no
    Ctrl-C could stop it."""
    for ignored in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(ignored, signal.SIG_DFL)


def _signal_masks(pid: int) -> list[str]:
    """The pending, blocked, ignored and caught signals of ``pid``, as /proc shows them."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:  # gone meanwhile
        return []
    return [line for line in status if line.startswith(("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt"))]


@pytest.fixture
def running_service(embedded_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``scripts/run`` started as the README says, stopped with SIGTERM afterwards."""
    log = tmp_path / "run.log"
    with _run_command(embedded_env, log, signal.SIGTERM) as base:
        yield base, log


def test_closing_the_terminal_stops_web_workers_and_the_embedded_redis(
    trained_env: dict[str, str], tmp_path: Path
) -> None:
    with _run_command(trained_env, tmp_path / "run.log", signal.SIGHUP) as base:
        pass
    assert not _answers(f"{base}/healthz")  # the port is free again
    assert not is_running(Path(trained_env["MODERATION_DATA_DIR"]))


def test_a_second_ctrl_c_still_stops_the_embedded_redis(trained_env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    with _run_command(trained_env, log, signal.SIGINT, times=2) as base:
        pass
    assert not _answers(f"{base}/healthz")
    data = Path(trained_env["MODERATION_DATA_DIR"])
    assert not is_running(data)
    # Ctrl-C reached the run alone, which stopped web and worker, then Redis, in turn.
    assert "Received SIGINT" not in (data / "redis.log").read_text()
    # Gunicorn was stopped gracefully (SIGTERM), answering the requests it had: its
    # workers quit on the spot on a SIGINT of their own, mid-answer.
    assert "Handling signal: term" in log.read_text()
    assert "Handling signal: int" not in log.read_text()


def _descendants(pid: int) -> set[int]:
    """The processes below ``pid``, read off /proc."""
    parents: dict[int, int] = {}
    for other in process_ids():
        try:
            parents[other] = int(process_status(other)[1])
        except OSError:
            continue  # gone meanwhile
    found = {pid}
    while grown := {child for child, parent in parents.items() if parent in found} - found:
        found |= grown
    return found - {pid}


def _running(pid: int) -> bool:
    try:
        # A zombie has exited; only its new parent has not collected it yet.
        return process_status(pid)[0] != "Z"
    except OSError:
        return False


def test_killing_the_run_command_stops_web_workers_and_the_embedded_redis(
    trained_env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "run.log"
    with log.open("wb") as output:
        process = subprocess.Popen([str(ROOT / "scripts" / "run")], cwd=ROOT, env=trained_env, stdout=output)
        base = f"http://127.0.0.1:{trained_env['PORT']}"
        try:
            wait_for(lambda: _answers(f"{base}/healthz") or process.poll() is not None, 300, "the service")
            children = _descendants(process.pid)
            # Two masters, a web worker, a queue worker and Redis.
            assert len(children) >= 5, log.read_text()
        finally:
            process.kill()  # no handler sees this, so no stopping runs
            process.wait(10)
    try:
        wait_for(lambda: not any(map(_running, children)), 60, "the orphaned children to stop")
        assert not _answers(f"{base}/healthz")
        assert not is_running(Path(trained_env["MODERATION_DATA_DIR"]))
    finally:
        stop_embedded_redis(Path(trained_env["MODERATION_DATA_DIR"]))


def test_run_command_serves_and_classifies_a_form_post(
    running_service: tuple[str, Path], embedded_env: dict[str, str]
) -> None:
    base, log = running_service
    posted = requests.post(
        f"{base}/v1/comments",
        data={
            "name": "Ann",
            "email": "ann@example.com",
            "comment": "Lovely photos of the harbour.",
            "thread": "/a/9",
        },
        headers={"Referer": "https://news.example/a/9"},
        allow_redirects=False,
        timeout=10,
    )
    assert posted.status_code == 303
    comment_id = parse_qs(urlsplit(posted.headers["Location"]).query)["comment_id"][0]
    token = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "moderation"), "create-token", "quickstart"],
        cwd=ROOT, env=embedded_env, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}

    def classified() -> bool:
        body = requests.get(f"{base}/v1/comments/{comment_id}", headers=headers, timeout=5).json()
        return bool(body["status"] != "received")

    wait_for(classified, 60, "the worker's verdict\n" + log.read_text()[-2000:])
    body = requests.get(f"{base}/v1/comments/{comment_id}", headers=headers, timeout=5).json()
    assert body["status"] == "approved" and body["model_version"]
