"""The figures a lead watches, from cheap grouped queries and what the worker already computed.

Nothing here fits or asks a model: holdout scores, stability, the uncertainty histogram and the
pool map were stored with each model version by the worker.
"""

import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from app.al.agreement import krippendorff_alpha_nominal, pairwise_kappa
from app.al.evaluation import stopping_hint
from app.models import Annotation, Item, ItemState, Job, JobStatus, ModelVersion, Project, ServeSource, User, utcnow

STOPPING_SENTENCE = (
    "Stopping hint: when consecutive models agree on a fixed random sample of the pool (Cohen's kappa of "
    "at least {threshold} on average over the last {window} retrains that had new labels; Bloodgood & "
    "Vijay-Shanker 2009), more labels are unlikely to change the model much. Not before every label has "
    "{min_examples} training examples: models that have barely seen a label agree by predicting the others.")


def _counts(session: Session, project: Project, summary: "_AnswerSummary") -> dict:
    # per state: items, and those without a label (done yet without one: the annotators tie; the
    # project page counts these done, so the labelled figure says where the difference went)
    by_state = {state: (n, n_unlabelled) for state, n, n_unlabelled in session.execute(
        select(Item.state, func.count(), func.count().filter(Item.final_label.is_(None)))
        .where(Item.project_id == project.id).group_by(Item.state))}
    # a holdout item whose annotators tie has no label, so no accuracy counts it until a lead
    # adjudicates: the hard items drop out and the figure says how many
    holdout_total, holdout_labelled, holdout_ties = session.execute(select(
        func.count(), func.count(Item.final_label),
        func.count().filter(Item.final_label.is_(None), Item.n_annotations > 0)).where(
            Item.project_id == project.id, Item.is_holdout.is_(True))).one()
    training = session.scalar(select(func.count()).select_from(Item).where(
        Item.project_id == project.id, Item.final_label.is_not(None), Item.is_holdout.is_(False))) or 0
    (done, done_tied), (open_, _) = by_state.get(ItemState.done, (0, 0)), by_state.get(ItemState.open, (0, 0))
    return {"items_total": done + open_, "done": done, "done_tied": done_tied, "open": open_,
            "training_labels": training,
            "holdout_items": holdout_total or 0, "holdout_labels": holdout_labelled or 0,
            "holdout_ties": holdout_ties or 0,
            "annotations": summary.answers, "skips": summary.skips}


def _label_distribution(session: Session, project: Project) -> dict:
    rows = session.execute(select(Item.is_holdout, Item.final_label, func.count())
                           .where(Item.project_id == project.id, Item.final_label.is_not(None))
                           .group_by(Item.is_holdout, Item.final_label)).all()
    training = {label: 0 for label in project.labels}
    holdout = {label: 0 for label in project.labels}
    for is_holdout, label, n in rows:
        (holdout if is_holdout else training)[label] = n
    return {"training": training, "holdout": holdout}


def _learning_curve(session: Session, project: Project) -> list[dict]:
    rows = session.execute(select(ModelVersion.version, ModelVersion.n_labels, ModelVersion.metrics,
                                  ModelVersion.created_at).where(ModelVersion.project_id == project.id)
                           .order_by(ModelVersion.version)).all()
    curve = []
    for version, n_labels, metrics, created_at in rows:
        holdout = (metrics or {}).get("holdout") or {}
        curve.append({"version": version, "n_labels": n_labels, "created_at": created_at.isoformat(),
                      "holdout_n": holdout.get("n", 0), "accuracy": holdout.get("accuracy"),
                      "accuracy_low": holdout.get("accuracy_low"), "accuracy_high": holdout.get("accuracy_high"),
                      "macro_f1": holdout.get("macro_f1"), "macro_f1_low": holdout.get("macro_f1_low"),
                      "macro_f1_high": holdout.get("macro_f1_high"),
                      "stability_kappa": (metrics or {}).get("stability_kappa"),
                      "cv_accuracy": (metrics or {}).get("cv_accuracy")})
    return curve


def _new_label_kappas(curve: list[dict]) -> list[float | None]:
    """Each retrain's agreement with the one before, for the retrains that had new labels: a refit
    on the same labels (a strategy change, an adjudication that changed nothing) agrees with its
    predecessor by construction and says nothing about whether more labels would help."""
    kappas, previous = [], None
    for point in curve:
        if previous is not None and point["n_labels"] > previous:
            kappas.append(point["stability_kappa"])
        previous = point["n_labels"] if previous is None else max(previous, point["n_labels"])
    return kappas


def _answers_by_item(session: Session, project: Project) -> tuple[dict, dict]:
    """Answers on items that several people labelled, item -> {annotator: label}: (all of them, the
    people's). Labels that came in a pool file are no person's opinion, so agreement is measured on
    the second; a disagreement with an imported label is still one to adjudicate (it ties)."""
    rows = session.execute(
        select(Annotation.item_id, Annotation.user_id, Annotation.label, Annotation.source)
        .join(Item, Item.id == Annotation.item_id)
        .where(Annotation.project_id == project.id, Annotation.skipped.is_(False), Item.n_annotations >= 2)).all()
    every: dict[int, dict[int, str]] = defaultdict(dict)
    people: dict[int, dict[int, str]] = defaultdict(dict)
    for item_id, user_id, label, source in rows:
        every[item_id][user_id] = label
        if source != ServeSource.imported:
            people[item_id][user_id] = label
    return ({i: a for i, a in every.items() if len(a) >= 2}, {i: a for i, a in people.items() if len(a) >= 2})


def _answered_on_cards(project: Project):
    # Labels that came in a pool file are nobody's work here: they would inflate the importer's
    # counts and last-hour throughput.
    return and_(Annotation.project_id == project.id, Annotation.source != ServeSource.imported)


def _annotator_totals(session: Session, project: Project) -> list[tuple]:
    """Per annotator, over all their answers: (user id, name, labels, skips, last answer, timed labels,
    seconds on those cards, median seconds). The median is one ordered look-up per annotator."""
    answered = _answered_on_cards(project)
    is_label = Annotation.skipped.is_(False)
    timed = and_(is_label, Annotation.seconds_spent.is_not(None))
    rows = session.execute(
        select(Annotation.user_id, User.username,
               func.count().filter(is_label), func.count().filter(Annotation.skipped.is_(True)),
               func.max(Annotation.updated_at),  # an answer changed counts as work done when it was changed
               func.count().filter(timed), func.sum(Annotation.seconds_spent).filter(timed))
        .join(User, User.id == Annotation.user_id).where(answered)
        .group_by(Annotation.user_id, User.username)).all()
    totals = []
    for user_id, username, labels, skips, last_at, n_timed, seconds in rows:
        middle = None
        if n_timed:  # the middle one or two of this annotator's timed labels, in order
            values = session.scalars(
                select(Annotation.seconds_spent).where(answered, Annotation.user_id == user_id, timed)
                .order_by(Annotation.seconds_spent).offset((n_timed - 1) // 2).limit(2 - n_timed % 2)).all()
            middle = float(median(values))
        totals.append((user_id, username, labels, skips, last_at, n_timed, seconds, middle))
    return totals


def _labels_last_hour(session: Session, project: Project, now: datetime) -> Counter:
    """Labels given or changed in the last hour, by annotator: the rows of an index range counted here
    (grouped in SQL, SQLite would walk the whole per-user index to save a sort)."""
    return Counter(session.scalars(select(Annotation.user_id).where(
        _answered_on_cards(project), Annotation.skipped.is_(False),
        Annotation.updated_at >= now - timedelta(hours=1))).all())


def _annotators(summary: "_AnswerSummary", last_hour: Counter) -> list[dict]:
    """Per annotator: labels, skips, labels in the last hour, median seconds and labels per hour on
    the cards. The totals come with the answer summary; the last hour is read now, from the answers
    changed since (an index range: the dashboard polls every few seconds)."""
    kappas: dict[int, list[float]] = defaultdict(list)
    for pair in summary.pairs:
        kappas[pair["a"]].append(pair["kappa"])
        kappas[pair["b"]].append(pair["kappa"])
    result = []
    for user_id, username, labels, skips, last_at, n_timed, seconds, middle in sorted(
            summary.annotator_totals, key=lambda r: -r[2]):
        active_hours = (seconds or 0) / 3600
        result.append({
            "user_id": user_id, "username": username, "labels": labels, "skips": skips,
            "last_hour": last_hour.get(user_id, 0), "last_at": last_at.isoformat(),
            "median_seconds": middle,
            # throughput while labelling: the timed labels per hour of time spent on their cards (a
            # label sent without a card, through the API, has no time and is left out of both)
            "labels_per_hour": n_timed / active_hours if active_hours > 0 else None,
            "mean_kappa": sum(kappas[user_id]) / len(kappas[user_id]) if kappas[user_id] else None,
        })
    return result


def _disputed(by_item: dict[int, dict[int, str]]) -> list[int]:
    """Items whose annotators gave different labels."""
    return [item_id for item_id, answers in by_item.items() if len(set(answers.values())) > 1]


DISAGREEMENTS_PAGE = 50  # items on the disagreements page at a time


def disagreements(session: Session, project: Project, limit: int | None = None) -> tuple[list[dict], int]:
    """The first `limit` (DISAGREEMENTS_PAGE) items whose annotators disagree and that no lead has
    decided yet, oldest first, and how many such items there are in all."""
    limit = limit or DISAGREEMENTS_PAGE
    by_item = _answers_by_item(session, project)[0]
    ids = _disputed(by_item)
    if not ids:
        return [], 0
    total = open_disagreement_count(session, project, set(ids))
    items = session.scalars(select(Item).where(Item.id.in_(ids), Item.adjudicated_label.is_(None))
                            .order_by(Item.id).limit(limit)).all()
    names = dict(session.execute(select(User.id, User.username).where(
        User.id.in_({u for i in items for u in by_item[i.id]}))).all())
    return [{"item_id": item.id, "external_id": item.external_id, "payload": item.payload,
             "answers": {names[u]: label for u, label in sorted(by_item[item.id].items())}}
            for item in items], total


def open_disagreement_count(session: Session, project: Project, disputed: set[int]) -> int:
    """How many of the `disputed` items (their annotators disagree) no lead has decided yet: read as
    the ids of decided items only, where `disagreements` loads whole items (the dashboard polls every
    few seconds)."""
    if not disputed:
        return 0
    decided = set(session.scalars(select(Item.id).where(
        Item.project_id == project.id, Item.adjudicated_label.is_not(None), Item.n_annotations >= 2)).all())
    return len(disputed - decided)


def _strategy_choice(model: ModelVersion) -> dict | None:
    """For `auto`: which strategy the bandit drew for this ranking, its odds, and the sentence why."""
    choice = (model.metrics or {}).get("strategy_choice")
    if not choice:
        return None
    return {key: choice.get(key) for key in ("arm", "probability", "probabilities", "mean_reward", "random_share",
                                             "step", "reason")}


# What every answer of the project adds up to (agreement over the items labelled twice or more,
# each annotator's totals and median time, the count of answers and skips) takes about 4 s at
# 200,000 answers on SQLite (benchmarks/bench_dashboard.py), and each open dashboard asks every 5 s.
# A summary is reused until the answers change; once they have, it is recomputed when it is older
# than this many times what computing it took (a big project: every half minute or so), so polling
# dashboards spend at most about a tenth of a core on it. One that took less than
# SUMMARY_ALWAYS_FRESH_SECONDS is recomputed at once: a small project's figures are never stale.
AGREEMENT_REUSE_FACTOR = 10.0
SUMMARY_ALWAYS_FRESH_SECONDS = 0.25


@dataclass
class _AnswerSummary:
    fingerprint: tuple
    computed_at: float  # time.monotonic()
    seconds: float
    as_of: datetime
    pairs: list[dict]
    alpha: float | None
    n_items: int
    all_one_label: bool
    disputed: set[int]  # items whose answers (imported ones included) differ
    answers: int  # labels, imported ones included
    skips: int
    annotator_totals: list[tuple]  # see _annotator_totals


_summaries: dict[tuple, _AnswerSummary] = {}  # by (project id, creation time): ids come back after a delete
_summaries_lock = threading.Lock()


def _answer_summary(session: Session, project: Project) -> _AnswerSummary:
    # an index-only look-up (ix_annotations_project_updated): any answer added, changed or taken back
    # changes the count or the latest change
    fingerprint = tuple(session.execute(select(func.count(), func.max(Annotation.updated_at))
                                        .where(Annotation.project_id == project.id)).one())
    key = (project.id, project.created_at)
    with _summaries_lock:
        cached = _summaries.get(key)
    if cached is not None and (cached.fingerprint == fingerprint or (
            cached.seconds >= SUMMARY_ALWAYS_FRESH_SECONDS
            and time.monotonic() - cached.computed_at < AGREEMENT_REUSE_FACTOR * cached.seconds)):
        return cached
    started = time.monotonic()
    by_item, by_person = _answers_by_item(session, project)
    pairs = pairwise_kappa(by_person)
    names = dict(session.execute(select(User.id, User.username).where(
        User.id.in_({u for p in pairs for u in (p["a"], p["b"])}))).all()) if pairs else {}
    for pair in pairs:
        pair["a_name"], pair["b_name"] = names[pair["a"]], names[pair["b"]]
    answers = dict(session.execute(select(Annotation.skipped, func.count())
                                   .where(Annotation.project_id == project.id)
                                   .group_by(Annotation.skipped)).all())
    totals = _annotator_totals(session, project)
    result = _AnswerSummary(
        fingerprint=fingerprint, computed_at=started, seconds=time.monotonic() - started, as_of=utcnow(),
        pairs=pairs, alpha=krippendorff_alpha_nominal(by_person), n_items=len(by_person),
        all_one_label=len({label for answers in by_person.values() for label in answers.values()}) == 1,
        disputed=set(_disputed(by_item)), answers=answers.get(False, 0), skips=answers.get(True, 0),
        annotator_totals=totals)
    with _summaries_lock:
        _summaries[key] = result
    return result


def project_stats(session: Session, project: Project, *, include_map: bool = True) -> dict:
    """Everything on the dashboard, as one JSON-ready dict (the page and the API share it)."""
    from app.quality.service import suspicious_count  # it builds on this module's adjudicate

    now = utcnow()
    summary = _answer_summary(session, project)
    counts = _counts(session, project, summary)
    curve = _learning_curve(session, project)
    current = session.get(ModelVersion, project.current_model_version_id) if project.current_model_version_id \
        else None
    pairs = summary.pairs
    annotators_last_hour = _labels_last_hour(session, project, now)
    distribution = _label_distribution(session, project)
    hint = stopping_hint(_new_label_kappas(curve), training_counts=distribution["training"])
    hint["sentence"] = STOPPING_SENTENCE.format(threshold=hint["threshold"], window=hint["window"],
                                                min_examples=hint["min_examples"])
    # failures still standing: a retrain's until a later model was trained, a cold-start coverage
    # order's until a later one was computed
    failed = session.scalars(select(Job).where(
        Job.project_id == project.id, Job.kind == "train", Job.status == JobStatus.failed,
        *([Job.finished_at > current.created_at] if current is not None else []))
        .order_by(Job.id.desc()).limit(5)).all()
    last_cover = session.scalar(select(func.max(Job.id)).where(
        Job.project_id == project.id, Job.kind == "cold_start", Job.status == JobStatus.done)) or 0
    failed = sorted([*failed, *session.scalars(select(Job).where(
        Job.project_id == project.id, Job.kind == "cold_start", Job.status == JobStatus.failed, Job.id > last_cover)
        .order_by(Job.id.desc()).limit(5)).all()], key=lambda j: -j.id)[:5]
    waiting = {status: (n, oldest, beat) for status, n, oldest, beat in session.execute(
        select(Job.status, func.count(), func.min(Job.created_at), func.max(Job.heartbeat_at)).where(
            Job.project_id == project.id, Job.kind == "train", Job.status.in_([JobStatus.queued, JobStatus.running]))
        .group_by(Job.status)).all()}
    queued, queued_since, _ = waiting.get(JobStatus.queued, (0, None, None))
    running, _, last_beat = waiting.get(JobStatus.running, (0, None, None))
    model = None
    diagnostics = {}
    if current is not None:
        holdout = (current.metrics or {}).get("holdout") or {}
        model = {"version": current.version, "created_at": current.created_at.isoformat(),
                 "age_seconds": (now - current.created_at).total_seconds(), "n_labels": current.n_labels,
                 "strategy": current.strategy, "holdout": holdout,
                 "stability_kappa": (current.metrics or {}).get("stability_kappa"),
                 "strategy_choice": _strategy_choice(current),
                 # whether this ranking starts with a cold-start cover batch (any strategy, auto included)
                 "cover_reason": ((current.metrics or {}).get("cover") or {}).get("reason")}
        stored = session.scalar(select(ModelVersion.diagnostics).where(ModelVersion.id == current.id)) or {}
        diagnostics = {"uncertainty_histogram": stored.get("uncertainty_histogram")}
        if include_map:
            diagnostics["pool_map"] = stored.get("pool_map")
    return {
        "project": {"id": project.id, "name": project.name, "labels": project.labels,
                    "annotations_per_item": project.annotations_per_item,
                    "holdout_fraction": project.holdout_fraction},
        "counts": counts,
        "labels_last_hour": sum(annotators_last_hour.values()),
        "label_distribution": distribution,
        "model": model,
        "learning_curve": curve,
        "stopping": hint,
        "annotators": _annotators(summary, annotators_last_hour),
        "agreement": {"pairs": pairs, "krippendorff_alpha": summary.alpha,
                      "items_with_several_labels": summary.n_items,
                      # alpha is undefined then (no disagreement is expected); the page says why
                      "all_one_label": summary.all_one_label,
                      # on a big project, reused while new answers come in (AGREEMENT_REUSE_FACTOR)
                      "as_of": summary.as_of.isoformat(),
                      "age_seconds": (now - summary.as_of).total_seconds()},
        "disagreements_open": open_disagreement_count(session, project, summary.disputed),
        "suspicious_open": suspicious_count(session, project=project),
        "jobs": {"queued": queued, "running": running,
                 # a retrain waiting long means no worker is picking jobs up: the page says so
                 "queued_seconds": (now - queued_since).total_seconds() if queued_since else None,
                 # a running retrain's worker beats every few seconds (app/worker/runner.py): long
                 # silence means it died (QA: killed, the page said "retraining now" for good)
                 "running_silent_seconds": (now - last_beat).total_seconds() if running and last_beat else None,
                 "failed_recent": [{"id": j.id, "kind": j.kind, "error": j.error, "finished_at":
                                    j.finished_at.isoformat() if j.finished_at else None} for j in failed]},
        "diagnostics": diagnostics,
        "generated_at": now.isoformat(),
    }


def adjudicate(session: Session, *, project: Project, item: Item, user: User, label: str | None) -> None:
    """A lead decides an item's label (None clears the decision) and a retrain is queued, so the
    model learns the decision without waiting for the next batch."""
    from app.errors import InvalidInput
    from app.labeling.service import refresh_item
    from app.training.queue import queue_training, training_label_counts

    if label is not None and label not in project.labels:
        raise InvalidInput(f"{label!r} is not a label of this project")
    item.adjudicated_label = label
    item.adjudicated_by_id = user.id if label is not None else None
    refresh_item(session, project=project, item=item)
    session.flush()
    n_labels, n_classes = training_label_counts(session, project_id=project.id)
    if n_classes >= 2:
        queue_training(session, project=project, n_labels=n_labels)
