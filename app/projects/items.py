"""Browsing a project's items (keyset pagination, never OFFSET) and one item's history."""

from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.models import Annotation, Item, ItemState, PoolImageRow, Project, User
from app.training.features import forget
from app.training.queue import queue_training

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


def delete_item(session: Session, *, project: Project, item: Item) -> int:
    """Remove an item for good with its answers (a duplicate, an item that should never have been in
    the pool); returns how many answers went with it. The training-label counter follows, and a
    retrain is queued when the item was a training label, so the model forgets it too. Its entries in
    the current ranking stay until the next one (serving reads items, so they are never served)."""
    answers = session.scalar(select(func.count()).select_from(Annotation).where(Annotation.item_id == item.id))
    was_training_label = item.final_label is not None and not item.is_holdout
    digest = item.payload.get("image") if isinstance(item.payload, dict) else None
    session.execute(delete(Item).where(Item.id == item.id).execution_options(synchronize_session=False))
    session.expunge(item)
    if digest and not session.scalar(select(Item.id).where(
            Item.project_id == project.id, Item.payload["image"].as_string() == digest).limit(1)):
        session.execute(delete(PoolImageRow).where(PoolImageRow.project_id == project.id,
                                                   PoolImageRow.digest == digest))
    if was_training_label:
        session.execute(update(Project).where(Project.id == project.id)
                        .values(n_training_labels=Project.n_training_labels - 1)
                        .execution_options(synchronize_session=False))
        if project.current_model_version_id is not None:
            queue_training(session, project=project, n_labels=max(project.n_training_labels - 1, 0))
    forget(project.id)  # the pool changed: its feature matrix is another
    return answers
