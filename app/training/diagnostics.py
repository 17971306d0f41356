"""What the worker measures after each retrain for the lead's dashboard: holdout scores, agreement
with the previous model on a fixed stop set, the pool's uncertainty and a 2-D map of it."""

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.al.evaluation import holdout_scores, prediction_agreement, two_d_projection, uncertainty_histogram
from app.al.proba import predict_proba_chunked
from app.models import Item, ModelVersion
from app.training.features import PoolFeatures

STOP_SET_SIZE = 2_000
MAP_POINTS_EACH = 1_500  # labelled and unlabelled points drawn on the pool map
MAP_FIT_ROWS = 20_000


def holdout_labels(session: Session, project_id: int) -> tuple[np.ndarray, np.ndarray]:
    rows = session.execute(select(Item.id, Item.final_label).where(
        Item.project_id == project_id, Item.is_holdout.is_(True), Item.final_label.is_not(None))
        .order_by(Item.id)).all()
    return np.asarray([r[0] for r in rows], dtype=np.int64), np.asarray([r[1] for r in rows], dtype=object)


def stop_set_ids(session: Session, project_id: int) -> np.ndarray:
    """A fixed random sample of the pool (the first items of the import-time permutation)."""
    ids = session.scalars(select(Item.id).where(Item.project_id == project_id)
                          .order_by(Item.shuffle_key).limit(STOP_SET_SIZE)).all()
    return np.sort(np.asarray(ids, dtype=np.int64))


def previous_stop_set(session: Session, project_id: int) -> dict | None:
    diagnostics = session.scalar(select(ModelVersion.diagnostics).where(ModelVersion.project_id == project_id)
                                 .order_by(ModelVersion.version.desc()).limit(1))
    return (diagnostics or {}).get("stop_set")


def compute(*, classifier, features: PoolFeatures, labelled_ids: np.ndarray, y: np.ndarray,
            open_ids: np.ndarray, holdout_ids: np.ndarray, y_holdout: np.ndarray, stop_ids: np.ndarray,
            previous_stop: dict | None, seed: int) -> tuple[dict, dict]:
    """(metrics to keep with the version, diagnostics for the current dashboard)."""
    X = features.X
    metrics: dict = {}
    if len(holdout_ids):
        predicted = classifier.predict(X[features.rows_for(holdout_ids)])
        metrics["holdout"] = holdout_scores(y_holdout, predicted)
    else:
        metrics["holdout"] = {"n": 0}

    stop_predictions = [str(p) for p in classifier.predict(X[features.rows_for(stop_ids)])] if len(stop_ids) else []
    if previous_stop and previous_stop.get("ids") == stop_ids.tolist():
        metrics["stability_kappa"] = prediction_agreement(previous_stop["predictions"], stop_predictions)

    rng = np.random.default_rng(seed)
    # An open item may already have a label (one of the several opinions the project asks for): it is
    # on the map in its label's colour, so neither the map nor the histogram counts it as unlabelled.
    open_ids = open_ids[~np.isin(open_ids, labelled_ids)]
    open_rows = features.rows_for(open_ids)
    proba = predict_proba_chunked(classifier, X[open_rows]) if len(open_rows) else np.empty((0, 2))
    histogram = uncertainty_histogram(proba)

    pool_map = _pool_map(X, features, classifier, labelled_ids, y, holdout_ids, y_holdout, open_ids, proba, rng)
    diagnostics = {"stop_set": {"ids": stop_ids.tolist(), "predictions": stop_predictions},
                   "uncertainty_histogram": histogram, "pool_map": pool_map}
    return metrics, diagnostics


def _pool_map(X, features, classifier, labelled_ids, y, holdout_ids, y_holdout, open_ids, proba, rng) -> dict:
    n_rows = X.shape[0]
    fit_rows = np.sort(rng.choice(n_rows, size=min(n_rows, MAP_FIT_ROWS), replace=False))
    all_labelled = np.concatenate([labelled_ids, holdout_ids])
    all_labels = np.concatenate([y, y_holdout]) if len(y_holdout) else y
    pick_l = rng.choice(len(all_labelled), size=min(len(all_labelled), MAP_POINTS_EACH), replace=False)
    pick_u = rng.choice(len(open_ids), size=min(len(open_ids), MAP_POINTS_EACH), replace=False)
    ids = np.concatenate([all_labelled[pick_l], open_ids[pick_u]])
    if len(ids) == 0:
        return {"points": []}
    coords = two_d_projection(X[fit_rows], X[features.rows_for(ids)])
    k = proba.shape[1] if proba.size else 2
    uncertainty = (1.0 - proba[pick_u].max(axis=1)) / (1.0 - 1.0 / k) if len(pick_u) else np.empty(0)
    points = [[round(float(x), 4), round(float(yy), 4), str(label), None, int(item_id)]
              for (x, yy), label, item_id in zip(coords[: len(pick_l)], all_labels[pick_l], ids[: len(pick_l)],
                                                 strict=True)]
    points += [[round(float(x), 4), round(float(yy), 4), None, round(float(u), 4), int(item_id)]
               for (x, yy), u, item_id in zip(coords[len(pick_l):], uncertainty, ids[len(pick_l):], strict=True)]
    return {"points": points, "fields": ["x", "y", "label", "uncertainty", "item_id"]}
