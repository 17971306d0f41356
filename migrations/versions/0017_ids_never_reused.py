"""projects, items, annotations: ids are never reused on SQLite (AUTOINCREMENT). Pages, API clients
and exports name rows by id: an undo naming an answer taken back in another tab must not name the
answer given after it, nor a card of a deleted item the next item imported.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 23:00:00
"""

from alembic import op


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

TABLES = ('projects', 'items', 'annotations')


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL's sequences never hand out an id twice
    # SQLite can only gain AUTOINCREMENT by rebuilding the table; the batch copy keeps rows and ids
    # (env.py turns foreign keys off, so dropping the old copy cascades nowhere), and sqlite_sequence
    # starts from the largest id copied.
    for table in TABLES:
        with op.batch_alter_table(table, recreate='always', table_kwargs={'sqlite_autoincrement': True}):
            pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate='always', table_kwargs={'sqlite_autoincrement': False}):
            pass
