"""holdout, adjudication, diagnostics

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 15:52:48.489982
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_holdout', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('adjudicated_label', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('adjudicated_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_items_adjudicated_by_id_users'), 'users', ['adjudicated_by_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('diagnostics', sa.JSON(), nullable=True))

    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('holdout_fraction', sa.Float(), server_default='0.1', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_column('holdout_fraction')

    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_column('diagnostics')

    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_items_adjudicated_by_id_users'), type_='foreignkey')
        batch_op.drop_column('adjudicated_by_id')
        batch_op.drop_column('adjudicated_label')
        batch_op.drop_column('is_holdout')

