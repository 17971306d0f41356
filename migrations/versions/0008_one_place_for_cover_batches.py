"""auto's cover batch recorded where every other strategy's is

Until 0008 a model version of `auto` kept its cover batch's items under
metrics["strategy_choice"]["cover_ids"], the other strategies under metrics["cover"]["ids"].
Now every strategy writes metrics["cover"] = {"ids", "reason"}; this moves the old ones there, so
`why` on a current auto ranking stays right until its next retrain. Data only: no schema change.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 03:20:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# frozen here: the migration must not change when the app's tables do
model_versions = sa.table("model_versions", sa.column("id", sa.Integer), sa.column("strategy", sa.String),
                          sa.column("metrics", sa.JSON))


def _auto_versions(conn):
    return conn.execute(sa.select(model_versions.c.id, model_versions.c.metrics)
                        .where(model_versions.c.strategy.like("auto%"))).all()


def _save(conn, version_id: int, metrics: dict) -> None:
    conn.execute(model_versions.update().where(model_versions.c.id == version_id).values(metrics=metrics))


def upgrade() -> None:
    conn = op.get_bind()
    for version_id, metrics in _auto_versions(conn):
        choice = (metrics or {}).get("strategy_choice") or {}
        if "cover_ids" not in choice:
            continue
        metrics = dict(metrics)
        choice = dict(choice)
        cover_ids = choice.pop("cover_ids")
        metrics["strategy_choice"] = choice
        if cover_ids is not None:  # auto's reason for a cover batch is the cover's reason
            metrics["cover"] = {"ids": cover_ids, "reason": choice.get("reason")}
        _save(conn, version_id, metrics)


def downgrade() -> None:
    conn = op.get_bind()
    for version_id, metrics in _auto_versions(conn):
        choice = (metrics or {}).get("strategy_choice")
        if choice is None:
            continue
        metrics = dict(metrics)
        cover = metrics.pop("cover", None)
        metrics["strategy_choice"] = {**choice, "cover_ids": cover["ids"] if cover else None}
        _save(conn, version_id, metrics)
