"""cold-start coverage order

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 18:55:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'coverage_entries',
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_coverage_entries_item_id_items'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_coverage_entries_project_id_projects'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('project_id', 'position', name=op.f('pk_coverage_entries')),
    )
    with op.batch_alter_table('coverage_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coverage_entries_item_id'), ['item_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('coverage_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coverage_entries_item_id'))
    op.drop_table('coverage_entries')
