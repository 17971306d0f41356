from sqlalchemy import ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class CoverageEntry(Base):
    """A project's cold-start order: position 0 is served first while no model can rank the pool.

    Written by the worker after each import (k-means coverage, app/al/cold_start.py); only the
    first positions are stored, since a model takes over after a few labels per class.
    """

    __tablename__ = "coverage_entries"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
