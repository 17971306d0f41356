"""Deciding when a project needs a retrain, and queueing it."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Item, Job, JobStatus, Project


def training_label_counts(session: Session, *, project_id: int) -> tuple[int, int]:
    """(items with a training label, distinct labels among them); holdout items never train."""
    row = session.execute(
        select(func.count(), func.count(func.distinct(Item.final_label)))
        .where(Item.project_id == project_id, Item.final_label.is_not(None), Item.is_holdout.is_(False))).one()
    return int(row[0]), int(row[1])


def queue_training(session: Session, *, project: Project, n_labels: int) -> Job:
    """A retrain job for `project`, unless one is already waiting (it will see these labels too)."""
    waiting = session.scalar(select(Job).where(Job.project_id == project.id, Job.kind == "train",
                                               Job.status == JobStatus.queued))
    if waiting is not None:
        waiting.n_labels = max(waiting.n_labels, n_labels)
        return waiting
    job = Job(project_id=project.id, kind="train", status=JobStatus.queued, n_labels=n_labels)
    session.add(job)
    session.flush()
    return job


def maybe_queue_training(session: Session, *, project: Project) -> Job | None:
    """Queue a retrain once `batch_size` new training labels have come in since the last one.

    A model needs two classes, so until then nothing is queued and the threshold waits.
    """
    n_labels, next_train_at = session.execute(select(Project.n_training_labels, Project.next_train_at)
                                              .where(Project.id == project.id)).one()
    if n_labels < next_train_at:
        return None
    if project.current_model_version_id is None and training_label_counts(session, project_id=project.id)[1] < 2:
        return None  # (counted only until a first model exists: few labels then)
    project.next_train_at = n_labels + project.batch_size
    return queue_training(session, project=project, n_labels=n_labels)
