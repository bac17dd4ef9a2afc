"""The worker's RQ loop: what it keeps running beside the jobs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis import Redis
from rq import Queue
from rq.scheduler import RQScheduler
from rq.utils import now

from worker.runner import ModerationWorker

pytestmark = pytest.mark.integration


def test_a_scheduler_that_ended_is_started_again_within_a_minute(redis_url: str, queue_name: str) -> None:
    # A Redis outage ends the scheduler process, which enqueues the retries of failed jobs;
    # RQ starts it again in its maintenance, which ran every ten minutes.
    queue = Queue(queue_name, connection=Redis.from_url(redis_url))
    worker = ModerationWorker([queue], connection=queue.connection)
    worker.scheduler = RQScheduler([queue], connection=queue.connection)  # its process gone
    worker.last_cleaned_at = now() - timedelta(minutes=1)
    try:
        assert worker.should_run_maintenance_tasks
        worker.run_maintenance_tasks()
        process = worker.scheduler._process
        assert process is not None and process.is_alive()
    finally:
        # Killed, not asked to stop: a child forked beside the test runner's own threads can
        # be stuck on a lock one of them held, and never get to its SIGTERM handler.
        process = worker.scheduler._process
        if process is not None:
            process.kill()
            process.join(10)
        worker.scheduler.release_locks()
