"""Processes forked by a worker stop by themselves, warmly, once the worker is gone."""

from __future__ import annotations

import subprocess
import sys

# A worker (the middle process) forks a child, as RQ forks its scheduler, and is then
# killed outright. The child reports on a pipe what happened to it, and the stop signal
# it got; the pipe ends when it has ended. Its main thread waits in a long sleep, as a
# worker waits in its read from Redis: the signal must reach that thread.
SCRIPT = """
import os, signal, time
from worker import orphans

orphans.ORPHAN_CHECK_SECONDS = 0.02
read, write = os.pipe()
middle = os.fork()
if middle == 0:
    orphans.children_stop_when_orphaned()
    if os.fork() == 0:
        def stopped(signum, _frame):
            os.write(write, f"{signal.Signals(signum).name}\\n".encode())
            os._exit(0)

        signal.signal(signal.SIGTERM, stopped)
        time.sleep(0.3)
        os.write(write, b"alive beside its parent\\n")
        time.sleep(30)
        os._exit(1)
    time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGKILL)
os.close(write)
os.waitpid(middle, 0)
with os.fdopen(read, "rb") as reports:
    print(reports.read().decode(), end="")
"""


def test_a_process_forked_by_a_worker_gets_a_sigterm_once_the_worker_is_killed() -> None:
    # SIGTERM, not SIGKILL: RQ's warm shutdown, which lets a job in hand finish. And not
    # before the worker is gone: the watch starts from the parent the child was forked by.
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["alive beside its parent", "SIGTERM"]


def test_a_process_watching_its_parent_still_ends_when_its_work_is_done() -> None:
    # The watch must not keep the process alive: its parent lives on (here, the test).
    watching = "import os\nfrom worker.orphans import stop_when_orphaned\nstop_when_orphaned(os.getppid())\n"
    done = subprocess.run([sys.executable, "-c", watching], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
