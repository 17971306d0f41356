"""Label quality for leads: the suspicious-label queue, the influence ranking, "why this prediction"
(pages, and the same under /api/v1)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from app.deps import (
    ApiLead,
    DbId,
    LeadPageUser,
    ProjectDep,
    ReadSessionDep,
    SessionDep,
    UnitOfWorkRoute,
    csrf_protect,
    project_for,
)
from app.models import Item, Job, JobStatus, Project
from app.quality import explain as explaining
from app.quality import service
from app.quality.jobs import VERIFY_MAX_LABELS, queue_verify
from app.quality.schemas import (
    ExplanationRead,
    InfluenceList,
    QualityItem,
    ReportRead,
    ReviewCreate,
    ReviewRead,
    SuspiciousList,
    VerifyRead,
)
from app.templating import is_htmx, render

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False, dependencies=[Depends(csrf_protect)])
api_router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1", tags=["label quality"])


def _item_of(session, project: Project, item_id: int) -> Item:
    item = session.get(Item, item_id)
    if item is None or item.project_id != project.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"There is no item {item_id} in this project.")
    return item


def _retrain_state(session, project: Project) -> str | None:
    states = set(session.scalars(select(Job.status).where(
        Job.project_id == project.id, Job.kind == "train", Job.status.in_([JobStatus.queued, JobStatus.running]))))
    return "running" if JobStatus.running in states else ("queued" if states else None)


def _status_context(session, project: Project) -> dict:
    return {"project": project, "st": service.status(session, project=project),
            "retrain": _retrain_state(session, project)}


# ---- pages -----------------------------------------------------------------------------------------

@router.get("/projects/{project_id}/quality")
def quality_page(request: Request, user: LeadPageUser, project: ProjectDep, session: ReadSessionDep,
                 loaded: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None):
    context = _status_context(session, project)
    if is_htmx(request) and request.headers.get("hx-target") == "quality-status":  # the 3-second refresh
        context["loaded_version"] = loaded  # the report version the page shows, to say when a newer one is ready
        return render(request, "quality/labels.html", context, block="status", user=user)
    context["rows"] = service.suspicious(session, project=project, report=context["st"].report)
    context["recent"] = service.reviews(session, project=project)
    return render(request, "quality/labels.html", context, user=user)


@router.post("/projects/{project_id}/quality/items/{item_id}/review")
def review_page(request: Request, user: LeadPageUser, project: ProjectDep, session: SessionDep, item_id: DbId,
                action: Annotated[str, Form(max_length=20)], label: Annotated[str | None, Form(max_length=200)] = None):
    decision, _ = service.review(session, project=project, item_id=item_id, user=user, action=action,
                                 label=label or None)
    if not is_htmx(request):
        return RedirectResponse(f"/projects/{project.id}/quality#reviewed-{item_id}", status_code=303)
    item = session.get(Item, item_id)
    return render(request, "quality/_reviewed.html", {"project": project, "item": item, "decision": decision},
                  user=user)


@router.get("/projects/{project_id}/influence")
def influence_page(request: Request, user: LeadPageUser, project: ProjectDep, session: ReadSessionDep):
    context = _status_context(session, project)
    context["sides"] = service.most_influential(session, report=context["st"].report)
    context["verify_max"] = VERIFY_MAX_LABELS
    if is_htmx(request) and request.headers.get("hx-target") == "influence":  # polling while a check runs
        return render(request, "quality/influence.html", context, block="influence", user=user)
    return render(request, "quality/influence.html", context, user=user)


@router.post("/projects/{project_id}/influence/verify")
def verify_page(request: Request, user: LeadPageUser, project: ProjectDep, session: SessionDep):
    st = service.status(session, project=project)
    if st.report is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "There is no label-quality report to check yet.")
    queue_verify(session, project=project, report=st.report)
    return RedirectResponse(f"/projects/{project.id}/influence", status_code=303)


@router.get("/projects/{project_id}/items/{item_id}/why")
def why_page(request: Request, user: LeadPageUser, project: ProjectDep, session: ReadSessionDep, item_id: DbId):
    item = _item_of(session, project, item_id)
    why = explaining.explain(session, project=project, item=item)
    context = {"project": project, "item": item, "why": why}
    return render(request, "quality/why.html", context, block="panel" if is_htmx(request) else None, user=user)


# ---- JSON API ----------------------------------------------------------------------------------------

def _report_read(session, project: Project) -> tuple[ReportRead, service.Status]:
    st = service.status(session, project=project)
    r = st.report
    return ReportRead(
        model_version=st.report_version, current_model_version=st.current_version, stale=st.stale,
        computing=st.computing, created_at=r.created_at if r else None, seconds=r.seconds if r else None,
        n_items=r.n_items if r else 0, n_holdout=r.n_holdout if r else 0, approx=r.approx if r else None,
        details=r.details if r else {}, verify=r.verify if r else None, last_error=st.last_error), st


@api_router.get("/projects/{project_id}/quality", response_model=SuspiciousList)
def api_suspicious(project_id: DbId, user: ApiLead, session: ReadSessionDep,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    """Suspicious training labels nobody has reviewed, most suspicious first, with their evidence."""
    project = project_for(session, user, project_id)
    report, st = _report_read(session, project)
    rows = service.suspicious(session, project=project, report=st.report, limit=limit)
    return SuspiciousList(report=report, items=[QualityItem(**row) for row in rows])


@api_router.post("/projects/{project_id}/quality/reviews", response_model=ReviewRead,
                 status_code=status.HTTP_201_CREATED,
                 responses={200: {"description": "The same decision was already recorded; nothing changed"}})
def api_review(project_id: DbId, data: ReviewCreate, user: ApiLead, session: SessionDep, response: Response):
    """confirm (keep the label), relabel (the lead's label is used for training; a retrain is queued) or
    requeue (one more opinion from someone who has not labelled the item)."""
    project = project_for(session, user, project_id)
    if data.action == "relabel" and data.label is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "relabel needs the new label")
    decision, created = service.review(session, project=project, item_id=data.item_id, user=user,
                                       action=data.action, label=data.label)
    if not created:
        response.status_code = status.HTTP_200_OK
    item = session.get(Item, data.item_id)
    return ReviewRead(id=decision.id, item_id=item.id, action=decision.action, label=decision.label,
                      previous_label=decision.previous_label, final_label=item.final_label, item_state=item.state,
                      retrain_queued=_retrain_state(session, project) is not None, created_at=decision.created_at)


@api_router.get("/projects/{project_id}/influence", response_model=InfluenceList)
def api_influence(project_id: DbId, user: ApiLead, session: ReadSessionDep,
                  per_side: Annotated[int, Query(ge=1, le=200)] = 25):
    """Training items ranked by their influence on the holdout loss: the most helpful and most harmful."""
    project = project_for(session, user, project_id)
    report, st = _report_read(session, project)
    sides = service.most_influential(session, report=st.report, per_side=per_side)
    return InfluenceList(report=report, verifying=st.verifying is not None,
                         helpful=[QualityItem(**r) for r in sides["helpful"]],
                         harmful=[QualityItem(**r) for r in sides["harmful"]])


@api_router.post("/projects/{project_id}/influence/verify", response_model=VerifyRead,
                 status_code=status.HTTP_202_ACCEPTED)
def api_verify(project_id: DbId, user: ApiLead, session: SessionDep):
    """Refit exactly without each of the most influential items (projects up to 2,000 training labels);
    the results appear in the influence list as holdout_loo."""
    project = project_for(session, user, project_id)
    st = service.status(session, project=project)
    if st.report is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "There is no label-quality report to check yet.")
    job = queue_verify(session, project=project, report=st.report)
    return VerifyRead(job_id=job.id, status=job.status, model_version=st.report_version)


@api_router.get("/projects/{project_id}/items/{item_id}/explanation", response_model=ExplanationRead)
def api_explanation(project_id: DbId, item_id: DbId, user: ApiLead, session: ReadSessionDep):
    """The current model's probabilities for the item and the training labels that helped and harmed
    its prediction most (influence on its loss at its given label, or the predicted one if unlabelled)."""
    project = project_for(session, user, project_id)
    return ExplanationRead(**explaining.explain(session, project=project, item=_item_of(session, project, item_id)))
