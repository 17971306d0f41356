from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models._common import utcnow


class QualityReport(Base):
    """Label quality of one model version's training labels, computed by the worker after the retrain."""

    __tablename__ = "quality_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"),
                                                  unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    n_items: Mapped[int] = mapped_column(Integer, default=0)
    n_holdout: Mapped[int] = mapped_column(Integer, default=0)
    # How the holdout influence was estimated: "newton" or "influence" (first order); see docs/importance.md.
    approx: Mapped[str | None] = mapped_column(String(20))
    # Solver and what was left out, e.g. {"method": "exact", "self_influence": true, "thresholds": {...}}.
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    # Exact leave-one-out of the most influential items, run on a lead's request.
    verified_at: Mapped[datetime | None] = mapped_column(DateTime)
    verify: Mapped[dict | None] = mapped_column(JSON)


class ItemQuality(Base):
    """One training item's label evidence and influence under one model version (signs: docs/importance.md)."""

    __tablename__ = "item_quality"
    __table_args__ = (
        Index("ix_item_quality_model_version_score", "model_version_id", "score"),
        Index("ix_item_quality_model_version_holdout_influence", "model_version_id", "holdout_influence"),
        Index("ix_item_quality_item_id", "item_id"),
    )

    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"),
                                                  primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    given_label: Mapped[str] = mapped_column(String(200))
    score: Mapped[float] = mapped_column(Float)  # 1 - mean held-out probability of the given label
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)  # confident learning flags it
    p_given: Mapped[float] = mapped_column(Float)  # out of fold
    other_label: Mapped[str] = mapped_column(String(200))
    p_other: Mapped[float] = mapped_column(Float)
    loo_p_given: Mapped[float | None] = mapped_column(Float)
    self_influence: Mapped[float | None] = mapped_column(Float)
    # Change of the summed holdout log-loss if the item were removed: > 0 helps, < 0 harms. None: no holdout.
    holdout_influence: Mapped[float | None] = mapped_column(Float)
    holdout_loo: Mapped[float | None] = mapped_column(Float)  # the same, by exact refit ("verify")


class LabelReview(Base):
    """A lead's decision on a suspicious label: confirm it, relabel, or ask for a second opinion.

    An item is not listed as suspicious again while its training label equals a reviewed `label`."""

    __tablename__ = "label_reviews"
    __table_args__ = (Index("ix_label_reviews_item_label", "item_id", "label"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(20))  # confirm | relabel | requeue
    label: Mapped[str] = mapped_column(String(200))  # the label the decision is about
    previous_label: Mapped[str | None] = mapped_column(String(200))
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
