"""items.content_hash: a file without ids uploaded again is not added a second time

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 08:40:00
"""

import hashlib
import json

import orjson
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

CHUNK = 5_000


def _content_hash(payload: dict) -> int:
    """A frozen copy of app.pool.content.content_hash (a migration does not import app code)."""
    data = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


def upgrade() -> None:
    # add_column, not batch mode: on SQLite this needs no copy of the table.
    op.add_column('items', sa.Column('content_hash', sa.BigInteger(), nullable=True))
    bind = op.get_bind()
    items = sa.table('items', sa.column('id', sa.Integer), sa.column('payload', sa.Text),
                     sa.column('content_hash', sa.BigInteger))
    last = 0
    while True:
        rows = bind.execute(sa.select(items.c.id, sa.cast(items.c.payload, sa.Text)).where(items.c.id > last)
                            .order_by(items.c.id).limit(CHUNK)).all()
        if not rows:
            break
        bind.execute(items.update().where(items.c.id == sa.bindparam('item_id'))
                     .values(content_hash=sa.bindparam('hash')),
                     [{'item_id': i, 'hash': _content_hash(json.loads(p))} for i, p in rows])
        last = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_column('content_hash')
