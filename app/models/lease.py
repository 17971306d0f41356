from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models._common import utcnow


class Lease(Base):
    """An item handed to one annotator until `expires_at`, with the reason it was chosen."""

    __tablename__ = "leases"
    __table_args__ = (
        UniqueConstraint("item_id", "user_id", name="uq_leases_item_user"),
        Index("ix_leases_user_project", "user_id", "project_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    served_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # set while the card is off screen because its holder went back to an earlier answer (undo, or
    # Your last answers); when it comes back, served_at moves on by the pause, so the card's seconds
    # count only the time it was on screen
    paused_at: Mapped[datetime | None] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    source: Mapped[str] = mapped_column(String(20))
    strategy: Mapped[str | None] = mapped_column(String(50))
    score: Mapped[float | None] = mapped_column(Float)
    model_version: Mapped[int | None] = mapped_column(Integer)
    # the model's guess for the card, when the project shows it (from the ranking entry it came from)
    guess: Mapped[str | None] = mapped_column(String(200))
    guess_confidence: Mapped[float | None] = mapped_column(Float)
