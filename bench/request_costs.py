"""CPU per intake request in one process: where the service's request goes beyond hello-world's.

Calls each app's WSGI callable directly, with no gunicorn and no network, posting the
benchmark's comment body, and measures the calling thread's CPU time:

- hello-world (``bench/hello_app.py``);
- the service's app with hello-world's view in place of its intake view, which is what
  Flask and the service's own hooks (CSRF, teardown, URL map) cost;
- the service itself;
- within the service's request, the time inside ``Intake.submit``: the flood counters'
  upsert, both inserts and the commit.

The database server's own CPU (PostgreSQL's) is not in these figures; its driver's is.
``bench/intake.py`` runs this in a child process with the service's environment (on a
fresh database it made) and reads the JSON it prints. Run by hand, it needs ``DATABASE_URL``
set to a migrated database it may fill with test comments; it never falls back to the
service's default database, which may hold a site's own::

    DATABASE_URL=sqlite:////tmp/costs.db .venv/bin/python bench/request_costs.py
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `bench` and the service importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask

from bench.common import COMMENT_BODY, COMMENTS_PATH
from bench.hello_app import create_app as create_hello_app
from bench.hello_app import post_comment_view

WARM_UP = 300
ROUNDS = 5
REQUESTS_A_ROUND = 2000
INTAKE_VIEW = "api.post_comment"

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _environ() -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": COMMENTS_PATH,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(COMMENT_BODY)),
        "wsgi.input": io.BytesIO(COMMENT_BODY),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
    }


def _post(app: Wsgi) -> str:
    """One request through ``app``; its status line."""
    answered: list[str] = []
    body = app(_environ(), lambda status, _headers, _exc=None: answered.append(status))
    b"".join(body)
    close = getattr(body, "close", None)
    if close is not None:
        close()
    return answered[0]


def cpu_per_request(app: Wsgi, inner: list[float] | None = None) -> tuple[float, float]:
    """Microseconds of this thread's CPU time a request takes: the best of a few rounds,
    after a warm-up, so that the figure is the app's cost rather than the machine's mood.

    ``inner`` is a one-item list that a wrapped function adds its own CPU seconds to;
    the second figure is the microseconds a request spent in it in that best round.
    """
    for _ in range(WARM_UP):
        status = _post(app)
        if not status.startswith("202"):
            raise RuntimeError(f"POST {COMMENTS_PATH} answered {status}")
    spent = inner if inner is not None else [0.0]
    best, best_inner = float("inf"), 0.0
    for _ in range(ROUNDS):
        spent[0] = 0.0
        start = time.thread_time()
        for _ in range(REQUESTS_A_ROUND):
            _post(app)
        elapsed = time.thread_time() - start
        if elapsed < best:
            best, best_inner = elapsed, spent[0]
    return best / REQUESTS_A_ROUND * 1e6, best_inner / REQUESTS_A_ROUND * 1e6


def _service_app() -> Flask:
    from service.app import create_app

    return create_app()


def measure() -> dict[str, float]:
    """The four figures, in microseconds of CPU a request."""
    from service.app import EXTENSION

    hello, _ = cpu_per_request(create_hello_app())
    flask_only = _service_app()
    flask_only.view_functions[INTAKE_VIEW] = post_comment_view
    with_hello_view, _ = cpu_per_request(flask_only)
    service = _service_app()
    intake = service.extensions[EXTENSION].intake
    submit = intake.submit
    spent = [0.0]

    def timed_submit(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return submit(*args, **kwargs)
        finally:
            spent[0] += time.thread_time() - start

    intake.submit = timed_submit
    whole, in_submit = cpu_per_request(service, spent)
    return {
        "hello_us": hello,
        "service_with_hello_view_us": with_hello_view,
        "service_us": whole,
        "intake_submit_us": in_submit,
    }


def main(argv: list[str] | None = None) -> int:
    """Print the figures as one JSON object."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL"):
        parser.error("DATABASE_URL is unset: set it to a migrated database this may fill with test comments")
    print(json.dumps(measure()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
