"""the model's guess as a faint hint on the card, per project (off by default)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 06:50:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('show_model_guess', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('ranking_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('guess', sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column('guess_confidence', sa.Float(), nullable=True))
    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('guess', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('guess_confidence', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.drop_column('guess_confidence')
        batch_op.drop_column('guess')
    with op.batch_alter_table('ranking_entries', schema=None) as batch_op:
        batch_op.drop_column('guess_confidence')
        batch_op.drop_column('guess')
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_column('show_model_guess')
