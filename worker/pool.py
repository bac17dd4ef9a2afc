"""Several worker processes sharing one loaded model copy-on-write.

The parent loads the model, which the holder freezes out of the garbage collector's
reach (so collections in the children do not write to, and so copy, the pages holding
it), then forks the workers. Each child opens its own database and Redis connections,
as nothing opened before a fork may be shared. The parent only supervises: it forwards
a stop signal, waits for its children, and forks a new one in place of a child that
died; a child whose parent was killed stops by itself, as does the scheduler process RQ
forks beside a worker that was killed (worker/orphans.py).

A newly activated (or shadow) version is loaded by the parent too, once: the children
keep the models they were forked with, and the parent replaces them one at a time (a
warm shutdown, so the batch in hand is finished) with children forked after the load;
a child still busy after `RETIRE_GRACE_SECONDS` (a retraining run lasts minutes) no
longer holds up the others. Loading it in every child instead would give each its own copy.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from types import FrameType

from service.config import Settings
from service.errors import ConfigError
from worker.model_holder import ModelHolder
from worker.orphans import stop_when_orphaned
from worker.signals import STOP_SIGNALS, stop_signals_held

logger = logging.getLogger(__name__)

RESPAWN_SECONDS = 1.0
# Children that keep ending within this of their start (the database or Redis is down,
# say) are forked again after a pause that doubles each time, up to the longest; one that
# lived longer starts the pause over.
SETTLED_SECONDS = 60.0
MAX_RESPAWN_SECONDS = 60.0
# How often the parent looks for ended children; it also reads the model registry's
# pointers every `model_check_seconds`.
POLL_SECONDS = 0.2
# A child told to make way for a new model finishes its job first: a classify batch takes
# well under this, so one that has not ended by then is on a long job (a retraining run),
# and the next child is told too rather than scoring with the old model meanwhile.
RETIRE_GRACE_SECONDS = 5.0
# How a child says that it stopped on a configuration error (sysexits.h's EX_CONFIG): every
# child forked in its place would stop the same way, so the pool stops instead.
CONFIG_ERROR_STATUS = 78


def next_to_retire(outdated: set[int], retiring: Mapping[int, float], now: float) -> int | None:
    """The outdated child to tell to stop next, or None while one told less than
    `RETIRE_GRACE_SECONDS` before ``now`` may still be finishing a short job.

    A child told already is never told again (a second model change makes every child
    outdated): a second SIGTERM would make RQ stop it cold, in the middle of its job.
    """
    untold = outdated - retiring.keys()
    if not untold or any(now - told < RETIRE_GRACE_SECONDS for told in retiring.values()):
        return None
    return min(untold)


def respawn_delay(lived: float, previous: float | None, *, longest: float = MAX_RESPAWN_SECONDS) -> float:
    """The pause before forking in place of a child that ended ``lived`` seconds after its
    start, when the one before it in its place was forked after ``previous`` (None: none was);
    at most ``longest``. Also the pause before a worker process starts its worker again."""
    if previous is None or lived >= SETTLED_SECONDS:
        return RESPAWN_SECONDS
    return min(previous * 2, longest)


def run_pool(settings: Settings, processes: int, run_child: Callable[[ModelHolder], None]) -> None:
    """Load the model once, fork ``processes`` children running ``run_child``, supervise them.

    Returns when a SIGTERM or SIGINT has stopped every child. Raises ``ConfigError`` once
    every child has stopped after one of them stopped on a configuration error (the wrong
    secret key, found by its webhook sender): forking others in its place for ever would
    keep a pool that classifies nothing looking alive to whatever supervises it.
    """
    models = ModelHolder(settings.models, settings.model_check_seconds)
    logger.info("loaded model %s once for %s worker processes", models.active().version, processes)
    children: dict[int, int] = {}
    outdated: set[int] = set()  # children forked before the models held now were loaded
    retiring: dict[int, float] = {}  # those told to stop, when; each is replaced once it ends
    started: dict[int, float] = {}  # each child's fork time
    due: dict[int, float] = {}  # slots whose child ended: when to fork the next
    pauses: dict[int, float] = {}  # the pause before each slot's last fork after an end
    stopping = False
    misconfigured = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            if pid in retiring:  # told already; a second SIGTERM would make RQ stop it cold
                continue
            with contextlib.suppress(ProcessLookupError):  # reaped a moment ago
                os.kill(pid, signal.SIGTERM)

    def spawn(slot: int) -> None:
        # Stop signals wait while the child is forked and recorded, so none can fall
        # between the fork and the bookkeeping, nor reach the child's copy of `stop`.
        with stop_signals_held():
            if stopping:  # a stop came while this fork was being prepared
                return
            pid = os.fork()
            if pid == 0:  # the child: default signals, then work until RQ says stop
                for sig in STOP_SIGNALS:
                    signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
                # A group of its own: a terminal's Ctrl-C reaches only the parent, which
                # sends one SIGTERM (a warm shutdown); a second would make RQ stop cold.
                os.setpgid(0, 0)
                stop_when_orphaned(os.getppid())
                models.pin()
                code = 0
                try:
                    run_child(models)
                except ConfigError as exc:
                    logger.error("worker process %s stopped: %s", os.getpid(), exc)
                    code = CONFIG_ERROR_STATUS
                except BaseException:
                    logger.exception("worker process %s failed", os.getpid())
                    code = 1
                finally:
                    os._exit(code)
            children[pid] = slot
            started[pid] = time.monotonic()

    def reload_models() -> None:
        nonlocal outdated
        try:
            changed = models.reload()
        except Exception:  # the pool must outlive a registry it cannot read this time
            logger.exception("could not look for a new model; keeping %s", models.versions()[0])
            return
        if changed:
            active, shadow = models.versions()
            logger.info("loaded model %s (shadow %s) once; replacing the workers", active, shadow)
            outdated = set(children)

    def retire_next() -> None:
        # One at a time, so the others go on taking jobs meanwhile. Stop signals wait, so a
        # stop cannot fall between choosing the child and signalling it (it would signal twice).
        with stop_signals_held():
            now = time.monotonic()
            pid = None if stopping else next_to_retire(outdated, retiring, now)
            if pid is not None:
                outdated.discard(pid)
                retiring[pid] = now
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        for slot in range(processes):
            spawn(slot)
        next_check = time.monotonic() + settings.model_check_seconds
        while children or due:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # none left to wait for, whatever the bookkeeping says
                if not due:
                    break
                pid = 0  # only forks to come
            if pid == 0:
                if stopping:
                    due.clear()
                else:
                    if time.monotonic() >= next_check:
                        next_check = time.monotonic() + settings.model_check_seconds
                        reload_models()
                    retire_next()
                    for ready in [slot for slot, at in due.items() if at <= time.monotonic()]:
                        del due[ready]
                        spawn(ready)
                time.sleep(POLL_SECONDS)
                continue
            if pid not in children:
                # An orphan handed to this process, PID 1 in a container (the scheduler RQ
                # forks beside a worker that was killed): reaped, and nothing to replace.
                logger.info("reaped process %s (status %s), not one of the workers", pid, status)
                continue
            slot = children.pop(pid)
            outdated.discard(pid)
            lived = time.monotonic() - started.pop(pid)
            if stopping:
                continue
            if os.waitstatus_to_exitcode(status) == CONFIG_ERROR_STATUS:
                misconfigured = True
                with stop_signals_held():  # `stop` is the signal handler's too
                    stop(signal.SIGTERM, None)
                continue
            if retiring.pop(pid, None) is not None:
                spawn(slot)
                continue
            pauses[slot] = respawn_delay(lived, pauses.get(slot))
            logger.warning(
                "worker process %s ended (status %s) %.0f s after its start; starting another in %.0f s",
                pid,
                status,
                lived,
                pauses[slot],
            )
            due[slot] = time.monotonic() + pauses[slot]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if misconfigured:
        raise ConfigError("a worker process stopped on a configuration error, logged above; the pool stopped")
