"""Browsing a project's items (keyset pagination, never OFFSET) and one item's history."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Annotation, Item, ItemState, Project, User

PAGE_SIZE = 50
FILTERS = ("all", "labelled", "unlabelled", "holdout", "disagreement")


@dataclass
class ItemPage:
    items: list[Item]
    next_after: int | None


def browse(session: Session, *, project: Project, after: int | None = None, show: str = "all",
           label: str | None = None, limit: int = PAGE_SIZE) -> ItemPage:
    """Items by id after `after`: one index range scan per page, however deep the page."""
    stmt = select(Item).where(Item.project_id == project.id)
    if after is not None:
        stmt = stmt.where(Item.id > after)
    if show == "labelled":
        stmt = stmt.where(Item.final_label.is_not(None))
    elif show == "unlabelled":
        stmt = stmt.where(Item.state == ItemState.open, Item.n_annotations == 0)
    elif show == "holdout":
        stmt = stmt.where(Item.is_holdout.is_(True))
    elif show == "disagreement":
        stmt = stmt.where(Item.n_annotations >= 2, Item.final_label.is_(None))
    if label:
        stmt = stmt.where(Item.final_label == label)
    rows = list(session.scalars(stmt.order_by(Item.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return ItemPage(rows, rows[-1].id if more and rows else None)


def history(session: Session, *, item: Item) -> list[tuple[Annotation, str]]:
    """Every answer on the item with its annotator's name, oldest first."""
    return [(a, name) for a, name in session.execute(
        select(Annotation, User.username).join(User, User.id == Annotation.user_id)
        .where(Annotation.item_id == item.id).order_by(Annotation.created_at, Annotation.id))]
