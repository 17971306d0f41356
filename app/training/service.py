"""Retrain a project's model on its labels and re-rank its pool: the worker's one job.

Database work happens in short transactions around the heavy part, so annotators keep being
served (from the previous ranking) while the model fits and the pool is scored; the new
ranking is written in chunks under a model version nobody serves yet and published by
swapping one pointer on the project.
"""

import io
import logging
import time
import warnings
from dataclasses import dataclass
from itertools import repeat

import joblib
import numpy as np
from sklearn import __version__ as sklearn_version
from sklearn.base import clone
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sqlalchemy import delete, func, select, update

from app.al import STRATEGIES, build_classifier, get_strategy
from app.al.cold_start import COVER, COVER_REASON, cover_first
from app.db import bulk_insert, refresh_planner_statistics, session_scope
from app.models import Item, ItemState, ModelVersion, Project, RankingEntry, utcnow
from app.training import diagnostics
from app.training.features import feature_kind, pool_features

log = logging.getLogger(__name__)

RANKING_CHUNK = 5_000  # rows per write transaction: each holds SQLite's write lock for tens of ms at most
# Fitted pipelines are kept for the newest versions only; older ones keep metrics and ranking history.
KEEP_ARTIFACTS = 3


class TrainingError(Exception):
    """A retrain that cannot succeed with the data as it is (shown to leads as the reason)."""


@dataclass
class TrainingResult:
    model_version_id: int
    version: int
    n_labels: int
    n_ranked: int


def _labelled(session, project_id: int) -> tuple[np.ndarray, np.ndarray]:
    """The training labels: every labelled item outside the holdout."""
    rows = session.execute(select(Item.id, Item.final_label).where(
        Item.project_id == project_id, Item.final_label.is_not(None), Item.is_holdout.is_(False))
        .order_by(Item.id)).all()
    return np.asarray([r[0] for r in rows], dtype=np.int64), np.asarray([r[1] for r in rows], dtype=object)


def _open_ids(session, project_id: int) -> np.ndarray:
    """What the strategy ranks: open items outside the holdout (holdout items are served at random)."""
    ids = session.scalars(select(Item.id).where(Item.project_id == project_id, Item.state == ItemState.open,
                                                Item.is_holdout.is_(False)).order_by(Item.id)).all()
    return np.asarray(ids, dtype=np.int64)


def is_stateful(strategy_name: str) -> bool:
    return bool(getattr(STRATEGIES.get(strategy_name), "stateful", False))


def _strategy_state(session, project: Project) -> dict | None:
    """What a stateful strategy carried out of the last published retrain (None before the first)."""
    if project.current_model_version_id is None:
        return None
    diagnostics_json = session.scalar(select(ModelVersion.diagnostics).where(
        ModelVersion.id == project.current_model_version_id))
    return (diagnostics_json or {}).get("strategy_state")


def cross_validated_metrics(classifier, X, y: np.ndarray, random_state: int = 0) -> dict:
    """Accuracy and macro-F1 of out-of-fold predictions (up to 5 stratified folds).

    A class with fewer examples than folds is left out of some training folds; the estimate is
    then pessimistic for that class, which is the honest direction early on."""
    _, counts = np.unique(y, return_counts=True)
    folds = int(min(5, counts.max(), len(y) // 2))
    if folds < 2 or len(counts) < 2:
        return {}
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has only N members"
        try:
            predicted = cross_val_predict(clone(classifier), X, y, cv=cv)
        except ValueError:  # a training fold held a single class: no estimate yet
            return {}
    return {
        "cv_folds": folds,
        "cv_accuracy": float(accuracy_score(y, predicted)),
        "cv_macro_f1": float(f1_score(y, predicted, average="macro")),
    }


def _dump(pipeline) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer, compress=3)
    return buffer.getvalue()


def load_pipeline(artifact: bytes):
    """The fitted scikit-learn pipeline stored with a model version (raw items in, labels out)."""
    return joblib.load(io.BytesIO(artifact))


def train_and_rank(project_id: int) -> TrainingResult:
    """Fit the project's model on its current labels, score the open pool and publish the ranking."""
    started = time.perf_counter()
    with session_scope(write=False) as session:
        project = session.get(Project, project_id)
        if project is None:
            raise TrainingError(f"project {project_id} no longer exists")
        kind, strategy_name, params = feature_kind(project), project.strategy, dict(project.strategy_params or {})
        project_labels = list(project.labels)
        batch_size = project.batch_size
        show_guess = project.show_model_guess
        labelled_ids, y = _labelled(session, project_id)
        open_ids = _open_ids(session, project_id)
        holdout_ids, y_holdout = diagnostics.holdout_labels(session, project_id)
        stop_ids = diagnostics.stop_set_ids(session, project_id)
        previous_stop = diagnostics.previous_stop_set(session, project_id)
        features = pool_features(session, project)
        previous_state = _strategy_state(session, project) if is_stateful(strategy_name) else None

    classes = sorted(set(y.tolist()))
    if len(classes) < 2:
        raise TrainingError(f"only one label so far ({classes[0] if classes else 'none'}): "
                            "a model needs examples of at least two labels")
    X = features.X
    X_train = X[features.rows_for(labelled_ids)]
    classifier = build_classifier(kind)
    classifier.fit(X_train, y)
    metrics = {
        "n_labels": int(len(y)),
        "label_counts": {str(c): int((y == c).sum()) for c in classes},
        "train_accuracy": float(accuracy_score(y, classifier.predict(X_train))),
        **cross_validated_metrics(classifier, X_train, y),
    }
    train_seconds = time.perf_counter() - started

    scoring_started = time.perf_counter()
    stateful = is_stateful(strategy_name)
    # a stateful strategy (auto) also gets the project's label set, unless its settings name one
    # (`"labels": null` turns auto's cover first off): it covers the pool first while some label
    # has too few examples
    extra = {"state": previous_state, "labels": params.get("labels", project_labels)} if stateful else {}
    strategy = get_strategy(strategy_name, **{**params, "random_state": len(y), **extra})
    X_pool = X[features.rows_for(open_ids)] if len(open_ids) else None
    strategy_label, choice, state, cover = strategy_name, None, previous_state, None
    if X_pool is not None:
        # A stateful strategy (auto's bandit) identifies items by id: the rewards for its last batch
        # are read from the labels those ids got since.
        ids = {"ids_pool": open_ids.tolist(), "ids_labeled": labelled_ids.tolist()} if stateful else {}
        utilities = strategy.utilities(classifier, X_pool, X_train, y, **ids)
        order = strategy.rank(utilities, X_pool, batch_size=batch_size, X_labeled=X_train)
        if stateful:
            state, choice = strategy.state_, strategy.explanation_
            strategy_label = f"{strategy_name}:{choice['arm']}"  # what served items' `why` shows
            if choice.get("cover_ids") is not None:  # auto's bandit drew its cover batch
                cover = {"ids": choice["cover_ids"], "reason": COVER_REASON}
        elif strategy_name != "random":  # (auto, the stateful one, covers inside its bandit)
            # too few examples of some label for its uncertainty to mean much: TypiClust's batch first
            order, cover_rows = cover_first(order, X_pool, X_train, y, project_labels, batch_size,
                                            random_state=len(y))
            if cover_rows is not None:
                strategy_label = f"{strategy_name}:{COVER}"
                cover = {"ids": open_ids[cover_rows].tolist(), "reason": COVER_REASON}
    else:
        utilities, order = np.empty(0), np.empty(0, dtype=np.int64)
    score_seconds = time.perf_counter() - scoring_started
    evaluation, dashboard = diagnostics.compute(
        classifier=classifier, features=features, labelled_ids=labelled_ids, y=y, open_ids=open_ids,
        holdout_ids=holdout_ids, y_holdout=y_holdout, stop_ids=stop_ids, previous_stop=previous_stop, seed=len(y))
    metrics.update(evaluation)
    pipeline = Pipeline([("features", features.featurizer), ("classifier", classifier)])
    metrics["library_versions"] = {"scikit-learn": sklearn_version, "numpy": np.__version__}
    if choice is not None:  # small: read on every /next to mark the random share in `why`
        metrics["strategy_choice"] = {key: choice[key] for key in (
            "arm", "probability", "probabilities", "mean_reward", "random_share", "random_ids", "step", "reason",
            "ranked_by")}
    # one place for every strategy, auto's too: the cover batch's items (so `why` says `:cover` for
    # them only) and the reason the dashboard gives for it
    if cover is not None:
        metrics["cover"] = cover
    if stateful:
        dashboard = {**(dashboard or {}), "strategy_state": state}

    with session_scope() as session:
        version = (session.scalar(select(func.max(ModelVersion.version))
                                  .where(ModelVersion.project_id == project_id)) or 0) + 1
        model = ModelVersion(
            project_id=project_id, version=version, created_at=utcnow(), n_labels=int(len(y)),
            classes=[str(c) for c in classifier.classes_], metrics=metrics, strategy=strategy_label,
            train_seconds=train_seconds, score_seconds=score_seconds, n_ranked=int(len(order)),
            artifact=_dump(pipeline), diagnostics=dashboard)
        session.add(model)
        session.flush()
        model_id = model.id

    ranked_ids = open_ids[order] if len(order) else open_ids
    ranked_scores = utilities[order] if len(order) else utilities
    columns = ("model_version_id", "rank", "item_id", "score") + (("guess", "guess_confidence") if show_guess else ())
    for start in range(0, len(ranked_ids), RANKING_CHUNK):
        stop = start + RANKING_CHUNK
        chunk = [repeat(model_id), range(start, start + len(ranked_ids[start:stop])), ranked_ids[start:stop].tolist(),
                 np.asarray(ranked_scores[start:stop], dtype=np.float64).tolist()]
        if show_guess:  # the hint on the card: the most probable class and its probability, per ranked item
            rows = features.rows_for(ranked_ids[start:stop])
            proba = classifier.predict_proba(X[rows]) if len(rows) else np.empty((0, len(classifier.classes_)))
            chunk += [proba.argmax(axis=1).tolist(), proba.max(axis=1).astype(np.float64).tolist()]
        with session_scope() as session:  # short write transactions: annotators' writes interleave
            bulk_insert(session, RankingEntry.__tablename__, columns, list(zip(*chunk, strict=False)))
    with session_scope() as session:  # fresh statistics before /next starts joining the new ranking
        refresh_planner_statistics(session, "items", "ranking_entries")

    with session_scope() as session:
        project = session.get(Project, project_id)
        previous = project.current_model_version_id
        project.current_model_version_id = model_id
    if previous is not None:
        _drop_old_rankings(project_id, keep=model_id)
    log.info("project %s: model v%s on %s labels, %s items ranked in %.2fs", project_id, version,
             len(y), len(order), time.perf_counter() - started)
    return TrainingResult(model_version_id=model_id, version=version, n_labels=int(len(y)),
                          n_ranked=int(len(order)))


def drop_ranking(model_id: int) -> None:
    """Delete a model version's ranking in chunks (short write transactions)."""
    while True:
        with session_scope() as session:
            ranks = session.scalars(select(RankingEntry.rank).where(RankingEntry.model_version_id == model_id)
                                    .order_by(RankingEntry.rank).limit(RANKING_CHUNK)).all()
            if not ranks:
                return
            session.execute(delete(RankingEntry).where(RankingEntry.model_version_id == model_id,
                                                       RankingEntry.rank <= ranks[-1]))


def _drop_old_rankings(project_id: int, *, keep: int) -> None:
    """Delete superseded rankings in chunks (short write transactions) and old artifacts."""
    with session_scope(write=False) as session:
        old_ids = session.scalars(select(ModelVersion.id).where(
            ModelVersion.project_id == project_id, ModelVersion.id != keep)
            .order_by(ModelVersion.id.desc())).all()
    for model_id in old_ids:
        drop_ranking(model_id)
    stale = old_ids[KEEP_ARTIFACTS - 1:]
    if stale:  # metrics stay for the learning curve; the bulky parts go
        with session_scope() as session:
            session.execute(update(ModelVersion).where(ModelVersion.id.in_(stale),
                                                       ModelVersion.artifact.is_not(None))
                            .values(artifact=None, diagnostics=None))
