"""intake outbox; the comment row records its own receipt

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IDENTIFIER = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Add the outbox, hand it the comments still waiting, and drop the `received` audit rows
    that the detail view now derives from each comment's ``created_at``."""
    op.create_table(
        "classify_outbox",
        sa.Column("comment_id", IDENTIFIER, autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["comments.id"],
            name=op.f("fk_classify_outbox_comment_id_comments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("comment_id", name=op.f("pk_classify_outbox")),
    )
    op.execute("INSERT INTO classify_outbox (comment_id) SELECT id FROM comments WHERE status = 'received'")
    op.execute("DELETE FROM audit_events WHERE action = 'received' AND actor = 'intake'")


def downgrade() -> None:
    """Write one `received` row per comment again, at its arrival time, and drop the outbox."""
    op.execute(
        "INSERT INTO audit_events (comment_id, action, actor, from_status, to_status, created_at) "
        "SELECT id, 'received', 'intake', NULL, 'received', created_at FROM comments"
    )
    op.drop_table("classify_outbox")
