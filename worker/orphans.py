"""Processes that stop by themselves when the process that started them is gone.

A worker killed outright (SIGKILL, the OOM killer) gets no chance to stop what it
started: a pool's workers, or the scheduler process RQ forks beside each worker. Each
of those watches its parent and sends itself a SIGTERM (a warm shutdown) once the
parent has gone.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from worker.signals import hold_stop_signals_in_this_thread

ORPHAN_CHECK_SECONDS = 2.0


def stop_when_orphaned(parent: int) -> None:
    """Send this process a SIGTERM when ``parent`` is no longer its parent."""

    def watch() -> None:
        hold_stop_signals_in_this_thread()  # the SIGTERM below, too, is the main thread's
        while os.getppid() == parent:
            time.sleep(ORPHAN_CHECK_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def children_stop_when_orphaned() -> None:
    """Make every process forked from this one from now on stop when this one is gone."""
    os.register_at_fork(after_in_child=lambda: stop_when_orphaned(os.getppid()))
