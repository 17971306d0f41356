from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models._common import utcnow


class ItemState(StrEnum):
    open = "open"  # still wants annotations
    done = "done"  # has as many annotations as the project wants


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("project_id", "external_id", name="uq_items_project_external_id"),
        # Serving without a model walks this index: a random permutation fixed at import.
        Index("ix_items_project_state_shuffle", "project_id", "state", "shuffle_key"),
        # Counting training labels after each submit stays an index-only scan.
        Index("ix_items_project_final_label", "project_id", "final_label"),
        # The dashboard's poll reads the holdout and the adjudicated items: small shares of a pool,
        # so partial indexes (the WHERE text matches the queries' own, as SQLite needs to use them).
        Index("ix_items_project_holdout", "project_id", sqlite_where=text("is_holdout IS 1"),
              postgresql_where=text("is_holdout IS true")),
        Index("ix_items_project_adjudicated", "project_id", sqlite_where=text("adjudicated_label IS NOT NULL"),
              postgresql_where=text("adjudicated_label IS NOT NULL")),
        # A deleted item's id never names another: pages, API clients and exports hold ids, and SQLite
        # would otherwise give the newest deleted row's id to the next item imported.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    # {"text": ...} for text pools, {"features": [...]} for tabular ones.
    payload: Mapped[dict] = mapped_column(JSON)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    # app.pool.content.content_hash(payload, and a table row's metadata): rows of a file without ids
    # that are already in the pool are skipped on import rather than added a second time. No index: an import reads the
    # project's hashes once (a random-key index cost a 1M-row import about 5 s; a re-upload is rare).
    content_hash: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(10), default=ItemState.open)
    n_annotations: Mapped[int] = mapped_column(Integer, default=0)
    # The label training uses: the majority of the annotations, None on a tie or none yet.
    final_label: Mapped[str | None] = mapped_column(String(200))
    shuffle_key: Mapped[int] = mapped_column(Integer)
    # Drawn uniformly at random when served (the project's holdout_fraction): measured on, never trained on.
    is_holdout: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A lead's decision on a disagreement; it beats the majority of the annotations.
    adjudicated_label: Mapped[str | None] = mapped_column(String(200))
    adjudicated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Opinions asked for beyond the project's annotations_per_item (a lead sent it back for a second look).
    extra_annotations: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
