"""Shared helpers for the benchmark scripts: processes, ports, databases, load, figures.

Every load generator here talks only to 127.0.0.1, is bounded in time and count, and
stops by itself. Processes are started in sessions of their own and stopped by their
process-group id, so a Ctrl-C or an error never leaves a server behind.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import os
import platform
import random
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
# The same form post for every request and every app: what a reader's browser sends.
COMMENT_BODY = json.dumps(
    {
        "name": "Ann Example",
        "email": "ann@example.com",
        "comment": "Thanks for the write-up on the harbour works. The photo of the crane at dusk "
        "is lovely; do you know when the footbridge reopens?",
        "thread": "/2026/11/harbour",
        "url": "https://ann.example.org",
    }
).encode()
COMMENTS_PATH = "/v1/comments"
# What a load generator posts unless told otherwise: that one comment, over and over.
ONE_COMMENT: tuple[bytes, ...] = (COMMENT_BODY,)
# The comments of the corpora a benchmark that scores posts takes (fewer when fewer qualify).
CORPUS_COMMENTS = 20_000
# Comments of a length a reply form sees (the benchmark's own is 129 characters).
CORPUS_COMMENT_CHARS = (40, 1000)
# One random master secret per run, shared by the web app and the workers it starts.
SECRET_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()
LIBRARIES = ("flask", "werkzeug", "gunicorn", "rq", "redis", "sqlalchemy", "psycopg", "scikit-learn", "numpy")


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM arrives, so cleanup runs as for Ctrl-C."""


def stop_on_sigterm() -> None:
    """Turn SIGTERM into an exception, so ``finally`` blocks and context managers clean up."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class Processes:
    """The processes a benchmark started; ``stop_all`` ends each by its own process group."""

    log_dir: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, argv: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start ``argv`` in a new session, its output to ``<log_dir>/<name>.log``."""
        log = (self.log_dir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            list(argv), env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.running[name] = process
        return process

    def stop(self, name: str, timeout: float = 15.0) -> None:
        """SIGTERM the process group of ``name``, then SIGKILL it if it has not ended in time."""
        process = self.running.pop(name, None)
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    def stop_all(self) -> None:
        """Stop every process still running, newest first."""
        for name in reversed(list(self.running)):
            self.stop(name)

    def log_tail(self, name: str, lines: int = 20) -> str:
        """The last lines a process wrote, for error messages."""
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def cpu_seconds(*, session: int | None = None, command: str | None = None) -> float:
    """CPU seconds (user and system) used so far by the living processes of session
    ``session``, or by those whose command name is ``command``.

    A benchmark's servers are started in sessions of their own, so a session holds a web
    app's or a worker pool's every process (forked workers, RQ's scheduler) and nothing
    else; ``command="postgres"`` counts the database server's backends.
    """
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):  # the process ended meanwhile
            _pid, _, rest = (entry / "stat").read_text().partition(" (")
            comm, _, after = rest.rpartition(") ")  # the name may hold spaces and parentheses
            fields = after.split()
            if (session is None or int(fields[3]) == session) and (command is None or comm == command):
                ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuClock:
    """The machine's busy and total CPU time (clock ticks, from ``/proc/stat``) and this
    process's own CPU seconds, read at one moment; two of them give what a stretch cost."""

    machine_busy: int
    machine_total: int
    own: float

    @classmethod
    def now(cls) -> CpuClock:
        """Read the clocks."""
        # user nice system idle iowait irq softirq steal (guest time is already in user)
        ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        times = os.times()
        return cls(sum(ticks) - ticks[3] - ticks[4], sum(ticks), times.user + times.system)

    def busy_cores_since(self, earlier: CpuClock) -> float:
        """How many of the machine's cores were busy on average between ``earlier`` and this."""
        total = self.machine_total - earlier.machine_total
        busy = self.machine_busy - earlier.machine_busy
        return (os.cpu_count() or 1) * busy / total if total else 0.0


def wait_for_http(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Wait until something answers HTTP on ``port``; fail early if ``process`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process {process.args!r} exited with {process.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=1.0) as sock:
                sock.sendall(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                if sock.recv(12).startswith(b"HTTP/"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port} within {timeout:.0f} s")


def gunicorn_argv(app: str, port: int, workers: int = 2, pythonpath: Path | None = None) -> list[str]:
    """The gunicorn command both apps run under: sync workers, no access log."""
    argv = [str(BIN / "gunicorn"), "--workers", str(workers), "--bind", f"{HOST}:{port}"]
    # Without a control socket: every gunicorn of a user shares one in $HOME, and the
    # benchmarks run several at once.
    argv += ["--log-level", "warning", "--no-control-socket"]
    if pythonpath is not None:
        argv += ["--pythonpath", str(pythonpath)]
    return [*argv, app]


def percentiles(values: Sequence[float], points: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    """Nearest-rank percentiles of ``values`` as ``{"p50": ..., ...}``; empty input gives NaN."""
    ordered = sorted(values)
    result: dict[str, float] = {}
    for point in points:
        if not ordered:
            result[f"p{point:g}"] = float("nan")
            continue
        rank = max(1, min(len(ordered), math.ceil(point / 100 * len(ordered))))
        result[f"p{point:g}"] = ordered[rank - 1]
    return result


def write_results(name: str, data: dict[str, Any]) -> Path:
    """Write ``data`` to ``bench/results/<name>.json`` and return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


CALIBRATION_STEPS = 5_000_000


def python_speed() -> float:
    """Millions of steps a second of a plain Python loop: how fast this shared machine runs now.

    The same code on the same machine type runs at very different speeds from one hour to
    the next; this figure beside each benchmark's results tells runs on a fast and on a
    slow moment apart.
    """
    total = 0
    started = time.perf_counter()
    for step in range(CALIBRATION_STEPS):
        total += step
    return round(CALIBRATION_STEPS / (time.perf_counter() - started) / 1e6, 1)


def machine_info() -> dict[str, Any]:
    """Cores, memory, Python and library versions, whether wrk is installed, and the machine's speed."""
    memory_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        memory_kib = int(meminfo.readline().split()[1])
    versions = {}
    for name in LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024**2, 1),
        "python": platform.python_version(),
        "libraries": versions,
        "wrk": shutil.which("wrk"),
        "load_average": os.getloadavg(),
        "python_loop_mops": python_speed(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def unique_name(prefix: str) -> str:
    """A name no other run uses: ``<prefix>_<12 hex digits>``."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def fresh_database(kind: str, workdir: Path) -> Iterator[str]:
    """A migrated, empty database URL: a new PostgreSQL schema or a new SQLite file.

    The PostgreSQL schema is dropped on the way out, whatever happened.
    """
    from service.db import make_engine, migrated_schema, upgrade

    if kind == "sqlite":
        url = f"sqlite:///{workdir / unique_name('bench')}.db"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    with migrated_schema(POSTGRES_URL, unique_name("bench")) as url:
        yield url


def seed_model(model_dir: Path) -> str:
    """Train the project's seed model into ``model_dir`` (about ten seconds) and return its version."""
    from models import train_seed_model

    return train_seed_model(model_dir)


BENCH_LIMIT = "100000000 per hour"


def service_env(database_url: str, queue: str, model_dir: Path, **extra: str) -> dict[str, str]:
    """The environment the web app and the workers run with in a benchmark."""
    env = dict(os.environ)
    env.update(
        MODERATION_ENV="production",
        MODERATION_SECRET_KEY=SECRET_KEY,
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        CLASSIFY_QUEUE=queue,
        RETRAIN_QUEUE=f"{queue}-retrain",
        RETRAIN_AFTER_LABELS="0",
        MODEL_DIR=str(model_dir),
        # One address posts everything: limits it never reaches, still counted on every post.
        COMMENT_LIMIT_PER_ADDRESS=BENCH_LIMIT,
        COMMENT_LIMIT_PER_COMMENTER=BENCH_LIMIT,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def purge_queue(connection: Any, queue: str) -> int:
    """Delete every Redis key of ``queue``: its inbox, list, registries and their jobs."""
    names = (queue, f"{queue}-retrain")
    keys: set[bytes] = set()
    for name in names:
        for key in connection.scan_iter(match=f"rq:*:{name}", count=1000):
            keys.add(key)
            members = connection.lrange(key, 0, -1) if connection.type(key) == b"list" else None
            members = members if members is not None else connection.zrange(key, 0, -1)
            keys.update(b"rq:job:" + job_id for job_id in members)
        keys.add(f"moderation:inbox:{name}".encode())
    ordered = sorted(keys)
    deleted = 0
    for start in range(0, len(ordered), 500):
        deleted += connection.delete(*ordered[start : start + 500])
    connection.srem("rq:queues", *(f"rq:queue:{name}" for name in names))
    return int(deleted)


@contextlib.contextmanager
def workspace(prefix: str) -> Iterator[Path]:
    """A temporary folder for logs, SQLite files and models, removed at the end."""
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# ----------------------------------------------------------------------------- load


@dataclass
class LoadResult:
    """What one load run measured. Latencies are in milliseconds."""

    generator: str
    connections: int
    seconds: float
    requests: int
    errors: int
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    target_rate: float | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    accepted: int = 0
    """Answers that accepted the post (no error status): each should be a comment stored."""
    hello_requests_per_s: float | None = None
    """Hello-world's throughput in the run just before this one, which its ratio is taken to."""
    server_cpu_us: float | None = None
    """CPU (user and system) the app's processes spent a request during the run, in
    microseconds: the kernel's work on their sockets is in it, the generator's is not."""
    hello_server_cpu_us: float | None = None
    """The same for hello-world in the run just before this one."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p95_us": %%d, "p99_us": %%d, '
    .. '"errors": %%d, "status_errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def corpus_bodies(datasets: Path, count: int = CORPUS_COMMENTS) -> list[bytes]:
    """Up to ``count`` distinct posts, each ``COMMENT_BODY`` with another comment of the
    corpora under ``datasets`` (a fixed sample, of the lengths ``CORPUS_COMMENT_CHARS``
    allows, every one accepted by the intake's validation); none when no corpus is there.

    Posts whose words a worker has met before score faster than a site's traffic, whose
    words it meets anew now and then: one comment over and over is scored from its caches.
    """
    from models.errors import DataError
    from models.importers import load_all
    from service.validation import SubmissionError, parse_submission

    try:
        examples = load_all(datasets)
    except DataError:
        return []
    shortest, longest = CORPUS_COMMENT_CHARS
    texts = sorted({example.text for example in examples if shortest <= len(example.text) <= longest})
    random.Random(0).shuffle(texts)  # noqa: S311 - a fixed sample, not a secret
    template = json.loads(COMMENT_BODY)
    bodies: list[bytes] = []
    for text in texts:
        fields = {**template, "comment": text}
        try:
            parse_submission(fields)
        except SubmissionError:
            continue
        body = json.dumps(fields).encode()
        if b"]==]" not in body:  # it would end the long string wrk's script quotes it in
            bodies.append(body)
        if len(bodies) == count:
            break
    return bodies


def wrk_available() -> bool:
    """True when the wrk binary is on PATH."""
    return shutil.which("wrk") is not None


def _wrk_bodies(bodies: Sequence[bytes]) -> str:
    """The Lua that gives wrk's requests their bodies: one for all, or each in turn."""
    quoted = [f"[==[{body.decode()}]==]" for body in bodies]
    if len(quoted) == 1:
        return f"wrk.body = {quoted[0]}"
    # Each request built in Lua costs wrk a little; only runs that need distinct bodies pay it.
    return (
        "local bodies = {\n" + ",\n".join(quoted) + "\n}\nlocal turn = 0\n"
        "request = function()\n  turn = turn % #bodies + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[turn])\nend"
    )


def run_wrk(
    port: int, connections: int, seconds: float, workdir: Path, bodies: Sequence[bytes] = ONE_COMMENT
) -> LoadResult:
    """Closed-loop load with wrk (one thread): ``connections`` posting ``bodies`` in turn."""
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT % _wrk_bodies(bodies))
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s"]
    argv += ["-s", str(script), f"http://{HOST}:{port}{COMMENTS_PATH}"]
    output = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    line = next(row for row in output.splitlines() if row.startswith("BENCH_JSON "))
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    elapsed = raw["duration_us"] / 1e6
    return LoadResult(
        generator="wrk",
        connections=connections,
        seconds=round(elapsed, 3),
        requests=raw["requests"],
        errors=raw["errors"] + raw["status_errors"],
        # Only answers that accepted the post: a 429 or 503 answered fast is not throughput.
        requests_per_s=round((raw["requests"] - raw["status_errors"]) / elapsed, 1),
        p50_ms=raw["p50_us"] / 1000,
        p95_ms=raw["p95_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        accepted=raw["requests"] - raw["status_errors"],
    )


def _request_bytes(port: int, body: bytes) -> bytes:
    head = (
        f"POST {COMMENTS_PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def _post_once(port: int, payload: bytes) -> int:
    """One request on a fresh connection (gunicorn's sync workers close after each answer)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(payload)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await reader.readexactly(length)
        return int(head[9:12])
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class _Tally:
    """Latencies and statuses collected by the Python closed-loop generator."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.errors = 0

    async def post(self, port: int, payload: bytes, started: float, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            status = await asyncio.wait_for(_post_once(port, payload), timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            self.errors += 1
            self.statuses["error"] += 1
            return
        self.statuses[str(status)] += 1
        if not 200 <= status < 400:
            self.errors += 1
        self.latencies.append((loop.time() - started) * 1000)

    def result(self, connections: int, seconds: float) -> LoadResult:
        spread = percentiles(self.latencies)
        done = len(self.latencies)
        accepted = sum(n for status, n in self.statuses.items() if status[0] in "23")  # not "error"
        return LoadResult(
            generator="python",
            connections=connections,
            seconds=round(seconds, 3),
            requests=done,
            errors=self.errors,
            requests_per_s=round(accepted / seconds, 1) if seconds else 0.0,
            p50_ms=round(spread["p50"], 3),
            p95_ms=round(spread["p95"], 3),
            p99_ms=round(spread["p99"], 3),
            statuses=dict(self.statuses),
            accepted=accepted,
        )


async def _closed_loop(
    port: int, connections: int, seconds: float, max_requests: int, bodies: Sequence[bytes]
) -> LoadResult:
    loop = asyncio.get_running_loop()
    tally, payloads = _Tally(), [_request_bytes(port, body) for body in bodies]
    start = loop.time()
    deadline = start + seconds
    budget = [max_requests]

    async def client() -> None:
        while loop.time() < deadline and budget[0] > 0:
            turn = max_requests - budget[0]  # the requests sent before this one
            budget[0] -= 1
            await tally.post(port, payloads[turn % len(payloads)], loop.time(), timeout=10.0)

    await asyncio.gather(*(client() for _ in range(connections)))
    return tally.result(connections, loop.time() - start)


def run_python_closed(
    port: int,
    connections: int,
    seconds: float,
    max_requests: int = 10**7,
    bodies: Sequence[bytes] = ONE_COMMENT,
) -> LoadResult:
    """Closed-loop load in Python: ``connections`` clients posting ``bodies`` in turn, back
    to back, bounded."""
    return asyncio.run(_closed_loop(port, connections, seconds, max_requests, bodies))


@dataclass
class _Pending:
    """One open-loop request in flight: when it was due and sent, and what came back so far."""

    due: float
    launched: float
    turn: int
    """Which of the bodies it posts: the requests take them in turn."""
    answer: bytearray = field(default_factory=bytearray)
    sent: bool = False


# An open-loop request that has had no answer this long counts as failed.
OPEN_LOOP_TIMEOUT_S = 30.0
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


def answer_status(answer: bytes) -> str:
    """The status code of a whole HTTP/1 answer read until the server closed, else ``"error"``."""
    status = _STATUS_LINE.match(answer)
    head, separator, body = answer.partition(b"\r\n\r\n")
    if status is None or not separator:
        return "error"
    length = _CONTENT_LENGTH.search(head)
    if length is not None and len(body) < int(length.group(1)):
        return "error"  # cut short
    return status.group(1).decode()


def _in_flight(selector: selectors.BaseSelector) -> list[tuple[socket.socket, _Pending]]:
    # Only run_open_loop's sockets are ever registered.
    return [(cast(socket.socket, key.fileobj), key.data) for key in list(selector.get_map().values())]


def run_open_loop(
    port: int,
    rate: float,
    seconds: float,
    max_in_flight: int = 512,
    stop: threading.Event | None = None,
    receipts: list[tuple[int, float]] | None = None,
    bodies: Sequence[bytes] = ONE_COMMENT,
) -> LoadResult:
    """Open-loop load: one post every ``1/rate`` s for ``seconds``, ``bodies`` in turn, on
    non-blocking sockets.

    Latency counts from the moment a request was due, so a server (or this generator)
    that falls behind shows it: there is no coordinated omission. Every request is sent,
    however late, unless ``stop`` is set; at most ``max_in_flight`` are open at once, the
    rest wait their turn. One request per connection, as gunicorn's sync workers answer,
    read until the server closes it. A request costs the generator a few system calls
    and a little bookkeeping (about 0.2 ms of CPU, most of it the kernel's loopback TCP),
    so it holds hello-world's half rate on two cores, which an asyncio generator could not.
    Requests/s counts the answers that accepted the post (2xx). Into ``receipts``, when
    given, goes each accepted comment's id with the wall-clock time its post was due, so
    that what happens to it later can be timed from then too.
    """
    if rate <= 0:
        raise ValueError(f"rate must be positive, not {rate}")
    payloads = [_request_bytes(port, body) for body in bodies]
    total = max(1, int(rate * seconds))
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    launched = most_open = 0
    start = time.perf_counter()
    wall_start = time.time()
    next_sweep = start + 1.0
    with selectors.DefaultSelector() as selector:

        def finish(sock: socket.socket, pending: _Pending, status: str) -> None:
            selector.unregister(sock)
            sock.close()
            statuses[status] += 1
            if status != "error" and status != "timeout":
                latencies.append((time.perf_counter() - pending.due) * 1000)
            if receipts is not None and status.startswith("2"):
                body = bytes(pending.answer).partition(b"\r\n\r\n")[2]
                receipts.append((int(json.loads(body)["id"]), wall_start + pending.due - start))

        def step(sock: socket.socket, pending: _Pending) -> None:
            if not pending.sent:
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    finish(sock, pending, "error")
                    return
                # A few hundred bytes: the socket buffer takes them whole.
                sock.sendall(payloads[pending.turn % len(payloads)])
                pending.sent = True
                selector.modify(sock, selectors.EVENT_READ, pending)
            elif chunk := sock.recv(65536):
                pending.answer += chunk
            else:
                finish(sock, pending, answer_status(bytes(pending.answer)))

        def can_open() -> bool:
            return launched < total and len(selector.get_map()) < max_in_flight

        try:
            while (launched < total or selector.get_map()) and not (stop is not None and stop.is_set()):
                now = time.perf_counter()
                if now >= next_sweep:
                    next_sweep = now + 1.0
                    for sock, pending in _in_flight(selector):
                        if now - pending.launched > OPEN_LOOP_TIMEOUT_S:
                            finish(sock, pending, "timeout")
                while can_open() and start + launched / rate <= now:
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    sock.setblocking(False)
                    sock.connect_ex((HOST, port))
                    due = start + launched / rate
                    selector.register(sock, selectors.EVENT_WRITE, _Pending(due, now, launched))
                    launched += 1
                most_open = max(most_open, len(selector.get_map()))
                # Sleep until the next request is due; when none can be sent now (all sent, or
                # as many open as allowed), until a socket is ready. Never spin.
                due_in = start + launched / rate - time.perf_counter() if can_open() else 0.05
                for key, _ in selector.select(min(max(due_in, 0.0), 0.05)):
                    ready, pending = key.fileobj, key.data
                    assert isinstance(ready, socket.socket)
                    try:
                        step(ready, pending)
                    except OSError:
                        finish(ready, pending, "error")
        finally:
            for sock, _pending in _in_flight(selector):
                sock.close()
    elapsed = time.perf_counter() - start
    spread = percentiles(latencies)
    errors = sum(n for status, n in statuses.items() if not (status.isdigit() and 200 <= int(status) < 400))
    accepted = sum(n for status, n in statuses.items() if status.startswith("2"))
    return LoadResult(
        generator="python-open-loop",
        connections=most_open,
        seconds=round(elapsed, 3),
        requests=len(latencies),
        errors=errors,
        requests_per_s=round(accepted / elapsed, 1),
        p50_ms=round(spread["p50"], 3),
        p95_ms=round(spread["p95"], 3),
        p99_ms=round(spread["p99"], 3),
        target_rate=rate,
        statuses=dict(statuses),
        accepted=accepted,
    )


def closed_load(
    port: int,
    connections: int,
    seconds: float,
    workdir: Path,
    generator: str,
    bodies: Sequence[bytes] = ONE_COMMENT,
) -> LoadResult:
    """Closed-loop load with wrk when asked for and installed, else the Python generator,
    posting ``bodies`` in turn."""
    if generator == "wrk" or (generator == "auto" and wrk_available()):
        return run_wrk(port, connections, seconds, workdir, bodies)
    return run_python_closed(port, connections, seconds, bodies=bodies)


# -------------------------------------------------------------------------- profiles


def start_profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """Sample ``pid`` and its children with py-spy for ``seconds``, collapsed stacks to ``out``."""
    spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    if spy is None:
        raise RuntimeError("py-spy is not installed: pip install py-spy==0.4.3")
    argv = [spy, "record", "--pid", str(pid), "--subprocesses", "--format", "raw", "--rate", "200"]
    argv += ["--duration", str(max(1, round(seconds))), "--output", str(out), "--nonblocking"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize_profile(path: Path, top: int = 25, root: str | None = None) -> dict[str, Any]:
    """Share of the sampled time per function, from py-spy's collapsed stacks.

    ``inclusive`` counts a function when it is anywhere on the stack, ``self`` when it is
    the innermost frame. With ``root`` (e.g. ``Flask.wsgi_app``) the frames above the
    first frame naming it are left out of ``inclusive``, so the server loop's own frames
    do not crowd the list; ``under_root`` is the share of samples inside ``root``.
    """
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    busy = under_root = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [_frame_name(frame) for frame in stack.split(";") if not frame.startswith("process ")]
        if not frames:
            continue
        count = int(count_text)
        busy += count
        own[frames[-1]] += count
        if root is not None:
            first = next((index for index, name in enumerate(frames) if root in name), None)
            if first is None:
                continue
            under_root += count
            frames = frames[first:]
        for name in set(frames):
            inclusive[name] += count

    def share(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"function": name, "share": round(count / busy, 4)} for name, count in counter.most_common(top)
        ]

    summary: dict[str, Any] = {"samples": busy, "inclusive": share(inclusive), "self": share(own)}
    if root is not None:
        summary["root"], summary["under_root"] = root, round(under_root / busy, 4) if busy else 0.0
    return summary


def _frame_name(frame: str) -> str:
    """``function (path/to/module.py:12)`` → ``function (module.py)``, lines dropped."""
    name, _, location = frame.partition(" (")
    module = location.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in module:
            module = module.split(marker, 1)[1]
    return f"{name} ({module})"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print rows under headers in aligned columns."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(str(header)), *(len(row[i]) for row in cells)) for i, header in enumerate(headers)]
    print("  ".join(str(header).rjust(width) for header, width in zip(headers, widths, strict=True)))
    for row in cells:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))


def child_figures(arguments: Sequence[str], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run ``python *arguments`` in a fresh interpreter (so its peak memory, its imports and
    its environment are its own) and return the JSON object on the last line it prints."""
    completed = subprocess.run(
        [sys.executable, *arguments], env=env, check=True, capture_output=True, text=True
    )
    figures: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return figures
