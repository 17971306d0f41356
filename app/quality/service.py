"""What leads see and do with label quality: the suspicious-label queue, reviews, the influence ranking.

Everything here reads what the worker stored (app/quality/jobs.py); nothing fits a model.
"""

from dataclasses import dataclass

from sqlalchemy import exists, func, insert, select
from sqlalchemy.orm import Session

from app.dashboard.service import adjudicate
from app.errors import Conflict, InvalidInput, NotFound
from app.labeling.service import refresh_item
from app.models import (
    Annotation,
    Item,
    ItemQuality,
    ItemState,
    Job,
    JobStatus,
    LabelReview,
    ModelVersion,
    Project,
    QualityReport,
    RankingEntry,
    User,
)
from app.pool.images import picture_of

ACTIONS = ("confirm", "relabel", "requeue")


@dataclass
class Status:
    """Which report the pages show, and how it relates to the model being served."""

    report: QualityReport | None
    report_version: int | None
    current_version: int | None
    computing: bool  # a quality job is queued or running
    verifying: Job | None
    last_error: str | None  # why the newest quality job failed, if it did

    @property
    def stale(self) -> bool:
        return self.report is not None and self.current_version is not None \
            and self.report_version != self.current_version


def status(session: Session, *, project: Project) -> Status:
    report = session.scalar(select(QualityReport).where(QualityReport.project_id == project.id)
                            .order_by(QualityReport.id.desc()).limit(1))
    report_version = session.scalar(select(ModelVersion.version).where(
        ModelVersion.id == report.model_version_id)) if report else None
    current_version = session.scalar(select(ModelVersion.version).where(
        ModelVersion.id == project.current_model_version_id)) if project.current_model_version_id else None
    jobs = session.scalars(select(Job).where(Job.project_id == project.id, Job.kind.in_(("quality", "verify")))
                           .order_by(Job.id.desc()).limit(10)).all()
    active = {JobStatus.queued, JobStatus.running}
    quality_jobs = [j for j in jobs if j.kind == "quality"]
    last_error = quality_jobs[0].error if quality_jobs and quality_jobs[0].status == JobStatus.failed else None
    verifying = next((j for j in jobs if j.kind == "verify" and j.status in active), None)
    return Status(report=report, report_version=report_version, current_version=current_version,
                  computing=any(j.status in active for j in quality_jobs), verifying=verifying,
                  last_error=last_error)


def _reviewed():
    """An item whose training label a lead has already reviewed is not listed again for that label."""
    return exists().where(LabelReview.item_id == Item.id, LabelReview.label == Item.final_label)


def _annotators(session: Session, item_ids: list[int]) -> dict[int, list[str]]:
    if not item_ids:
        return {}
    rows = session.execute(select(Annotation.item_id, User.username, Annotation.label)
                           .join(User, User.id == Annotation.user_id)
                           .where(Annotation.item_id.in_(item_ids), Annotation.skipped.is_(False))
                           .order_by(Annotation.created_at, Annotation.id)).all()
    names: dict[int, list[str]] = {}
    for item_id, username, label in rows:
        names.setdefault(item_id, []).append(f"{username}: {label}")
    return names


def _row(quality: ItemQuality, item: Item, labelled_by: list[str]) -> dict:
    payload = item.payload if isinstance(item.payload, dict) else {}
    text = payload.get("text")
    image = picture_of(payload)
    return {
        "item_id": item.id, "external_id": item.external_id, "text": text, "image": image,
        "features": None if text is not None or image is not None else payload.get("features"),
        "given_label": quality.given_label, "final_label": item.final_label, "score": quality.score,
        "flagged": quality.flagged, "p_given": quality.p_given, "suggested_label": quality.other_label,
        "p_suggested": quality.p_other, "loo_p_given": quality.loo_p_given,
        "self_influence": quality.self_influence, "holdout_influence": quality.holdout_influence,
        "holdout_loo": quality.holdout_loo, "labelled_by": labelled_by,
        "decided_by_lead": item.adjudicated_label is not None,
    }


def suspicious(session: Session, *, project: Project, report: QualityReport | None, limit: int = 100) -> list[dict]:
    """Training labels the report finds suspicious and nobody has reviewed, most suspicious first.

    A label changed since the report (relabelled, or a second opinion came in) is left out: its
    evidence was about the old label, and the next report judges the new one."""
    if report is None:
        return []
    rows = session.execute(
        select(ItemQuality, Item).join(Item, Item.id == ItemQuality.item_id)
        .where(ItemQuality.model_version_id == report.model_version_id,
               ItemQuality.flagged.is_(True),
               Item.final_label == ItemQuality.given_label, Item.is_holdout.is_(False), ~_reviewed())
        .order_by(ItemQuality.score.desc(), ItemQuality.item_id).limit(limit)).all()
    names = _annotators(session, [item.id for _, item in rows])
    return [_row(quality, item, names.get(item.id, [])) for quality, item in rows]


def suspicious_count(session: Session, *, project: Project) -> int:
    report = session.scalar(select(QualityReport).where(QualityReport.project_id == project.id)
                            .order_by(QualityReport.id.desc()).limit(1))
    if report is None:
        return 0
    return session.scalar(
        select(func.count()).select_from(ItemQuality).join(Item, Item.id == ItemQuality.item_id)
        .where(ItemQuality.model_version_id == report.model_version_id,
               ItemQuality.flagged.is_(True),
               Item.final_label == ItemQuality.given_label, Item.is_holdout.is_(False), ~_reviewed())) or 0


def most_influential(session: Session, *, report: QualityReport | None, per_side: int = 25) -> dict[str, list[dict]]:
    """Training items by their influence on the holdout loss: the most helpful and the most harmful."""
    result: dict[str, list[dict]] = {"helpful": [], "harmful": []}
    if report is None or report.n_holdout == 0:
        return result
    base = (select(ItemQuality, Item).join(Item, Item.id == ItemQuality.item_id)
            .where(ItemQuality.model_version_id == report.model_version_id))
    helpful = session.execute(base.where(ItemQuality.holdout_influence > 0)
                              .order_by(ItemQuality.holdout_influence.desc()).limit(per_side)).all()
    harmful = session.execute(base.where(ItemQuality.holdout_influence < 0)
                              .order_by(ItemQuality.holdout_influence).limit(per_side)).all()
    names = _annotators(session, [item.id for _, item in [*helpful, *harmful]])
    result["helpful"] = [_row(q, item, names.get(item.id, [])) for q, item in helpful]
    result["harmful"] = [_row(q, item, names.get(item.id, [])) for q, item in harmful]
    return result


def quality_row(session: Session, *, report: QualityReport | None, item: Item) -> dict | None:
    """One item's row of the report (None if it was not a training item then)."""
    if report is None:
        return None
    quality = session.get(ItemQuality, (report.model_version_id, item.id))
    return _row(quality, item, _annotators(session, [item.id]).get(item.id, [])) if quality else None


def _locked_item(session: Session, project: Project, item_id: int) -> Item:
    # FOR NO KEY UPDATE, as labelling does: a retrain's ranking inserts hold KEY SHARE locks on items.
    item = session.scalars(select(Item).where(Item.id == item_id).with_for_update(key_share=True)).first()
    if item is None or item.project_id != project.id:
        raise NotFound(f"There is no item {item_id} in this project.")
    return item


def review(session: Session, *, project: Project, item_id: int, user: User, action: str,
           label: str | None = None) -> tuple[LabelReview, bool]:
    """Record a lead's decision on a training label. Returns (review, created); repeating the same
    decision changes nothing and returns the first one.

    confirm: the label stays and is not listed again. relabel: the lead's label becomes the item's
    decided label and a retrain is queued. requeue: the item is opened for one more opinion from
    someone who has not labelled it, and goes to the head of the served ranking."""
    if action not in ACTIONS:
        raise InvalidInput(f"{action!r} is not a review action; use one of {', '.join(ACTIONS)}")
    item = _locked_item(session, project, item_id)
    if item.is_holdout:
        raise InvalidInput("holdout items are never trained on, so their labels are not reviewed here")
    current = item.final_label
    if current is None and action != "relabel":
        raise Conflict(f"item {item.external_id!r} has no training label to {action} "
                       "(its annotators disagree: decide it from the disagreements page)")

    def earlier(kind: str, about: str | None) -> LabelReview | None:
        return session.scalar(select(LabelReview).where(LabelReview.item_id == item.id, LabelReview.action == kind,
                                                        LabelReview.label == about)
                              .order_by(LabelReview.id.desc()).limit(1))

    if action == "relabel":
        if label is None or label not in project.labels:
            raise InvalidInput(f"{label!r} is not a label of this project; use one of "
                               + ", ".join(map(repr, project.labels)))
        previous = earlier("relabel", label)
        if previous is not None and item.adjudicated_label == label:
            return previous, False
        adjudicate(session, project=project, item=item, user=user, label=label)  # queues the retrain
    elif action == "confirm":
        previous = earlier("confirm", current)
        if previous is not None:
            return previous, False
        label = current
    else:
        if item.adjudicated_label is not None:
            raise Conflict(f"a lead has decided the label of {item.external_id!r}; another opinion would not "
                           "change it. Relabel it instead.")
        previous = earlier("requeue", current)
        if previous is not None and item.state == ItemState.open and item.extra_annotations > 0:
            return previous, False
        item.extra_annotations = (item.extra_annotations or 0) + 1
        refresh_item(session, project=project, item=item)
        session.flush()
        pin_second_opinions(session, project=project)
        label = current
    decision = LabelReview(project_id=project.id, item_id=item.id, user_id=user.id, action=action, label=label,
                           previous_label=current, model_version_id=project.current_model_version_id)
    session.add(decision)
    session.flush()
    return decision, True


def pin_second_opinions(session: Session, *, project: Project) -> int:
    """Put items waiting for a second opinion at the head of the served ranking (negative ranks, one per
    item), so the next annotator who has not labelled them gets them soon. Returns how many were added."""
    model_id = project.current_model_version_id
    if model_id is None:
        return 0
    waiting = set(session.scalars(select(Item.id).where(
        Item.project_id == project.id, Item.state == ItemState.open, Item.extra_annotations > 0,
        Item.is_holdout.is_(False))).all())
    if not waiting:
        return 0
    pinned = set(session.scalars(select(RankingEntry.item_id).where(
        RankingEntry.model_version_id == model_id, RankingEntry.rank < 0)).all())
    new = sorted(waiting - pinned)
    if new:
        session.execute(insert(RankingEntry), [{"model_version_id": model_id, "rank": -item_id, "item_id": item_id,
                                                "score": 1.0} for item_id in new])
    return len(new)


def reviews(session: Session, *, project: Project, limit: int = 20) -> list[dict]:
    """The latest review decisions, newest first."""
    rows = session.execute(select(LabelReview, Item.external_id, User.username)
                           .join(Item, Item.id == LabelReview.item_id)
                           .outerjoin(User, User.id == LabelReview.user_id)
                           .where(LabelReview.project_id == project.id)
                           .order_by(LabelReview.id.desc()).limit(limit)).all()
    return [{"id": r.id, "item_id": r.item_id, "external_id": external_id, "action": r.action, "label": r.label,
             "previous_label": r.previous_label, "by": username, "created_at": r.created_at} for r, external_id,
            username in rows]
