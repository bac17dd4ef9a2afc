"""The job queue edge: connecting to Redis, the inbox of waiting comments, and RQ jobs.

The dispatcher appends stored comments' ids to an inbox, a Redis list beside the RQ
queue, many ids per round trip. RQ jobs drain the inbox in batches, so a deep queue costs
one job (and one model call, one commit) per batch rather than per comment. A drain
job is enqueued whenever the inbox goes from empty to non-empty, and a drain job that
leaves ids behind enqueues the next one; so while the inbox holds an id, a job that
will take it is queued or running, and if that job was lost the sweeper enqueues
another (``ensure_draining``).

Jobs are named by import path so the web process never imports the worker (or the
model). Neither the inbox nor a job holds any text, and never an email address.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from service.config import Settings
from service.embedded_redis import ensure_embedded_redis, is_running, stop_embedded_redis

DRAIN_JOB = "worker.jobs.classify_waiting"
# Seconds between retries of a failing job; the last interval repeats for later tries.
RETRY_INTERVALS = [2, 10, 30]
RESULT_TTL_SECONDS = 600
FAILURE_TTL_SECONDS = 7 * 24 * 3600
# How long the attempts on a comment are remembered: far longer than any retry schedule
# or sweep, and bounded, so those of comments decided otherwise go away.
ATTEMPTS_TTL_SECONDS = 24 * 3600
# Per comment, a hash of the attempts on it not yet ended (token -> start time, in
# seconds); the largest number of them that started before the time limit of a job.
_BEGIN_ATTEMPT_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local started_before = now - tonumber(ARGV[2])
local deaths = 0
for _, key in ipairs(KEYS) do
    redis.call('HSET', key, ARGV[1], string.format('%.6f', now))
    redis.call('EXPIRE', key, ARGV[3])
    local dead = 0
    for _, started in ipairs(redis.call('HVALS', key)) do
        if tonumber(started) < started_before then
            dead = dead + 1
        end
    end
    deaths = math.max(deaths, dead)
end
return deaths
"""
# A job in one of these states will still run; anything else needs a new job.
_PENDING = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def redis_url(settings: Settings) -> str:
    """The configured Redis URL, starting the embedded server when none is configured."""
    return settings.redis_url or ensure_embedded_redis(settings.data_dir)


@contextmanager
def scoped_redis_url(settings: Settings) -> Iterator[str]:
    """``redis_url`` for the length of the block: an embedded server the block started is
    shut down at its end (it keeps its data on disk for the next start)."""
    if settings.redis_url:
        yield settings.redis_url
        return
    started = not is_running(settings.data_dir)
    url = ensure_embedded_redis(settings.data_dir)
    try:
        yield url
    finally:
        if started:
            stop_embedded_redis(settings.data_dir)


def connect_redis(url: str, timeout: float | None = None) -> redis.Redis:
    """A client for ``url``; ``timeout`` bounds connects and reads (None waits, for workers)."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=timeout or 5.0, socket_timeout=timeout, health_check_interval=30
    )


@dataclass(frozen=True)
class ClassifyQueue:
    """The inbox of comments waiting for a verdict and the RQ queue of jobs that drain it."""

    queue: Queue
    job_timeout: int
    retries: int

    @property
    def inbox(self) -> str:
        """The Redis list of waiting comment ids; named after the queue, so two
        deployments (or test runs) sharing a server keep apart."""
        return f"moderation:inbox:{self.queue.name}"

    @property
    def dispatcher_lease(self) -> str:
        """The Redis key of the lease held by the one worker that feeds the inbox."""
        return f"moderation:dispatcher:{self.queue.name}"

    @property
    def sweeper_lock(self) -> str:
        """The Redis key that keeps the sweeps of this queue's workers to one per interval."""
        return f"moderation:sweeper:{self.queue.name}"

    def _attempts(self, comment_id: int) -> str:
        return f"moderation:attempts:{self.queue.name}:{comment_id}"

    def begin_attempt(self, comment_ids: Sequence[int]) -> tuple[str, int]:
        """Record a job starting on ``comment_ids``; return the attempt's token (for
        ``end_attempt``) and how many earlier attempts on one of them died: started more
        than the job time limit ago (no job runs longer) and never ended.

        One round trip, timed by the Redis server's clock. Attempts still running beside
        this one (an id listed twice, or in two jobs) are young and do not count.
        """
        token = uuid.uuid4().hex
        begin = self.queue.connection.register_script(_BEGIN_ATTEMPT_SCRIPT)
        deaths = begin(
            keys=[self._attempts(comment_id) for comment_id in comment_ids],
            args=[token, self.job_timeout, ATTEMPTS_TTL_SECONDS],
        )
        return token, int(deaths)

    def end_attempt(self, comment_ids: Sequence[int], token: str) -> None:
        """Forget attempt ``token`` on ``comment_ids``: its job ended, whatever its outcome."""
        with self.queue.connection.pipeline(transaction=False) as pipe:
            for comment_id in comment_ids:
                pipe.hdel(self._attempts(comment_id), token)
            pipe.execute()

    @classmethod
    def from_settings(cls, connection: redis.Redis, settings: Settings) -> ClassifyQueue:
        """The queue named in the settings on ``connection``."""
        return cls(
            Queue(settings.queue_name, connection=connection), settings.job_timeout, settings.job_retries
        )

    def submit(self, comment_ids: Sequence[int]) -> None:
        """Append stored comments to the inbox; raises ``redis.RedisError`` on outage.

        One round trip, and a second to enqueue a drain job only when the inbox was
        empty: when it was not, the job that will take the earlier ids takes these too.
        """
        if not comment_ids:
            return
        length = self.queue.connection.rpush(self.inbox, *comment_ids)
        if length == len(comment_ids):
            self.enqueue_drain()

    def take(self, count: int, record: Callable[[list[int]], None] | None = None) -> list[int]:
        """Remove up to ``count`` ids from the head of the inbox, oldest first.

        ``record`` is given the ids first: once out of the inbox they are only where the
        caller keeps them, so nothing that can fail comes between. Then, when ids remain,
        the next drain job is enqueued before this one returns, so another worker can
        start on them while the caller scores its batch.
        """
        with self.queue.connection.pipeline() as pipe:
            pipe.lpop(self.inbox, count)
            pipe.llen(self.inbox)
            taken, remaining = pipe.execute()
        comment_ids = [int(raw) for raw in taken or ()]
        if record is not None:
            record(comment_ids)
        if remaining:
            self.enqueue_drain()
        return comment_ids

    def waiting(self) -> int:
        """How many ids the inbox holds."""
        return int(self.queue.connection.llen(self.inbox))

    def ensure_draining(self) -> bool:
        """Enqueue a drain job when ids wait but no job of the queue is queued, running or
        scheduled for a retry; return True when one was enqueued.

        The inbox gets its job when it goes from empty to non-empty; if that enqueue failed
        after the push (a dropped connection), or the job was lost, nothing else would
        start the inbox again. A drain job too many is harmless.
        """
        if not self.waiting():
            return False
        registries = (self.queue.started_job_registry, self.queue.scheduled_job_registry)
        if self.queue.count or any(registry.count for registry in registries):
            return False
        self.enqueue_drain()
        return True

    def enqueue_drain(self, comment_ids: Sequence[int] = ()) -> Job:
        """Enqueue one job that classifies a batch taken from the inbox or, given
        ``comment_ids``, those comments."""
        return self.queue.enqueue_call(
            DRAIN_JOB,
            args=(list(comment_ids),) if comment_ids else None,
            timeout=self.job_timeout,
            **self._drain_options(comment_ids),
        )

    def enqueue_drain_in(self, seconds: float, comment_ids: Sequence[int], meta: dict[str, Any]) -> Job:
        """Schedule one job, with ``meta``, that classifies ``comment_ids`` in ``seconds``
        (RQ's scheduler enqueues it then)."""
        return self.queue.enqueue_in(
            timedelta(seconds=seconds),
            DRAIN_JOB,
            list(comment_ids),
            meta=meta,
            job_timeout=self.job_timeout,
            **self._drain_options(comment_ids),
        )

    def _drain_options(self, comment_ids: Sequence[int]) -> dict[str, Any]:
        """What every classify job is enqueued with besides its time limit, which RQ names
        differently when it enqueues now and when later."""
        return {
            "description": f"classify comments {list(comment_ids)}"
            if comment_ids
            else "classify waiting comments",
            "result_ttl": RESULT_TTL_SECONDS,
            "failure_ttl": FAILURE_TTL_SECONDS,
            "retry": Retry(max=self.retries, interval=RETRY_INTERVALS) if self.retries else None,
        }


def job_is_pending(connection: redis.Redis, job_id: str) -> bool:
    """True when job ``job_id`` exists and will still run."""
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return False
    return job.get_status(refresh=False) in _PENDING
