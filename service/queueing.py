"""The job queue edge: connecting to Redis and enqueueing classification jobs.

Jobs are named by import path so the web process never imports the worker (or the
model). Each carries only a comment id: no text, and never an email address.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from service.config import Settings
from service.embedded_redis import ensure_embedded_redis

logger = logging.getLogger(__name__)

CLASSIFY_JOB = "worker.jobs.classify_comment"
# Seconds between retries of a failing job; the last interval repeats for later tries.
RETRY_INTERVALS = [2, 10, 30]
RESULT_TTL_SECONDS = 600
FAILURE_TTL_SECONDS = 7 * 24 * 3600
# A job in one of these states will still run; anything else needs a new job.
_PENDING = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def redis_url(settings: Settings) -> str:
    """The configured Redis URL, starting the embedded server when none is configured."""
    return settings.redis_url or ensure_embedded_redis(settings.data_dir)


def connect_redis(url: str, timeout: float | None = None) -> redis.Redis:
    """A client for ``url``; ``timeout`` bounds connects and reads (None waits, for workers)."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=timeout or 5.0, socket_timeout=timeout, health_check_interval=30
    )


@dataclass(frozen=True)
class ClassifyQueue:
    """Enqueues classification jobs with the configured timeout and retries."""

    queue: Queue
    job_timeout: int
    retries: int

    def job_id(self, comment_id: int) -> str:
        """One job id per comment, so the sweeper can tell whether its job still exists.

        Job ids are global in Redis; naming them after the queue keeps two deployments
        (or test runs) that share a server from mistaking each other's jobs.
        """
        return f"{self.queue.name}-{comment_id}"

    @classmethod
    def from_settings(cls, connection: redis.Redis, settings: Settings) -> ClassifyQueue:
        """The queue named in the settings on ``connection``."""
        return cls(
            Queue(settings.queue_name, connection=connection), settings.job_timeout, settings.job_retries
        )

    def enqueue(self, comment_id: int) -> None:
        """Queue classification of one stored comment; raises ``redis.RedisError`` on outage.

        The job is written through a pipeline: one round trip to Redis instead of three.
        """
        with self.queue.connection.pipeline() as pipe:
            self.queue.enqueue_call(
                CLASSIFY_JOB,
                args=(comment_id,),
                job_id=self.job_id(comment_id),
                description=f"classify comment {comment_id}",
                timeout=self.job_timeout,
                result_ttl=RESULT_TTL_SECONDS,
                failure_ttl=FAILURE_TTL_SECONDS,
                retry=Retry(max=self.retries, interval=RETRY_INTERVALS) if self.retries else None,
                pipeline=pipe,
            )
            pipe.execute()

    def try_enqueue(self, comment_id: int) -> bool:
        """Queue the job, or log and return False when Redis cannot be reached.

        The comment is already committed, so an outage only delays it: the sweeper
        re-enqueues whatever stays in ``received``.
        """
        try:
            self.enqueue(comment_id)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            logger.warning(
                "comment %s stored; queue unreachable (%s), the sweeper will retry", comment_id, exc
            )
            return False
        return True

    def is_pending(self, comment_id: int) -> bool:
        """True when the comment's job exists and will still run."""
        return job_is_pending(self.queue.connection, self.job_id(comment_id))


def job_is_pending(connection: redis.Redis, job_id: str) -> bool:
    """True when job ``job_id`` exists and will still run."""
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return False
    return job.get_status(refresh=False) in _PENDING
