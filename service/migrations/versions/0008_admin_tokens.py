"""admin moderator tokens, which alone may export and erase a commenter's personal data

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the flag; the tokens there are stay plain moderators (an admin token is made anew).

    The default is the literal "0", not ``sa.false()``: with an expression Alembic rebuilds
    the SQLite table, and dropping the old one would set every label's moderator to NULL
    through the foreign key (``ON DELETE SET NULL``). "0" is false to PostgreSQL too.
    """
    with op.batch_alter_table("moderator_tokens") as batch:
        batch.add_column(sa.Column("admin", sa.Boolean(), server_default="0", nullable=False))


def downgrade() -> None:
    """Drop the flag (every token may then handle personal data again).

    In place (SQLite 3.35 and newer drop a column themselves): a rebuilt table would clear
    every label's moderator, as the upgrade's docstring says.
    """
    with op.batch_alter_table("moderator_tokens", recreate="never") as batch:
        batch.drop_column("admin")
