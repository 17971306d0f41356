"""indexes for the dashboard's poll: annotations (project_id, updated_at), so "has anything changed" and
the last hour's answers read what changed, not every answer; partial indexes on the holdout items and
the adjudicated items, small shares of a pool that the poll counted by reading all of it

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 13:20:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_annotations_project_updated', 'annotations', ['project_id', 'updated_at'], unique=False)
    op.create_index('ix_items_project_holdout', 'items', ['project_id'], unique=False,
                    sqlite_where=sa.text('is_holdout IS 1'), postgresql_where=sa.text('is_holdout IS true'))
    op.create_index('ix_items_project_adjudicated', 'items', ['project_id'], unique=False,
                    sqlite_where=sa.text('adjudicated_label IS NOT NULL'),
                    postgresql_where=sa.text('adjudicated_label IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_items_project_adjudicated', table_name='items')
    op.drop_index('ix_items_project_holdout', table_name='items')
    op.drop_index('ix_annotations_project_updated', table_name='annotations')
