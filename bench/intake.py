"""Intake throughput and latency of POST /v1/comments against a hello-world Flask app.

Starts the real app (gunicorn, 2 sync workers) on a fresh database with the machine's
Redis; beside it the same app without flood control (to show what counting costs), on
SQLite syncing its log at every commit (to show what surviving a power loss costs), on
PostgreSQL with commits that do not wait for the disk (to show what waiting costs, in
the latency at the default's half-load rate above all); and the apps of
``bench/hello_app.py`` under the same settings: hello-world, and per database hello-world
plus a bare committed insert (the least a storing intake must do). Drives them all with
the same closed-loop generator (wrk when installed, else Python) at several
concurrencies, then the service and hello-world open loop at half of its maximum rate,
measured again just before (the PostgreSQL variant at the service's rate). Prints
requests/s, latency p50/p95/p99 and the ratios ours / hello-world, ours / bare insert and
ours / no flood control, and writes ``bench/results/intake.json``. Only 127.0.0.1 is
loaded; every run is bounded in time.

    .venv/bin/python bench/intake.py                       # SQLite, then PostgreSQL
    .venv/bin/python bench/intake.py --database postgresql --profile
"""

from __future__ import annotations

import argparse
import contextlib
import math
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `bench` and the service importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis
from sqlalchemy import bindparam, create_engine, make_url, text

from bench.common import (
    BENCH_DIR,
    REDIS_URL,
    RESULTS_DIR,
    LoadResult,
    Processes,
    child_figures,
    closed_load,
    cpu_seconds,
    free_port,
    fresh_database,
    gunicorn_argv,
    machine_info,
    print_table,
    purge_queue,
    python_speed,
    run_open_loop,
    seed_model,
    service_env,
    start_profile,
    stop_on_sigterm,
    summarize_profile,
    unique_name,
    wait_for_http,
    workspace,
    write_results,
    wrk_available,
)
from bench.hello_app import DATABASE_ENV, create_table
from service.db import make_engine
from worker.checkpointer import start_checkpointer

# The closed-loop run that measures an app's maximum again right before its half-load run.
MAX_AGAIN_SECONDS = 4.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database", choices=["both", "sqlite", "postgresql"], default="both", help="default: both"
    )
    parser.add_argument("--concurrency", default="1,4,8,16", help="comma-separated (default 1,4,8,16)")
    parser.add_argument("--seconds", type=float, default=8.0, help="per concurrency (default 8)")
    parser.add_argument("--half-load-seconds", type=float, default=10.0, help="fixed-rate run (default 10)")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    parser.add_argument(
        "--profile", action="store_true", help="also profile the app with py-spy at 8 connections"
    )
    parser.add_argument("--out", default="intake", help="results name (default intake)")
    return parser.parse_args(argv)


@dataclass
class Target:
    """One app under test: its name, port and gunicorn process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    url: str = ""
    queue: str = ""
    runs: list[LoadResult] = field(default_factory=list)
    accepted: int = 0
    """Posts the app answered without an error status, in every load it was given (warm-up,
    profile and half load included): each should be a comment in its database."""
    pauses: list[tuple[float, float]] | None = None
    """On SQLite, each checkpoint's pause of every writer: (when it ended, seconds)."""
    answered_ids: list[int] = field(default_factory=list)
    """The comment ids of the open-loop runs' 202 answers, each to be found stored."""

    def counted(self, result: LoadResult) -> LoadResult:
        """``result``, its accepted posts added to ``accepted``."""
        self.accepted += result.accepted
        return result

    @property
    def max_rps(self) -> float:
        """The best closed-loop throughput this app reached."""
        return max(run.requests_per_s for run in self.runs)


def start_target(
    name: str, app: str, env: dict[str, str], procs: Processes, args: argparse.Namespace
) -> Target:
    """Start ``app`` under gunicorn on a free port and wait until it answers."""
    port = free_port()
    pythonpath = BENCH_DIR if app.startswith("hello_app") else None
    process = procs.start(name, gunicorn_argv(app, port, args.workers, pythonpath=pythonpath), env)
    wait_for_http(port, process)
    return Target(name, port, process)


def measure(targets: list[Target], args: argparse.Namespace, workdir: Path, levels: list[int]) -> None:
    """Each concurrency level on every app, each app's run right after one of hello-world's
    (the first target), which its ratio is taken to: the machine's speed moves by half from
    one minute to the next, so a hello-world run a minute earlier is not the same machine."""
    hello, *others = targets

    def load(target: Target, connections: int, seconds: float) -> LoadResult:
        # The app's session holds its gunicorn master and workers and nothing else.
        before = cpu_seconds(session=target.process.pid)
        result = closed_load(target.port, connections, seconds, workdir, args.generator)
        spent = cpu_seconds(session=target.process.pid) - before
        if result.requests:
            result.server_cpu_us = round(spent / result.requests * 1e6, 1)
        return target.counted(result)

    for target in targets:
        load(target, 4, 2)
    for connections in levels:
        for target in others:
            before = load(hello, connections, args.seconds)
            hello.runs.append(before)
            result = load(target, connections, args.seconds)
            result.hello_requests_per_s = before.requests_per_s
            result.hello_server_cpu_us = before.server_cpu_us
            target.runs.append(result)
            _print_run(hello.name, connections, before)
            _print_run(target.name, connections, result)


def _print_run(name: str, connections: int, run: LoadResult) -> None:
    print(
        f"  {name:<10} c={connections:<3} {run.requests_per_s:8.1f} req/s  "
        f"p50 {run.p50_ms:6.2f}  p95 {run.p95_ms:6.2f}  p99 {run.p99_ms:6.2f} ms  errors {run.errors}"
        f"  CPU {run.server_cpu_us or 0:5.0f} us a request",
        flush=True,
    )


def half_load(target: Target, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Open-loop posts at half the app's maximum rate; latency counted from when each was due.

    The maximum is measured again just before, at the concurrency where the app did best,
    so that both runs see this shared machine at the same speed: its speed changes by
    half from one minute to the next, and half of an earlier maximum can be its whole
    capacity now. The Python loop speed before and after shows whether it changed.
    """
    best = max(target.runs, key=lambda run: run.requests_per_s).connections
    speed_before = python_speed()
    maximum = target.counted(closed_load(target.port, best, MAX_AGAIN_SECONDS, workdir, args.generator))
    if not maximum.requests_per_s:
        raise RuntimeError(f"{target.name} answered nothing in {MAX_AGAIN_SECONDS:g} s: {maximum.statuses}")
    rate = maximum.requests_per_s / 2
    began = time.monotonic()
    result = target.counted(open_loop(target, rate, args))
    ended = time.monotonic()
    speed_after = python_speed()
    # A pause of the writers holds up every post meanwhile: the longest is beside the p99.
    pauses = None if target.pauses is None else [p for at, p in target.pauses if began <= at <= ended]
    print(
        f"  {target.name:<10} fixed {rate:7.1f}/s (half of {maximum.requests_per_s:.0f}/s at c={best}):"
        f" got {result.requests_per_s:.1f}/s  p50 {result.p50_ms:.2f}  p95 {result.p95_ms:.2f}"
        f"  p99 {result.p99_ms:.2f} ms  errors {result.errors}  (loop speed {speed_before} -> {speed_after})"
        + ("" if not pauses else f"; longest checkpoint pause {max(pauses) * 1000:.1f} ms of {len(pauses)}"),
        flush=True,
    )
    return {
        **result.as_dict(),
        "max_rps_just_before": maximum.requests_per_s,
        "max_connections": best,
        "python_loop_mops_before": speed_before,
        "python_loop_mops_after": speed_after,
        **(
            {}
            if pauses is None
            else {
                "checkpoints": len(pauses),
                "longest_checkpoint_pause_ms": round(max(pauses, default=0) * 1000, 1),
            }
        ),
    }


def open_loop(target: Target, rate: float, args: argparse.Namespace) -> LoadResult:
    """``run_open_loop`` on ``target``, the ids of the comments it answered 202 kept."""
    receipts: list[tuple[int, float]] = []
    result = run_open_loop(target.port, rate, args.half_load_seconds, receipts=receipts)
    target.answered_ids += [comment_id for comment_id, _due in receipts]
    return result


def same_rate_load(target: Target, rate: float, args: argparse.Namespace) -> dict[str, Any]:
    """Open-loop posts at ``rate`` (another app's half-load rate); latency from when each was due."""
    result = target.counted(open_loop(target, rate, args))
    print(
        f"  {target.name:<10} fixed {rate:7.1f}/s: got {result.requests_per_s:.1f}/s  p50 {result.p50_ms:.2f}"
        f"  p95 {result.p95_ms:.2f}  p99 {result.p99_ms:.2f} ms  errors {result.errors}",
        flush=True,
    )
    return result.as_dict()


def profile_app(target: Target, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Profile the gunicorn master and its workers under load at 8 connections."""
    out = RESULTS_DIR / f"{args.out}-{target.name}.profile.txt"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    spy = start_profile(target.process.pid, args.seconds, out)
    time.sleep(1.0)
    target.counted(closed_load(target.port, 8, args.seconds, workdir, args.generator))
    spy.wait(args.seconds + 30)
    summary = summarize_profile(out, top=40, root="Flask.wsgi_app")
    print(f"  profile of {target.name}: {out}")
    print(f"    {summary['under_root'] * 100:5.1f}%  of samples inside Flask.wsgi_app")
    for row in summary["inclusive"][:30]:
        print(f"    {row['share'] * 100:5.1f}%  {row['function']}")
    return {"collapsed_stacks": str(out.relative_to(BENCH_DIR.parent)), **summary}


def stored_and_outbox(target: Target) -> dict[str, Any]:
    """How many comments and outbox entries the database holds, beside how many posts were
    answered 202: every 202 should be both. The load generators do not count answers still
    on their way when a closed-loop run ends, so the database may hold a few more, which
    would hide as many lost; so the ids of the open-loop runs' 202s are also looked up one
    by one."""
    engine = create_engine(target.url)
    facts: dict[str, Any] = {"accepted_answers": target.accepted}
    with engine.connect() as db:
        facts["stored_comments"] = db.scalar(text("SELECT count(*) FROM comments"))
        # No worker runs here, so every comment's classification job waits in the outbox.
        facts["outbox_entries"] = db.scalar(text("SELECT count(*) FROM classify_outbox"))
        if db.dialect.name == "postgresql":
            # As the app's sessions had it: ``target.url`` carries their connection options.
            facts["synchronous_commit"] = db.scalar(text("SHOW synchronous_commit"))
    engine.dispose()
    return {**facts, **answered_but_missing(target.url, target.answered_ids)}


def answered_but_missing(url: str, ids: list[int], chunk: int = 500) -> dict[str, int]:
    """Of the comment ids that answers gave, how many the database at ``url`` holds no
    comment for, and how many no outbox entry (the durable record of its job)."""
    comments = text("SELECT count(*) FROM comments WHERE id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    outbox = text("SELECT count(*) FROM classify_outbox WHERE comment_id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    unique = sorted(set(ids))
    found_comments = found_entries = 0
    engine = create_engine(url)
    with engine.connect() as db:
        for start in range(0, len(unique), chunk):
            part = unique[start : start + chunk]
            found_comments += int(db.scalar(comments, {"ids": part}) or 0)
            found_entries += int(db.scalar(outbox, {"ids": part}) or 0)
    engine.dispose()
    return {
        "answered_ids_checked": len(ids),
        # An id answered twice would be two posts stored as one.
        "answered_without_comment": len(ids) - found_comments,
        "answered_without_outbox_entry": len(ids) - found_entries,
    }


@contextlib.contextmanager
def checkpointing(url: str, pauses: list[tuple[float, float]] | None = None) -> Iterator[None]:
    """Checkpoint a SQLite database's WAL as a running worker would; no worker runs here.
    Each checkpoint's pause of the writers goes to ``pauses``: (when it ended, seconds)."""
    engine = make_engine(url)
    stop = threading.Event()

    def observe(paused: float) -> None:
        if pauses is not None:
            pauses.append((time.monotonic(), paused))

    thread = start_checkpointer(engine, stop, observe=observe)
    try:
        yield
    finally:
        stop.set()
        if thread is not None:
            thread.join()
        engine.dispose()


def run_all(
    args: argparse.Namespace, procs: Processes, workdir: Path, levels: list[int], kinds: list[str]
) -> dict[str, Any]:
    """Start hello-world, and on each database the bare insert and the service; measure, profile, count."""
    model_dir = workdir / "models"
    seed_model(model_dir)
    connection = redis.Redis.from_url(REDIS_URL)
    with contextlib.ExitStack() as stack:
        stack.callback(connection.close)
        targets = [
            start_target("hello", "hello_app:create_app()", service_env("", "unused", workdir), procs, args)
        ]
        for kind in kinds:
            queue = unique_name("bench_intake")
            stack.callback(purge_queue, connection, queue)
            url = stack.enter_context(fresh_database(kind, workdir))
            pauses: list[tuple[float, float]] = []
            stack.enter_context(checkpointing(url, pauses))
            stack.callback(procs.stop_all)  # servers end before their schema is dropped
            target = start_target(
                kind, "service:create_app()", service_env(url, queue, model_dir), procs, args
            )
            target.url, target.queue = url, queue
            target.pauses = pauses if kind == "sqlite" else None
            targets.append(target)
            # The same service without flood control, to show in the same run what counting costs.
            plain = stack.enter_context(fresh_database(kind, workdir))
            stack.enter_context(checkpointing(plain))
            off = {"COMMENT_LIMIT_PER_ADDRESS": "", "COMMENT_LIMIT_PER_COMMENTER": ""}
            env = service_env(plain, unique_name("bench_intake"), model_dir, **off)
            unlimited = start_target(unlimited_name(kind), "service:create_app()", env, procs, args)
            unlimited.url = plain
            targets.append(unlimited)
            if kind == "sqlite":
                # The service syncing its log at every commit, so that a 202 survives a power
                # loss too: what that costs, in the same run.
                synced = stack.enter_context(fresh_database(kind, workdir))
                stack.enter_context(checkpointing(synced))
                env = service_env(synced, unique_name("bench_intake"), model_dir, SQLITE_FULL_SYNC="true")
                full_sync = start_target(full_sync_name(kind), "service:create_app()", env, procs, args)
                full_sync.url = synced
                targets.append(full_sync)
            else:
                # The service with commits that do not wait for the disk: what waiting costs,
                # in the latency tail at half load above all.
                unsynced = stack.enter_context(fresh_database(kind, workdir))
                env = service_env(without_commit_sync(unsynced), unique_name("bench_intake"), model_dir)
                async_commit = start_target(async_commit_name(kind), "service:create_app()", env, procs, args)
                # With the option, so that the setting recorded after the run is the one it ran with.
                async_commit.url = without_commit_sync(unsynced)
                targets.append(async_commit)
            reference = stack.enter_context(fresh_database(kind, workdir))
            stack.enter_context(checkpointing(reference))
            create_table(reference)
            env = service_env("", "unused", workdir, **{DATABASE_ENV: reference})
            storing = "hello_app:create_storing_app()"
            targets.append(start_target(insert_name(kind), storing, env, procs, args))
        measure(targets, args, workdir, levels)
        names = (insert_name, unlimited_name, full_sync_name, async_commit_name)
        references = {name(kind) for kind in kinds for name in names}
        unsynced_of = {async_commit_name(kind): kind for kind in kinds}
        results: dict[str, Any] = {}
        for target in targets:
            entry: dict[str, Any] = {
                "runs": [run.as_dict() for run in target.runs],
                "max_rps": target.max_rps,
            }
            if target.name not in references:
                entry["half_load"] = half_load(target, args, workdir)
            elif target.name in unsynced_of:
                # At the default's rate, so that the two differ only in what a commit waits for.
                rate = results[unsynced_of[target.name]]["half_load"]["target_rate"]
                entry["same_rate_load"] = same_rate_load(target, rate, args)
            if args.profile and target.name in kinds:
                entry["profile"] = profile_app(target, args, workdir)
            procs.stop(target.name)
            if target.url:
                entry.update(stored_and_outbox(target))
            results[target.name] = entry
        return results


def request_costs(kind: str, workdir: Path) -> dict[str, float]:
    """CPU per request in one process on a fresh ``kind`` database (``bench/request_costs.py``,
    in a child with the service's environment): hello-world, the service's Flask alone,
    the service, and its transaction."""
    with fresh_database(kind, workdir) as url, checkpointing(url):
        env = service_env(url, unique_name("bench_costs"), workdir / "models")
        costs = child_figures([str(BENCH_DIR / "request_costs.py")], env)
    print(
        f"  {kind}: CPU a request in one process: hello {costs['hello_us']:.0f} us, the service's Flask"
        f" with hello's view {costs['service_with_hello_view_us']:.0f} us, the service"
        f" {costs['service_us']:.0f} us, of which Intake.submit {costs['intake_submit_us']:.0f} us",
        flush=True,
    )
    return costs


def insert_name(kind: str) -> str:
    """The name of the bare-insert app on database ``kind``."""
    return f"{kind}-insert"


def unlimited_name(kind: str) -> str:
    """The name of the service without flood control on database ``kind``."""
    return f"{kind}-no-flood-control"


def full_sync_name(kind: str) -> str:
    """The name of the service syncing SQLite's log at every commit (``SQLITE_FULL_SYNC``)."""
    return f"{kind}-full-sync"


def async_commit_name(kind: str) -> str:
    """The name of the service whose PostgreSQL commits do not wait for the disk."""
    return f"{kind}-async-commit"


def without_commit_sync(url: str) -> str:
    """``url`` with its sessions' ``synchronous_commit`` off: a commit returns before its
    log record reaches the disk, so a crash of the server or the machine may lose the
    last fraction of a second of commits."""
    parsed = make_url(url)
    options = f"{parsed.query.get('options', '')} -csynchronous_commit=off".strip()
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


def _against_default(variant: dict[str, Any], ours: dict[str, Any]) -> str:
    """Record each run of a variant of the service against hello-world and the service
    (``ratio_to_hello``, ``ratio_to_default``); the line that says the latter."""
    for index, run in enumerate(variant["runs"]):
        run["ratio_to_hello"] = _ratio(run["requests_per_s"], run["hello_requests_per_s"])
        run["ratio_to_default"] = _ratio(run["requests_per_s"], ours["runs"][index]["requests_per_s"])
    return ", ".join(
        f"c={run['connections']} {run['requests_per_s']:.0f}/s = {run['ratio_to_default']:.2f} x ours"
        for run in variant["runs"]
    )


def _ratio(ours: float, theirs: float | None) -> float:
    """``ours / theirs`` to three places; NaN where the other app accepted nothing (a broken run)."""
    return round(ours / theirs, 3) if theirs else math.nan


def report(results: dict[str, Any], levels: list[int]) -> None:
    """Print the comparison table: ours / hello-world and ours / bare insert at each concurrency."""
    apps = results["apps"]
    for kind in ("sqlite", "postgresql"):
        if kind not in apps:
            continue
        ours, insert, unlimited = apps[kind], apps[insert_name(kind)], apps[unlimited_name(kind)]
        stored, outbox = ours["stored_comments"], ours["outbox_entries"]
        print(
            f"\n{kind}: ours vs hello-world ({ours['accepted_answers']} posts answered 202,"
            f" {stored} comments stored, {outbox} outbox entries)"
        )
        rows = []
        for index, connections in enumerate(levels):
            mine, bare, plain = ours["runs"][index], insert["runs"][index], unlimited["runs"][index]
            for run in (mine, bare, plain):
                run["ratio_to_hello"] = _ratio(run["requests_per_s"], run["hello_requests_per_s"])
            ratio = mine["ratio_to_hello"]
            to_insert = mine["ratio_to_insert"] = _ratio(mine["requests_per_s"], bare["requests_per_s"])
            to_plain = _ratio(mine["requests_per_s"], plain["requests_per_s"])
            mine["ratio_to_no_flood_control"] = to_plain
            rows.append(
                [connections, mine["hello_requests_per_s"], bare["requests_per_s"], plain["requests_per_s"]]
                + [mine["requests_per_s"], f"{ratio:.2f}", f"{to_insert:.2f}", f"{to_plain:.2f}"]
                + [f"{mine[key]:.2f}" for key in ("p50_ms", "p95_ms", "p99_ms")]
                + [f"{mine['server_cpu_us'] or 0:.0f} / {mine['hello_server_cpu_us'] or 0:.0f}"]
            )
        header = ["conc", "hello/s", "insert/s", "no-flood/s", "ours/s", "/hello", "/insert", "/no-flood"]
        header += ["p50 ms", "p95 ms", "p99 ms", "CPU us/req ours / hello"]
        print_table(header, rows)
        synced = apps.get(full_sync_name(kind))
        if synced:
            print(f"with SQLITE_FULL_SYNC (the log synced at every commit): {_against_default(synced, ours)}")
        unsynced = apps.get(async_commit_name(kind))
        if unsynced:
            print(
                "with synchronous_commit off (commits not waiting for the disk): "
                f"{_against_default(unsynced, ours)}; at ours' half-load rate p99 "
                f"{unsynced['same_rate_load']['p99_ms']:.1f} ms"
            )
        # Against hello-world's best in the runs paired with ours: its best over every app's
        # runs is the highest of several times as many samples of a noisy machine.
        paired = max(run["hello_requests_per_s"] for run in ours["runs"])
        ours["max_ratio_to_hello"] = _ratio(ours["max_rps"], paired)
        half = ours["half_load"]
        print(
            f"max {ours['max_rps']:.0f}/s = {ours['max_ratio_to_hello']:.2f} x hello"
            f" ({paired:.0f}/s in the runs paired with ours);"
            f" at half ({half['target_rate']:.0f}/s) p99 {half['p99_ms']:.1f} ms"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the intake benchmark and write its JSON."""
    args = parse_args(argv)
    stop_on_sigterm()
    levels = [int(level) for level in args.concurrency.split(",")]
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    use_wrk = args.generator == "wrk" or (args.generator == "auto" and wrk_available())
    generator = "wrk" if use_wrk else "python"
    results: dict[str, Any] = {"machine": machine_info(), "generator": generator, "settings": vars(args)}
    started = time.monotonic()
    with workspace("bench-intake") as workdir:
        procs = Processes(workdir)
        try:
            print(f"generator: {generator}; gunicorn {args.workers} sync workers", flush=True)
            results["apps"] = run_all(args, procs, workdir, levels, kinds)
            results["request_costs"] = {kind: request_costs(kind, workdir) for kind in kinds}
        finally:
            procs.stop_all()
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    write_results(args.out, results)  # kept whatever the report below meets
    report(results, levels)
    print(f"\nwrote {write_results(args.out, results)} in {results['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
