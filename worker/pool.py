"""Several worker processes sharing one loaded model copy-on-write.

The parent loads the model, freezes the garbage collector's view of it (so collections
in the children do not write to, and so copy, the pages holding it), then forks the
workers. Each child opens its own database and Redis connections, as nothing opened
before a fork may be shared. The parent only supervises: it forwards a stop signal,
waits for its children, and forks a new one in place of a child that died; a child
whose parent was killed stops by itself.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

from service.config import Settings
from worker.model_holder import ModelHolder

logger = logging.getLogger(__name__)

RESPAWN_SECONDS = 1.0
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
ORPHAN_CHECK_SECONDS = 2.0


def _stop_when_orphaned(parent: int) -> None:
    """Send this process a SIGTERM if ``parent`` goes away (killed without a chance to stop us)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(ORPHAN_CHECK_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def run_pool(settings: Settings, processes: int, run_child: Callable[[ModelHolder], None]) -> None:
    """Load the model once, fork ``processes`` children running ``run_child``, supervise them.

    Returns when a SIGTERM or SIGINT has stopped every child.
    """
    models = ModelHolder(settings.models, settings.model_check_seconds)
    logger.info("loaded model %s once for %s worker processes", models.active().version, processes)
    gc.freeze()
    children: dict[int, int] = {}
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):  # reaped a moment ago
                os.kill(pid, signal.SIGTERM)

    def spawn(slot: int) -> None:
        # Stop signals wait while the child is forked and recorded, so none can fall
        # between the fork and the bookkeeping, nor reach the child's copy of `stop`.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:  # the child: default signals, then work until RQ says stop
                for sig in STOP_SIGNALS:
                    signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
                # A group of its own: a terminal's Ctrl-C reaches only the parent, which
                # sends one SIGTERM (a warm shutdown); a second would make RQ stop cold.
                os.setpgid(0, 0)
                _stop_when_orphaned(os.getppid())
                code = 0
                try:
                    run_child(models)
                except BaseException:
                    logger.exception("worker process %s failed", os.getpid())
                    code = 1
                finally:
                    os._exit(code)
            children[pid] = slot
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        for slot in range(processes):
            spawn(slot)
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            slot = children.pop(pid)
            if not stopping:
                logger.warning("worker process %s ended (status %s); starting another", pid, status)
                time.sleep(RESPAWN_SECONDS)
                if not stopping:  # a stop signal may have come during the pause
                    spawn(slot)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
