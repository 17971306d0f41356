"""Deleting a project: hidden at once, its rows removed by the worker in short transactions.

A large project holds millions of rows (items, their answers, rankings). One DELETE cascading
through all of them would hold SQLite's write lock, and every annotator of every other project
with it, for as long as that takes. So the request only marks the project deleted (from then on
every lookup treats it as missing, and no job of it is claimed) and queues a `delete_project` job;
the worker removes items a chunk at a time (their answers, leases and quality rows go with them by
cascade), then each model version's ranking, then the project row. A worker that dies part way
leaves a project still marked deleted, and the requeued job carries on where it stopped.
"""

import logging
import shutil
import time
from collections.abc import Callable

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.db import session_scope
from app.models import Item, Job, JobStatus, ModelVersion, PoolImageRow, Project, utcnow
from app.training.features import forget, project_cache_dir
from app.training.service import drop_ranking

log = logging.getLogger(__name__)
DELETE_KIND = "delete_project"
ITEM_CHUNK = 2_000  # items per write transaction, each with its answers, leases and quality rows
IMAGE_CHUNK = 200  # pictures per write transaction (a few MB each at most)


def mark_deleted(session: Session, *, project: Project) -> None:
    """Hide `project` from everyone now and queue the removal of its rows. Its waiting jobs are
    called off (a running one finishes or fails; its results go with the project)."""
    now = utcnow()
    project.deleted_at = now
    session.execute(update(Job).where(Job.project_id == project.id, Job.status == JobStatus.queued)
                    .values(status=JobStatus.failed, finished_at=now, error="the project was deleted"))
    session.add(Job(project_id=project.id, kind=DELETE_KIND, status=JobStatus.queued))
    session.flush()


def purge_project(project_id: int, *, on_step: Callable[[str, int, float], None] | None = None) -> int:
    """Remove every row of a project marked deleted; the number of items removed. A project not
    marked deleted is left alone (the job was queued by mistake, or the project was restored).

    `on_step(step, rows, seconds)` hears of each write transaction: "items" (a chunk of items),
    "ranking" (one model version's ranking, itself deleted in chunks) and "project" (the last one)."""
    def timed(step: str, started: float, rows: int) -> None:
        if on_step is not None:
            on_step(step, rows, time.perf_counter() - started)

    with session_scope(write=False) as session:
        project = session.get(Project, project_id)
        if project is None or project.deleted_at is None:
            return 0
    removed = 0
    while True:
        started = time.perf_counter()
        with session_scope() as session:
            ids = session.scalars(select(Item.id).where(Item.project_id == project_id)
                                  .order_by(Item.id).limit(ITEM_CHUNK)).all()
            if not ids:
                break
            session.execute(delete(Item).where(Item.id.in_(ids)).execution_options(synchronize_session=False))
            removed += len(ids)
        timed("items", started, len(ids))
    while True:  # an image project's pictures: gigabytes, perhaps, so in chunks too
        started = time.perf_counter()
        with session_scope() as session:
            digests = session.scalars(select(PoolImageRow.digest).where(PoolImageRow.project_id == project_id)
                                      .limit(IMAGE_CHUNK)).all()
            if not digests:
                break
            session.execute(delete(PoolImageRow).where(PoolImageRow.project_id == project_id,
                                                       PoolImageRow.digest.in_(digests))
                            .execution_options(synchronize_session=False))
        timed("images", started, len(digests))
    with session_scope(write=False) as session:
        versions = session.scalars(select(ModelVersion.id).where(ModelVersion.project_id == project_id)).all()
    for model_id in versions:
        started = time.perf_counter()
        drop_ranking(model_id)
        timed("ranking", started, 0)
    started = time.perf_counter()
    with session_scope() as session:
        # the rest is small: model versions, jobs (this one's too), members, simulations, reports
        session.execute(update(Project).where(Project.id == project_id)
                        .values(current_model_version_id=None).execution_options(synchronize_session=False))
        session.execute(delete(Project).where(Project.id == project_id).execution_options(synchronize_session=False))
    timed("project", started, 1)
    forget(project_id)
    shutil.rmtree(project_cache_dir(project_id), ignore_errors=True)
    log.info("project %s deleted: %s items", project_id, removed)
    return removed
