"""The benchmarks' load generators post the bodies they are given in turn, and the
pipeline's posts are the corpora's comments, each one the intake accepts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench import common
from models.importers import datasets_dir
from service.validation import parse_submission

BODIES = [json.dumps({"comment": f"comment number {number}"}).encode() for number in range(5)]


class _Recorder(BaseHTTPRequestHandler):
    received: list[bytes]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(body)
        answer = json.dumps({"id": len(self.received), "status": "received"}).encode()
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[int, list[bytes]]]:
    received: list[bytes] = []
    handler = type("Handler", (_Recorder,), {"received": received})
    server = ThreadingHTTPServer((common.HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], received
    finally:
        server.shutdown()
        server.server_close()


def _in_turn(received: list[bytes]) -> None:
    assert len(received) >= len(BODIES)
    # Requests on several connections may arrive out of their order, never unevenly.
    counts = [received.count(body) for body in BODIES]
    assert set(received) == set(BODIES) and max(counts) - min(counts) <= 1


def test_the_open_loop_generator_posts_the_bodies_in_turn(recorder: tuple[int, list[bytes]]) -> None:
    port, received = recorder
    result = common.run_open_loop(port, 200.0, 0.1, bodies=BODIES)
    assert result.accepted == 20 and result.errors == 0 and len(received) == 20
    _in_turn(received)


def test_the_python_closed_loop_posts_the_bodies_in_turn(recorder: tuple[int, list[bytes]]) -> None:
    port, received = recorder
    result = common.run_python_closed(port, 1, 10.0, max_requests=10, bodies=BODIES)
    assert result.accepted == 10
    assert received == BODIES * 2


@pytest.mark.skipif(not common.wrk_available(), reason="wrk is not installed (apt-get install wrk)")
def test_wrk_posts_the_bodies_in_turn(recorder: tuple[int, list[bytes]], tmp_path: Path) -> None:
    port, received = recorder
    result = common.run_wrk(port, 2, 1.0, tmp_path, BODIES)
    assert result.accepted > 0
    _in_turn(received)


def test_one_body_is_every_post(recorder: tuple[int, list[bytes]]) -> None:
    port, received = recorder
    common.run_python_closed(port, 1, 10.0, max_requests=3)
    assert received == [common.COMMENT_BODY] * 3


def test_the_pipeline_posts_distinct_corpus_comments_the_intake_accepts() -> None:
    datasets = datasets_dir()
    if not datasets.is_dir():
        pytest.skip(f"the corpora folder {datasets} is not there; set MODERATION_DATASETS")
    bodies = common.corpus_bodies(datasets, count=300)
    assert len(bodies) == 300 and len(set(bodies)) == 300
    shortest, longest = common.CORPUS_COMMENT_CHARS
    for body in bodies:
        fields = json.loads(body)
        assert shortest <= len(fields["comment"]) <= longest
        parse_submission(fields)


def test_without_corpora_there_are_no_corpus_comments(tmp_path: Path) -> None:
    assert common.corpus_bodies(tmp_path / "absent") == []
