from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models._common import utcnow


class ServeSource(StrEnum):
    ranking = "ranking"  # the current model's ranking chose it
    random = "random"  # uniform draw: strategy "random", or no ranking yet for a trained project
    cold_start = "cold_start"  # fewer than two classes labelled, so no model can rank yet
    holdout = "holdout"  # drawn uniformly at random for the unbiased holdout; never trained on
    imported = "import"  # not served: the label came in the pool file (import with a label column)


class Annotation(Base):
    """One annotator's answer on one item: a label, or a skip (label None)."""

    __tablename__ = "annotations"
    __table_args__ = (
        # One answer per person and item: a repeated submit updates it instead of adding one.
        UniqueConstraint("item_id", "user_id", name="uq_annotations_item_user"),
        Index("ix_annotations_project_created", "project_id", "created_at"),
        # the dashboard's poll: has anything changed (count, latest change), and the last hour's answers
        Index("ix_annotations_project_updated", "project_id", "updated_at"),
        Index("ix_annotations_user_project_created", "user_id", "project_id", "created_at"),
        # An answer's id names it to an undo sent from a page: SQLite would otherwise give the id of a
        # taken-back answer (the newest row) to the next answer, and a stale page's undo would take
        # that one back. (PostgreSQL's sequences never reuse an id.)
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    label: Mapped[str | None] = mapped_column(String(200))
    skipped: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    seconds_spent: Mapped[float | None] = mapped_column(Float)
    # Why the item was served to this annotator.
    source: Mapped[str] = mapped_column(String(20))
    strategy: Mapped[str | None] = mapped_column(String(50))
    score: Mapped[float | None] = mapped_column(Float)
    model_version: Mapped[int | None] = mapped_column(Integer)
