"""flood counters: the comments of each client address and commenter, counted in the database

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the table, empty: the counts kept in Redis before it last a day at most."""
    op.create_table(
        "flood_counters",
        sa.Column("key", sa.LargeBinary(length=16), nullable=False),
        sa.Column("window_ends_ms", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_flood_counters")),
    )
    op.create_index(op.f("ix_flood_counters_window_ends_ms"), "flood_counters", ["window_ends_ms"])


def downgrade() -> None:
    """Drop the table and its counts."""
    op.drop_index(op.f("ix_flood_counters_window_ends_ms"), table_name="flood_counters")
    op.drop_table("flood_counters")
