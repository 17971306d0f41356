"""items.content_hash of a table's rows covers their metadata columns too (app.pool.content): rows
whose features agree but whose other columns differ are different records, not one item

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 23:30:00
"""

import hashlib
import json

import orjson
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

CHUNK = 5_000


def _content_hash(payload: dict, meta: dict | None) -> int:
    """A frozen copy of app.pool.content.content_hash (a migration does not import app code)."""
    if "embedding" in payload:
        payload = {key: value for key, value in payload.items() if key != "embedding"}
    if meta is not None:
        payload = {**payload, " meta": meta}
    data = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


def _rehash(with_meta: bool) -> None:
    bind = op.get_bind()
    items = sa.table('items', sa.column('id', sa.Integer), sa.column('project_id', sa.Integer),
                     sa.column('payload', sa.Text), sa.column('meta', sa.Text),
                     sa.column('content_hash', sa.BigInteger))
    projects = sa.table('projects', sa.column('id', sa.Integer), sa.column('kind', sa.String))
    tables = sa.select(projects.c.id).where(projects.c.kind == 'tabular')
    last = 0
    while True:
        rows = bind.execute(sa.select(items.c.id, sa.cast(items.c.payload, sa.Text), sa.cast(items.c.meta, sa.Text))
                            .where(items.c.id > last, items.c.project_id.in_(tables))
                            .order_by(items.c.id).limit(CHUNK)).all()
        if not rows:
            break
        bind.execute(items.update().where(items.c.id == sa.bindparam('item_id'))
                     .values(content_hash=sa.bindparam('hash')),
                     [{'item_id': i, 'hash': _content_hash(json.loads(p), ((json.loads(m) if m else None) or {})
                                                           if with_meta else None)} for i, p, m in rows])
        last = rows[-1][0]


def upgrade() -> None:
    _rehash(with_meta=True)


def downgrade() -> None:
    _rehash(with_meta=False)
