"""how long after its form was shown each comment was posted

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the column in place; comments stored before it have no such time (NULL)."""
    # In place, never by rebuilding the table: on SQLite a rebuild under enforced foreign
    # keys would clear what points at the comments (see 0008).
    with op.batch_alter_table("comments", recreate="never") as batch:
        batch.add_column(sa.Column("seconds_to_submit", sa.Float(), nullable=True))


def downgrade() -> None:
    """Drop the column in place."""
    with op.batch_alter_table("comments", recreate="never") as batch:
        batch.drop_column("seconds_to_submit")
