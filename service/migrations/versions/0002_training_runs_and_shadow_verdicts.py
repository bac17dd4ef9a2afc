"""training runs and shadow verdicts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""

    op.create_table('training_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('trigger', sa.Enum('api', 'cli', 'labels', name='run_trigger', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('status', sa.Enum('queued', 'running', 'succeeded', 'failed', name='run_status', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('labels_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('labels_used', sa.Integer(), nullable=True),
    sa.Column('candidate_version', sa.String(length=64), nullable=True),
    sa.Column('activated', sa.Boolean(), nullable=True),
    sa.Column('comparison', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_runs'))
    )
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.create_index('ix_training_runs_status', ['status'], unique=False)

    op.create_table('shadow_verdicts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('comment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('model_version', sa.String(length=64), nullable=False),
    sa.Column('spam', sa.Float(), nullable=True),
    sa.Column('abuse', sa.Float(), nullable=True),
    sa.Column('outcome', sa.Enum('received', 'approved', 'flagged', 'rejected', name='shadow_outcome', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('live_outcome', sa.Enum('received', 'approved', 'flagged', 'rejected', name='shadow_live_outcome', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['comment_id'], ['comments.id'], name=op.f('fk_shadow_verdicts_comment_id_comments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shadow_verdicts'))
    )
    with op.batch_alter_table('shadow_verdicts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shadow_verdicts_comment_id'), ['comment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_shadow_verdicts_model_version'), ['model_version'], unique=False)




def downgrade() -> None:
    """Downgrade schema."""

    with op.batch_alter_table('shadow_verdicts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shadow_verdicts_model_version'))
        batch_op.drop_index(batch_op.f('ix_shadow_verdicts_comment_id'))

    op.drop_table('shadow_verdicts')
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_training_runs_status')

    op.drop_table('training_runs')

