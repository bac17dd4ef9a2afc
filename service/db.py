"""Database engine, sessions and migrations: the storage edge of the service."""

from __future__ import annotations

import logging
import select
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.errors import ConfigError
from service.sqlite_writers import QueuedWriterConnection, connection_class

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
POOL_RECYCLE_SECONDS = 1800
# The first key of the advisory lock migrations take on PostgreSQL ("mod" in ASCII); the
# second is the schema's name hashed, so schemas of one database migrate independently.
MIGRATION_LOCK_NAMESPACE = 0x6D6F64
# How long connecting to PostgreSQL may take before the request gets its 503.
PG_CONNECT_TIMEOUT_SECONDS = 5
# A checkpoint copies the WAL back into the database file and syncs it to disk. Left to
# SQLite it runs inside whichever commit crosses 1,000 pages, usually a request's, while
# that writer holds the write lock. The workers run it instead (worker/checkpointer.py);
# this larger threshold only bounds the WAL (about 40 MB) while no worker runs.
WAL_AUTOCHECKPOINT_PAGES = 10_000
# A checkpoint's pause of every writer longer than this is logged (see `checkpoint_wal`).
SLOW_CHECKPOINT_PAUSE_SECONDS = 0.05
SQLITE_BUSY_TIMEOUT_MS = 10_000


def _sqlite_tuning(full_sync: bool) -> Callable[[Any, Any], None]:
    # WAL lets readers run beside the one writer. Writers queue on the file lock of
    # service/sqlite_writers.py; the busy timeout covers what that lock does not see
    # (schema changes, a checkpoint) instead of failing at once. In WAL mode NORMAL syncs
    # the log at checkpoints only: a commit survives any process's crash, and FULL adds a
    # sync per commit (hundreds of microseconds, under the write lock) for a machine's.
    synchronous = "FULL" if full_sync else "NORMAL"

    def tune(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _switch_to_wal(cursor)
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # An erasure rewrites a comment's row shorter; without this, builds whose default
        # is off leave the old name and website in the freed bytes of the file.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    return tune


def _switch_to_wal(cursor: Any) -> None:
    # Two processes opening a new database file at once (two `moderation init`) both
    # switch it to WAL; SQLite answers the one that finds the other switching "database
    # is locked" without waiting for the busy timeout, so it waits here instead.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# What a worker's background loops log, in place of the driver's error and its traceback,
# when the database has no schema yet.
NOT_MIGRATED = "the database is not migrated yet: run `moderation migrate`"


def missing_table(error: BaseException) -> bool:
    """Whether ``error`` (SQLAlchemy's, or the driver's own) says a table does not exist:
    the database's schema is not migrated yet."""
    original = getattr(error, "orig", None) or error
    if isinstance(original, psycopg.errors.UndefinedTable):
        return True
    return isinstance(original, sqlite3.OperationalError) and str(original).startswith("no such table")


def with_driver(url: str) -> URL:
    """``url`` parsed, `postgres://` and `postgresql://` (as hosting providers write them)
    opened with psycopg, version 3: the driver installed."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        return parsed.set(drivername="postgresql+psycopg")
    return parsed


def engine_for(settings: Settings, *, statement_timeout: float | None = None) -> Engine:
    """An engine for the configured database, as durable as configured; a
    ``statement_timeout`` (seconds) bounds every statement on PostgreSQL and every wait for
    the writers' lock on SQLite (see ``make_engine``)."""
    return make_engine(
        settings.database, full_sync=settings.sqlite_full_sync, statement_timeout=statement_timeout
    )


MIN_SQLITE = (3, 35)


def _statement_timeout(seconds: float) -> Callable[[Any, Any], None]:
    """A connect hook that limits each statement of the connection to ``seconds``.

    Set by a statement, not as a connection option: an `options` parameter of its own
    would make libpq ignore PGOPTIONS (and the URL's own options would need merging),
    and a pooler such as PgBouncer refuses startup options it does not know.
    """
    milliseconds = max(1, round(seconds * 1000))

    def limit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"SET statement_timeout = {milliseconds}")
        # Committed: a setting made in a transaction rolled back later would be undone.
        dbapi_connection.commit()

    return limit


def make_engine(url: str, *, full_sync: bool = False, statement_timeout: float | None = None) -> Engine:
    """An engine for ``url``; SQLite files get WAL mode and their folder created, and with
    ``full_sync`` their log synced to disk at every commit. On PostgreSQL, a
    ``statement_timeout`` in seconds makes the server cancel a statement that runs longer
    (waiting for a lock, a stalled disk), which fails as ``OperationalError`` with nothing
    of it written; the web app sets it below gunicorn's worker timeout, so that a request
    is answered 503 rather than its worker killed unanswered while its statement goes on
    and may still commit the comment afterwards. On SQLite it bounds a writer's wait for
    the writers' lock instead (service/sqlite_writers.py), as the busy timeout bounds
    SQLite's own waits.

    Its errors leave out the statement's values: they are logged, and the values hold
    what the logs must not (email digests, comment text, moderators' notes). PostgreSQL's
    own message still quotes a row that breaks a constraint, which no request should do.
    """
    parsed = with_driver(url)
    if parsed.get_backend_name() != "sqlite":
        # No ping per checkout: it costs a round trip on every request. A connection the
        # server closed (a restart, an ended session) is found at checkout by its socket
        # alone and replaced (`_closed_by_server`); one whose server vanished without a
        # word fails one statement and is discarded (through SQLAlchemy, with all
        # connections of its age; the intake, on the bare cursor, discards just that one),
        # and recycling bounds how long an idle connection is trusted. A server that drops
        # packets instead of refusing the connection is given up on after a while, so a
        # request gets its 503 rather than waiting for libpq, which would wait forever.
        connect = {} if "connect_timeout" in parsed.query else {"connect_timeout": PG_CONNECT_TIMEOUT_SECONDS}
        engine = create_engine(
            parsed, pool_recycle=POOL_RECYCLE_SECONDS, hide_parameters=True, connect_args=connect
        )
        if engine.dialect.name == "postgresql":
            event.listen(engine, "checkout", _closed_by_server)
            if statement_timeout is not None:
                event.listen(engine, "connect", _statement_timeout(statement_timeout))
        return engine
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        # The migrations drop columns in place (3.35); older builds fail halfway through them.
        raise ConfigError(
            f"SQLite {'.'.join(map(str, MIN_SQLITE))} or newer is needed, and this Python's sqlite3 has "
            f"{sqlite3.sqlite_version}: use a Python built with a newer SQLite, or PostgreSQL (DATABASE_URL)"
        )
    connect_args: dict[str, Any] = {"check_same_thread": False}
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        connect_args["factory"] = connection_class(f"{parsed.database}.writer-lock", statement_timeout)
    engine = create_engine(parsed, connect_args=connect_args, hide_parameters=True)
    event.listen(engine, "connect", _sqlite_tuning(full_sync))
    return engine


def _closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Refuse a pooled PostgreSQL connection whose server has closed it, so the pool opens
    another instead of handing it to a request whose first statement would fail.

    An idle connection has nothing to read: something to read is the server's goodbye
    (its "terminating connection" after a restart, or end of file). Asked of the kernel
    without waiting, which costs about a microsecond and no round trip.
    """
    if dbapi_connection.closed:
        raise DisconnectionError("the connection was closed")
    waiting = select.poll()
    waiting.register(dbapi_connection.fileno(), select.POLLIN)
    if waiting.poll(0):
        raise DisconnectionError("the server closed the connection")


def checkpoint_wal(connection: Connection) -> float:
    """Copy a SQLite database's WAL back into its file, pausing writers for the tail; no-op
    elsewhere. Returns how long the writers were paused, in seconds.

    The bulk is copied and synced by a passive checkpoint while requests keep committing.
    SQLite starts the WAL over only when a writer finds it copied in full, which never
    happens while commits keep coming during the copy: the log would grow until the
    large automatic threshold ran the whole copy inside a request. So the few pages
    committed meanwhile are copied again with the writers paused on their file lock (a
    few milliseconds when measured at 500 commits/s, the sync of the file included).
    What a reader still needs stays for the next checkpoint.

    The pause lasts as long as the disk takes to sync those pages, which a disk busy with
    other writes can stretch to a tenth of a second or more: every post waiting to commit
    waits as long, so a pause past `SLOW_CHECKPOINT_PAUSE_SECONDS` is logged.
    """
    if connection.dialect.name != "sqlite":
        return 0.0
    connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
    driver = connection.connection.driver_connection
    if not isinstance(driver, QueuedWriterConnection):
        return 0.0
    with driver.writers_paused():
        began = time.monotonic()
        connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        paused = time.monotonic() - began
    if paused > SLOW_CHECKPOINT_PAUSE_SECONDS:
        logger.warning(
            "a WAL checkpoint held every writer for %.0f ms, copying and syncing the log's last pages",
            paused * 1000,
        )
    return paused


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (views serialise them afterwards)."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> AlembicConfig:
    """Alembic configuration pointing at the packaged migrations and ``url``."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the database schema to the newest migration.

    A migration holds a lock until it has committed, so two processes starting together
    (two containers running `moderation init`) take turns, and the second finds the
    schema current; without it, both found no schema and one failed creating it.
    """
    with _migrating(engine) as connection:
        config = alembic_config(engine.url.render_as_string(hide_password=False))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """A transaction on ``engine`` that holds the migration lock until it has committed:
    PostgreSQL's advisory lock for the schema, or SQLite's writers' file lock."""
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        held = driver.writers_paused() if isinstance(driver, QueuedWriterConnection) else nullcontext()
        with held, connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:namespace, hashtext(current_schema()))"),
                    {"namespace": MIGRATION_LOCK_NAMESPACE},
                )
            else:
                # Python's sqlite3 begins a transaction only before INSERT, UPDATE or DELETE:
                # each CREATE or ALTER committed on its own, and a migration failing half-way
                # left half its schema behind, stamped with the revision before it, so that
                # running it again failed. Begun here, a run is all or nothing, as on PostgreSQL.
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            yield connection


@contextmanager
def migrated_schema(url: str, schema: str) -> Iterator[str]:
    """A PostgreSQL schema of its own on ``url``'s database, migrated, dropped on exit.

    Yields a URL whose search path is that schema, so test runs and benchmarks can share
    one server without seeing each other's rows.
    """
    with empty_schema(url, schema) as scoped:
        engine = make_engine(scoped)
        upgrade(engine)
        engine.dispose()
        yield scoped


@contextmanager
def empty_schema(url: str, schema: str) -> Iterator[str]:
    """A new, empty PostgreSQL schema on ``url``'s database, dropped on exit; yields a URL
    whose search path is that schema."""
    admin = create_engine(with_driver(url))
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        scoped = with_driver(url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
