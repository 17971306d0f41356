from datetime import datetime

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column

from app.db import Base
from app.models._common import utcnow


class ModelVersion(Base):
    """One retrain: what it learnt from, how it scored, the fitted pipeline, and its ranking."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("project_id", "version", name="uq_model_versions_project_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    n_labels: Mapped[int] = mapped_column(Integer)
    classes: Mapped[list[str]] = mapped_column(JSON)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    strategy: Mapped[str] = mapped_column(String(50))
    train_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    score_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    n_ranked: Mapped[int] = mapped_column(Integer, default=0)
    # For the dashboard, computed by the worker: pool map, uncertainty histogram, stop-set predictions.
    diagnostics: Mapped[dict | None] = deferred(mapped_column(JSON))
    # joblib dump of the fitted scikit-learn pipeline (raw item data in, labels out).
    artifact: Mapped[bytes] = deferred(mapped_column(LargeBinary))


class RankingEntry(Base):
    """Position of an unlabelled item in a model version's ranking (rank 0 is served first)."""

    __tablename__ = "ranking_entries"

    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    # An item of the model version's project, with no foreign key: a ranking is derived data, deleted
    # with its model version. With one, deleting items (a project's, app/projects/deletion.py) would
    # look up every ranking of every project for each item, as this column has no index (one would
    # slow every million-row ranking write).
    item_id: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    # With the project's show_model_guess: the model's most probable class (an index into its
    # model version's classes) and that probability, shown faintly on the card
    guess: Mapped[int | None] = mapped_column(SmallInteger)
    guess_confidence: Mapped[float | None] = mapped_column(Float)
