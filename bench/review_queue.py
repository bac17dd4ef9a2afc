"""The moderators' review queue at one million comments in PostgreSQL.

Fills a fresh schema (migrated with ``service.db.upgrade``) with comments in a realistic
mix of statuses, scores, threads and times, one verdict per classified comment, then
times ``service.review.list_comments`` for the first page and a deep page of each case
(a status and an order, or every status in an order), both as numbered pages (OFFSET
and a total) and through the cursor a client would hold (keyset), prints the EXPLAIN
ANALYZE plan of every statement it sent. Then the moderators' own page of the queue
(``GET /moderate/``, the app made by ``create_app`` on the same database, signed in through
its form) is timed whole, first page and a deep one, with the time its SQL took. It
writes ``bench/results/review_queue.json``. The schema is dropped at the end, also on Ctrl-C or error.

    .venv/bin/python bench/review_queue.py
    .venv/bin/python bench/review_queue.py --comments 200000 --deep-page 500
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

if __package__ in (None, ""):  # run as a file: make `bench` and the service importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session

from bench.common import (
    REDIS_URL,
    SECRET_KEY,
    fresh_database,
    machine_info,
    percentiles,
    print_table,
    stop_on_sigterm,
    workspace,
    write_results,
)
from service.db import make_engine, make_session_factory
from service.keyset import encode_cursor
from service.privacy import encrypt_email
from service.review import ListQuery, Sort, list_comments, sort_keys
from service.statuses import CommentStatus
from service.tables import Comment

TARGET_MS = 20.0
# The moderators' page cases: (label, status, order). The queue's default is the first.
PAGE_CASES = [
    ("flagged, sort=queue (default)", CommentStatus.FLAGGED, Sort.QUEUE),
    ("flagged, sort=score", CommentStatus.FLAGGED, Sort.SCORE),
    ("all, sort=age", None, Sort.AGE),
]
PAGE_EMAIL = "reader.of.the.news@example.org"

# Ids grow with time, as they do on a live site: one comment about every 30 seconds over
# a year. 70 % approved, 12 % flagged, 15 % rejected, 3 % still waiting for a verdict.
FILL_COMMENTS = """
WITH base AS (
    SELECT g, random() AS r, random() AS a, random() AS b,
           now() - ((:n - g) * 30 + random() * 10) * interval '1 second' AS created
    FROM generate_series(1, :n) AS g
), routed AS (
    SELECT *, CASE WHEN r < 0.70 THEN 'approved' WHEN r < 0.82 THEN 'flagged'
                   WHEN r < 0.97 THEN 'rejected' ELSE 'received' END AS status
    FROM base
), scored AS (
    SELECT *,
        CASE status WHEN 'approved' THEN a * 0.3 WHEN 'flagged' THEN 0.5 + a * 0.4
                    WHEN 'rejected' THEN 0.85 + a * 0.15 END AS spam,
        CASE status WHEN 'approved' THEN b * 0.2 WHEN 'flagged' THEN b * 0.6
                    WHEN 'rejected' THEN b END AS abuse
    FROM routed
)
INSERT INTO comments (thread, name, email_ciphertext, email_digest, url, body, status,
                      spam_score, abuse_score, score, created_at, updated_at)
SELECT '/' || (2025 + g % 2) || '/' || (g % 5000) || '/story',
       'Reader ' || (g % 90000),
       decode(md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text), 'hex'),
       decode(md5('d' || (g % 200000)) || md5('e' || (g % 200000)), 'hex'),
       CASE WHEN g % 7 = 0 THEN 'https://example.org/' || (g % 1000) END,
       'Comment ' || g || ' on the story: ' || repeat(md5(g::text) || ' ', 1 + g % 6),
       status, spam, abuse, greatest(spam, abuse), created, created
FROM scored
"""
FILL_VERDICTS = """
INSERT INTO verdicts (comment_id, spam, abuse, reasons, model_version, outcome, created_at)
SELECT id, spam_score, abuse_score, '["links: 1", "word: offer"]'::json, 'bench-1', status,
       created_at + interval '80 milliseconds'
FROM comments WHERE status <> 'received'
"""
# A keyset prototype: "the 50 after this row" is an index range, whatever the depth.
CASES = [
    ("flagged, sort=score", CommentStatus.FLAGGED, Sort.SCORE),
    ("flagged, sort=age", CommentStatus.FLAGGED, Sort.AGE),
    ("all, sort=queue (default)", None, Sort.QUEUE),
    ("received, sort=queue", CommentStatus.RECEIVED, Sort.QUEUE),
    ("all, sort=score", None, Sort.SCORE),
    ("all, sort=age", None, Sort.AGE),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--comments", type=int, default=1_000_000, help="rows to fill (default 1,000,000)")
    parser.add_argument("--deep-page", type=int, default=2000, help="the deep page (default 2000)")
    parser.add_argument("--per-page", type=int, default=50, help="page size (default 50, the API's)")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per case (default 20)")
    parser.add_argument("--out", default="review_queue", help="results name (default review_queue)")
    return parser.parse_args(argv)


def fill(engine: Engine, comments: int) -> dict[str, float]:
    """Insert the comments and their verdicts server-side, then ANALYZE; seconds per step."""
    took: dict[str, float] = {}
    with engine.begin() as db:
        db.execute(text("SELECT setseed(0.42)"))
        started = time.perf_counter()
        db.execute(text(FILL_COMMENTS), {"n": comments})
        took["comments_s"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        db.execute(text(FILL_VERDICTS))
        took["verdicts_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
        db.execute(text("VACUUM ANALYZE comments"))
        db.execute(text("VACUUM ANALYZE verdicts"))
    took["vacuum_analyze_s"] = round(time.perf_counter() - started, 1)
    return took


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Record every statement (and its parameters) sent while the block runs."""
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def explain(engine: Engine, statements: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """EXPLAIN (ANALYZE, BUFFERS) of each captured statement, with its execution time."""
    plans = []
    with engine.connect() as db:
        for statement, parameters in statements:
            rows = db.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters).all()
            lines = [row[0] for row in rows]
            execution = next((line for line in lines if line.startswith("Execution Time")), "")
            plans.append({"statement": statement, "plan": lines, "execution": execution})
    return plans


def time_calls(session_factory: Any, query: ListQuery, repeats: int) -> tuple[list[float], Any]:
    """Milliseconds of ``repeats`` calls to ``list_comments`` (after one untimed call)."""
    with session_factory() as session:
        page = list_comments(session, query)
    times = []
    for _ in range(repeats):
        with session_factory() as session:
            started = time.perf_counter()
            page = list_comments(session, query)
            times.append((time.perf_counter() - started) * 1000)
    return times, page


def measure_case(engine: Engine, sessions: Any, label: str, query: ListQuery, repeats: int) -> dict[str, Any]:
    """Time one query, then capture and explain the statements it sends."""
    times, page = time_calls(sessions, query, repeats)
    with captured(engine) as statements, sessions() as session:
        list_comments(session, query)
    figures = {
        "case": label,
        "page": query.page,
        "rows": len(page.items),
        "total": page.total,
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(percentiles(times, (95,))["p95"], 2),
        "min_ms": round(min(times), 2),
        "max_ms": round(max(times), 2),
        "plans": explain(engine, statements),
    }
    print(f"\n== {label}, page {query.page}: median {figures['median_ms']} ms ({len(page.items)} rows)")
    for plan in figures["plans"]:
        print(f"-- {plan['statement'].splitlines()[0][:100]}...")
        print("\n".join(plan["plan"]))
    return figures


def cursor_for(
    sessions: Any, status: CommentStatus | None, sort: Sort, page: int, per_page: int
) -> str | None:
    """The cursor that opens numbered page ``page`` (read once, untimed), as a client would hold it."""
    if page == 1:
        return None
    columns = [column for column, _kind in sort_keys(status, sort)]
    statement = select(*columns).order_by(*columns).offset((page - 1) * per_page - 1).limit(1)
    if status is not None:
        statement = statement.where(Comment.status == status)
    with sessions() as session:
        return encode_cursor(tuple(session.execute(statement).one()))


def rows_of(sessions: Any, status: CommentStatus | None) -> int:
    """How many comments a case lists: those of ``status``, or all."""
    statement = select(func.count()).select_from(Comment)
    if status is not None:
        statement = statement.where(Comment.status == status)
    with sessions() as session:
        return int(session.scalar(statement) or 0)


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Fill, measure, explain; the schema goes away with ``fresh_database``."""
    with fresh_database("postgresql", workdir) as url:
        engine = make_engine(url)
        # Made on the empty database: at start the app checks that its key decrypts the
        # stored emails, which the fill's random bytes are not.
        app, client = moderators_client(url, workdir)
        try:
            print(f"filling {args.comments:,} comments...", flush=True)
            results: dict[str, Any] = {"fill": fill(engine, args.comments)}
            print(f"filled in {sum(results['fill'].values()):.0f} s: {results['fill']}", flush=True)
            sessions = make_session_factory(engine)
            cases = []
            for label, status, sort in CASES:
                # The deep page, or the last one of a status with fewer rows than that.
                deepest = max(1, rows_of(sessions, status) // args.per_page)
                for page in (1, min(args.deep_page, deepest)):
                    numbered = ListQuery(status=status, sort=sort, page=page, per_page=args.per_page)
                    cases.append(measure_case(engine, sessions, f"{label}, numbered", numbered, args.repeats))
                    cursor = cursor_for(sessions, status, sort, page, args.per_page)
                    keyset = ListQuery(status=status, sort=sort, cursor=cursor, per_page=args.per_page)
                    case = measure_case(engine, sessions, f"{label}, cursor", keyset, args.repeats)
                    cases.append({**case, "page": page})
            results["cases"] = cases
            results["pages"] = measure_pages(engine, app, client, args)
            with Session(engine) as session:
                results["table_sizes"] = {
                    name: size
                    for name, size in session.execute(
                        text(
                            "SELECT relname, pg_size_pretty(pg_total_relation_size(c.oid)) FROM pg_class c "
                            "WHERE relname IN ('comments', 'verdicts')"
                        )
                    ).all()
                }
            return results
        finally:
            app.extensions["moderation"].close()
            engine.dispose()


def moderators_client(url: str, workdir: Path) -> tuple[Any, Any]:
    """The service's app on the bench database and a test client signed in through the
    sign-in form, as a moderator's browser is."""
    from service.app import create_app
    from service.auth import create_token

    app = create_app(
        {
            "data_dir": workdir / "instance",
            "database_url": url,
            "redis_url": REDIS_URL,
            "model_dir": workdir / "models",
            "secret_key": SECRET_KEY,
        }
    )
    services = app.extensions["moderation"]
    with services.sessions() as session:
        token = create_token(session, "Bench")
        session.commit()
    client = app.test_client()
    form = client.get("/moderate/sign-in").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    if csrf is None:
        raise RuntimeError("the sign-in page has no CSRF token")
    signed = client.post("/moderate/sign-in", data={"token": token, "csrf_token": csrf.group(1)})
    if signed.status_code != 302:
        raise RuntimeError(f"signing in answered {signed.status_code}")
    return app, client


def readable_emails(engine: Engine, services: Any) -> float:
    """Give every comment an email the app can decrypt (the fill's are random bytes, which
    the pages would show as unavailable without decrypting anything); seconds taken."""
    started = time.perf_counter()
    with engine.begin() as db:
        db.execute(
            text("UPDATE comments SET email_ciphertext = :email"),
            {"email": encrypt_email(services.keys, PAGE_EMAIL)},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
        db.execute(text("VACUUM ANALYZE comments"))
    return round(time.perf_counter() - started, 1)


def measure_page(client: Any, engine: Engine, label: str, path: str, repeats: int) -> dict[str, Any]:
    """Milliseconds of ``repeats`` requests for ``path`` (after one untimed), whole and in SQL."""
    sql: list[float] = []
    began: list[float] = []

    def before(*_args: Any) -> None:
        began.append(time.perf_counter())

    def after(*_args: Any) -> None:
        sql[-1] += (time.perf_counter() - began.pop()) * 1000

    client.get(path)
    times = []
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        for _ in range(repeats):
            sql.append(0.0)
            started = time.perf_counter()
            answer = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            if answer.status_code != 200:
                raise RuntimeError(f"{path} answered {answer.status_code}")
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    shown = answer.get_data(as_text=True).count("<article")
    figures = {
        "case": label,
        "rows": shown,
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(percentiles(times, (95,))["p95"], 2),
        "max_ms": round(max(times), 2),
        "sql_median_ms": round(statistics.median(sql), 2),
    }
    print(f"== page {label}: median {figures['median_ms']} ms, of which SQL {figures['sql_median_ms']} ms")
    return figures


def measure_pages(engine: Engine, app: Any, client: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The moderators' queue page, first and deep, for each of ``PAGE_CASES``."""
    from service.moderation_pages import PER_PAGE

    services = app.extensions["moderation"]
    results: dict[str, Any] = {"emails_s": readable_emails(engine, services), "cases": []}
    sessions = make_session_factory(engine)
    for label, status, sort in PAGE_CASES:
        deepest = max(1, rows_of(sessions, status) // PER_PAGE)
        for page in (1, min(args.deep_page, deepest)):
            query = {"status": status.value if status else "", "sort": sort.value}
            cursor = cursor_for(sessions, status, sort, page, PER_PAGE)
            if cursor is not None:
                query["cursor"] = cursor
            path = f"/moderate/?{urlencode(query)}"
            case = measure_page(client, services.engine, f"{label}, page {page}", path, args.repeats)
            results["cases"].append({**case, "page": page})
    return results


def report(results: dict[str, Any]) -> None:
    """The summary table against the 20 ms target."""
    rows = []
    for case in results["cases"]:
        met = "yes" if case["p95_ms"] < TARGET_MS else "NO"
        total, worst = case.get("total", ""), case.get("max_ms", "")
        rows.append(
            [case["case"], case["page"], case["rows"], total, case["median_ms"], case["p95_ms"], worst, met]
        )
    print()
    header = ["query", "page", "rows", "total", "median ms", "p95 ms", "max ms", f"p95 < {TARGET_MS:g} ms"]
    print_table(header, rows)
    pages = [
        [
            case["case"],
            case["rows"],
            case["median_ms"],
            case["p95_ms"],
            case["max_ms"],
            case["sql_median_ms"],
            "yes" if case["p95_ms"] < TARGET_MS else "NO",
        ]
        for case in results["pages"]["cases"]
    ]
    print("\nThe moderators' page (GET /moderate/), whole: session check, queries, decryption, HTML")
    header = ["page", "comments", "median ms", "p95 ms", "max ms", "SQL median ms", f"p95 < {TARGET_MS:g} ms"]
    print_table(header, pages)


def main(argv: list[str] | None = None) -> int:
    """Run the review-queue benchmark and write its JSON."""
    args = parse_args(argv)
    stop_on_sigterm()
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine_info(), "settings": vars(args)}
    with workspace("bench-review") as workdir:
        results.update(run(args, workdir))
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    report(results)
    print(f"\nwrote {write_results(args.out, results)} in {results['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
