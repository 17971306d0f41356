"""Creating and describing projects."""

import inspect
from dataclasses import dataclass

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from app.al import get_strategy
from app.al.strategies import STRATEGIES
from app.errors import InvalidInput
from app.models import Item, ItemState, Job, ModelVersion, Project, User
from app.projects.membership import add_member, visible_project_ids
from app.projects.schemas import ProjectCreate, ProjectUpdate
from app.training.queue import maybe_queue_training, queue_training
from app.users.service import user_named


def create_project(session: Session, *, data: ProjectCreate, created_by: User | None) -> Project:
    """A new, empty project; its first retrain is due after `batch_size` labels."""
    check_strategy(data.strategy, data.strategy_params)
    project = Project(
        name=data.name, description=data.description, kind=data.kind, labels=data.labels,
        strategy=data.strategy, strategy_params=data.strategy_params, batch_size=data.batch_size,
        annotations_per_item=data.annotations_per_item, holdout_fraction=data.holdout_fraction,
        show_model_guess=data.show_model_guess, next_train_at=data.batch_size,
        created_by_id=created_by.id if created_by else None)
    session.add(project)
    session.flush()
    for username in data.members:
        member = user_named(session, username)
        if member is None:
            raise InvalidInput(f"there is no user {username!r} to add as a member")
        add_member(session, project_id=project.id, user=member)
    return project


def update_project(session: Session, *, project: Project, data: ProjectUpdate) -> list[str]:
    """Apply an admin's changes; returns what changed, in words. A new strategy (or its settings)
    re-ranks the pool at once; a new batch size counts from the last retrain; a new number of
    annotations per item reopens or closes items by the answers they have."""
    changes = data.model_dump(exclude_none=True)
    strategy = changes.get("strategy", project.strategy)
    params = changes.get("strategy_params", project.strategy_params if "strategy" not in changes else {})
    if "strategy" in changes or "strategy_params" in changes:
        check_strategy(strategy, params)
        changes["strategy"], changes["strategy_params"] = strategy, params
    said, old_batch_size = [], project.batch_size
    for key, value in changes.items():
        if getattr(project, key) != value:
            setattr(project, key, value)
            said.append(key)
    if "batch_size" in said:  # the next retrain: the last one's labels plus the new batch
        project.next_train_at += project.batch_size - old_batch_size
    if "annotations_per_item" in said:
        wanted = project.annotations_per_item + func.coalesce(Item.extra_annotations, 0)
        session.execute(update(Item).where(Item.project_id == project.id).values(
            state=case((Item.n_annotations >= wanted, ItemState.done), else_=ItemState.open))
            .execution_options(synchronize_session=False))
    rerank = ("strategy" in said or "strategy_params" in said
              or ("show_model_guess" in said and project.show_model_guess))
    if rerank and project.current_model_version_id is not None:  # (the guesses are stored with the ranking)
        queue_training(session, project=project, n_labels=project.n_training_labels)
    elif "batch_size" in said:  # a smaller batch may make a retrain due now, with no label to come
        maybe_queue_training(session, project=project)
    session.flush()
    return said


def check_strategy(name: str, params: dict) -> None:
    """Refuse a strategy's parameters that it does not take or cannot use, as a 422."""
    if name not in STRATEGIES:
        raise InvalidInput(f"unknown strategy {name!r}; choose one of {', '.join(sorted(STRATEGIES))}")
    # named from the strategy's own signature, not from Python's TypeError ("__init__() got ...")
    accepted = [p for p in inspect.signature(STRATEGIES[name].__init__).parameters
                if p not in ("self", "random_state", "args", "kwargs")]
    unknown = [key for key in params if key not in accepted]
    if unknown:
        raise InvalidInput(f"Strategy {name!r} has no parameter {', '.join(map(repr, unknown))}; "
                           + (f"it takes {', '.join(accepted)}." if accepted else "it takes none."))
    try:
        get_strategy(name, **params)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"strategy {name!r} cannot use these parameters: {exc}") from None


def list_projects(session: Session, *, user: User) -> list[Project]:
    """The projects `user` may work on (all of them for admins)."""
    stmt = select(Project).where(Project.deleted_at.is_(None)).order_by(Project.id)
    visible = visible_project_ids(session, user=user)
    if visible is not None:
        stmt = stmt.where(Project.id.in_(visible))
    return list(session.scalars(stmt))


@dataclass
class ProjectCounts:
    n_items: int
    n_done: int
    n_training_labels: int
    # done items whose answers tie: every opinion asked for is in, and no label until a lead decides
    n_done_tied: int = 0


def project_counts(session: Session, *, project_ids: list[int]) -> dict[int, ProjectCounts]:
    """Item counts for several projects in two grouped queries (no query per project)."""
    result = {pid: ProjectCounts(0, 0, 0) for pid in project_ids}
    if not project_ids:
        return result
    for pid, state, n, n_unlabelled in session.execute(
            select(Item.project_id, Item.state, func.count(), func.count().filter(Item.final_label.is_(None)))
            .where(Item.project_id.in_(project_ids)).group_by(Item.project_id, Item.state)):
        result[pid].n_items += n
        if state == ItemState.done:
            result[pid].n_done += n
            result[pid].n_done_tied += n_unlabelled
    # the counter training keeps (labelled items outside the holdout), as the dashboard shows it
    for pid, n in session.execute(select(Project.id, Project.n_training_labels).where(Project.id.in_(project_ids))):
        result[pid].n_training_labels = n
    return result


def model_versions(session: Session, *, project_id: int, limit: int | None = None) -> list[ModelVersion]:
    stmt = select(ModelVersion).where(ModelVersion.project_id == project_id).order_by(ModelVersion.version.desc())
    if limit:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def recent_jobs(session: Session, *, project_id: int, limit: int = 10,
                kinds: tuple[str, ...] = ("train", "simulate")) -> list[Job]:
    # Retrains and simulations (the project page adds the cold-start coverage orders); label-quality
    # jobs have their own status on the quality pages.
    return list(session.scalars(select(Job).where(Job.project_id == project_id, Job.kind.in_(kinds))
                                .order_by(Job.id.desc()).limit(limit)))
