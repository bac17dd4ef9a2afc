"""Running a worker: load the model once, then take classification jobs until told to stop."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

import redis
from rq import Queue, SimpleWorker

from service.config import Settings
from worker.checkpointer import start_checkpointer
from worker.context import build_context, install_context
from worker.dispatcher import LEASE_SECONDS, dispatch_all, start_dispatcher
from worker.model_holder import ModelHolder
from worker.orphans import children_stop_when_orphaned
from worker.pool import respawn_delay
from worker.signals import STOP_SIGNALS, stop_signals_held
from worker.sweeper import start_sweeper
from worker.webhooks import start_webhook_sender

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0
# RQ's maintenance, which starts the scheduler process again when it has ended (a Redis
# outage ends it), runs every ten minutes unless told: meanwhile no retry of a failed
# job was enqueued, and the sweeper took the comments back only after its grace.
MAINTENANCE_SECONDS = 30


class ModerationWorker(SimpleWorker):
    """Runs jobs in its own process: the model stays loaded and no fork is paid per job."""

    stop_requested = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("maintenance_interval", MAINTENANCE_SECONDS)
        super().__init__(*args, **kwargs)

    def subscribe(self) -> None:
        """Listen for RQ's commands as RQ does, its listener thread holding stop signals back
        (``worker/signals.py``)."""
        with stop_signals_held():
            super().subscribe()  # type: ignore[no-untyped-call]

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        """Remember that the stop was asked for, so the runner does not restart the worker."""
        self.stop_requested = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]


def _rq_log_level(settings: Settings) -> str:
    """RQ's own level: its per-job INFO lines cost about a sixth of a short job, so only DEBUG shows them."""
    level = settings.log_level.upper()
    return level if level in {"DEBUG", "WARNING", "ERROR", "CRITICAL"} else "WARNING"


def run_worker(settings: Settings, *, burst: bool = False, models: ModelHolder | None = None) -> None:
    """Work the classify queue; restart after a Redis outage until a signal says stop.

    With ``burst`` the worker hands the whole outbox to the queue, drains the queue
    once and returns. ``models`` is a model already loaded (by a parent that forked).
    """
    context = build_context(settings, models)
    install_context(context)
    logger.info("worker ready with model %s", context.models.active().version)
    queues = [context.queue.queue, Queue(settings.retrain_queue, connection=context.queue.queue.connection)]
    stop = threading.Event()
    dispatcher: threading.Thread | None = None
    webhooks: threading.Thread | None = None
    if burst:
        dispatch_all(context)
    else:
        # RQ forks a scheduler process beside the worker; it must not outlive a killed worker.
        children_stop_when_orphaned()
        with stop_signals_held():  # for the main thread alone: see worker/signals.py
            dispatcher = start_dispatcher(context, stop)
            start_checkpointer(context.engine, stop)
            if settings.sweep_interval > 0:
                start_sweeper(context, stop)
            if settings.webhooks:
                webhooks = start_webhook_sender(context, stop)
    pause: float | None = None
    asked_to_stop = threading.Event()
    # What a stop signal did before the first worker: put back before each next one, which
    # registers itself in Redis before RQ installs its own handlers.
    original = {stop_signal: signal.getsignal(stop_signal) for stop_signal in STOP_SIGNALS}
    try:
        while True:
            worker = None
            began = time.monotonic()
            try:
                # Made inside: it names itself to Redis, which may be down at start as later.
                # Classification first: RQ takes from the first queue that has a job.
                worker = ModerationWorker(queues, connection=context.queue.queue.connection)
                worker.work(burst=burst, with_scheduler=not burst, logging_level=_rq_log_level(settings))
            except redis.RedisError as exc:
                if burst:  # asked to drain the queue once, it has not: a failure, not an end
                    raise
                logger.warning("worker lost the queue: %s", exc)
            if burst or (worker is not None and worker.stop_requested):
                return
            # RQ's signal handlers outlive its work(), bound to a worker that runs no more (one
            # that thought itself busy would only take note): a stop asked for during the
            # pause is this loop's to take.
            for stop_signal in STOP_SIGNALS:
                signal.signal(stop_signal, lambda _signum, _frame: asked_to_stop.set())
            # Doubling while it keeps stopping soon after its start; one that ran a while
            # (days, between two Redis restarts) starts the pauses over.
            pause = respawn_delay(time.monotonic() - began, pause, longest=MAX_BACKOFF_SECONDS)
            logger.warning("worker stopped unexpectedly; starting again in %.0f s", pause)
            if asked_to_stop.wait(pause):
                logger.info("worker stopped while waiting to start again")
                return
            for stop_signal, handler in original.items():
                signal.signal(stop_signal, handler)
            if asked_to_stop.is_set():  # came between the pause's end and the line above
                return
    finally:
        stop.set()
        if dispatcher is not None:
            # Its lease is released when it ends; a pool's child exits with os._exit right
            # after this returns, so waiting is what frees the lease at once rather than
            # when it expires. Any longer than the lease and there is nothing left to free.
            dispatcher.join(LEASE_SECONDS)
        if webhooks is not None:
            webhooks.join(settings.webhook_timeout)  # the same, unless a post is still in flight
