"""indexes for the review queue's keyset pagination

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RANK = "(-coalesce(score, -1.0))"
FLAGGED_LAST = "(CASE WHEN status = 'flagged' THEN 0 ELSE 1 END)"


def upgrade() -> None:
    """Index each review-queue order; drop the two indexes they replace."""
    op.drop_index("ix_comments_status_score", table_name="comments")
    op.drop_index("ix_comments_status_created_at", table_name="comments")
    op.create_index("ix_comments_status_created_at_id", "comments", ["status", "created_at", "id"])
    op.create_index(
        "ix_comments_status_rank", "comments", [sa.text("status"), sa.text(RANK), sa.text("created_at"), sa.text("id")]
    )
    op.create_index(
        "ix_comments_queue_rank",
        "comments",
        [sa.text(FLAGGED_LAST), sa.text(RANK), sa.text("created_at"), sa.text("id")],
    )


def downgrade() -> None:
    """Back to the status/score and status/time indexes."""
    op.drop_index("ix_comments_queue_rank", table_name="comments")
    op.drop_index("ix_comments_status_rank", table_name="comments")
    op.drop_index("ix_comments_status_created_at_id", table_name="comments")
    op.create_index("ix_comments_status_created_at", "comments", ["status", "created_at"])
    op.create_index("ix_comments_status_score", "comments", ["status", "score"])
