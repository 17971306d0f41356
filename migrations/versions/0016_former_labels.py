"""projects.former_labels: the names a project's labels had before a rename or a removal, so a
metadata field holding a file's gold answer under an old name stays off the annotators' cards

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 20:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('projects', sa.Column('former_labels', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('projects') as batch_op:
        batch_op.drop_column('former_labels')
