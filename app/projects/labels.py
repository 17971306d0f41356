"""Changing a project's label set once answers exist: add labels, rename them (a rename onto another
label merges the two), put them in a new order, or remove a label nobody has given.

Every place a label is stored as text follows a rename in one transaction: answers, items' majority
and adjudicated labels, the labels the quality page reviewed or flagged, the guesses on held cards,
and the model versions' class names and stop-set predictions (so the stopping hint compares like
with like). The current model's own file keeps the old names until the retrain queued here replaces
it; until then the quality job leaves out labels that model does not know.
"""

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput, quoted
from app.labeling.service import refresh_item
from app.models import Annotation, Item, ItemQuality, LabelReview, Lease, ModelVersion, Project
from app.training.queue import queue_training

# (model, column) pairs that hold a label of the project as text, each with a project_id column
_LABEL_COLUMNS = [
    (Annotation, Annotation.label), (Item, Item.final_label), (Item, Item.adjudicated_label),
    (Lease, Lease.guess), (ItemQuality, ItemQuality.given_label), (ItemQuality, ItemQuality.other_label),
    (LabelReview, LabelReview.label), (LabelReview, LabelReview.previous_label),
]


@dataclass
class LabelChange:
    added: list[str]
    renamed: dict[str, str]  # old -> new; onto a label that stays, a merge
    removed: list[str]
    reordered: bool
    merged: list[str]  # labels that two labels of before became (an item's answers may now agree)

    def sentence(self) -> str:
        parts = []
        if self.added:
            parts.append("added " + ", ".join(map(quoted, self.added)))
        for old, new in self.renamed.items():
            parts.append(f"merged {quoted(old)} into {quoted(new)}" if new in self.merged
                         else f"renamed {quoted(old)} to {quoted(new)}")
        if self.removed:
            parts.append("removed " + ", ".join(map(quoted, self.removed)))
        if self.reordered and not parts:
            parts.append("put the labels in a new order")
        return ("Labels: " + "; ".join(parts) + ".") if parts else "The labels are as they were."


def plan_change(current: list[str], labels: list[str], renames: dict[str, str]) -> LabelChange:
    """What turning `current` into `labels` means, with `renames` (old -> new) naming the renames;
    InvalidInput for a rename that does not fit."""
    problems = []
    for old, new in renames.items():
        if old not in current:
            problems.append(f"{quoted(old)} is not a label of this project, so it cannot be renamed")
        elif new not in labels:
            problems.append(f"{quoted(old)} is renamed to {quoted(new)}, which is not in the new list of labels")
    if problems:
        raise InvalidInput("; ".join(problems) + ".")
    renamed = {old: new for old, new in renames.items() if old != new}
    removed = [label for label in current if label not in labels and label not in renamed]
    targets = set(renamed.values())
    added = [label for label in labels if label not in current and label not in targets]
    kept_order = [label for label in labels if label in current and label not in renamed]
    reordered = kept_order != [label for label in current if label in kept_order]
    staying = set(current) - set(renamed)
    merged = [label for label in labels
              if sum(new == label for new in renamed.values()) + (label in staying) > 1]
    return LabelChange(added=added, renamed=renamed, removed=removed, reordered=reordered, merged=merged)


def _uses(session: Session, project: Project, label: str) -> int:
    """Answers and lead decisions that give `label`: a label in use cannot just disappear."""
    answers = session.scalar(select(func.count()).select_from(Annotation).where(
        Annotation.project_id == project.id, Annotation.label == label)) or 0
    decided = session.scalar(select(func.count()).select_from(Item).where(
        Item.project_id == project.id, Item.adjudicated_label == label)) or 0
    return answers + decided


def change_labels(session: Session, *, project: Project, labels: list[str], renames: dict[str, str]) -> LabelChange:
    """Give the project the label list `labels` (already validated: distinct, at least two)."""
    change = plan_change(list(project.labels), labels, renames)
    in_use = [(label, n) for label in change.removed if (n := _uses(session, project, label))]
    if in_use:
        raise Conflict("A label that has been given cannot just be removed: " + "; ".join(
            f"{quoted(label)} is in {n} answer{'s' if n != 1 else ''}" for label, n in in_use)
            + ". Rename it onto another label to merge the two, or change those answers first.")
    if change.renamed:
        _rename(session, project, change.renamed)
    project.labels = list(labels)
    gone = set(project.former_labels or ()) | set(change.renamed) | set(change.removed)
    project.former_labels = sorted(gone - set(labels)) or None
    if change.merged:
        # two labels became one: an item whose answers split between them may now agree
        for item in session.scalars(select(Item).where(
                Item.project_id == project.id, Item.final_label.is_(None), Item.n_annotations >= 2)):
            refresh_item(session, project=project, item=item)
    if (change.renamed or change.added or change.removed) and project.current_model_version_id is not None:
        # the model's classes are the old names (and a new label needs covering first): retrain now
        queue_training(session, project=project, n_labels=project.n_training_labels)
    session.flush()
    return change


def _rename(session: Session, project: Project, renamed: dict[str, str]) -> None:
    # through placeholders first, so that a swap (a -> b, b -> a) does not merge the two; a label is
    # stripped, so one starting with a space is none (and PostgreSQL's text takes no NUL byte)
    placeholders = {old: f" rename {n}" for n, old in enumerate(renamed)}
    for step in (placeholders, {placeholders[old]: new for old, new in renamed.items()}):
        for model, column in _LABEL_COLUMNS:
            for source, target in step.items():
                session.execute(update(model).where(model.project_id == project.id, column == source)
                                .values({column.key: target}).execution_options(synchronize_session=False))
    for version in session.scalars(select(ModelVersion).where(ModelVersion.project_id == project.id)):
        version.classes = [renamed.get(c, c) for c in version.classes]
        stop_set = (version.diagnostics or {}).get("stop_set")
        if stop_set and stop_set.get("predictions"):
            version.diagnostics = {**version.diagnostics, "stop_set": {
                **stop_set, "predictions": [renamed.get(p, p) for p in stop_set["predictions"]]}}
    session.flush()
    session.expire_all()  # loaded items and answers hold the old text
