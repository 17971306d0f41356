"""leases.paused_at: a card put aside by undo does not count the detour as time on it

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 13:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('leases', sa.Column('paused_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.drop_column('paused_at')
