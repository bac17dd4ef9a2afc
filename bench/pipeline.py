"""Submit-to-verdict latency, verdict throughput and queue depth of the whole pipeline.

Starts the web app (gunicorn, 2 sync workers) on a fresh database and, for each worker
count N, ``python -m service worker --processes N`` (N workers forked after one model
load). For each N it measures:

- the drain rate of a backlog of comments (stored with no worker running, so they wait
  in the outbox; the workers' dispatchers hand them to the queue and their jobs take
  them in batches), and of as many no-op RQ jobs (``builtins.str``, enqueued with the
  classify job's options) on a queue of their own worked by the same worker command
  and class: verdicts/s over no-op jobs/s is the key figure;
- comments posted at fixed rates (25 %, 50 %, 100 % of the intake maximum, measured in
  the same run or given): submit-to-verdict p50/p95/p99 from when each post was due to
  the end of the job that committed its verdict (``job_ends``), verdicts/s, and the
  queue depth (comments in the outbox or the inbox, not yet taken by a job) sampled
  over time;
- the pipeline's own maximum: posts closed loop with the workers running on the same
  cores, until each has its verdict (verdicts/s from the first post to the last
  verdict), and the same figures at half of it: on two cores the web app alone takes
  more posts than web, workers and database together can decide;
- a burst at 5x the sustainable rate (the measured classify drain rate) and the time
  the queue takes to drain after it: posted through the web app, which on two cores
  cannot pass on 5x the workers' rate, and put straight into the queue's outbox at 5x,
  as a web tier on more machines would.

Every post is another comment of the corpora under ``--datasets`` (``$MODERATION_DATASETS``,
else ../shared/datasets), up to 20,000 taken in turn: one comment over and over would be
scored from the workers' word caches, faster than a site's traffic. Without the corpora,
the benchmark's one comment is posted, and the results say so.

Writes ``bench/results/pipeline.json``. Load goes only to 127.0.0.1; every phase is
bounded in time and count; processes, Redis keys and the schema are removed at the end.

    .venv/bin/python bench/pipeline.py
    .venv/bin/python bench/pipeline.py --workers 2 --intake-rate 150 --profile
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

if __package__ in (None, ""):  # run as a file: make `bench` and the service importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis
from rq import Queue, Retry, Worker
from rq.job import Job
from rq.registry import FinishedJobRegistry
from sqlalchemy import Engine, create_engine, delete, func, insert, select

from bench.common import (
    BIN,
    ONE_COMMENT,
    REDIS_URL,
    RESULTS_DIR,
    CpuClock,
    LoadResult,
    Processes,
    closed_load,
    corpus_bodies,
    cpu_seconds,
    free_port,
    fresh_database,
    gunicorn_argv,
    machine_info,
    percentiles,
    print_table,
    purge_queue,
    run_open_loop,
    run_python_closed,
    seed_model,
    service_env,
    start_profile,
    stop_on_sigterm,
    summarize_profile,
    unique_name,
    wait_for_http,
    workspace,
    write_results,
)
from models.importers import DATASETS_ENV, datasets_dir
from service.config import load_settings
from service.queueing import FAILURE_TTL_SECONDS, RESULT_TTL_SECONDS, RETRY_INTERVALS
from service.statuses import CommentStatus
from service.tables import Comment, OutboxEntry, Verdict
from worker.jobs import META_IDS

SAMPLE_SECONDS = 0.25
NOOP_JOB = "builtins.str"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--workers", default="1,2", help="worker counts to try (default 1,2)")
    parser.add_argument("--intake-rate", type=float, help="intake maximum in req/s (default: measure it)")
    parser.add_argument("--rates", default="0.25,0.5,1.0", help="fractions of the intake maximum")
    parser.add_argument("--phase-seconds", type=float, default=6.0, help="per fixed rate (default 6)")
    parser.add_argument("--backlog", type=int, default=1200, help="jobs per drain measurement (default 1200)")
    parser.add_argument("--burst-factor", type=float, default=5.0, help="x the sustainable rate (default 5)")
    parser.add_argument("--burst-seconds", type=float, default=3.0, help="burst length (default 3)")
    parser.add_argument("--drain-timeout", type=float, default=30.0, help="longest wait for a drain (s)")
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of web and workers (default INFO)")
    parser.add_argument("--profile", action="store_true", help="profile one worker during an extra drain")
    parser.add_argument("--out", default="pipeline", help="results name (default pipeline)")
    parser.add_argument(
        "--datasets",
        type=Path,
        default=None,
        help=f"corpora the posts are taken from (default ${DATASETS_ENV})",
    )
    return parser.parse_args(argv)


@dataclass
class Bench:
    """What every phase needs: the web port, the database, Redis, queue names and processes."""

    args: argparse.Namespace
    procs: Processes
    workdir: Path
    model_dir: Path
    url: str
    engine: Engine
    redis: redis.Redis
    queue: str
    noop_queue: str
    port: int = 0
    bodies: Sequence[bytes] = ONE_COMMENT
    """What the posts are, in turn: the corpora's comments, or the benchmark's one."""

    def env(self, queue: str) -> dict[str, str]:
        """The environment of the web app and of workers on ``queue``."""
        return service_env(
            self.url, queue, self.model_dir, SWEEP_INTERVAL_SECONDS="0", LOG_LEVEL=self.args.log_level
        )

    def last_comment_id(self) -> int:
        """The newest comment's id (0 when there is none)."""
        with self.engine.connect() as db:
            return int(db.scalar(select(func.max(Comment.id))) or 0)

    def count_between(self, low: int, high: int) -> int:
        """Comments with an id in (low, high]."""
        with self.engine.connect() as db:
            return int(db.scalar(select(func.count()).where(Comment.id > low, Comment.id <= high)) or 0)

    def waiting(self, low: int, high: int) -> int:
        """Comments in (low, high] that are still ``received``."""
        statement = select(func.count()).where(
            Comment.id > low, Comment.id <= high, Comment.status == CommentStatus.RECEIVED
        )
        with self.engine.connect() as db:
            return int(db.scalar(statement) or 0)

    @property
    def inbox(self) -> str:
        """The Redis list of comment ids waiting for a classify job."""
        return f"moderation:inbox:{self.queue}"

    def depth(self) -> int:
        """Comments waiting for a job: outbox entries plus ids in the inbox."""
        with self.engine.connect() as db:
            outbox = int(db.scalar(select(func.count()).select_from(OutboxEntry)) or 0)
        return outbox + int(self.redis.llen(self.inbox))


# ------------------------------------------------------------------------ workers


def start_workers(bench: Bench, queue: str, count: int, tag: str) -> str:
    """Start ``moderation worker --processes count`` on ``queue``; wait until all registered with RQ.

    One command forks the workers after loading the model once, as in production.
    """
    name = f"workers-{tag}"
    argv = [str(BIN / "python"), "-m", "service", "worker", "--processes", str(count)]
    process = bench.procs.start(name, argv, bench.env(queue))
    deadline = time.monotonic() + 90
    rq_queue = Queue(queue, connection=bench.redis)
    while Worker.count(connection=bench.redis, queue=rq_queue) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers did not start: {bench.procs.log_tail(name)}")
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {bench.procs.log_tail(name)}")
        time.sleep(0.1)
    return name


def stop_workers(bench: Bench, name: str) -> None:
    """Stop a worker pool (its SIGTERM reaches every worker; RQ finishes the current job)."""
    bench.procs.stop(name)


# -------------------------------------------------------------------------- drains


def hold(bench: Bench, queue: str) -> str:
    """Move the queue's waiting jobs aside, so workers can start before the clock does."""
    holding = f"rq:queue:{queue}:held"
    bench.redis.rename(f"rq:queue:{queue}", holding)
    return holding


def release(bench: Bench, queue: str) -> None:
    """Put jobs moved aside by ``hold`` back in their queue."""
    bench.redis.rename(f"rq:queue:{queue}:held", f"rq:queue:{queue}")


def hold_outbox(bench: Bench) -> list[int]:
    """Take the outbox entries out, so workers (and their dispatchers) start before the clock."""
    with bench.engine.begin() as db:
        held = list(db.scalars(delete(OutboxEntry).returning(OutboxEntry.comment_id)))
    return held


def release_outbox(bench: Bench, held: list[int]) -> None:
    """Put held outbox entries back for the workers' dispatchers."""
    with bench.engine.begin() as db:
        db.execute(insert(OutboxEntry), [{"comment_id": comment_id} for comment_id in held])


def finished_count(bench: Bench, queue: str) -> int:
    """Jobs of ``queue`` that finished or failed so far."""
    return int(bench.redis.zcard(f"rq:finished:{queue}")) + int(bench.redis.zcard(f"rq:failed:{queue}"))


def settle(bench: Bench, queue: str) -> None:
    """Wait (bounded) until no job of ``queue`` waits or runs, so its counts are final."""
    deadline = time.monotonic() + bench.args.drain_timeout
    while time.monotonic() < deadline:
        running = bench.redis.zcard(f"rq:wip:{queue}") + bench.redis.llen(f"rq:queue:{queue}")
        if not running:
            return
        time.sleep(0.05)


def enqueue_noops(bench: Bench, count: int) -> None:
    """Enqueue ``count`` no-op jobs with the options the classify job is enqueued with."""
    queue = Queue(bench.noop_queue, connection=bench.redis)
    with bench.redis.pipeline() as pipe:
        for index in range(count):
            queue.enqueue(
                NOOP_JOB,
                index,
                job_id=f"{bench.noop_queue}-{index}-{time.monotonic_ns()}",
                description=f"no-op {index}",
                job_timeout=60,
                result_ttl=RESULT_TTL_SECONDS,
                failure_ttl=FAILURE_TTL_SECONDS,
                retry=Retry(max=3, interval=RETRY_INTERVALS),
                pipeline=pipe,
            )
        pipe.execute()


def timed_drain(
    bench: Bench,
    release_backlog: Callable[[], None],
    is_done: Callable[[], bool],
    pool: str,
    profile: Path | None,
) -> float:
    """Release the held backlog to the waiting worker ``pool``; seconds until ``is_done()`` says so."""
    spy: subprocess.Popen[bytes] | None = None
    if profile is not None:
        spy = start_profile(bench.procs.running[pool].pid, bench.args.drain_timeout, profile)
        time.sleep(1.0)
    started = time.monotonic()
    release_backlog()
    deadline = started + bench.args.drain_timeout * 2
    finished = False
    while time.monotonic() < deadline and not finished:
        time.sleep(0.02)
        finished = is_done()
    elapsed = time.monotonic() - started
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT, not on SIGTERM
        spy.wait(30)
    if not finished:
        raise RuntimeError(f"the backlog did not drain in {elapsed:.0f} s")
    return elapsed


def post_held_backlog(bench: Bench, count: int, seconds: float) -> tuple[int, int, list[int], LoadResult]:
    """With what waited dropped, post ``count`` comments (for at most ``seconds``) while no
    worker runs, and take their outbox entries out: the ids' range (low, high], the held
    ids, and the posting's figures."""
    clear_backlog(bench)
    low = bench.last_comment_id()
    posted = run_python_closed(bench.port, 8, seconds, max_requests=count, bodies=bench.bodies)
    return low, bench.last_comment_id(), hold_outbox(bench), posted


def classify_drain(bench: Bench, workers: int, profile: Path | None = None) -> dict[str, Any]:
    """Post a backlog with no worker running, then time N workers deciding all of it.

    The clock starts when the held outbox entries go back, after every worker has
    registered, so it covers dispatching and classifying but not starting up.
    """
    low, high, held, posted = post_held_backlog(bench, bench.args.backlog, 120.0)
    pool = start_workers(bench, bench.queue, workers, "drain")
    try:
        before = finished_count(bench, bench.queue)
        seconds = timed_drain(
            bench,
            lambda: release_outbox(bench, held),
            lambda: bench.waiting(low, high) == 0,
            pool,
            profile,
        )
        settle(bench, bench.queue)
        jobs = finished_count(bench, bench.queue) - before
    finally:
        stop_workers(bench, pool)
    # Ids are not dense (cleared comments used some), so count the backlog's rows.
    decided = bench.count_between(low, high)
    return {
        "comments": decided,
        "jobs_finished": jobs,
        "comments_per_job": round(decided / jobs, 1) if jobs else None,
        "seconds": round(seconds, 3),
        "verdicts_per_s": round(decided / seconds, 1),
        "first_to_last_verdict_per_s": verdict_figures(bench, low, high).get("first_to_last_verdict_per_s"),
        "failed_jobs_total": int(bench.redis.zcard(f"rq:failed:{bench.queue}")),
        "posted_per_s": posted.requests_per_s,
    }


def noop_drain(bench: Bench, workers: int) -> dict[str, Any]:
    """Enqueue no-op jobs with the classify job's options; time the same workers draining them."""
    count = int(bench.args.backlog)
    enqueue_noops(bench, count)
    hold(bench, bench.noop_queue)
    pool = start_workers(bench, bench.noop_queue, workers, "noop")
    try:
        before = finished_count(bench, bench.noop_queue)

        def drained() -> bool:
            return finished_count(bench, bench.noop_queue) - before >= count

        seconds = timed_drain(bench, lambda: release(bench, bench.noop_queue), drained, pool, None)
    finally:
        stop_workers(bench, pool)
    return {"jobs": count, "seconds": round(seconds, 3), "jobs_per_s": round(count / seconds, 1)}


def queue_burst(bench: Bench, workers: int, rate: float, seconds: float) -> dict[str, Any]:
    """A burst that reaches the queue at ``rate`` for ``seconds``, as a web tier scaled out
    past these two cores would hand it on; the queue depth until every comment is decided.

    The comments are posted through the web app first, with no worker running; their
    outbox entries are held back and, once N workers have registered, put back in slices
    every ``SAMPLE_SECONDS / 5`` on the schedule ``rate`` gives, which is how the workers'
    dispatchers meet new posts (they poll the outbox). Latency counts from when each entry
    was due on that schedule.
    """
    low, high, held, _posted = post_held_backlog(bench, round(rate * seconds), 600.0)
    held.sort()
    pool = start_workers(bench, bench.queue, workers, "burst")
    samples: list[tuple[float, int]] = []
    due: dict[int, float] = {}
    try:
        t0, wall = time.monotonic(), time.time()
        released, last_release = 0, t0
        while released < len(held):
            elapsed = time.monotonic() - t0
            upto = min(len(held), int(elapsed * rate) + 1)
            if upto > released:
                release_outbox(bench, held[released:upto])
                last_release = time.monotonic()
                due.update((held[index], wall + index / rate) for index in range(released, upto))
                released = upto
            samples.append((round(elapsed, 2), bench.depth()))
            time.sleep(SAMPLE_SECONDS / 5)
        wait_for_verdicts(bench, low, high, samples, t0)
        drain_s = time.monotonic() - last_release
        settle(bench, bench.queue)
    finally:
        stop_workers(bench, pool)
    figures = verdict_figures(bench, low, high, due)
    figures.update(
        target_rate=round(rate, 1),
        # Entries after the first (due at once) over the span until the last was put back.
        released_per_s=round((len(held) - 1) / max(last_release - t0, 1e-9), 1),
        drain_after_s=round(drain_s, 2),
        max_depth=max(depth for _, depth in samples),
        depth_samples=samples,
        dropped_comments=clear_backlog(bench),
    )
    return figures


# -------------------------------------------------------------------------- phases


def _load_and_sample(
    bench: Bench, rate: float, seconds: float, receipts: list[tuple[int, float]]
) -> tuple[LoadResult, list[tuple[float, int]]]:
    """Post at ``rate`` from a thread while this one samples the queue depth; each accepted
    comment's id and the time its post was due go into ``receipts``."""
    samples: list[tuple[float, int]] = []
    started = time.monotonic()
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        load = pool.submit(
            run_open_loop, bench.port, rate, seconds, stop=stop, receipts=receipts, bodies=bench.bodies
        )
        try:
            while not load.done():
                samples.append((round(time.monotonic() - started, 2), bench.depth()))
                time.sleep(SAMPLE_SECONDS)
        finally:
            stop.set()  # an interrupted phase ends its load too, instead of waiting for it
        return load.result(), samples


def wait_for_verdicts(
    bench: Bench, low: int, high: int, samples: list[tuple[float, int]], t0: float
) -> float:
    """Sample the queue until every comment in (low, high] left ``received``; seconds waited."""
    started = time.monotonic()
    deadline = started + bench.args.drain_timeout
    while time.monotonic() < deadline:
        samples.append((round(time.monotonic() - t0, 2), bench.depth()))
        if bench.waiting(low, high) == 0:
            break
        time.sleep(SAMPLE_SECONDS)
    return time.monotonic() - started


def job_ends(bench: Bench, since: datetime) -> dict[int, list[datetime]]:
    """When each classify job that finished after ``since`` ended, by the comment ids it
    worked on (the ids a job keeps in its metadata; a retry keeps those left).

    RQ stamps a job's ``ended_at`` as its function returns, so after the commit of the
    verdicts it stored (and one Redis call that clears its attempt): when they became
    visible. A verdict's own ``created_at`` is stamped before its batch's UPDATE, inserts
    and commit (the log's sync to disk included), which a busy machine stretches: up to
    0.1-0.2 s at the p99 when measured beside another process's test suite.
    """
    registry = FinishedJobRegistry(bench.queue, connection=bench.redis)
    # A finished job's score is when it finished plus its result TTL.
    ids = cast(
        list[bytes],
        bench.redis.zrangebyscore(registry.key, since.timestamp() + RESULT_TTL_SECONDS - 1, "+inf"),
    )
    ends: dict[int, list[datetime]] = {}
    for job in Job.fetch_many([job_id.decode() for job_id in ids], connection=bench.redis):
        if job is None or job.ended_at is None:
            continue
        for comment_id in job.meta.get(META_IDS, ()):
            ends.setdefault(int(comment_id), []).append(job.ended_at)
    return ends


def decided_at(stamped: datetime, ends: list[datetime]) -> datetime | None:
    """The end of the first job that ended once the verdict stamped ``stamped`` was written:
    the one that committed it (a job that handed its batch on ended before). None when no
    finished job did (one that failed after committing part of its batch)."""
    return min((end for end in ends if end >= stamped), default=None)


def verdict_figures(
    bench: Bench, low: int, high: int, due: Mapping[int, float] | None = None
) -> dict[str, Any]:
    """Submit-to-verdict latency (ms) and verdicts/s for comments in (low, high].

    A verdict counts as given when the job that stored it had committed it (``job_ends``);
    where no finished job names the comment, at its ``created_at`` (counted in
    ``verdicts_without_job_end``). With ``due`` (comment id to the wall-clock time its post
    was due) the latency counts from then, so time spent waiting for the web app to take
    the post is in it; the part from the comment's ``created_at`` (stamped as the intake
    stores it) on is kept beside it. Without, it counts from the comment's ``created_at``.
    """
    statement = (
        select(Comment.id, Comment.created_at, Verdict.created_at)
        .join(Verdict, Verdict.comment_id == Comment.id)
        .where(Comment.id > low, Comment.id <= high)
    )
    with bench.engine.connect() as db:
        stamped_rows = db.execute(statement).all()
    ends = job_ends(bench, min(comment for _, comment, _ in stamped_rows)) if stamped_rows else {}
    rows: list[tuple[int, datetime, datetime]] = []  # id, comment's created_at, verdict committed
    lag: list[float] = []
    for id_, comment, stamped in stamped_rows:
        committed = decided_at(stamped, ends.get(id_, []))
        if committed is not None:
            lag.append((committed - stamped).total_seconds() * 1000)
        rows.append((id_, comment, committed or stamped))
    after_commit = [(verdict - comment).total_seconds() * 1000 for _, comment, verdict in rows]
    figures: dict[str, Any] = {
        "comments": bench.count_between(low, high),
        "verdicts": len(rows),
        "verdicts_without_job_end": len(rows) - len(lag),
        # How much the verdicts' own created_at would leave out: the batch's write and commit.
        "created_at_to_commit_p99_ms": round(percentiles(lag)["p99"], 1),
    }
    if due is None:
        latencies = after_commit
    else:
        # A post whose answer never came back has no due time: counted in undated_verdicts.
        latencies = [(verdict.timestamp() - due[id_]) * 1000 for id_, _, verdict in rows if id_ in due]
        figures["after_commit_p99_ms"] = round(percentiles(after_commit)["p99"], 1)
        figures["undated_verdicts"] = len(rows) - len(latencies)
    figures.update({f"{key}_ms": round(value, 1) for key, value in percentiles(latencies).items()})
    if len(rows) > 1:
        first = min(comment for _, comment, _ in rows)
        last = max(verdict for _, _, verdict in rows)
        figures["verdicts_per_s"] = round(len(rows) / (last - first).total_seconds(), 1)
        span = last - min(verdict for _, _, verdict in rows)
        figures["first_to_last_verdict_per_s"] = round((len(rows) - 1) / span.total_seconds(), 1)
    return figures


def clear_backlog(bench: Bench) -> int:
    """Drop what still waits (outbox, inbox, jobs, comments in ``received``), so the next
    phase starts empty and pays for none of it; returns how many comments waited."""
    left = bench.depth()
    bench.redis.delete(f"rq:queue:{bench.queue}", bench.inbox)
    with bench.engine.begin() as db:
        db.execute(delete(OutboxEntry))
        db.execute(delete(Comment).where(Comment.status == CommentStatus.RECEIVED))
    return left


def cpu_used(bench: Bench, pool: str) -> dict[str, float]:
    """CPU seconds used so far by the web app, the worker pool ``pool``, Redis and PostgreSQL."""
    redis_cpu = bench.redis.info("cpu")
    return {
        "web": cpu_seconds(session=bench.procs.running["web"].pid),
        "workers": cpu_seconds(session=bench.procs.running[pool].pid),
        "redis": float(redis_cpu["used_cpu_user"]) + float(redis_cpu["used_cpu_sys"]),
        "postgres": cpu_seconds(command="postgres"),
    }


def phase(bench: Bench, pool: str, rate: float, seconds: float) -> dict[str, Any]:
    """Post at ``rate`` for ``seconds`` with the workers of ``pool`` running; wait for the verdicts.

    Besides latency it records the CPU each part spent per comment of the phase, and how
    many comments a classify job took on average: the cost per verdict depends on both.
    """
    low = bench.last_comment_id()
    jobs_before, cpu_before = finished_count(bench, bench.queue), cpu_used(bench, pool)
    t0 = time.monotonic()
    receipts: list[tuple[int, float]] = []
    clock_before = CpuClock.now()
    load, samples = _load_and_sample(bench, rate, seconds, receipts)
    clock_after = CpuClock.now()
    high = bench.last_comment_id()
    drain_s = wait_for_verdicts(bench, low, high, samples, t0)
    settle(bench, bench.queue)
    jobs, cpu_after = finished_count(bench, bench.queue) - jobs_before, cpu_used(bench, pool)
    figures = verdict_figures(bench, low, high, dict(receipts))
    comments = max(figures["comments"], 1)
    figures.update(
        jobs=jobs,
        comments_per_job=round(figures["verdicts"] / jobs, 1) if jobs else None,
        cpu_ms_per_comment={
            part: round((cpu_after[part] - cpu_before[part]) * 1000 / comments, 3) for part in cpu_before
        },
        # What the figures above leave out while the posts go out: the load generator's own
        # CPU, and how near the machine was to using both cores (the queueing point).
        generator_ms_per_comment=round((clock_after.own - clock_before.own) * 1000 / comments, 3),
        busy_cores_posting=round(clock_after.busy_cores_since(clock_before), 2),
        target_rate=round(rate, 1),
        posted_per_s=load.requests_per_s,
        post_p99_ms=load.p99_ms,
        post_errors=load.errors,
        drain_after_s=round(drain_s, 2),
        max_depth=max(depth for _, depth in samples),
        depth_samples=samples,
        dropped_comments=clear_backlog(bench),
    )
    return figures


def saturation(bench: Bench) -> dict[str, Any]:
    """The most the whole pipeline sustains with the workers already running: posts closed
    loop (8 connections) for a phase, waits for every verdict, and counts verdicts/s from
    the first post to the last verdict."""
    low = bench.last_comment_id()
    load = closed_load(bench.port, 8, bench.args.phase_seconds, bench.workdir, "auto", bench.bodies)
    high = bench.last_comment_id()
    wait_for_verdicts(bench, low, high, [], time.monotonic())
    settle(bench, bench.queue)
    figures = verdict_figures(bench, low, high)
    undecided = bench.waiting(low, high)
    if load.errors or undecided or "verdicts_per_s" not in figures:
        raise RuntimeError(
            f"the pipeline's maximum cannot be read: {load.errors} failed posts, {undecided} of "
            f"{figures['comments']} comments without a verdict after {bench.args.drain_timeout:g} s"
        )
    figures.update(posted_per_s=load.requests_per_s, dropped_comments=clear_backlog(bench))
    return figures


def run_worker_count(bench: Bench, workers: int, intake_rate: float) -> dict[str, Any]:
    """Every measurement for one worker count."""
    args = bench.args
    print(f"\nN={workers} worker(s)", flush=True)
    result: dict[str, Any] = {"classify_drain": classify_drain(bench, workers)}
    result["noop_drain"] = noop_drain(bench, workers)
    ratio = result["classify_drain"]["verdicts_per_s"] / result["noop_drain"]["jobs_per_s"]
    result["ratio_to_noop"] = round(ratio, 3)
    print(
        f"  drain: {result['classify_drain']['verdicts_per_s']} verdicts/s, no-op "
        f"{result['noop_drain']['jobs_per_s']}/s, ratio {ratio:.2f}",
        flush=True,
    )
    pool = start_workers(bench, bench.queue, workers, "live")
    try:
        result["phases"] = []
        for fraction in (float(part) for part in args.rates.split(",")):
            figures = phase(bench, pool, fraction * intake_rate, args.phase_seconds)
            figures["fraction_of_intake_max"] = fraction
            result["phases"].append(figures)
            print(
                f"  {fraction:4.0%} of intake ({figures['target_rate']}/s):"
                f" posted {figures['posted_per_s']}/s,"
                f" verdict p50 {figures['p50_ms']} p95 {figures['p95_ms']} p99 {figures['p99_ms']} ms,"
                f" {figures.get('verdicts_per_s')} verdicts/s, max depth {figures['max_depth']},"
                f" {figures['verdicts']}/{figures['comments']} decided,"
                f" {figures['comments_per_job']} a job, CPU ms a comment {figures['cpu_ms_per_comment']},"
                f" generator {figures['generator_ms_per_comment']} ms, {figures['busy_cores_posting']}"
                " cores busy",
                flush=True,
            )
        most = saturation(bench)
        result["pipeline_max"] = most
        figures = phase(bench, pool, 0.5 * most["verdicts_per_s"], args.phase_seconds)
        figures["fraction_of_pipeline_max"] = 0.5
        result["half_pipeline_max"] = figures
        print(
            f"  pipeline maximum {most['verdicts_per_s']} verdicts/s (web took {most['posted_per_s']}/s"
            f" closed loop); at half ({figures['target_rate']}/s): posted {figures['posted_per_s']}/s,"
            f" verdict p50 {figures['p50_ms']} p95 {figures['p95_ms']} p99 {figures['p99_ms']} ms,"
            f" {figures['verdicts']}/{figures['comments']} decided",
            flush=True,
        )
        sustainable = result["classify_drain"]["verdicts_per_s"]
        burst = phase(bench, pool, args.burst_factor * sustainable, args.burst_seconds)
        burst["sustainable_rate"] = sustainable
        result["burst"] = burst
        print(
            f"  burst {args.burst_factor:g}x {sustainable}/s for {args.burst_seconds:g} s: max depth "
            f"{burst['max_depth']}, drained {burst['drain_after_s']} s after the burst"
            f" ({burst['verdicts']}/{burst['comments']} decided)",
            flush=True,
        )
    finally:
        stop_workers(bench, pool)
    rate = args.burst_factor * sustainable
    result["queue_burst"] = queue = queue_burst(bench, workers, rate, args.burst_seconds)
    print(
        f"  burst {args.burst_factor:g}x {sustainable}/s into the queue for {args.burst_seconds:g} s"
        f" (released {queue['released_per_s']}/s): max depth {queue['max_depth']}, drained"
        f" {queue['drain_after_s']} s after it, verdict p99 {queue['p99_ms']} ms"
        f" ({queue['verdicts']}/{queue['comments']} decided)",
        flush=True,
    )
    return result


def report(results: dict[str, Any]) -> None:
    """The summary table: drain ratio and latency at half the intake maximum."""
    rows = []
    for workers, entry in results["by_workers"].items():
        half = next((p for p in entry["phases"] if p["fraction_of_intake_max"] == 0.5), entry["phases"][0])
        rows.append(
            [
                workers,
                entry["classify_drain"]["verdicts_per_s"],
                entry["noop_drain"]["jobs_per_s"],
                f"{entry['ratio_to_noop']:.2f}",
                half["target_rate"],
                half["p99_ms"],
                entry["half_pipeline_max"]["target_rate"],
                entry["half_pipeline_max"]["p99_ms"],
                entry["burst"]["drain_after_s"],
                entry["queue_burst"]["drain_after_s"],
            ]
        )
    print(f"\nintake maximum {results['intake_rate']:.0f}/s")
    headers = ["N", "verdicts/s", "no-op/s", "ratio", "half intake max", "p99 ms"]
    print_table([*headers, "half own max", "own p99 ms", "burst drain s", "queue burst drain s"], rows)


def run(args: argparse.Namespace, procs: Processes, workdir: Path) -> dict[str, Any]:
    """Set up database, web app and queues; measure each worker count; tidy up."""
    model_dir = workdir / "models"
    seed_model(model_dir)
    connection = redis.Redis.from_url(REDIS_URL)
    queue, noop_queue = unique_name("bench_pipeline"), unique_name("bench_noop")
    with contextlib.ExitStack() as stack:
        stack.callback(connection.close)
        stack.callback(purge_queue, connection, noop_queue)
        stack.callback(purge_queue, connection, queue)
        url = stack.enter_context(fresh_database(args.database, workdir))
        stack.callback(procs.stop_all)  # processes end before their schema is dropped
        engine = create_engine(url)
        stack.callback(engine.dispose)
        bench = Bench(args, procs, workdir, model_dir, url, engine, connection, queue, noop_queue)
        datasets = args.datasets or datasets_dir()
        found = corpus_bodies(datasets)
        bench.bodies = found or ONE_COMMENT
        posts = {"distinct": len(bench.bodies), "from": str(datasets) if found else None}
        print(f"posts: {len(bench.bodies)} distinct comment(s), from {posts['from'] or 'bench/common.py'}")
        bench.port = free_port()
        web = procs.start("web", gunicorn_argv("service:create_app()", bench.port), bench.env(queue))
        wait_for_http(bench.port, web)
        intake_rate = args.intake_rate
        if intake_rate is None:
            closed_load(bench.port, 4, 2, workdir, "auto", bench.bodies)
            intake_rate = closed_load(bench.port, 8, 5, workdir, "auto", bench.bodies).requests_per_s
            print(f"intake maximum (8 connections, no workers): {intake_rate}/s", flush=True)
        time.sleep(1.0)  # requests still queued in gunicorn's backlog land, then go
        clear_backlog(bench)
        batch = load_settings(environ=bench.env(queue)).classify_batch
        results: dict[str, Any] = {
            "intake_rate": intake_rate,
            "classify_batch": batch,
            "posts": posts,
            "by_workers": {},
        }
        for workers in (int(part) for part in args.workers.split(",")):
            results["by_workers"][workers] = run_worker_count(bench, workers, intake_rate)
        if args.profile:
            out = RESULTS_DIR / f"{args.out}-worker.profile.txt"
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            drain = classify_drain(bench, 1, profile=out)
            summary = summarize_profile(out, top=40, root="perform_job")
            results["profile"] = {"drain": drain, "collapsed_stacks": str(out), **summary}
            print(f"\nworker profile ({drain['verdicts_per_s']} verdicts/s while sampled): {out}")
            print(f"    {summary['under_root'] * 100:5.1f}%  of samples inside perform_job")
            for row in summary["inclusive"][:30]:
                print(f"    {row['share'] * 100:5.1f}%  {row['function']}")
        return results


def main(argv: list[str] | None = None) -> int:
    """Run the pipeline benchmark and write its JSON."""
    args = parse_args(argv)
    stop_on_sigterm()
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine_info(), "settings": vars(args)}
    with workspace("bench-pipeline") as workdir:
        procs = Processes(workdir)
        try:
            results.update(run(args, procs, workdir))
        finally:
            procs.stop_all()
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    report(results)
    print(f"\nwrote {write_results(args.out, results)} in {results['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
