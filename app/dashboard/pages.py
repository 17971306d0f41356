"""The lead's dashboard, the disagreement queue, and exports (pages and JSON API)."""

import re
import tempfile
import unicodedata
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, status
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import ConfigDict, Field

from app.dashboard import export
from app.dashboard.service import adjudicate, disagreements, project_stats
from app.db import session_scope
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
from app.incoming import Incoming
from app.models import Item, Project
from app.templating import is_htmx, render

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False, dependencies=[Depends(csrf_protect)])
api_router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1", tags=["dashboard"])

EXPORTS = {"items.csv", "items.jsonl", "annotations.csv", "annotations.jsonl", "predictions.csv", "predictions.jsonl",
           "model.joblib", "items.zip"}


@router.get("/projects/{project_id}/dashboard")
def dashboard_page(request: Request, user: LeadPageUser, project: ProjectDep, session: ReadSessionDep):
    stats = project_stats(session, project)
    context = {"project": project, "stats": stats}
    block = "live" if is_htmx(request) else None  # the 5-second refresh swaps only the live part
    return render(request, "dashboard.html", context, block=block, user=user)


@router.get("/projects/{project_id}/disagreements")
def disagreements_page(request: Request, user: LeadPageUser, project: ProjectDep, session: ReadSessionDep):
    rows, total = disagreements(session, project)
    return render(request, "disagreements.html", {"project": project, "rows": rows, "total": total}, user=user)


def _item_of(session, project: Project, item_id: int) -> Item:
    item = session.get(Item, item_id)
    if item is None or item.project_id != project.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"There is no item {item_id} in this project.")
    return item


@router.post("/projects/{project_id}/items/{item_id}/adjudicate")
def adjudicate_page(request: Request, user: LeadPageUser, project: ProjectDep, session: SessionDep, item_id: DbId,
                    label: Annotated[str, Form(max_length=200)]):
    item = _item_of(session, project, item_id)
    adjudicate(session, project=project, item=item, user=user, label=label)
    if not is_htmx(request):  # the form on the item's own page
        return RedirectResponse(f"/projects/{project.id}/items/{item.id}", status_code=303)
    rows, total = disagreements(session, project)
    return render(request, "disagreements.html", {"project": project, "rows": rows, "total": total,
                                                  "notice": f"#{item.external_id} is now {label!r}."},
                  block="rows" if is_htmx(request) else None, user=user)


def attachment(project: Project, suffix: str) -> str:
    """A Content-Disposition naming the download after the project: `filename*` keeps its letters
    (RFC 6266: "Ünïcode" stays "Ünïcode"), and `filename`, for clients without it, is the nearest
    ASCII ("Unicode"). Either holds only word characters and dashes, so no quote, semicolon or line
    break of a project name reaches the header."""
    stem = re.sub(r"[^\w-]+", "-", project.name).strip("-_") or f"project-{project.id}"
    plain = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    plain = re.sub(r"[^A-Za-z0-9_-]+", "-", plain).strip("-_") or f"project-{project.id}"
    return f"attachment; filename=\"{plain}{suffix}\"; filename*=UTF-8''{quote(stem + suffix, safe='')}"


def _export_response(session, project: Project, name: str, slice_: str, include_holdout: bool) -> Response:
    if name not in EXPORTS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Unknown export {name!r}.")
    if name == "model.joblib":
        body = export.model_bundle(session, project, include_holdout=include_holdout)
        return Response(body, media_type="application/octet-stream",
                        headers={"Content-Disposition": attachment(project, "-model.joblib")})
    if name == "items.zip":
        return _items_zip_response(session, project, slice_)
    kind, fmt = name.split(".")
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson; charset=utf-8"

    def chunks():
        # The rows stream after the route has returned and the request's session is committed and
        # closed (a PostgreSQL server-side cursor dies with its transaction), so the stream reads
        # through a session of its own, closed when the stream ends or the client goes away.
        with session_scope(write=False) as own:
            own_project = own.get(Project, project.id)
            if kind == "items":
                columns = export.item_columns(own, own_project, slice_)
                rows = export.item_rows(own, own_project, slice_)
            elif kind == "predictions":  # every item, whatever the slice
                columns, rows = export.prediction_columns(own, own_project), export.prediction_rows(own, own_project)
            else:
                rows, columns = export.annotation_rows(own, own_project, slice_), export.ANNOTATION_COLUMNS
            yield from (export.as_csv(rows, columns) if fmt == "csv" else export.as_jsonl(rows))

    stream = chunks()
    # run the query (and raise its errors) before the response starts; an empty slice is an empty file
    first = next(stream, "")

    def body():
        yield first
        yield from stream

    return StreamingResponse(body(), media_type=media, headers={
        "Content-Disposition": attachment(project, f"-{kind}-{slice_}.{fmt}")})


def _items_zip_response(session, project: Project, slice_: str) -> Response:
    if project.kind != "image":
        raise HTTPException(status.HTTP_404_NOT_FOUND, "items.zip holds an image project's pictures; this project's "
                            "items export as items.csv or items.jsonl.")
    # on disk past 64 MB: the file is whole before the first byte goes out (a zip's directory comes
    # last), and a pool of photographs may be gigabytes
    spool = tempfile.SpooledTemporaryFile(max_size=64 * 2**20)  # noqa: SIM115 (closed by the stream)
    try:
        export.items_zip(session, project, slice_, spool)
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise

    def body():
        with spool:
            while chunk := spool.read(2**20):
                yield chunk

    return StreamingResponse(body(), media_type="application/zip", headers={
        "Content-Disposition": attachment(project, f"-items-{slice_}.zip"), "Content-Length": str(size)})


@router.get("/projects/{project_id}/export/{name}")
def export_page(user: LeadPageUser, project: ProjectDep, session: ReadSessionDep, name: str,
                slice: Annotated[str, Query(max_length=10)] = "all", include_holdout: bool = False):
    return _export_response(session, project, name, slice, include_holdout)


@api_router.get("/projects/{project_id}/stats")
def api_stats(project_id: DbId, user: ApiLead, session: ReadSessionDep, include_map: bool = False):
    """The dashboard's figures: counts, holdout accuracy with its interval per model version (learning
    curve), stopping hint, label balance, annotators' throughput and agreement, queues."""
    return project_stats(session, project_for(session, user, project_id), include_map=include_map)


@api_router.get("/projects/{project_id}/export/{name}")
def api_export(project_id: DbId, name: str, user: ApiLead, session: ReadSessionDep,
               slice: Annotated[str, Query(max_length=10)] = "all", include_holdout: bool = False):
    """items.csv / items.jsonl (one row per labelled item), items.zip (an image project's: items.csv
    and the pictures it names, which an upload reads back), annotations.csv / annotations.jsonl (one
    row per answer, with annotator, time, seconds spent, holdout flag and why it was served),
    predictions.csv / predictions.jsonl (the current model's label and probabilities for every item
    of the pool), or model.joblib (the current model and its metadata). `slice` (items and answers):
    all, active or holdout."""
    return _export_response(session, project_for(session, user, project_id), name, slice, include_holdout)


class AdjudicationCreate(Incoming):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=200)


@api_router.post("/items/{item_id}/adjudication", status_code=status.HTTP_204_NO_CONTENT)
def api_adjudicate(item_id: DbId, data: AdjudicationCreate, user: ApiLead, session: SessionDep):
    """Decide an item's label as a lead; training uses it over the annotators' majority."""
    item = session.get(Item, item_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"There is no item {item_id}.")
    project = project_for(session, user, item.project_id)
    adjudicate(session, project=project, item=item, user=user, label=data.label)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
