"""webhook events: one row per message id, found by an index

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """A receiver deduplicates by the message id, so two events must never share one; and
    an event the endpoint took after its post was given up on is deleted by it, among
    every event kept for the operator after its last attempt failed."""
    op.create_index("ix_webhook_events_message_id", "webhook_events", ["message_id"], unique=True)


def downgrade() -> None:
    """Message ids unindexed again."""
    op.drop_index("ix_webhook_events_message_id", table_name="webhook_events")
