"""erased comments: their moderators' notes, seconds to post and author-quoting reasons go too

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The wording of the erasure and of author reasons when this was written
# (service/personal_data.py, models/author_reasons.py); a migration keeps its own copy.
_ERASED = b""
_ERASED_ACTION = "personal_data_erased"
_NAME_PREFIX = "author name "
_NAME_OR_WEBSITE_SUFFIX = " in the author name or website"

_VERDICTS = sa.table(
    "verdicts",
    sa.column("id", sa.Integer),
    sa.column("comment_id", sa.Integer),
    sa.column("reasons", sa.JSON),
)
_COMMENTS = sa.table("comments", sa.column("id", sa.Integer), sa.column("email_digest", sa.LargeBinary))


def _quotes_author(reason: str) -> bool:
    subject = reason.partition(" +")[0]
    return subject.startswith(_NAME_PREFIX) or subject.endswith(_NAME_OR_WEBSITE_SUFFIX)


def upgrade() -> None:
    """Comments erased by earlier code kept what a later erasure takes: the moderators'
    notes written before the erasure, the seconds taken to post, and the reasons of
    verdicts recorded after it that quote the name or website. They go now, as they
    would from an erasure today."""
    connection = op.get_bind()
    connection.execute(
        sa.text("UPDATE comments SET seconds_to_submit = NULL WHERE email_digest = :erased"),
        {"erased": _ERASED},
    )
    connection.execute(
        sa.text(
            "UPDATE audit_events SET note = NULL WHERE note IS NOT NULL "
            "AND comment_id IN (SELECT id FROM comments WHERE email_digest = :erased) AND id < ("
            "SELECT min(erasure.id) FROM audit_events erasure "
            "WHERE erasure.comment_id = audit_events.comment_id AND erasure.action = :action)"
        ),
        {"erased": _ERASED, "action": _ERASED_ACTION},
    )
    erased = sa.select(_COMMENTS.c.id).where(_COMMENTS.c.email_digest == _ERASED)
    verdicts = connection.execute(
        sa.select(_VERDICTS.c.id, _VERDICTS.c.reasons).where(_VERDICTS.c.comment_id.in_(erased))
    ).all()
    for verdict_id, reasons in verdicts:
        kept = [reason for reason in reasons or [] if not _quotes_author(reason)]
        if kept != (reasons or []):
            connection.execute(_VERDICTS.update().where(_VERDICTS.c.id == verdict_id).values(reasons=kept))


def downgrade() -> None:
    """Nothing comes back: what named the commenter is gone, as an erasure asks."""
