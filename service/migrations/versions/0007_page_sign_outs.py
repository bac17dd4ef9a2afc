"""how often each moderator token signed out of the moderators' pages

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the counter, at 0 for the tokens there are."""
    with op.batch_alter_table("moderator_tokens") as batch:
        batch.add_column(sa.Column("sign_outs", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    """Drop the counter (page sessions then end only when their token is revoked).

    In place: a rebuilt table would clear every label's moderator through the foreign key.
    """
    with op.batch_alter_table("moderator_tokens", recreate="never") as batch:
        batch.drop_column("sign_outs")
