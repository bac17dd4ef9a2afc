"""Database tables: comments, verdicts, audit events, labels, moderator tokens and the key's fingerprint."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from service.statuses import CommentStatus, DecisionReason, RunStatus, Trigger

# Stable constraint names let Alembic alter tables the same way on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The index expression of the review queue's score order; service/keyset.py builds the
# same expression for its queries, which is what lets the database use the index.
RANK_SQL = "(-coalesce(score, -1.0))"

# A retraining run in one of these states is open; the database holds at most one.
OPEN_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
OPEN_RUN_SQL = f"status IN ({', '.join(repr(status.value) for status in OPEN_RUN_STATUSES)})"

# Room for a model version's name in the verdict tables.
MODEL_VERSION_CHARS = 64

# SQLite only autoincrements a plain INTEGER primary key.
Identifier = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware, in UTC (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # PostgreSQL answers in the session's time zone, which need not be UTC.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def _enum(kind: type[Any], name: str) -> Enum:
    # Stored as the lowercase value with a CHECK constraint; portable across databases.
    return Enum(
        kind,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
    )


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Comment(Base):
    """One submitted comment. The email is only ever stored encrypted and as a keyed digest."""

    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    thread: Mapped[str] = mapped_column(String(500))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(245))
    email_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    email_digest: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    url: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[CommentStatus] = mapped_column(
        _enum(CommentStatus, "comment_status"), default=CommentStatus.RECEIVED
    )
    # The latest scores, copied from the verdict so the review queue can sort on them.
    spam_score: Mapped[float | None] = mapped_column(Float)
    abuse_score: Mapped[float | None] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float)
    # From the page showing the form to its sending, measured by the page on one clock (the
    # reader's and the server's may disagree); None when the form did not say.
    seconds_to_submit: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    verdicts: Mapped[list[Verdict]] = relationship(
        back_populates="comment", order_by="Verdict.id", cascade="all, delete-orphan"
    )

    # The review queue's orders within a status (see service/review.py, which merges the
    # statuses for a listing of them all), and a thread's comments.
    __table_args__ = (
        Index("ix_comments_status_created_at_id", "status", "created_at", "id"),
        Index("ix_comments_status_rank", "status", text(RANK_SQL), "created_at", "id"),
        Index("ix_comments_thread_status_created_at", "thread", "status", "created_at"),
    )


class Verdict(Base):
    """What the classifier said about a comment, and where the policy routed it."""

    __tablename__ = "verdicts"

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"), index=True)
    spam: Mapped[float | None] = mapped_column(Float)
    abuse: Mapped[float | None] = mapped_column(Float)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    model_version: Mapped[str] = mapped_column(String(MODEL_VERSION_CHARS))
    outcome: Mapped[CommentStatus] = mapped_column(_enum(CommentStatus, "verdict_outcome"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    comment: Mapped[Comment] = relationship(back_populates="verdicts")


class AuditEvent(Base):
    """One thing done to a comment: a change of its status, or an action on its personal data
    (revealing the email, exporting or erasing it); who did it, when, and why."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[CommentStatus | None] = mapped_column(_enum(CommentStatus, "audit_from_status"))
    to_status: Mapped[CommentStatus | None] = mapped_column(_enum(CommentStatus, "audit_to_status"))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Label(Base):
    """A training label from a moderator's decision; one per comment, the latest decision wins."""

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"), unique=True)
    spam: Mapped[bool | None] = mapped_column(Boolean)
    abuse: Mapped[bool | None] = mapped_column(Boolean)
    reason: Mapped[DecisionReason | None] = mapped_column(_enum(DecisionReason, "label_reason"))
    moderator_id: Mapped[int | None] = mapped_column(ForeignKey("moderator_tokens.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ModeratorToken(Base):
    """A moderator's API token; only its SHA-256 digest is kept."""

    __tablename__ = "moderator_tokens"

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Signing out of the moderators' pages counts here, which ends every page session of the
    # token begun before (a session cookie alone cannot be taken back).
    sign_outs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Only an admin token may export or erase a commenter's personal data.
    admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class TrainingRun(Base):
    """One retraining: what triggered it, how it went, and whether its candidate went live."""

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    trigger: Mapped[Trigger] = mapped_column(_enum(Trigger, "run_trigger"))
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "run_status"), default=RunStatus.QUEUED)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Labels decided up to this moment are the ones the run trains on.
    labels_until: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    labels_used: Mapped[int | None] = mapped_column(Integer)
    candidate_version: Mapped[str | None] = mapped_column(String(64))
    activated: Mapped[bool | None] = mapped_column(Boolean)
    comparison: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_training_runs_status", "status"),
        # Every open run indexes the same constant, so a second one is a duplicate key:
        # two requests that both found no open run cannot both queue one.
        Index(
            "uq_training_runs_open",
            text("(1)"),
            unique=True,
            postgresql_where=text(OPEN_RUN_SQL),
            sqlite_where=text(OPEN_RUN_SQL),
        ),
    )


class ShadowVerdict(Base):
    """What the model in shadow mode would have decided for a comment, beside what was decided."""

    __tablename__ = "shadow_verdicts"

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"), index=True)
    model_version: Mapped[str] = mapped_column(String(MODEL_VERSION_CHARS), index=True)
    spam: Mapped[float | None] = mapped_column(Float)
    abuse: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[CommentStatus] = mapped_column(_enum(CommentStatus, "shadow_outcome"))
    live_outcome: Mapped[CommentStatus] = mapped_column(_enum(CommentStatus, "shadow_live_outcome"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxEntry(Base):
    """A stored comment not yet handed to the job queue (the transactional outbox).

    The intake writes it in the comment's own transaction, so answering the poster
    needs no enqueue and a Redis outage loses nothing; a dispatcher in the
    workers moves the ids to the queue in batches and deletes the rows.
    """

    __tablename__ = "classify_outbox"

    comment_id: Mapped[int] = mapped_column(
        Identifier, ForeignKey("comments.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )


class FloodCounter(Base):
    """How many comments one client address, or one commenter, posted in one window of a limit.

    Counted in the transaction that stores the comment (service/intake.py), so flood
    control costs no round trip of its own and holds while Redis is down. The key is a
    keyed digest of who is counted and the limit: the table never holds an address or
    an email. A window starts at its first post; rows of windows that ended are purged
    by the workers' sweeper.
    """

    __tablename__ = "flood_counters"

    key: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
    # Milliseconds since the epoch: compared and computed on every post, so a plain integer.
    window_ends_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    count: Mapped[int] = mapped_column(Integer)


class WebhookEvent(Base):
    """A change to a comment that the site's webhook has not been told of yet (an outbox).

    Written in the transaction of the change itself, and only while a webhook is
    configured; a worker posts it and deletes the row, or schedules another attempt.
    The payload is built when it is sent, from the comment as it is then.
    """

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    # The `webhook-id` of every attempt: random, because SQLite hands a deleted row's id to
    # the next one, and a receiver that skips ids it has seen would skip a new event.
    # Unique and indexed: a late answer deletes its event by it (worker/webhooks.py).
    message_id: Mapped[str] = mapped_column(String(40), unique=True, index=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the last scheduled attempt failed too: kept for the operator, never sent again.
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (Index("ix_webhook_events_due", "failed_at", "next_attempt_at", "id"),)


class KeyFingerprint(Base):
    """The fingerprint of the secret key the stored emails are encrypted with (one row).

    Start-up compares the configured key with it, so a lost or replaced key stops the
    service instead of leaving every stored email unreadable.
    """

    __tablename__ = "key_fingerprint"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False, default=1)
    fingerprint: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # A second row would be a second key, which nothing could tell apart from the first.
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)
