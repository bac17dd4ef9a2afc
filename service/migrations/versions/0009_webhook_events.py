"""webhook events: the outbox of changes the site's webhook is told of

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IDENTIFIER = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Add the table; nothing before it was ever meant for a webhook, so it starts empty."""
    op.create_table(
        "webhook_events",
        sa.Column("id", IDENTIFIER, nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("comment_id", IDENTIFIER, nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["comments.id"],
            name=op.f("fk_webhook_events_comment_id_comments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
    )
    op.create_index(op.f("ix_webhook_events_comment_id"), "webhook_events", ["comment_id"])
    op.create_index("ix_webhook_events_due", "webhook_events", ["failed_at", "next_attempt_at", "id"])


def downgrade() -> None:
    """Drop the table and whatever was still waiting to be sent."""
    op.drop_index("ix_webhook_events_due", table_name="webhook_events")
    op.drop_index(op.f("ix_webhook_events_comment_id"), table_name="webhook_events")
    op.drop_table("webhook_events")
