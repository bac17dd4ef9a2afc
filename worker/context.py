"""What a worker process holds for its whole life: settings, database, queue, and the model.

RQ calls jobs by import path with plain arguments, so the jobs find their
collaborators here. The context is built once per process, before the first job,
which is what makes the model load once per worker rather than once per job.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings, load_settings
from service.db import engine_for, make_session_factory
from service.queueing import ClassifyQueue, connect_redis, redis_url
from worker.model_holder import ModelHolder
from worker.policy import Policy

logger = logging.getLogger(__name__)

# Only `moderation worker` runs the dispatcher that feeds the queue from the outbox and
# the sweeper that recovers lost jobs; a plain `rq worker` only adds job capacity.
PLAIN_RQ_WORKER = (
    "jobs run outside `moderation worker`: this process feeds no comments to the queue and "
    "recovers no lost jobs, so new comments are classified only while a `moderation worker` runs"
)


@dataclass(frozen=True)
class WorkerContext:
    """A worker's long-lived collaborators."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    models: ModelHolder
    policy: Policy
    queue: ClassifyQueue
    # The same queue on a client of its own with the web's bounded timeout, for the
    # threads beside the jobs (dispatcher, sweeper, leases). RQ's client waits without a
    # timeout (it raises one for its blocking pops only on connections made after its
    # worker starts), and a Redis that stopped answering would hold such a thread, and the
    # outbox rows it had locked, for ever.
    background_queue: ClassifyQueue


def build_context(settings: Settings, models: ModelHolder | None = None) -> WorkerContext:
    """Open the database and Redis, and load the active model unless ``models`` holds it already."""
    url = redis_url(settings)
    engine = engine_for(settings)
    return WorkerContext(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        models=models or ModelHolder(settings.models, settings.model_check_seconds),
        policy=Policy(
            settings.review_threshold,
            settings.reject_threshold,
            settings.premoderation,
            settings.trusted_after_approved,
            settings.min_seconds_to_submit,
        ),
        queue=ClassifyQueue.from_settings(connect_redis(url, timeout=None), settings),
        background_queue=ClassifyQueue.from_settings(connect_redis(url, settings.redis_timeout), settings),
    )


_lock = threading.Lock()
_context: WorkerContext | None = None


def install_context(context: WorkerContext) -> None:
    """Make ``context`` the one this process's jobs use (the worker command and tests call it)."""
    global _context
    with _lock:
        _context = context


def current_context() -> WorkerContext:
    """The process's context, built from the environment on first use (plain ``rq worker``)."""
    global _context
    with _lock:
        if _context is None:
            logger.warning(PLAIN_RQ_WORKER)
            _context = build_context(load_settings())
        return _context
