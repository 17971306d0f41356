"""training-label counter on projects

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 19:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('n_training_labels', sa.Integer(), server_default='0', nullable=False))
    op.execute(
        "UPDATE projects SET n_training_labels = (SELECT count(*) FROM items WHERE items.project_id = projects.id "
        "AND items.final_label IS NOT NULL AND items.is_holdout = false)"
    )


def downgrade() -> None:
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_column('n_training_labels')
