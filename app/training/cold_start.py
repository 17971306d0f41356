"""The cold-start order of a project's pool: the worker's job after each import.

Until a model can rank the pool, annotators are served in this order (k-means coverage, see
app/al/cold_start.py) rather than uniformly at random, so the first labels span the pool's main
kinds of item and a rare class turns up early. Holdout items stay out: they are served at random.
"""

import logging
import time

import numpy as np
from sqlalchemy import delete, insert, select

from app.al.cold_start import coverage_order
from app.db import session_scope
from app.models import CoverageEntry, Item, ItemState, Job, JobStatus, Project
from app.training.features import pool_features

log = logging.getLogger(__name__)

COVERAGE_POSITIONS = 1_000  # a model takes over long before this many cold-start labels


def clusters_for(n_labels: int) -> int:
    """A few clusters per label, so the first labels have room to meet every class."""
    return int(min(50, max(10, 3 * n_labels)))


def queue_cold_start(session, *, project: Project) -> None:
    """Ask the worker for a fresh coverage order (after an import); one waiting job is enough."""
    waiting = session.scalar(select(Job).where(Job.project_id == project.id, Job.kind == "cold_start",
                                               Job.status == JobStatus.queued))
    if waiting is None:
        session.add(Job(project_id=project.id, kind="cold_start", status=JobStatus.queued))


def compute_coverage(project_id: int) -> int:
    """Write the project's coverage order; returns the number of positions written."""
    started = time.perf_counter()
    with session_scope(write=False) as session:
        project = session.get(Project, project_id)
        if project is None:
            return 0
        n_labels, seed = len(project.labels), project_id
        open_ids = np.asarray(session.scalars(select(Item.id).where(
            Item.project_id == project_id, Item.state == ItemState.open, Item.is_holdout.is_(False))
            .order_by(Item.id)).all(), dtype=np.int64)
        features = pool_features(session, project)
    order = (coverage_order(features.X[features.rows_for(open_ids)], n_clusters=clusters_for(n_labels),
                            limit=COVERAGE_POSITIONS, random_state=seed)
             if len(open_ids) else np.empty(0, dtype=np.int64))
    with session_scope() as session:  # replaced in one short transaction: /next sees old or new, never half
        session.execute(delete(CoverageEntry).where(CoverageEntry.project_id == project_id))
        if len(order):
            session.execute(insert(CoverageEntry), [
                {"project_id": project_id, "position": position, "item_id": int(open_ids[row])}
                for position, row in enumerate(order)])
    log.info("project %s: cold-start coverage order of %s items in %.2fs", project_id, len(order),
             time.perf_counter() - started)
    return int(len(order))
