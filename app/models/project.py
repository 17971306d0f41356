from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models._common import utcnow


class ProjectKind(StrEnum):
    text = "text"
    tabular = "tabular"
    image = "image"


class Project(Base):
    __tablename__ = "projects"
    # A deleted project's id never names a new one (bookmarks, open pages and API clients hold it).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(20))
    labels: Mapped[list[str]] = mapped_column(JSON)
    # Names the labels had before a rename, and labels removed: a metadata field holding one (a
    # file's gold answer) stays off the cards after the rename, like one holding a current label.
    former_labels: Mapped[list[str] | None] = mapped_column(JSON)
    strategy: Mapped[str] = mapped_column(String(50), default="auto")
    strategy_params: Mapped[dict] = mapped_column(JSON, default=dict)
    batch_size: Mapped[int] = mapped_column(Integer, default=10)
    annotations_per_item: Mapped[int] = mapped_column(Integer, default=1)
    # Share of served items drawn at random into the holdout that measures progress without bias.
    holdout_fraction: Mapped[float] = mapped_column(Float, default=0.1, server_default="0.1")
    # Show annotators a faint hint of the model's guess on each ranked card. Off by default: a guess
    # in sight pulls answers towards it (anchoring), and the labels are what the model learns from.
    show_model_guess: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Tabular pools: the feature columns fixed by the first upload, in order.
    feature_names: Mapped[list[str] | None] = mapped_column(JSON)
    # Items' own embeddings (an embedding column): their length, fixed by the first upload that has
    # them; None when the items have none. With them the model learns from the embeddings (after a
    # table's feature columns) instead of TF-IDF or thumbnail pixels.
    embedding_dim: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The model version whose ranking is served. Swapping this one value publishes a new ranking.
    current_model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL", use_alter=True)
    )
    # Training labels at which the next retrain is queued.
    next_train_at: Mapped[int] = mapped_column(Integer, default=10)
    # Items with a training label (outside the holdout), kept by refresh_item so deciding on a retrain
    # after each label is one row read, not a count over every labelled item.
    n_training_labels: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set when an admin deletes the project: from then on nobody sees it, and the worker removes its
    # rows in short transactions (app/projects/deletion.py), the project row last.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)
