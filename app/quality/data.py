"""The inputs of a label-quality computation: a model version's fitted pipeline and the labels it judges.

The model is taken from the stored artifact, and the feature rows come from that model's own
featurizer, so the numbers always describe the model that was published. In the worker the
cached pool matrix is reused when its featurizer is the very one the model was trained with.
"""

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Item, ModelVersion, Project
from app.training import features as pool
from app.training.service import load_pipeline

IN_CHUNK = 5_000  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits


@dataclass
class Inputs:
    model_version_id: int
    version: int
    n_labels_trained: int  # labels the model was fitted on; the analysis uses the labels there are now
    pipeline: object
    classifier: object
    train_ids: np.ndarray
    y: np.ndarray
    X: object
    holdout_ids: np.ndarray
    y_holdout: np.ndarray
    X_holdout: object
    unknown_labels: int  # training labels of classes the model has never seen (left out)


def labelled(session: Session, project_id: int, *, holdout: bool) -> tuple[np.ndarray, np.ndarray]:
    """(ids, labels) of the labelled training items (holdout=False) or holdout items, by id."""
    rows = session.execute(select(Item.id, Item.final_label).where(
        Item.project_id == project_id, Item.final_label.is_not(None), Item.is_holdout.is_(holdout))
        .order_by(Item.id)).all()
    return np.asarray([r[0] for r in rows], dtype=np.int64), np.asarray([r[1] for r in rows], dtype=object)


def _same_featurizer(a, b) -> bool:
    """Whether two fitted featurizers map items to the same columns (TF-IDF or scaling)."""
    if type(a) is not type(b):
        return False
    for attr in ("idf_", "mean_", "scale_"):
        if hasattr(a, attr) != hasattr(b, attr):
            return False
        if hasattr(a, attr) and not np.array_equal(getattr(a, attr), getattr(b, attr)):
            return False
    return getattr(a, "vocabulary_", None) == getattr(b, "vocabulary_", None)


def design_rows(session: Session, project: Project, featurizer, ids: np.ndarray, *, use_pool_cache: bool):
    """Feature rows of `ids` (in that order) as the model's featurizer makes them."""
    if use_pool_cache:
        features = pool.pool_features(session, project)
        if _same_featurizer(features.featurizer, featurizer):
            return features.X[features.rows_for(ids)]
    payloads: dict[int, dict] = {}
    id_list = [int(i) for i in ids]
    for start in range(0, len(id_list), IN_CHUNK):
        payloads.update(session.execute(select(Item.id, Item.payload)
                                        .where(Item.id.in_(id_list[start:start + IN_CHUNK]))).all())
    return featurizer.transform(pool.raw_inputs(pool.feature_kind(project), [payloads[i] for i in id_list]))


def load_inputs(session: Session, project: Project, model_version_id: int, *, use_pool_cache: bool) -> Inputs | None:
    """Everything a quality computation needs; None when the model's artifact is gone (an old version)."""
    model = session.get(ModelVersion, model_version_id)
    artifact = session.scalar(select(ModelVersion.artifact).where(ModelVersion.id == model_version_id))
    if model is None or artifact is None:
        return None
    pipeline = load_pipeline(artifact)
    featurizer, classifier = pipeline[0], pipeline[-1]
    known = set(np.asarray(classifier.classes_).tolist())
    train_ids, y = labelled(session, project.id, holdout=False)
    holdout_ids, y_holdout = labelled(session, project.id, holdout=True)
    keep = np.fromiter((label in known for label in y), dtype=bool, count=len(y))
    keep_h = np.fromiter((label in known for label in y_holdout), dtype=bool, count=len(y_holdout))
    unknown = int((~keep).sum())
    train_ids, y, holdout_ids, y_holdout = train_ids[keep], y[keep], holdout_ids[keep_h], y_holdout[keep_h]
    both = np.concatenate([train_ids, holdout_ids])
    X_all = design_rows(session, project, featurizer, both, use_pool_cache=use_pool_cache)
    return Inputs(model_version_id=model.id, version=model.version, n_labels_trained=model.n_labels,
                  pipeline=pipeline, classifier=classifier, train_ids=train_ids, y=y, X=X_all[:len(train_ids)],
                  holdout_ids=holdout_ids, y_holdout=y_holdout, X_holdout=X_all[len(train_ids):],
                  unknown_labels=unknown)
