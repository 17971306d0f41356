"""Feature matrices for a project's pool, computed once per pool state and cached twice.

The featurizer (TF-IDF or scaling) is fitted on the whole pool without labels, so it only
changes when the pool does; every retrain in between reuses the same matrix. The matrix is kept
in this process's memory and on disk under `data_dir/features/`, where any worker (a restarted
one, a second one on the same volume) reads it instead of re-reading every item row and
refitting: at 1M rows that is most of a first retrain's time. Dense matrices are memory-mapped.
"""

import contextlib
import logging
import os
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import orjson
import scipy.sparse as sp
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.al.models import EMBEDDING, TABULAR, TEXT, fit_featurizer
from app.config import get_settings
from app.models import Item, Project

log = logging.getLogger(__name__)

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


def feature_kind(project: Project) -> str:
    """What the model learns from: the project's kind, or the items' own embeddings when they have
    them (a table's embeddings come after its feature columns, so a table stays "tabular")."""
    if project.embedding_dim and project.kind != TABULAR:
        return EMBEDDING
    return project.kind


def raw_inputs(kind: str, payloads: list[dict]):
    """What the fitted pipeline takes (`kind` from feature_kind): a list of texts, or a float matrix
    of feature rows, thumbnail pixels or embeddings."""
    if kind == TEXT:
        return [p["text"] for p in payloads]
    if kind == EMBEDDING:
        return np.asarray([p["embedding"] for p in payloads], dtype=np.float64)
    return np.asarray([p["features"] + p.get("embedding", []) for p in payloads], dtype=np.float64)


def pool_key(session: Session, project: Project) -> tuple:
    """Items are never edited, only added (or the project deleted): the count, the largest id and
    the project's creation time (ids can be reused after a delete) identify the pool's state."""
    count, max_id = session.execute(
        select(func.count(), func.max(Item.id)).where(Item.project_id == project.id)).one()
    created = project.created_at.strftime("%Y%m%dT%H%M%S%f") if project.created_at else "0"
    return (feature_kind(project), int(count or 0), int(max_id or 0), created)


def project_cache_dir(project_id: int) -> Path:
    return get_settings().data_dir / "features" / f"project-{project_id}"


def _key_dir(project_id: int, key: tuple) -> Path:
    return project_cache_dir(project_id) / "-".join(str(part) for part in key)


def _load(project_id: int, key: tuple) -> "PoolFeatures | None":
    path = _key_dir(project_id, key)
    if not (path / "complete").exists():
        return None
    try:
        ids = np.load(path / "ids.npy")
        X = sp.load_npz(path / "X.npz") if (path / "X.npz").exists() else np.load(path / "X.npy", mmap_mode="r")
        featurizer = joblib.load(path / "featurizer.joblib")
    except (OSError, ValueError, EOFError):  # a half-deleted or foreign directory: recompute
        log.warning("feature cache at %s unreadable; recomputing", path, exc_info=True)
        return None
    return PoolFeatures(key=key, item_ids=ids, X=X, featurizer=featurizer)


def _save(project_id: int, features: "PoolFeatures") -> None:
    """Written to a private directory and renamed into place, so readers see all or nothing."""
    final = _key_dir(project_id, features.key)
    tmp = final.parent / f".tmp-{os.getpid()}-{uuid.uuid4().hex}"
    try:
        tmp.mkdir(parents=True)
        np.save(tmp / "ids.npy", features.item_ids)
        if sp.issparse(features.X):
            sp.save_npz(tmp / "X.npz", features.X.tocsr(), compressed=False)
        else:
            np.save(tmp / "X.npy", np.ascontiguousarray(features.X))
        joblib.dump(features.featurizer, tmp / "featurizer.joblib")
        (tmp / "complete").touch()
        with contextlib.suppress(OSError):  # another worker got there first with the same matrix
            os.rename(tmp, final)
    except OSError:  # a full or read-only disk costs speed, not a retrain
        log.warning("could not write the feature cache for project %s", project_id, exc_info=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for other in project_cache_dir(project_id).iterdir() if project_cache_dir(project_id).exists() else ():
        if other.name != final.name and not other.name.startswith(".tmp-"):
            shutil.rmtree(other, ignore_errors=True)  # an older pool state nobody will ask for again


def pool_features(session: Session, project: Project) -> PoolFeatures:
    """The project's feature matrix, fitted and computed once per pool state."""
    key = pool_key(session, project)
    with _lock:
        cached = _cache.get(project.id)
        if cached is not None and cached.key == key:
            return cached
    features = _load(project.id, key)
    if features is None:
        features = _compute(session, project, key)
        _save(project.id, features)
    with _lock:
        _cache[project.id] = features
    return features


# The payloads as JSON text, decoded here: SQLAlchemy's JSON type and ORM rows cost about twice the
# decoding itself (at 1M rows, seconds of a pool's first retrain), and the cast keeps PostgreSQL's
# driver from decoding them with the slower json module first.
_PAYLOADS = text("SELECT id, CAST(payload AS TEXT) FROM items WHERE project_id = :project_id ORDER BY id")


def _read_pool(session: Session, project: Project) -> tuple[list[int], object]:
    """Item ids and what the featurizer takes, read in chunks: texts as a list, feature rows
    straight into float64 blocks (never a million lists of floats at once)."""
    kind = feature_kind(project)
    ids: list[int] = []
    parts: list = []
    result = session.execute(_PAYLOADS.execution_options(stream_results=True, yield_per=FETCH_ROWS),
                             {"project_id": project.id})
    for chunk in result.partitions(FETCH_ROWS):
        ids.extend(row[0] for row in chunk)
        parts.append(raw_inputs(kind, [orjson.loads(row[1]) for row in chunk]))
    if kind == TEXT:
        return ids, [t for part in parts for t in part]
    return ids, (np.concatenate(parts) if parts else np.empty((0, len(project.feature_names or ()))))


def _compute(session: Session, project: Project, key: tuple) -> PoolFeatures:
    ids, raw = _read_pool(session, project)
    featurizer, X = fit_featurizer(feature_kind(project), raw, n_items=len(ids))
    if hasattr(featurizer, "stop_words_"):
        # Only kept for introspection, and it can dwarf the rest of a pickled pipeline.
        featurizer.stop_words_ = None
    return PoolFeatures(key=key, item_ids=np.asarray(ids, dtype=np.int64), X=X, featurizer=featurizer)


def forget(project_id: int | None = None) -> None:
    """Drop this process's copy (the disk copy is keyed by the pool's state and goes stale by itself)."""
    with _lock:
        if project_id is None:
            _cache.clear()
        else:
            _cache.pop(project_id, None)
