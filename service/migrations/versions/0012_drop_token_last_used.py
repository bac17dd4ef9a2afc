"""moderator tokens: drop last_used_at, which nothing ever wrote

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Drop the column in place; every token held NULL there."""
    # In place, never by rebuilding the table: on SQLite a rebuild under enforced foreign
    # keys would clear what points at the tokens, the labels' moderators (see 0008).
    with op.batch_alter_table("moderator_tokens", recreate="never") as batch:
        batch.drop_column("last_used_at")


def downgrade() -> None:
    """Add the column back, NULL for every token."""
    with op.batch_alter_table("moderator_tokens", recreate="never") as batch:
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
