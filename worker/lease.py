"""A lease in Redis: one of many worker processes, on any host, does a job; another takes
over when it stops.

The lease is a Redis key with a time to live, taken only when absent and renewed by its
holder (redis-py's ``Lock``, whose token makes sure only the holder renews or frees
it). A holder that stops frees it; one that dies lets it run out, so the others wait at
most its length. Two holders at once are possible only if a holder is stalled for longer
than the lease, so what it guards must stay harmless when done twice.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from redis.exceptions import LockNotOwnedError
from sqlalchemy.orm import Session, sessionmaker

from service.db import NOT_MIGRATED, missing_table


class Lease:
    """One process's claim on the lease ``name``, for ``seconds`` at a time."""

    def __init__(self, connection: redis.Redis, name: str, seconds: float) -> None:
        # Not thread-local: the holder's token must not depend on which thread renews it.
        self._lock = connection.lock(name, timeout=seconds, thread_local=False)
        self.seconds = seconds
        self._renew_at = 0.0
        self.held = False
        # How often this process took the lease, renewals aside: a holder that sees it
        # change knows it took over, and cannot know what the holder before it left undone.
        self.taken = 0

    def hold(self) -> bool:
        """Take the lease if it is free, renew it once a quarter of it has passed; return
        whether this process holds it now. Raises ``redis.RedisError`` on an outage."""
        now = time.monotonic()
        if self.held and now < self._renew_at:
            return True
        if self.held:
            try:
                self._lock.reacquire()
            except LockNotOwnedError:  # it ran out while this process stalled; another may hold it
                self.held = False
        if not self.held:
            self.held = bool(self._lock.acquire(blocking=False))
            if self.held:
                self.taken += 1
        if self.held:
            self._renew_at = now + self.seconds / 4
        return self.held

    def release(self) -> None:
        """Free the lease if this process holds it, so another takes over at once."""
        if self.held:
            self.held = False
            # Not owned any more (it ran out), or Redis is away: it frees itself when its time is up.
            with contextlib.suppress(redis.RedisError):
                self._lock.release()


@dataclass(frozen=True)
class Failures:
    """How a leased loop reports and waits out failed rounds."""

    logger: logging.Logger
    paused: str
    """Logged as a warning, with the error, when rounds start failing."""
    resumed: str
    """Logged when a round succeeds again."""
    pause_seconds: float
    """How long to wait after a failed round."""


def start_leased_loop(
    name: str,
    lease: Lease,
    stop: threading.Event,
    sessions: sessionmaker[Session],
    work: Callable[[Session], float],
    failures: Failures,
) -> threading.Thread:
    """Run ``work`` round after round in a daemon thread until ``stop`` is set, while this
    process holds ``lease``; without it, try for it every quarter of its length.

    ``work`` gets one session for the thread's whole life and returns how long to wait
    before the next round. A round that raises is rolled back, its lease freed for another
    process to try, and waited out; the thread outlives it. The lease is freed when the
    thread ends, so another process takes it over within a quarter of its length.
    """

    def loop() -> None:
        failing = False
        try:
            with sessions() as session:
                while not stop.is_set():
                    try:
                        if not lease.hold():
                            stop.wait(lease.seconds / 4)
                            continue
                        pause = work(session)
                    except Exception as exc:  # the thread must outlive any one failed round
                        session.rollback()
                        # What failed may be this process's alone (its host lost the database,
                        # say): kept, the lease would keep every healthy process waiting for ever.
                        lease.release()
                        if not failing:
                            if missing_table(exc):
                                failures.logger.warning("%s: %s", failures.paused, NOT_MIGRATED)
                            else:
                                failures.logger.warning("%s: %s", failures.paused, exc, exc_info=True)
                        failing = True
                        stop.wait(failures.pause_seconds)
                        continue
                    if failing:
                        failures.logger.info(failures.resumed)
                    failing = False
                    if pause > 0:
                        stop.wait(pause)
        finally:
            lease.release()

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread
