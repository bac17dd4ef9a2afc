"""at most one open retraining run

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('queued', 'running')"


def upgrade() -> None:
    """Close all open runs but the oldest (the one requests were handed), then index open runs
    so that a second one cannot be inserted."""
    op.execute(
        "UPDATE training_runs SET status = 'failed', finished_at = CURRENT_TIMESTAMP, "
        "error = 'superseded: another run was already open' "
        "WHERE status IN ('queued', 'running') "
        "AND id > (SELECT min(id) FROM training_runs WHERE status IN ('queued', 'running'))"
    )
    op.create_index(
        "uq_training_runs_open",
        "training_runs",
        [sa.text("(1)")],
        unique=True,
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )


def downgrade() -> None:
    """Allow several open runs again."""
    op.drop_index("uq_training_runs_open", table_name="training_runs")
