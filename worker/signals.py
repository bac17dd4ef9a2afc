"""The signals that stop a worker, kept for the main thread.

Python runs a signal's handler in the main thread, but the kernel hands a signal sent to
the process to any of its threads that does not hold it back, and one taken by another
thread does not interrupt what the main thread is waiting in. An RQ worker waits for its
next job in a read from Redis of up to 405 s: a Ctrl-C of ``moderation run`` taken by the
dispatcher's thread, or by RQ's own listener, was not handled until that read ended (in
5 of 37 runs, until the run killed the worker 15 s later). So every thread a worker
starts holds the stop signals back, and the main thread takes them.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


@contextlib.contextmanager
def stop_signals_held() -> Iterator[None]:
    """Hold stop signals back for the block; one that came meanwhile is handled after it.

    A thread started inside keeps them held for good (a thread starts with its creator's
    mask), so they go to the main thread instead.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def hold_stop_signals_in_this_thread() -> None:
    """Leave stop signals to the other threads (the main thread) from now on."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
