""""Why this prediction": the model's probabilities for one item, and the training labels that helped and
harmed that prediction most (first-order influence on the item's loss, docs/importance.md).

Computed on request in the web process: the model and its influence engine are built once per model
version and kept (a small per-process cache); after that an item costs one conjugate-gradient solve
and one product with the training matrix. The engine runs in "cg" mode whenever forming the Hessian
would cost more than a few solves, so the first request never factorises a large matrix.
"""

import threading
import time
import warnings
from collections import OrderedDict

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.al.importance import SampleImportance
from app.models import Item, ModelVersion, Project
from app.pool.images import picture_of
from app.quality import data
from app.training.features import feature_kind, raw_inputs

CACHED_MODELS = 2
EXACT_MAX_PARAMS = 2_000  # below this H is formed and factorised once; above it, conjugate gradient
TOP = 8

_cache: "OrderedDict[tuple, tuple[data.Inputs, SampleImportance]]" = OrderedDict()
_lock = threading.Lock()
_building: dict[tuple, threading.Lock] = {}


def _engine_for(session: Session, project: Project, model_version_id: int):
    model = session.get(ModelVersion, model_version_id)
    if model is None:
        return None
    key = (model_version_id, model.created_at)  # ids can be reused after a project is deleted
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        building = _building.setdefault(key, threading.Lock())
    with building:  # one build per version, however many requests arrive at once
        with _lock:
            if key in _cache:
                return _cache[key]
        inputs = data.load_inputs(session, project, model_version_id, use_pool_cache=False)
        if inputs is None or len(np.unique(inputs.y)) < 2:
            return None
        clf = inputs.classifier
        n_params = (1 if len(clf.classes_) == 2 else len(clf.classes_)) * (inputs.X.shape[1] + 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            engine = SampleImportance(clf, inputs.X, inputs.y,
                                      method="exact" if n_params <= EXACT_MAX_PARAMS else "cg")
        with _lock:
            _cache[key] = (inputs, engine)
            while len(_cache) > CACHED_MODELS:
                _cache.popitem(last=False)
            _building.pop(key, None)
        return inputs, engine


def explain(session: Session, *, project: Project, item: Item, top: int = TOP) -> dict:
    """Predicted probabilities and the most helpful / harmful training items for `item`'s prediction."""
    started = time.perf_counter()
    if project.current_model_version_id is None:
        return {"available": False, "reason": "There is no model yet: the first retrain comes after the first labels."}
    built = _engine_for(session, project, project.current_model_version_id)
    if built is None:
        return {"available": False, "reason": "The current model's file is no longer kept, or it has one label only."}
    inputs, engine = built
    clf = inputs.classifier
    x = inputs.pipeline[0].transform(raw_inputs(feature_kind(project), [item.payload]))
    proba = clf.predict_proba(x)[0]
    classes = [str(c) for c in clf.classes_]
    predicted = classes[int(np.argmax(proba))]
    target = item.final_label if item.final_label in classes else predicted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        influence = engine.influence_on_loss(x, np.asarray([target], dtype=object))
    order = np.argsort(-influence, kind="stable")
    helpful = [i for i in order[:top] if influence[i] > 0]
    harmful = [i for i in order[::-1][:top] if influence[i] < 0]
    ids = [int(inputs.train_ids[i]) for i in [*helpful, *harmful]]
    items = {row.id: row for row in session.scalars(select(Item).where(Item.id.in_(ids)))} if ids else {}

    def entry(i: int) -> dict:
        row = items.get(int(inputs.train_ids[i]))
        text = row.payload.get("text") if row is not None else None
        return {"item_id": int(inputs.train_ids[i]), "external_id": row.external_id if row else None,
                "label": str(inputs.y[i]), "influence": float(influence[i]), "text": text,
                "image": picture_of(row.payload) if row is not None else None}

    return {
        "available": True, "model_version": inputs.version, "classes": classes,
        "probabilities": {c: float(p) for c, p in zip(classes, proba, strict=True)}, "predicted_label": predicted,
        "explained_label": target, "explains": "given label" if target == item.final_label else "predicted label",
        "helpful": [entry(i) for i in helpful], "harmful": [entry(i) for i in harmful],
        "n_training_labels": int(len(inputs.y)), "method": engine.method,
        "seconds": time.perf_counter() - started,
    }


def forget() -> None:
    with _lock:
        _cache.clear()
