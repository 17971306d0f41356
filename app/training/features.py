"""Feature matrices for a project's pool, cached per process.

The featurizer (TF-IDF or scaling) is fitted on the whole pool without labels, so it only
changes when the pool does; every retrain in between reuses the same matrix.
"""

import threading
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.al import build_featurizer
from app.models import Item, Project

FETCH_ROWS = 20_000


@dataclass
class PoolFeatures:
    key: tuple
    item_ids: np.ndarray  # sorted ascending; row i of X is item item_ids[i]
    X: object  # numpy array or scipy sparse matrix
    featurizer: object

    def rows_for(self, ids) -> np.ndarray:
        return np.searchsorted(self.item_ids, np.asarray(ids, dtype=np.int64))


_cache: dict[int, PoolFeatures] = {}
_lock = threading.Lock()


def raw_inputs(kind: str, payloads: list[dict]):
    """What the fitted pipeline takes: a list of texts, or a float matrix of feature rows."""
    if kind == "text":
        return [p["text"] for p in payloads]
    return np.asarray([p["features"] for p in payloads], dtype=np.float64)


def pool_key(session: Session, project: Project) -> tuple:
    count, max_id = session.execute(
        select(func.count(), func.max(Item.id)).where(Item.project_id == project.id)).one()
    return (project.kind, int(count or 0), int(max_id or 0))


def pool_features(session: Session, project: Project) -> PoolFeatures:
    """The project's feature matrix, fitted and computed once per pool state."""
    key = pool_key(session, project)
    with _lock:
        cached = _cache.get(project.id)
        if cached is not None and cached.key == key:
            return cached
    ids: list[int] = []
    payloads: list[dict] = []
    stmt = select(Item.id, Item.payload).where(Item.project_id == project.id).order_by(Item.id)
    for row in session.execute(stmt.execution_options(yield_per=FETCH_ROWS)):
        ids.append(row[0])
        payloads.append(row[1])
    raw = raw_inputs(project.kind, payloads)
    del payloads
    featurizer = build_featurizer(project.kind, n_items=len(ids))
    X = featurizer.fit_transform(raw)
    if hasattr(featurizer, "stop_words_"):
        # Only kept for introspection, and it can dwarf the rest of a pickled pipeline.
        featurizer.stop_words_ = None
    features = PoolFeatures(key=key, item_ids=np.asarray(ids, dtype=np.int64), X=X, featurizer=featurizer)
    with _lock:
        _cache[project.id] = features
    return features


def forget(project_id: int | None = None) -> None:
    with _lock:
        if project_id is None:
            _cache.clear()
        else:
            _cache.pop(project_id, None)
