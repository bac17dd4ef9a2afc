"""The pool's supervision: which outdated worker makes way for a new model and when, how fast
ended ones are forked again, and reaping processes it did not fork."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from worker.pool import (
    MAX_RESPAWN_SECONDS,
    RESPAWN_SECONDS,
    RETIRE_GRACE_SECONDS,
    SETTLED_SECONDS,
    next_to_retire,
    respawn_delay,
)


def test_outdated_workers_are_retired_one_at_a_time() -> None:
    assert next_to_retire({41, 42}, {}, now=100.0) == 41
    # One told a moment ago is finishing its job; the others keep taking jobs meanwhile.
    assert next_to_retire({42}, {41: 99.0}, now=100.0) is None


def test_a_worker_busy_past_the_grace_period_does_not_hold_up_the_others() -> None:
    # Still running a long job (a retraining run): the next one is told all the same.
    told = 100.0 - RETIRE_GRACE_SECONDS - 0.1
    assert next_to_retire({42, 43}, {41: told}, now=100.0) == 42
    # The grace period is "less than RETIRE_GRACE_SECONDS ago": at that age it is over.
    assert next_to_retire({42}, {41: 100.0 - RETIRE_GRACE_SECONDS}, now=100.0) == 42
    assert next_to_retire({43}, {41: told, 42: 99.0}, now=100.0) is None


def test_a_worker_told_already_is_never_told_again() -> None:
    # A second model change made every child outdated, the one still finishing a long job too.
    told = 100.0 - RETIRE_GRACE_SECONDS - 0.1
    assert next_to_retire({41, 42}, {41: told}, now=100.0) == 42
    assert next_to_retire({41}, {41: told}, now=100.0) is None


def test_nothing_to_retire_when_no_worker_is_outdated() -> None:
    assert next_to_retire(set(), {}, now=100.0) is None


def test_workers_that_keep_ending_at_their_start_are_forked_ever_more_slowly() -> None:
    # The database is down: each child ends a moment after its fork.
    pauses = [respawn_delay(0.5, None)]
    while pauses[-1] < MAX_RESPAWN_SECONDS:
        pauses.append(respawn_delay(0.5, pauses[-1]))
    assert pauses[:3] == [RESPAWN_SECONDS, 2 * RESPAWN_SECONDS, 4 * RESPAWN_SECONDS]
    assert respawn_delay(0.5, pauses[-1]) == MAX_RESPAWN_SECONDS
    # One that had settled in is replaced at once, however long the pause was before.
    assert respawn_delay(SETTLED_SECONDS, MAX_RESPAWN_SECONDS) == RESPAWN_SECONDS
    # The same pauses, with a bound of its own, before a worker starts its worker again.
    assert respawn_delay(0.5, 20.0, longest=30.0) == 30.0
    assert respawn_delay(SETTLED_SECONDS, 30.0, longest=30.0) == RESPAWN_SECONDS


def test_the_pool_reaps_a_process_it_did_not_fork_and_goes_on(model_dir: Path) -> None:
    # As PID 1 in a container the pool is handed orphans, such as the scheduler RQ forks
    # beside a worker that was killed; reaping one must not end the pool.
    script = f"""
import ctypes, logging, os, signal, time
from service.config import load_settings
from worker.pool import run_pool

ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER, as PID 1 is

def run_child(models):
    if os.fork() == 0:  # outlives the worker, which ends at once
        time.sleep(0.3)
        os._exit(0)
    os._exit(0)

class StopOnceReapedTwice(logging.Handler):
    # Stopped when a second orphan was reaped, however long loading the model took: one
    # the worker forked in place of the first made, so the pool went on after the first.
    reaped = 0
    def emit(self, record):
        if "not one of the workers" in record.getMessage():
            StopOnceReapedTwice.reaped += 1
            if StopOnceReapedTwice.reaped == 2:
                os.kill(os.getpid(), signal.SIGTERM)

logging.basicConfig(level=logging.INFO)
logging.getLogger().addHandler(StopOnceReapedTwice())
signal.signal(signal.SIGALRM, lambda *_: os._exit(3))  # never reaped: the test fails
signal.alarm(45)
run_pool(load_settings({{"MODEL_DIR": {str(model_dir)!r}}}), 1, run_child)
print("stopped")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped" and done.stderr.count("not one of the workers") == 2


def test_a_worker_stopped_by_a_configuration_error_stops_the_pool(model_dir: Path, tmp_path: Path) -> None:
    # The wrong secret key stops a worker sending webhooks at its start, and would stop
    # every one forked in its place: the pool kept forking them for ever, classifying
    # nothing, alive to its supervisor, and ended with status 0 when told to stop.
    script = f"""
import os, signal, time
from service.config import load_settings
from service.errors import ConfigError
from worker.pool import run_pool

def run_child(models):
    try:  # the first child to get here is the one misconfigured
        os.close(os.open({str(tmp_path / "first")!r}, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        time.sleep(30)  # the other works until told to stop
    else:
        raise ConfigError("the secret key differs")

signal.signal(signal.SIGALRM, lambda *_: os._exit(3))  # the pool went on: the test fails
signal.alarm(40)
try:
    run_pool(load_settings({{"MODEL_DIR": {str(model_dir)!r}}}), 2, run_child)
except ConfigError as exc:
    print("stopped:", exc)
"""
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("stopped: a worker process stopped on a configuration error"), done.stdout
    assert "the secret key differs" in done.stderr and "starting another" not in done.stderr
    assert time.monotonic() - began < 25  # the other child was told to stop, not waited out
