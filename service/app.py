"""The application factory: settings in, a wired Flask app out."""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, cast

from flask import Flask, Response, current_app, g, request
from rq import Queue
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.middleware.proxy_fix import ProxyFix

from service.config import Settings, load_settings
from service.db import engine_for, make_session_factory
from service.errors import ConfigError, NotMigratedError, ServiceError
from service.flood import FloodControl
from service.intake import Intake
from service.keyfile import check_keys, load_checked_keys, load_keys
from service.privacy import KeyRing
from service.queueing import ClassifyQueue, connect_redis, redis_url
from service.retraining import RetrainTrigger
from service.validation import stream_safe

EXTENSION = "moderation"


logger = logging.getLogger(__name__)

# The longest one statement of a request may run on PostgreSQL before the server cancels
# it, or a write may wait for SQLite's writers' lock, before the request is answered 503:
# well under gunicorn's worker timeout (30 s), which kills a worker unanswered while its
# statement goes on, and may still store the comment. As long as SQLite's busy timeout
# (service/db.py).
STATEMENT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Services:
    """What the views work with, built once per process by the factory."""

    settings: Settings
    keys: KeyRing
    engine: Engine
    sessions: sessionmaker[Session]
    intake: Intake
    flood: FloodControl
    queue: ClassifyQueue
    retrain_queue: Queue
    retrain_trigger: RetrainTrigger
    keys_checked: bool = True
    """False while the key has not been checked against the database, which was down at start."""

    def close(self) -> None:
        """Close the database pool and the Redis connections (tests and tools that build many apps)."""
        self.engine.dispose()
        self.queue.queue.connection.connection_pool.disconnect()


def build_services(settings: Settings) -> Services:
    """Open the edges (database engine, Redis client, key ring) that ``settings`` name;
    a key other than the one the stored emails were encrypted with is refused."""
    engine = engine_for(settings, statement_timeout=STATEMENT_TIMEOUT_SECONDS)
    keys_checked = True
    try:
        keys = load_checked_keys(settings, engine)  # before Redis: a refused key must start nothing
    except OperationalError as exc:
        # A database that is down must not keep the app from starting and saying so on
        # /healthz; the check runs before each request until the database answers.
        logger.warning("could not check the secret key against the database: %s", exc.orig)
        keys = load_keys(settings)
        keys_checked = False
    except NotMigratedError as exc:
        logger.warning("could not check the secret key: %s", exc)  # checked as for a database down
        keys = load_keys(settings)
        keys_checked = False
    except ConfigError:
        engine.dispose()
        raise
    connection = connect_redis(redis_url(settings), timeout=settings.redis_timeout)
    flood = FloodControl.from_settings(keys, settings)
    return Services(
        settings=settings,
        keys=keys,
        engine=engine,
        sessions=make_session_factory(engine),
        intake=Intake(engine),
        flood=flood,
        queue=ClassifyQueue.from_settings(connection, settings),
        retrain_queue=Queue(settings.retrain_queue, connection=connection),
        retrain_trigger=RetrainTrigger(settings.retrain_after_labels),
        keys_checked=keys_checked,
    )


def configure_logging(level: str) -> None:
    """Send the service's logs to stderr at ``level`` unless a host (gunicorn) already did."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("service").setLevel(level.upper())


def services() -> Services:
    """The current app's services."""
    return cast(Services, current_app.extensions[EXTENSION])


def get_session() -> Session:
    """The request's database session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = services().sessions()
    return cast(Session, g.db_session)


def _check_keys_late() -> None:
    """The start-up check of the secret key, before each request until the database
    answers it (it was down at start). A key that cannot read the stored emails refuses
    every request, as it would have refused the start: nothing is written with it."""
    current = services()
    if current.keys_checked:
        return
    try:
        check_keys(current.keys, current.settings, current.engine)
    except (OperationalError, NotMigratedError):
        # Still down or not migrated. A reading request meets that itself; one that writes
        # is refused (503), lest the database be ready by its write and take it with an
        # unchecked key.
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return
        raise
    except ConfigError:
        logger.exception("refusing requests")
        raise ServiceError("the server is misconfigured; the error was logged") from None
    current_app.extensions[EXTENSION] = replace(current, keys_checked=True)


# The pages a form post is answered with (thank you, what to mend) show what the poster
# typed, escaped; were an escape ever missed, it could still run no script and load nothing.
# The moderators' pages set a stricter policy of their own (service/moderation_pages.py).
PUBLIC_PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def _page_policy(response: Response) -> Response:
    if "Content-Security-Policy" not in response.headers and response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = PUBLIC_PAGE_POLICY
    # Every answer is read as the type it names: a JSON body quoting a comment's markup is
    # never taken for a page by a browser that would otherwise guess.
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _close_session(_error: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def _freeze_start_up_objects() -> None:
    """Move every object alive now out of the garbage collector's reach, once per process.

    The modules and the app made at start-up live as long as the process: about 130,000
    objects, which a full collection walks in some 60 ms. Under load the collector ran
    one every few seconds in each web process, and every request waiting meanwhile
    waited for it: the intake's p99 at half its maximum rate on SQLite was 41-106 ms,
    and 9-10 ms with them frozen (bench/intake.py). Garbage made before is collected
    first, so that none is kept for good; a process that froze already (a test that
    builds many apps) is left as it is. The workers freeze their models the same way
    (worker/model_holder.py).
    """
    if gc.get_freeze_count():
        return
    gc.collect()
    gc.freeze()


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create the app: code defaults, then the environment, then ``config`` overrides."""
    from service import api, health, moderation_pages, training_api
    from service.http_errors import register_error_handlers

    settings = load_settings(overrides=config)
    configure_logging(settings.log_level)
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes, JSON_SORT_KEYS=False)
    if settings.trusted_proxies:
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_prefix=hops
        )
    app.extensions[EXTENSION] = built = build_services(settings)
    if not built.keys_checked:
        app.before_request(_check_keys_late)
    app.teardown_appcontext(_close_session)
    app.after_request(_page_policy)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(training_api.bp)
    app.register_blueprint(moderation_pages.bp)
    register_error_handlers(app)
    # Built now, from the Unicode tables (a tenth of a second), rather than by the first
    # post with an accent; and frozen with the other start-up objects.
    stream_safe("\u0301")
    _freeze_start_up_objects()
    return app
