"""projects.deleted_at, and ranking entries without a foreign key to items, so a project can be deleted

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 08:50:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('projects', sa.Column('deleted_at', sa.DateTime(), nullable=True))
    # Deleting an item checked every ranking of every project for it (ranking_entries.item_id has no
    # index): deleting a large project's items would take hours. (On SQLite batch mode copies the
    # table; migrations/env.py keeps foreign keys off meanwhile.)
    with op.batch_alter_table('ranking_entries', schema=None) as batch_op:
        batch_op.drop_constraint('fk_ranking_entries_item_id_items', type_='foreignkey')


def downgrade() -> None:
    bind = op.get_bind()
    # a ranking entry of an item deleted meanwhile cannot have the key back
    bind.execute(sa.text("DELETE FROM ranking_entries WHERE item_id NOT IN (SELECT id FROM items)"))
    with op.batch_alter_table('ranking_entries', schema=None) as batch_op:
        batch_op.create_foreign_key('fk_ranking_entries_item_id_items', 'items', ['item_id'], ['id'],
                                    ondelete='CASCADE')
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_column('deleted_at')
