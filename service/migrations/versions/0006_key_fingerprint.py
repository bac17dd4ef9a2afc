"""fingerprint of the secret key the stored emails are encrypted with

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the one-row table; the first start afterwards records the key, after checking that
    it decrypts the newest stored email."""
    op.create_table(
        "key_fingerprint",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_key_fingerprint_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_fingerprint")),
    )


def downgrade() -> None:
    """Forget the fingerprint."""
    op.drop_table("key_fingerprint")
