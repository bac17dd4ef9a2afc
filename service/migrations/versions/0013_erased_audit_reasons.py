"""audit events of erased comments: take the seconds taken to post out of their reasons

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29

"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The policy's wording when this was written (service/reasons.py); a migration keeps its own copy.
_TOO_FAST = re.compile(r"posted \d+(?:\.\d+)? s after its form was shown, under (\S+) s")
_ERASED = b""


def upgrade() -> None:
    """Comments erased before an erasure took the seconds out of the reason a comment was
    held for keep only that they were under the minimum, as later erasures leave them."""
    connection = op.get_bind()
    held = connection.execute(
        sa.text(
            "SELECT audit_events.id, audit_events.reason FROM audit_events "
            "JOIN comments ON comments.id = audit_events.comment_id "
            "WHERE comments.email_digest = :erased AND audit_events.reason LIKE 'posted %'"
        ),
        {"erased": _ERASED},
    ).all()
    for event_id, reason in held:
        kept = _TOO_FAST.sub(r"posted under \1 s after its form was shown", reason)
        if kept != reason:
            connection.execute(
                sa.text("UPDATE audit_events SET reason = :reason WHERE id = :id"), {"reason": kept, "id": event_id}
            )


def downgrade() -> None:
    """Nothing comes back: the seconds are gone, as an erasure asks."""
