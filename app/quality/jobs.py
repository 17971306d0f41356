"""The worker's label-quality jobs.

"quality" runs after every published retrain: for the current model it scores each training label
(suspicious-label score, confident-learning flag and their evidence) and each training item's
influence on the holdout loss. "verify" refits the model without each of the most influential
items, exactly, on a lead's request. Both read in one short transaction, compute with none open
and write in short ones, so annotators keep being served and retrains keep running meanwhile.
"""

import logging
import time
import warnings

import numpy as np
from sqlalchemy import delete, insert, select, update

from app.al.importance import SampleImportance, out_of_fold_proba, suspicious_labels
from app.db import session_scope
from app.models import ItemQuality, Job, JobStatus, Project, QualityReport, utcnow
from app.quality import data

log = logging.getLogger(__name__)

QUALITY_KINDS = ("quality", "verify")
WRITE_CHUNK = 5_000
# The per-item leave-one-out forms cost k conjugate-gradient solves per item when H is not formed
# ("cg" mode: large TF-IDF problems); beyond this many items the score uses out-of-fold evidence only.
CG_PER_ITEM_MAX = 300
# Holdout influence by the Newton estimate (one H^-1 solve per item, ~n p^2 flops) below this budget,
# by first-order influence (one solve in all) above it. docs/importance.md: Newton tracks a real refit
# far better on the most influential items.
NEWTON_FLOPS = 2e10
VERIFY_MAX_LABELS = 2_000
VERIFY_PER_SIDE = 50  # the most helpful and the most harmful items are refitted exactly


class QualityError(Exception):
    """A quality computation that cannot run on the data as it is (shown to leads as the reason)."""


def queue_quality(session, *, project_id: int, model_version_id: int, n_labels: int = 0) -> Job:
    """A quality job for the project's newest model, unless one is already waiting (it takes the newest)."""
    waiting = session.scalar(select(Job).where(Job.project_id == project_id, Job.kind == "quality",
                                               Job.status == JobStatus.queued))
    if waiting is not None:
        waiting.params, waiting.n_labels = {"model_version_id": model_version_id}, n_labels
        return waiting
    job = Job(project_id=project_id, kind="quality", status=JobStatus.queued, n_labels=n_labels,
              params={"model_version_id": model_version_id})
    session.add(job)
    session.flush()
    return job


def _engine(inputs: data.Inputs) -> SampleImportance:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return SampleImportance(inputs.classifier, inputs.X, inputs.y)


def analyse(inputs: data.Inputs) -> tuple[list[dict], dict]:
    """(one row per training item, report details) for `inputs`; numpy only, no database."""
    y = inputs.y
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2 or len(y) < 4:
        raise QualityError("label quality needs at least four training labels of two or more classes")
    clf = inputs.classifier
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few members in a class: folds without it are expected early on
        try:
            oof = out_of_fold_proba(clf, inputs.X, y, random_state=0)
        except ValueError as exc:  # a fold the model cannot be fitted on
            raise QualityError(f"out-of-fold probabilities could not be computed yet: {exc}") from None
    model_classes = np.asarray(clf.classes_)
    if len(classes) < len(model_classes):  # a class the model knows has no training label left (relabelled)
        full = np.zeros((len(y), len(model_classes)))
        full[:, np.searchsorted(model_classes, classes)] = oof
        oof = full
    engine = _engine(inputs)
    n, p = len(y), engine.n_params
    with_loo = engine.method != "cg" or n <= CG_PER_ITEM_MAX
    issues = suspicious_labels(clf, inputs.X, y, oof_proba=oof, importance=engine, loo=with_loo)
    holdout = None
    approx = None
    if len(inputs.y_holdout):
        approx = "newton" if engine.method != "cg" and n * p * p <= NEWTON_FLOPS else "influence"
        holdout = engine.influence_on_loss(inputs.X_holdout, inputs.y_holdout, approx=approx)

    def number(value) -> float | None:
        return float(value) if np.isfinite(value) else None

    rows = [{
        "item_id": int(item_id), "given_label": str(issues.given_label[i]), "score": float(issues.score[i]),
        "flagged": bool(issues.flagged[i]), "p_given": float(issues.p_given[i]),
        "other_label": str(issues.other_label[i]), "p_other": float(issues.p_other[i]),
        "loo_p_given": number(issues.loo_p_given[i]), "self_influence": number(issues.self_influence[i]),
        "holdout_influence": float(holdout[i]) if holdout is not None else None,
    } for i, item_id in enumerate(inputs.train_ids)]
    details = {"method": engine.method, "n_params": int(p), "leave_one_out_evidence": bool(with_loo),
               "thresholds": {str(c): float(t) for c, t in zip(issues.classes, issues.thresholds, strict=True)},
               "label_counts": {str(c): int(k) for c, k in zip(classes, counts, strict=True)},
               "n_labels_trained": inputs.n_labels_trained, "unknown_labels": inputs.unknown_labels,
               "version": inputs.version,
               # how far to trust the flags: the same out-of-fold predictions, scored against the labels
               "oof_accuracy": float(np.mean(np.argmax(oof, axis=1) == np.searchsorted(model_classes, y)))}
    return rows, {"approx": approx, "details": details}


def compute_quality(project_id: int) -> int | None:
    """Compute and store the report for the project's current model; its id (None: nothing to do)."""
    from app.quality.service import pin_second_opinions  # the service imports this module too

    started = time.perf_counter()
    with session_scope() as session:  # second opinions go to the head of the new ranking first
        project = session.get(Project, project_id)
        if project is None or project.current_model_version_id is None:
            return None
        pin_second_opinions(session, project=project)
    with session_scope(write=False) as session:
        project = session.get(Project, project_id)
        model_id = project.current_model_version_id
        if session.scalar(select(QualityReport.id).where(QualityReport.model_version_id == model_id)):
            return None  # this version is done (a job that ran twice, or a newer job got there first)
        inputs = data.load_inputs(session, project, model_id, use_pool_cache=True)
    if inputs is None:
        return None
    rows, summary = analyse(inputs)
    with session_scope() as session:  # rows a killed attempt left behind
        session.execute(delete(ItemQuality).where(ItemQuality.model_version_id == model_id))
    for start in range(0, len(rows), WRITE_CHUNK):
        with session_scope() as session:
            session.execute(insert(ItemQuality), [{**row, "model_version_id": model_id, "project_id": project_id}
                                                  for row in rows[start:start + WRITE_CHUNK]])
    seconds = time.perf_counter() - started
    with session_scope() as session:  # the report appears, and replaces older ones, only once its rows are all in
        report = QualityReport(project_id=project_id, model_version_id=model_id, created_at=utcnow(),
                               seconds=seconds, n_items=len(rows), n_holdout=int(len(inputs.y_holdout)),
                               approx=summary["approx"], details=summary["details"])
        session.add(report)
        session.flush()
        report_id = report.id
        session.execute(delete(ItemQuality).where(ItemQuality.project_id == project_id,
                                                  ItemQuality.model_version_id != model_id))
        session.execute(delete(QualityReport).where(QualityReport.project_id == project_id,
                                                    QualityReport.id != report_id))
    log.info("project %s: label quality of model v%s on %s labels in %.2fs", project_id, inputs.version,
             len(rows), seconds)
    return report_id


def queue_verify(session, *, project: Project, report: QualityReport) -> Job:
    """An exact leave-one-out check of the report's most influential items (idempotent while waiting)."""
    from app.errors import Conflict, InvalidInput

    if report.n_holdout == 0:
        raise InvalidInput("there are no labelled holdout items to measure influence on")
    if report.n_items > VERIFY_MAX_LABELS:
        raise InvalidInput(f"exact leave-one-out is offered up to {VERIFY_MAX_LABELS:,} training labels; "
                           f"this report has {report.n_items:,}")
    pending = session.scalar(select(Job).where(Job.project_id == project.id, Job.kind == "verify",
                                               Job.status.in_([JobStatus.queued, JobStatus.running])))
    if pending is not None:
        if (pending.params or {}).get("model_version_id") != report.model_version_id:
            raise Conflict("a check of an older report is still running; try again when it is done")
        return pending
    job = Job(project_id=project.id, kind="verify", status=JobStatus.queued, n_labels=report.n_items,
              params={"model_version_id": report.model_version_id})
    session.add(job)
    session.flush()
    return job


def verify_report(model_version_id: int) -> None:
    """Refit without each of the most influential items and store the real change of the holdout loss."""
    started = time.perf_counter()
    with session_scope(write=False) as session:
        report = session.scalar(select(QualityReport).where(QualityReport.model_version_id == model_version_id))
        if report is None:
            raise QualityError("a newer model replaced this report before the check ran; start the check again")
        project = session.get(Project, report.project_id)
        top = _most_influential_ids(session, model_version_id, VERIFY_PER_SIDE)
        inputs = data.load_inputs(session, project, model_version_id, use_pool_cache=True)
    if inputs is None:
        raise QualityError("this model version's fitted model is no longer kept")
    if not len(inputs.y_holdout):
        raise QualityError("there are no labelled holdout items to measure influence on")
    position = {int(item_id): i for i, item_id in enumerate(inputs.train_ids)}
    chosen = [item_id for item_id in top if item_id in position]  # an item relabelled since is left out
    indices = np.asarray([position[i] for i in chosen], dtype=np.intp)
    engine = _engine(inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        exact = engine.leave_one_out(inputs.X_holdout, inputs.y_holdout, indices=indices)
        estimate = engine.influence_on_loss(inputs.X_holdout, inputs.y_holdout, approx=report.approx or "newton",
                                            indices=indices)
    pearson = float(np.corrcoef(estimate, exact)[0, 1]) if len(chosen) >= 3 and np.std(exact) > 0 else None
    with session_scope() as session:
        for item_id, value in zip(chosen, exact, strict=True):
            session.execute(update(ItemQuality).where(ItemQuality.model_version_id == model_version_id,
                                                      ItemQuality.item_id == item_id)
                            .values(holdout_loo=float(value)))
        session.execute(update(QualityReport).where(QualityReport.model_version_id == model_version_id).values(
            verified_at=utcnow(), verify={"n": len(chosen), "pearson": pearson, "approx": report.approx,
                                          "seconds": time.perf_counter() - started}))


def _most_influential_ids(session, model_version_id: int, per_side: int) -> list[int]:
    helpful = session.scalars(select(ItemQuality.item_id).where(
        ItemQuality.model_version_id == model_version_id, ItemQuality.holdout_influence > 0)
        .order_by(ItemQuality.holdout_influence.desc()).limit(per_side)).all()
    harmful = session.scalars(select(ItemQuality.item_id).where(
        ItemQuality.model_version_id == model_version_id, ItemQuality.holdout_influence < 0)
        .order_by(ItemQuality.holdout_influence).limit(per_side)).all()
    return list(helpful) + list(harmful)


def run_quality_job(kind: str, project_id: int, params: dict) -> None:
    """The worker's entry point for both kinds."""
    if kind == "verify":
        verify_report(int(params["model_version_id"]))
    else:
        compute_quality(project_id)
