from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, deferred, mapped_column

from app.db import Base


class PoolImageRow(Base):
    """An image project's picture, stored once per project under its SHA-256 (app/pool/images.py).

    Items name it by that digest in their payload ({"image": digest}), so two copies of one picture
    are one row. Kept in the database, not on disk, so an import stays all or nothing and a backup of
    the database is a backup of the pool. Rows no item names any more are removed with the item.
    """

    __tablename__ = "item_images"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(40))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
