"""drop the review queue's cross-status index: the listing merges each status's own

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The expressions of 0003, which made the index; a migration keeps its own copy.
RANK = "(-coalesce(score, -1.0))"
FLAGGED_LAST = "(CASE WHEN status = 'flagged' THEN 0 ELSE 1 END)"


def upgrade() -> None:
    """Every comment the intake stores updated this index too; the queue order now reads
    the status/score index of each status and merges them (service/review.py)."""
    op.drop_index("ix_comments_queue_rank", table_name="comments")


def downgrade() -> None:
    """The cross-status index back."""
    op.create_index(
        "ix_comments_queue_rank",
        "comments",
        [sa.text(FLAGGED_LAST), sa.text(RANK), sa.text("created_at"), sa.text("id")],
    )
