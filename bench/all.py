"""Run every benchmark and write docs/performance.md from their results.

    .venv/bin/python bench/all.py                  # about 20 minutes
    .venv/bin/python bench/all.py --render-only    # the document from bench/results/*.json

Runs ``bench/intake.py --profile``, ``bench/pipeline.py``, ``bench/model.py`` and
``bench/review_queue.py`` one after another (each in its own process, each writing
``bench/results/<name>.json``), then renders the document: the machine, the library
versions, every figure, the same-run ratios and each target met or missed. No figure of
the run is typed by hand; what it says about a target is computed from the JSON. Only
the design notes (``DESIGN``) quote figures of their own, from the measurements that
led to each change, and say so.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.importers import DATASETS_ENV, IMPORTERS, datasets_dir

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
DOCUMENT = BENCH.parent / "docs" / "performance.md"
DEPTH_PLOT = "performance-queue-depth.png"
SCRIPTS: dict[str, list[str]] = {
    "intake": ["intake.py", "--profile"],
    "pipeline": ["pipeline.py"],
    "model": ["model.py"],
    "review_queue": ["review_queue.py"],
}


DESIGN = [
    "## What the hot paths do",
    "",
    "- **Intake** is one transaction: an upsert of the post's flood-control counters (one per "
    "limit of its client address and of its commenter), an INSERT of the comment and of its outbox "
    "entry, then the commit; on PostgreSQL all of it is one statement in autocommit, which inserts "
    "the comment only if no counter is over its limit. The statements are SQLAlchemy Core, "
    "compiled once per engine and run on the pooled DBAPI cursor, which halves the database cost "
    "of a request; no ORM unit of work and no audit row (the comment row records its arrival). The "
    "outbox entry is the durable record of the classification job. The benchmark sets limits its "
    "load never reaches, so every post is counted. Counting in Redis instead (one script call a "
    "post, as the service did before) cost 17 to 26 % of the intake's throughput. Each web process "
    "freezes the objects it made at start-up out of the garbage collector's reach: a full "
    "collection walked all 130,000 of them in about 60 ms, every few seconds under load, and the "
    "requests waiting meanwhile made the p99 at half load.",
    "- **Dispatch**: a thread in one worker (the holder of a lease in Redis; with every worker "
    "polling, N workers made N times the rounds and jobs) moves outbox entries to a Redis inbox "
    "list, up to 500 per round trip, and enqueues an RQ job when the inbox goes from empty to "
    "non-empty; it polls every 40 ms while there is work and backs off to 100 ms when the outbox "
    "stays empty. A round usually starts a job, whose fixed cost its comments share: polling every "
    "20 ms, at 656 posts/s (1 worker, 20 s phases, runs alternated), jobs took 15 comments and web, "
    "workers and PostgreSQL kept 1.62 to 1.81 of the two cores busy; every 40 ms, 29 comments and "
    "1.41 to 1.44 cores, the workers' CPU a comment 0.44 to 0.47 ms against 0.67 to 0.75, for about "
    "10 ms more from post to verdict at a quarter of that rate. On PostgreSQL a round is one Core "
    "statement (a DELETE of the oldest entries no other round holds, returning their ids, "
    "committed once Redis has them): as two statements through the ORM, a round of 14 entries "
    "cost 0.9 ms of the worker's CPU against 0.35 ms, and at 625 posts a second the dispatcher "
    "made a fifth of the worker's samples.",
    "- **Classification**: a job takes up to `CLASSIFY_BATCH` ids, enqueues the next job if ids "
    "remain (so a second worker starts at once), scores the batch in one model call and stores it "
    "with one guarded UPDATE of the whole batch from a VALUES list (returning the comments it won) "
    "and one multi-row insert each for verdicts and audit events, in one commit. A shallow queue "
    "is drained one comment per job, a deep one many.",
    "- **Workers** are `SimpleWorker` subclasses: no fork per job, the model loaded once per "
    "process and frozen out of the garbage collector's reach (no full collection walks it in the "
    "middle of a batch), RQ's per-job logging only at DEBUG. A pool (`moderation worker "
    "--processes N`) loads the model once, scores one comment with it (so what scoring makes on "
    "first use is made once too) and forks its workers, which share it copy-on-write; a version "
    "activated later is loaded once more by the pool, which then replaces its workers one at a time.",
    "- **SQLite** writers from all processes queue on a file lock instead of SQLite's sleeping "
    "busy handler, and a thread in one worker checkpoints the WAL four times a second (the "
    "last few pages with writers paused, so the log starts over), so a request's commit does "
    "not copy pages back into the database file (the intake benchmark, which runs no worker, "
    "runs that thread itself). The pause lasts as long as the disk takes to sync those pages: "
    "usually a few milliseconds, once in about 2,300 checkpoints 154 ms in a probe of this "
    "benchmark, which is the stall that has set the SQLite p99 at half load in some runs; the "
    "service logs a pause past 50 ms, and the intake benchmark reports the longest of its "
    "half-load phase. PostgreSQL connections are pooled without a ping per checkout.",
    "- **Review queue** pages by keyset cursor over one index per status and order (status then "
    "score, or status then time): a listing of every status takes each status's first rows after the "
    "cursor and merges them, so no index spans the statuses and a new comment updates one index fewer.",
    "",
]


def cannot_run(names: Sequence[str]) -> dict[str, str]:
    """Why each of ``names`` that cannot run on this machine would stop at once: the
    classifier's benchmark without the corpora folder. Started anyway, it would end the
    whole run there, before the benchmarks after it and the document."""
    reasons = {}
    if "model" in names and not datasets_dir().is_dir():
        reasons["model"] = f"the corpora folder {datasets_dir()} is not there; set `{DATASETS_ENV}`"
    return reasons


def run_benchmarks(names: Sequence[str]) -> dict[str, float]:
    """Run each named benchmark script in turn; return the seconds each took."""
    took = {}
    for name in names:
        started = time.monotonic()
        print(f"\n=== bench/{SCRIPTS[name][0]} ===", flush=True)
        subprocess.run([sys.executable, str(BENCH / SCRIPTS[name][0]), *SCRIPTS[name][1:]], check=True)
        took[name] = time.monotonic() - started
    return took


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _n(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _verdict(met: bool) -> str:
    return "**met**" if met else "**missed**"


def render_machine(results: dict[str, Any]) -> list[str]:
    """The machine and library versions, from the first result that recorded them."""
    machine = next((r["machine"] for r in results.values() if r and "machine" in r), None)
    if machine is None:
        return []
    libraries = ", ".join(f"{name} {version}" for name, version in machine.get("libraries", {}).items())
    rows = [
        ["cores, memory", f"{machine.get('nproc')}, {machine.get('memory_gib')} GiB"],
        ["Python", machine.get("python", "")],
        ["libraries", libraries],
        [
            "load generator",
            "wrk (closed loop) when installed, else Python; fixed rates: Python, open loop, non-blocking",
        ],
    ]
    for name, result in results.items():
        if result and "machine" in result:
            load = result["machine"].get("load_average")
            started = result["machine"].get("started", "")
            speed = result["machine"].get("python_loop_mops")
            pace = f"; a plain Python loop ran {speed} M steps/s" if speed else ""
            if load:
                rows.append([f"`{name}` started", f"{started}, load average {load[0]:.2f} before it{pace}"])
    return ["## Machine", "", *_table(["", ""], rows)]


def _variant_runs(variant: dict[str, Any]) -> str:
    """A variant of the service's runs, each against hello-world and the service's own."""
    return ", ".join(
        f"{_n(run['requests_per_s'])} req/s at {run['connections']} "
        f"({run['ratio_to_hello']:.2f} of hello-world, {run['ratio_to_default']:.2f} of the default)"
        for run in variant["runs"]
    )


def _full_sync_lines(apps: dict[str, Any]) -> list[str]:
    """What syncing SQLite's log at every commit (``SQLITE_FULL_SYNC``) cost, when it was measured."""
    synced = apps.get("sqlite-full-sync")
    if not synced or "ratio_to_default" not in synced["runs"][0]:
        return []
    figures = _variant_runs(synced)
    return [
        "By default SQLite syncs its write-ahead log to disk at checkpoints (`synchronous=NORMAL`, "
        "the setting `../shared/PERFORMANCE.md` measures the stack with): a 202 survives the crash "
        "of any process, but the last commits before a power loss or an OS crash may be lost. "
        f"With `SQLITE_FULL_SYNC=true` every commit waits for the disk: {figures}.",
        "",
    ]


def _async_commit_lines(apps: dict[str, Any]) -> list[str]:
    """What PostgreSQL's commits waiting for the disk cost, when the variant without was measured."""
    unsynced = apps.get("postgresql-async-commit")
    if not unsynced or "ratio_to_default" not in unsynced["runs"][0]:
        return []
    figures = _variant_runs(unsynced)
    same, default = unsynced["same_rate_load"], apps["postgresql"]["half_load"]
    share = 1 - same["p99_ms"] / default["p99_ms"] if default["p99_ms"] else 0.0
    return [
        "On PostgreSQL every commit waits for its log record to reach the disk (`synchronous_commit` "
        "on, the server's default), so a 202 survives a power loss. The same service with its "
        "sessions' `synchronous_commit` off (a server or role setting, not one of the service's: a "
        "crash of the server or the machine may then lose the last fraction of a second of posts), "
        f"on a database of its own: {figures}. At the default's half-load rate "
        f"({default['target_rate']:.0f}/s) its p99 was {same['p99_ms']:.1f} ms against the default's "
        f"{default['p99_ms']:.1f} ms: waiting for the disk made "
        f"{max(share, 0.0) * 100:.0f} % of the default's p99 there.",
        "",
    ]


def _stored_verdict(services: Sequence[dict[str, Any]]) -> str:
    """Whether every post the service answered 202 was found stored with its outbox entry.

    Only results that counted the 202s can say so; the databases may hold a few more
    comments than that (answers still on their way when a closed-loop run ended).
    """
    if not all("accepted_answers" in entry for entry in services):
        return (
            "The posts answered 202 were not counted, so this run does not show that each was stored; "
            "after the run the databases held"
        )
    if all(
        entry["stored_comments"] >= entry["accepted_answers"]
        and entry["outbox_entries"] == entry["stored_comments"]
        # The counts cannot show a lost 202 beside comments whose answers were still on
        # their way; the ids of the open-loop runs' answers can.
        and not entry.get("answered_without_comment")
        and not entry.get("answered_without_outbox_entry")
        for entry in services
    ):
        return "After the run every 202 was in the database with its outbox entry"
    return "After the run **not every 202 was in the database with its outbox entry**"


def _tail_verdict(p99_ms: float, target_ms: float, left_out: int) -> str:
    """Whether a p99 met its target, and what it left out: a percentile of the answers (or
    verdicts) that came says nothing of the requests that failed or the comments never
    decided, so a run with any of those misses its target whatever its p99."""
    verdict = _verdict(p99_ms < target_ms and not left_out)
    return verdict if not left_out else f"{verdict}, {left_out:,} left out of the p99: failed or undecided"


def _left_out_of_half_load(half: dict[str, Any]) -> int:
    """Requests of an open-loop intake run without an accepted answer (errors, timeouts,
    refusals): the generator's latencies leave the failed ones out."""
    return int(half.get("errors", 0))


def _left_out_of_phase(phase: dict[str, Any]) -> int:
    """Posts of a pipeline phase without a submit-to-verdict latency: those that failed, those
    stored but never decided within the wait, and those decided whose answer never came."""
    undecided = phase["comments"] - phase["verdicts"]
    return int(phase.get("post_errors", 0) + undecided + phase.get("undated_verdicts", 0))


def _pause_cell(half: dict[str, Any]) -> str:
    """The half-load phase's longest pause of the writers for a WAL checkpoint, and how many
    checkpoints it ran; a dash where they were not recorded (on PostgreSQL, which has none;
    hello-world; results from before they were)."""
    if "longest_checkpoint_pause_ms" not in half:
        return "-"
    return f"{half['longest_checkpoint_pause_ms']:.1f} ({half['checkpoints']})"


def _cpu_sentence(run: dict[str, Any] | None) -> str:
    """What the service's gunicorn processes spent a request against hello-world's, in the
    paired runs of ``run`` (a service run at 8 connections); empty for results without it."""
    if not run or not run.get("server_cpu_us") or not run.get("hello_server_cpu_us"):
        return ""
    ours, hello = run["server_cpu_us"], run["hello_server_cpu_us"]
    share, ratio = hello / ours, run["ratio_to_hello"]
    # Two cores both busy: the throughputs stand as the inverse of the CPU a request.
    verdict = (
        "so what holds the intake back is what its requests cost, not time they wait"
        if abs(share - ratio) <= 0.1 * ratio
        else "so part of what holds the intake back is time its requests wait, not CPU"
        if ratio < share
        else "the generator beside them taking a larger share of the cores from hello-world"
    )
    return (
        f" Under gunicorn the service's processes spent {ours:,.0f} µs of CPU a request there (the "
        f"kernel's work on their sockets included) against hello-world's {hello:,.0f} µs: "
        f"{share:.2f} of the CPU a request beside {ratio:.2f} of the throughput, {verdict}."
    )


def render_intake(intake: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The intake tables and its target lines."""
    apps = intake["apps"]
    kinds = [kind for kind in ("sqlite", "postgresql") if kind in apps]
    # Each app's ratio is to the hello-world run just before it; the column shows the service's.
    header = ["connections", "hello-world req/s", "bare insert req/s (ratio)"]
    header += ["service without flood control req/s (ratio)", "service req/s", "ratio to hello-world"]
    header += ["ratio to bare insert", "ratio to no flood control", "p50 / p95 / p99 ms"]
    tables: list[str] = []
    for kind in kinds:
        rows = []
        for index, ours in enumerate(apps[kind]["runs"]):
            bare = apps[f"{kind}-insert"]["runs"][index]
            plain = apps[f"{kind}-no-flood-control"]["runs"][index]
            rows.append(
                [
                    ours["connections"],
                    # Results from before each app had its own hello-world run kept one per level.
                    _n(ours.get("hello_requests_per_s") or apps["hello"]["runs"][index]["requests_per_s"]),
                    f"{_n(bare['requests_per_s'])} ({bare['ratio_to_hello']:.2f})",
                    f"{_n(plain['requests_per_s'])} ({plain['ratio_to_hello']:.2f})",
                    _n(ours["requests_per_s"]),
                    f"{ours['ratio_to_hello']:.2f}",
                    f"{ours['ratio_to_insert']:.2f}",
                    f"{ours['ratio_to_no_flood_control']:.2f}",
                    f"{ours['p50_ms']:.1f} / {ours['p95_ms']:.1f} / {ours['p99_ms']:.1f}",
                ]
            )
        tables += [f"On {kind}:", "", *_table(header, rows)]
    half_rows = [
        [
            name,
            _n(entry["half_load"]["max_rps_just_before"]),
            f"{entry['half_load']['target_rate']:.0f}/s",
            _n(entry["half_load"]["requests_per_s"]),
            f"{entry['half_load']['p50_ms']:.1f}",
            f"{entry['half_load']['p95_ms']:.1f}",
            f"{entry['half_load']['p99_ms']:.1f}",
            "{python_loop_mops_before} → {python_loop_mops_after}".format(**entry["half_load"]),
            _pause_cell(entry["half_load"]),
        ]
        for name, entry in apps.items()
        if "half_load" in entry
    ]
    stored = ", ".join(
        f"{kind}: {apps[kind].get('stored_comments', 0):,} comments and "
        f"{apps[kind].get('outbox_entries', 0):,} outbox entries"
        + (
            f" for {apps[kind]['accepted_answers']:,} posts answered 202"
            if "accepted_answers" in apps[kind]
            else ""
        )
        + (
            f", each of the {apps[kind]['answered_ids_checked']:,} ids the open-loop runs' answers gave"
            f" looked up: {apps[kind]['answered_without_comment']:,} without a comment,"
            f" {apps[kind]['answered_without_outbox_entry']:,} without an outbox entry"
            if "answered_ids_checked" in apps[kind]
            else ""
        )
        for kind in kinds
    )
    lines = [
        "## Intake: POST /v1/comments against hello-world",
        "",
        "```sh",
        ".venv/bin/python bench/intake.py --profile",
        "```",
        "",
        f"All apps under `gunicorn --workers {intake['settings']['workers']}` (sync workers), the same "
        f"generator ({intake['generator']}), {intake['settings']['seconds']:g} s per level; "
        "each app's run comes right after a hello-world run at the same concurrency, and its ratio "
        "is to that one (the hello-world column shows the one before the service). "
        "The hello-world app (`bench/hello_app.py`) parses the same JSON body and answers 202; the "
        "bare-insert app does the same and also commits the body as one row of a table without "
        "indexes, through a DBAPI connection opened and tuned as the service's are, which is "
        "the least an intake that stores a comment before answering must do. The service validates, "
        "encrypts the email, and in one transaction counts the post for flood control (two counters, "
        "with limits the load never reaches) and stores the comment (four indexes) with its outbox "
        "entry before answering; it is also run with flood control off, on a database of its own. "
        f"{_stored_verdict([apps[kind] for kind in kinds])} ({stored}).",
        "",
        *tables,
        *_full_sync_lines(apps),
        *_async_commit_lines(apps),
        "At half of each app's maximum rate, measured again just before at its best concurrency "
        "(open-loop generator on non-blocking sockets; latency from when each request was due):",
        "",
        *_table(
            [
                *("app", "max req/s", "offered", "reached req/s", "p50 ms", "p95 ms", "p99 ms"),
                *("loop M steps/s", "longest checkpoint pause ms (of)"),
            ],
            half_rows,
        ),
    ]
    for kind in kinds:
        profile = apps[kind].get("profile")
        if profile:
            lines += [f"Where a {kind} request's samples go (py-spy, both workers, 8 connections):", ""]
            top = [[row["function"], f"{row['share'] * 100:.1f} %"] for row in profile["inclusive"][:14]]
            lines += _table(["function (inclusive)", "share of samples"], top)
    sqlite = apps.get("sqlite", {}).get("profile")
    if sqlite:
        shares = {row["function"].split(" (")[0]: row["share"] for row in sqlite["inclusive"]}
        at_eight = next((run for run in apps["sqlite"]["runs"] if run["connections"] == 8), None)
        measured = (
            f"here the service reached {at_eight['requests_per_s']:,.0f} req/s = "
            f"{at_eight['ratio_to_hello']:.2f} at 8 connections"
            if at_eight
            else "see the table above"
        )
        bare = next(
            (run for run in apps.get("sqlite-insert", {}).get("runs", []) if run["connections"] == 8), None
        )
        cost = (
            f" ({at_eight['ratio_to_no_flood_control']:.2f} of its own throughput without flood control)"
            if at_eight and "ratio_to_no_flood_control" in at_eight
            else ""
        )
        floor = (
            f"one committed SQLite insert of a bare row already takes hello-world down to "
            f"{bare['ratio_to_hello']:.2f} at 8 connections"
            if bare
            else "a committed SQLite insert costs a large share of hello-world's request"
        )
        # Whether this run's service reached the target is the JSON's to say, not the prose's.
        below = at_eight is None or at_eight["ratio_to_hello"] < 0.6
        opening = "Why the intake stays below 0.6" if below else "What the intake's request costs"
        lines += [
            f"{opening}: on this machine {floor} "
            "(and `../shared/PERFORMANCE.md` puts a SQLite insert plus one naive RQ enqueue at 0.35); "
            f"{measured}, counting the post for flood control and committing the comment and its job "
            f"(a commit that survives the crash of any process){cost}. "
            f"In its workers {shares.get('Flask.wsgi_app', 0):.0%} of the samples are inside Flask (the "
            f"view included) and {shares.get('Intake.submit', 0):.0%} in `Intake.submit` (the counters' "
            f"upsert, two inserts and the commit on the DBAPI cursor).{_cpu_sentence(at_eight)}",
            "",
        ]
    costs = intake.get("request_costs", {})
    if costs:
        rows = [
            [
                kind,
                f"{figures['hello_us']:.0f}",
                f"{figures['service_with_hello_view_us']:.0f}",
                f"{figures['service_us']:.0f}",
                f"{figures['intake_submit_us']:.0f}",
            ]
            for kind, figures in costs.items()
        ]
        times = [figures["intake_submit_us"] / figures["hello_us"] for figures in costs.values()]
        lines += [
            "CPU per request in one process (`bench/request_costs.py`: each app's WSGI callable "
            "called directly, no gunicorn and no network, the CPU time of the calling thread, best of "
            "five rounds of 2,000 requests; PostgreSQL's own CPU is not in it). The second column is "
            "the service's app with hello-world's view in place of its intake view: Flask and the "
            f"service's hooks. The intake's transaction alone costs {min(times):.1f} to "
            f"{max(times):.1f} times hello-world's whole request:",
            "",
            *_table(
                [
                    "database",
                    "hello-world µs",
                    "service, hello-world's view µs",
                    "service µs",
                    "of which `Intake.submit` µs",
                ],
                rows,
            ),
        ]
    targets = []
    for kind in kinds:
        ratios = [run["ratio_to_hello"] for run in apps[kind]["runs"]]
        half_load = apps[kind]["half_load"]
        half = half_load["p99_ms"]
        unsynced = apps.get(f"{kind}-async-commit", {}).get("same_rate_load")
        beside = f"; with commits not waiting for the disk {unsynced['p99_ms']:.1f} ms" if unsynced else ""
        pause = apps[kind]["half_load"].get("longest_checkpoint_pause_ms")
        if pause is not None:
            beside += f"; the longest pause of every writer for a WAL checkpoint in that phase {pause:.1f} ms"
        targets.append(
            f"- Intake on {kind}: {min(ratios):.2f} to {max(ratios):.2f} of hello-world at the same "
            f"concurrency (target 0.6: {_verdict(min(ratios) >= 0.6)}); p99 at half the maximum rate "
            f"{half:.1f} ms (target 50 ms: {_tail_verdict(half, 50, _left_out_of_half_load(half_load))}"
            f"{beside})."
        )
    return lines, targets


def _verdict_end(pipeline: dict[str, Any]) -> str:
    """Where the results' submit-to-verdict latency ends: at the commit of the verdict, or, in
    results from before that was read, at the verdict's ``created_at``, stamped before its
    batch was written and committed."""
    phases = [phase for entry in pipeline["by_workers"].values() for phase in entry["phases"]]
    if not all("verdicts_without_job_end" in phase for phase in phases):
        return "its verdict's `created_at` (stamped before the batch's write and commit, which it leaves out)"
    lag = max(phase["created_at_to_commit_p99_ms"] for phase in phases)
    return (
        "the end of the job that committed its verdict (RQ's `ended_at`, stamped as the job returns; "
        f"the verdict's own `created_at`, stamped before the batch's write and commit, was up to {lag} ms "
        "earlier at the p99)"
    )


def _pipeline_posts(posts: dict[str, Any] | None) -> str:
    """What the pipeline's posts were: the corpora's comments in turn, or one comment."""
    if posts and posts.get("from"):
        return (
            "The workers score with the project's seed model, and each post is another comment of "
            f"the corpora, {posts['distinct']:,} of them taken in turn (`corpus_bodies` in "
            "`bench/common.py`), so the workers meet new words as a site's traffic brings them."
        )
    return (
        "The workers score with the project's seed model, and every post is the same comment "
        "(`COMMENT_BODY` in `bench/common.py`; the corpora were not found): after the first, each of "
        "its words is in the workers' caches, so scoring costs less a comment than a site's varied "
        "comments do, which flatters the drain rates, the pipeline's maximum and the workers' CPU a "
        "comment below (the classifier's speed on comments it has not met is under *Classifier*)."
    )


def render_pipeline(pipeline: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The pipeline tables and its target lines."""
    drains, phases, costs, bursts, queue_bursts, targets = [], [], [], [], [], []
    for workers, entry in pipeline["by_workers"].items():
        drain, noop = entry["classify_drain"], entry["noop_drain"]
        drains.append(
            [
                workers,
                drain["comments"],
                drain.get("jobs_finished", "n/a"),
                _n(drain["verdicts_per_s"], 1),
                _n(noop["jobs_per_s"], 1),
                f"{entry['ratio_to_noop']:.2f}",
            ]
        )
        most = entry.get("half_pipeline_max")
        labelled = [(f"{phase['fraction_of_intake_max']:.0%}", phase) for phase in entry["phases"]]
        labelled += [("50% of the pipeline's maximum", most)] if most else []
        for label, phase in labelled:
            phases.append(
                [
                    workers,
                    f"{label} = {phase['target_rate']:.0f}/s",
                    _n(phase["posted_per_s"], 1),
                    _n(phase.get("post_p99_ms"), 1),
                    f"{phase['p50_ms']} / {phase['p95_ms']} / {phase['p99_ms']}",
                    _n(phase.get("after_commit_p99_ms"), 1),
                    _n(phase.get("verdicts_per_s"), 1),
                    phase["max_depth"],
                    f"{phase['verdicts']}/{phase['comments']}",
                ]
            )
        for phase in [*entry["phases"], entry["burst"]]:
            cpu = phase.get("cpu_ms_per_comment")
            if cpu:
                costs.append(
                    [
                        workers,
                        f"{phase['target_rate']:.0f}/s",
                        _n(phase.get("comments_per_job"), 1),
                        *(_n(cpu[part], 2) for part in ("web", "workers", "redis", "postgres")),
                        _n(sum(cpu.values()), 2),
                        _n(phase.get("generator_ms_per_comment"), 2),
                        _n(phase.get("busy_cores_posting"), 2),
                    ]
                )
        burst = entry["burst"]
        bursts.append(
            [
                workers,
                f"{burst['target_rate']:.0f}/s",
                _n(burst["posted_per_s"], 1),
                burst["max_depth"],
                f"{burst['drain_after_s']} s",
                f"{burst['verdicts']}/{burst['comments']}",
            ]
        )
        queue = entry.get("queue_burst")
        if queue:
            queue_bursts.append(
                [
                    workers,
                    f"{queue['target_rate']:.0f}/s",
                    _n(queue["released_per_s"], 1),
                    queue["max_depth"],
                    f"{queue['drain_after_s']} s",
                    f"{queue['p50_ms']} / {queue['p99_ms']}",
                    f"{queue['verdicts']}/{queue['comments']}",
                ]
            )
        half = next((p for p in entry["phases"] if p["fraction_of_intake_max"] == 0.5), None)
        line = (
            f"- Pipeline, {workers} worker(s): verdicts/s over no-op jobs/s {entry['ratio_to_noop']:.2f} "
            f"(target 0.8: {_verdict(entry['ratio_to_noop'] >= 0.8)}; a backlog drained in full batches"
        )
        if "pipeline_max" in entry:
            live = entry["pipeline_max"]["verdicts_per_s"] / noop["jobs_per_s"]
            line += f", {live:.2f} from the pipeline's own maximum, the web app beside the workers"
        line += ")"
        # The latencies count from when each post was due: a web app that fell behind is in them.
        if half:
            line += (
                f"; p99 at half the intake maximum {half['p99_ms']} ms (target 250 ms: "
                f"{_tail_verdict(half['p99_ms'], 250, _left_out_of_phase(half))})"
            )
            if half["posted_per_s"] < 0.95 * half["target_rate"]:
                line += (
                    f", the web app, sharing the cores with the workers, taking {half['posted_per_s']:.0f} "
                    f"of the {half['target_rate']:.0f} posts/s offered"
                )
                if "busy_cores_posting" in half:
                    line += f" with {half['busy_cores_posting']:.2f} cores busy on average"
        if most:
            line += (
                f"; p99 at half the pipeline's own maximum ({entry['pipeline_max']['verdicts_per_s']:.0f} "
                f"verdicts/s, web and workers sharing the two cores) {most['p99_ms']} ms (target 250 ms: "
                f"{_tail_verdict(most['p99_ms'], 250, _left_out_of_phase(most))})"
            )
        drained = burst["drain_after_s"] < 30 and burst["verdicts"] == burst["comments"]
        if burst["posted_per_s"] < drain["verdicts_per_s"]:
            line += (
                f"; a 5x burst through the web app: not reached, it passed the burst on at "
                f"{burst['posted_per_s']:.0f}/s, below the workers' drain rate, so they never faced more "
                f"than they could take (what it passed on was {'' if drained else 'not '}drained)"
            )
        else:
            line += f"; a 5x burst through the web app drained: {_verdict(drained)}"
        if queue and not _burst_reached(queue):
            line += (
                f"; a 5x burst into the queue (target): **not reached**, its entries were put back at "
                f"{queue['released_per_s']:.0f} of the {queue['target_rate']:.0f}/s offered"
            )
        elif queue:
            line += (
                f"; a 5x burst put into the queue at {queue['released_per_s']:.0f}/s drained (target): "
                f"{_verdict(_burst_drained(queue, drain['verdicts_per_s']))}, {queue['drain_after_s']} s "
                f"after its end, {queue['verdicts']}/{queue['comments']} decided"
            )
        targets.append(line + ".")
    lines = [
        "## Pipeline: submit to verdict",
        "",
        "```sh",
        ".venv/bin/python bench/pipeline.py",
        "```",
        "",
        f"Web app, PostgreSQL and `python -m service worker --processes N` (`CLASSIFY_BATCH="
        f"{pipeline.get('classify_batch')}`, the sweeper off). The intake maximum, measured first in the "
        f"same run with no worker running, was {pipeline['intake_rate']:.0f} req/s. "
        + _pipeline_posts(pipeline.get("posts")),
        "",
        "**Drain rates.** A backlog of comments is posted with no worker running; its outbox entries "
        "are held back until N workers have registered, then put back, and the clock runs until every "
        "comment has a verdict (the workers' dispatchers move the ids to Redis and the jobs take them "
        "in batches). The no-op side times the same worker command draining as many `builtins.str` RQ "
        "jobs, enqueued with the classify job's options, in the same run.",
        "",
        *_table(["workers", "comments", "jobs", "verdicts/s", "no-op jobs/s", "ratio"], drains),
        "**Fixed rates with the workers running** (latency from when each post was due by the "
        f"open-loop generator's schedule to {_verdict_end(pipeline)}, so the time a post waited for "
        "the web app to take it is in it; the part from the comment's commit on beside it; depth = "
        "comments in the outbox or the inbox, not yet taken by a job, sampled every "
        "0.25 s). The intake maximum was measured with the two cores to the web app alone; here the "
        "workers share them, so where the web app accepts fewer posts than offered, the rest wait in "
        "the open-loop generator and posted/s counts until the last one was answered. The pipeline's "
        "own maximum is measured with the workers running: posts closed loop at 8 connections for "
        "one phase, then verdicts/s from the first post to the last verdict; the last row of each "
        "worker count offers half of it ("
        + "; ".join(
            f"{workers} worker(s): {entry['pipeline_max']['verdicts_per_s']:,.0f} verdicts/s, the web "
            f"app taking {entry['pipeline_max']['posted_per_s']:,.0f} posts/s meanwhile"
            for workers, entry in pipeline["by_workers"].items()
            if "pipeline_max" in entry
        )
        + "):",
        "",
        *_table(
            [
                "workers",
                "offered",
                "posted/s",
                "post p99 ms",
                "verdict p50 / p95 / p99 ms",
                "of which from the commit, p99 ms",
                "verdicts/s",
                "max depth",
                "decided",
            ],
            phases,
        ),
        *(
            [
                "**CPU per comment** in the same phases (the last row of each worker count is the "
                "burst): CPU time (user and system, from `/proc`) the web app, the worker pool, Redis "
                "and PostgreSQL spent during the phase and until its last verdict, over the comments "
                "posted. A classify job's fixed cost is shared by the comments it takes, so the "
                "workers' share falls as the batches grow. Beside them, from the posts' start to the "
                "last answer: the load generator's own CPU a comment (this benchmark's process), and "
                "how many of the machine's cores were busy on average (`/proc/stat`), which "
                "shows how near the machine was to where requests queue:",
                "",
                *_table(
                    [
                        "workers",
                        "offered",
                        "comments a job",
                        "web ms",
                        "workers ms",
                        "Redis ms",
                        "PostgreSQL ms",
                        "total ms",
                        "generator ms",
                        "cores busy",
                    ],
                    costs,
                ),
            ]
            if costs
            else []
        ),
        "**Burst**: 5x the drain rate offered for a few seconds' worth of requests. The web accepts "
        "no more than its own maximum, so the offered requests take longer than that to post (the "
        "rest wait in the generator); the queue depth shows whether the workers kept up, and the last "
        "column how long after the last post the queue was empty:",
        "",
        *_table(["workers", "offered", "posted/s", "max depth", "drained after", "decided"], bursts),
        *(
            [
                "**Burst into the queue**: on two cores the web app cannot pass on 5x the workers' "
                "drain rate, so the burst that tests the queue is posted beforehand with no worker "
                "running and its outbox entries are put back at 5x the drain rate for the burst's "
                "length while N workers run, as a web tier on more machines would hand them on (the "
                "dispatchers poll the outbox, so they meet these entries as they meet new posts). "
                "Latency from when each entry was due on that schedule; drained after = from the "
                "last entry put back until every comment had its verdict:",
                "",
                *_table(
                    [
                        "workers",
                        "offered",
                        "put back/s",
                        "max depth",
                        "drained after",
                        "verdict p50 / p99 ms",
                        "decided",
                    ],
                    queue_bursts,
                ),
            ]
            if queue_bursts
            else []
        ),
        f"Queue depth over time in each phase (`{DEPTH_PLOT}`, from the same JSON):",
        "",
        f"![queue depth over time]({DEPTH_PLOT})",
        "",
    ]
    return lines, targets


def _burst_reached(queue: dict[str, Any]) -> bool:
    """Whether the entries of a burst into the queue were put back at (nearly) the rate offered."""
    return bool(queue["comments"] and queue["released_per_s"] >= 0.9 * queue["target_rate"])


def _burst_drained(queue: dict[str, Any], drain_rate: float) -> bool:
    """Whether a burst put into the queue drained: every comment decided, and the backlog it
    left gone within twice the time the measured drain rate needs for it."""
    left = queue["comments"] - drain_rate * (queue["comments"] / queue["released_per_s"])
    expected_s = max(left, 0) / drain_rate
    return bool(queue["verdicts"] == queue["comments"] and queue["drain_after_s"] <= max(2 * expected_s, 1.0))


def plot_depth(pipeline: dict[str, Any], out: Path) -> None:
    """Queue depth over time in every fixed-rate phase and burst, one panel per worker count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = list(pipeline["by_workers"].items())
    figure, axes = plt.subplots(1, len(counts), figsize=(5 * len(counts), 3.2), squeeze=False, sharey=True)
    for axis, (workers, entry) in zip(axes[0], counts, strict=True):
        runs = [(f"{p['fraction_of_intake_max']:.0%} of intake", p) for p in entry["phases"]]
        runs.append(("5x burst", entry["burst"]))
        if "queue_burst" in entry:
            runs.append(("5x burst into the queue", entry["queue_burst"]))
        for label, phase in runs:
            seconds, depth = zip(*phase["depth_samples"], strict=True) if phase["depth_samples"] else ((), ())
            axis.plot(seconds, depth, label=f"{label} ({phase['target_rate']:.0f}/s)")
        axis.set_title(f"{workers} worker(s)")
        axis.set_xlabel("seconds since the phase started")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("comments waiting for a job")
    axes[0][-1].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def _corpora(model: dict[str, Any]) -> str:
    """Which corpora the classifier's benchmark trained on: every corpus the project reads,
    or those it found, when some folders were missing (the benchmark reads what is there)."""
    found = model.get("corpora")
    if found is None:  # results from before the corpora were recorded
        return "every corpus found"
    missing = sorted(set(IMPORTERS) - set(found))
    if not missing:
        return "every corpus"
    return f"{', '.join(found)} only ({', '.join(missing)} not found)"


def render_model(model: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The classifier's cost tables and its target lines."""
    training, synthetic = model["training"], model["out_of_core"]
    throughput, latency = model["throughput"], model["latency"]
    corpora = _corpora(model)
    rows = [
        [
            f"in memory, {corpora}",
            f"{training['unique_examples']:,}",
            f"{training['train_seconds']:.1f} s",
            f"{training['peak_rss_mb']:,.0f} MB",
        ],
        [
            f"out of core, {synthetic['factor']}x synthetic, one epoch",
            f"{synthetic['examples_per_epoch']:,}",
            f"{synthetic['seconds']:.1f} s: index {synthetic['index_seconds']:.1f} s, validation part "
            f"{synthetic['validation_seconds']:.1f} s, epoch {synthetic['epoch_seconds']:.1f} s "
            f"({synthetic['examples_per_second']:,.0f}/s), "
            f"calibration {synthetic['calibration_seconds']:.1f} s",
            f"{synthetic['peak_rss_mb']:,.0f} MB",
        ],
    ]
    speed_rows = []
    for size in (1, 10, 1000):
        without = throughput[f"batch_{size}_without_reasons"]["per_second"]
        with_reasons = throughput[f"batch_{size}_with_reasons"]["per_second"]
        speed_rows.append([size, _n(without), _n(with_reasons)])
    lines = [
        "## Classifier",
        "",
        "```sh",
        ".venv/bin/python bench/model.py",
        "```",
        "",
        "Training runs in a child process, so the peak resident memory is its own. The synthetic "
        "set streams each corpus example back several times with two vocabulary words appended, "
        "generated afresh for each pass and never held; out of core, training reads it once to "
        "index it, once for its validation part, and once per epoch. A full `train --out-of-core` "
        f"makes {synthetic['epochs']} epochs, about "
        f"{synthetic['full_training_estimate_seconds'] / 60:.0f} minutes at this rate. Quality per "
        "corpus is in `docs/model.md`.",
        "",
        *_table(["training", "examples", "time", "peak memory"], rows),
        "Scoring is timed on comments drawn from the corpora, each pass (and the single-comment "
        "latency) on comments no earlier pass scored, after 5,000 others were scored with their "
        "reasons: the word caches then hold what a running worker's hold, the words it has met, "
        "and not the comments about to be scored. What the process held before (the model and "
        "the corpora) is frozen out of the garbage collector's walks first, as a worker freezes "
        "what it holds once its model is loaded.",
        "",
        *_table(["batch size", "comments/s without reasons", "comments/s with reasons"], speed_rows),
        f"One comment with its reasons: median {latency['median_ms']:.2f} ms, "
        f"p95 {latency['p95_ms']:.2f} ms.",
        "",
    ]
    batch = throughput["batch_1000_with_reasons"]["per_second"]
    targets = [
        f"- Classifier: {batch:,.0f} comments/s in batches of 1,000 with reasons (target 5,000: "
        f"{_verdict(batch >= 5000)}); one comment {latency['median_ms']:.2f} ms (target 5 ms: "
        f"{_verdict(latency['median_ms'] < 5)}); training on {corpora} {training['train_seconds']:.0f} s "
        f"and {training['peak_rss_mb']:,.0f} MB (targets 2 minutes and 2 GB: "
        f"{_verdict(training['train_seconds'] < 120 and training['peak_rss_mb'] < 2048)})."
    ]
    return lines, targets


def render_moderators_pages(pages: dict[str, Any], repeats: int) -> list[str]:
    """The moderators' own page of the queue, timed whole on the same database."""
    rows = [
        [case["case"], case["rows"], case["median_ms"], case["p95_ms"], case["max_ms"], case["sql_median_ms"]]
        for case in pages["cases"]
    ]
    return [
        "The moderators' page of the queue (`GET /moderate/`, 20 comments a page), on the same "
        "database through the service's app signed in by its form (Flask's test client, no network): "
        f"one untimed request, then {repeats} timed, each whole (the session's check, the listing, the "
        "flagged count up to 1,000, each comment's reply parent and last decision, its email "
        "decrypted and masked, the HTML) beside the time its SQL took.",
        "",
        *_table(["page", "comments", "median ms", "p95 ms", "max ms", "of which SQL, median ms"], rows),
    ]


def render_review_queue(review: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The review-queue table, one plan per order, and its target line."""
    rows = [
        [
            case["case"],
            f"{case['page']:,}",
            case["rows"],
            case["median_ms"],
            case.get("p95_ms"),
            case["max_ms"],
        ]
        for case in review["cases"]
    ]
    cursor = [case for case in review["cases"] if "cursor" in case["case"]]
    # Judged on each page's p95 over its timed calls, not its median: "any page" is a tail.
    # Results from before the p95 was kept are judged on their slowest call, which is stricter.
    worst = max(case.get("p95_ms", case["max_ms"]) for case in cursor) if cursor else None
    slowest_call = max(case["max_ms"] for case in cursor) if cursor else None
    lines = [
        "## Review queue at one million comments",
        "",
        "```sh",
        ".venv/bin/python bench/review_queue.py",
        "```",
        "",
        "A fresh PostgreSQL schema filled server-side with 1,000,000 comments and their verdicts; each "
        "case calls `service.review.list_comments` (50 a page) once untimed, then times repeated calls, "
        "ORM loading included. A cursor page reads its rows' keys from one index range scan (for every "
        "status at once, one scan per status, merged), then loads those rows by id; a numbered page "
        "counts the total and walks the offset the same way (every row before the page, from each "
        "status). A status with fewer rows than the deep page has its last page measured instead.",
        "",
        *_table(["query", "page", "rows", "median ms", "p95 ms", "max ms"], rows),
    ]
    plans = {
        case["case"]: case["plans"][0]["plan"] for case in cursor if case.get("plans") and case["page"] > 1
    }
    for label, plan in plans.items():
        lines += [f"Plan, {label}, deep page:", "", "```", *plan, "```", ""]
    if "pages" in review:  # results from before the pages were timed have none
        lines += render_moderators_pages(review["pages"], review["settings"]["repeats"])
    targets = []
    if worst is not None:
        targets.append(
            f"- Review queue: slowest cursor page, "
            f"{'p95' if all('p95_ms' in case for case in cursor) else 'slowest'} of its "
            f"{review['settings']['repeats']} timed calls, "
            f"{worst} ms at 1,000,000 comments (target 20 ms: {_verdict(worst < 20)}); the slowest single "
            f"call {slowest_call} ms."
        )
    return lines, targets


def render(results: dict[str, dict[str, Any] | None], skipped: Mapping[str, str] | None = None) -> str:
    """The whole document; ``skipped`` says why a benchmark was not run this time."""
    skipped = skipped or {}
    lines = [
        "# Performance on two cores",
        "",
        "Written by `bench/all.py` from `bench/results/*.json`; every figure below comes from one "
        "run of the scripts it names, on the project's 2-core machine, except the few in *What the hot "
        "paths do*, from the measurements that led to each change. Ratios are measured within "
        "one run, both sides back to back, and are the figures to compare: the machine is shared, "
        "so absolute numbers move between runs.",
        "",
        *render_machine(results),
    ]
    targets: list[str] = []
    sections = (
        ("intake", render_intake),
        ("pipeline", render_pipeline),
        ("model", render_model),
        ("review_queue", render_review_queue),
    )
    body: list[str] = []
    for name, renderer in sections:
        result = results.get(name)
        if name in skipped:
            body += [f"## {name}", "", f"Not measured in this run: {skipped[name]}.", ""]
            targets.append(f"- `{name}`: not measured in this run ({skipped[name]}).")
            continue
        if result is None:
            body += [f"## {name}", "", f"No `bench/results/{name}.json`: run `bench/all.py`.", ""]
            continue
        section, section_targets = renderer(result)
        body += section
        targets += section_targets
    lines += ["## Against the targets", "", *targets, "", *DESIGN, *body]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks (unless ``--render-only``) and write the document."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--render-only", action="store_true", help="only write the document from the JSON")
    parser.add_argument(
        "--only", default=",".join(SCRIPTS), help=f"comma-separated subset of {list(SCRIPTS)}"
    )
    parser.add_argument("--out", type=Path, default=DOCUMENT, help="document to write")
    args = parser.parse_args(argv)
    names = [name for name in args.only.split(",") if name]
    if unknown := set(names) - set(SCRIPTS):
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    skipped = {} if args.render_only else cannot_run(names)
    for name, reason in skipped.items():
        print(f"not running bench/{SCRIPTS[name][0]}: {reason}", flush=True)
    if not args.render_only:
        took = run_benchmarks([name for name in names if name not in skipped])
        print("\n" + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in took.items()))
    # A result left by an earlier run is not this run's: a skipped benchmark's is not shown.
    results = {name: None if name in skipped else _load(name) for name in SCRIPTS}
    if results["pipeline"]:
        plot_depth(results["pipeline"], args.out.parent / DEPTH_PLOT)
    args.out.write_text(render(results, skipped), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
