"""Project pages: the list, creating a project, its overview and pool upload."""

import json
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile, status
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse
from pydantic import Field, ValidationError

from app.al import strategy_choices
from app.al.batch import BATCH_MODES
from app.config import get_settings
from app.deps import (
    AdminPageUser,
    DbId,
    LeadPageUser,
    PageUser,
    ProjectDep,
    ReadSessionDep,
    SessionDep,
    UnitOfWorkRoute,
    csrf_protect,
    project_for,
)
from app.errors import Conflict, InvalidInput
from app.incoming import Incoming
from app.labeling.service import current_model
from app.models import Item
from app.pool.images import DIGEST_PATTERN, REDUCED_SIDES, image_response
from app.pool.parsing import column_list, labels_in_column
from app.pool.preview import HEAD_BYTES, PARQUET_PREVIEW_BYTES, preview_pool
from app.pool.progress import ImportProgress, read_progress, valid_token
from app.pool.service import ImportRefused, import_pool
from app.projects.deletion import mark_deleted
from app.projects.items import FILTERS, browse, delete_item, history
from app.projects.labels import change_labels
from app.projects.membership import members_of
from app.projects.schemas import LabelsUpdate, ProjectCreate, ProjectUpdate, clean_labels
from app.projects.service import (
    create_project,
    list_projects,
    model_versions,
    project_counts,
    recent_jobs,
    update_project,
)
from app.simulations.service import MIN_LABELS, curve_svg_paths, list_simulations, queue_simulation
from app.templating import is_htmx, render
from app.users.service import list_users

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False, dependencies=[Depends(csrf_protect)])


@router.get("/projects")
def projects_page(request: Request, user: PageUser, session: ReadSessionDep,
                  deleted: Annotated[str, Query(max_length=500)] = ""):
    projects = list_projects(session, user=user)
    counts = project_counts(session, project_ids=[p.id for p in projects])
    return render(request, "projects/list.html", {"projects": projects, "counts": counts, "deleted": deleted},
                  user=user)


def _form_defaults() -> dict:
    return {"name": "", "kind": "text", "labels": "", "strategy": "auto", "batch_size": 10,
            "annotations_per_item": 1, "description": "", "batch_mode": "top_k", "strategy_params": "",
            "holdout_percent": 10, "members": [], "show_model_guess": False}


_FIELD_NAMES = {"name": "Name", "kind": "Data kind", "labels": "Labels", "strategy": "Query strategy",
                "batch_size": "Batch size", "annotations_per_item": "Annotations per item",
                "holdout_fraction": "Holdout share", "description": "Description", "members": "Members",
                "strategy_params": "Strategy parameters", "show_model_guess": "Model's guess on cards"}


def _sentence(error: dict) -> str:
    """A form problem as a sentence for the person filling it in, not pydantic's wording."""
    field = str(error["loc"][0]) if error["loc"] else "form"
    if field == "name" and error["type"] == "string_too_short":
        return "Name: the name is empty."
    if field == "labels" and error["type"] == "too_short":
        return "Give at least two labels, separated by commas."
    if field == "labels" and error["type"] == "too_long":
        return "A project takes at most 100 labels."
    if error["type"] in ("greater_than_equal", "less_than_equal", "int_parsing", "float_parsing"):
        bounds = {"batch_size": "1 to 10,000", "annotations_per_item": "1 to 20", "holdout_fraction": "0 to 50%"}
        if field in bounds:
            return f"{_FIELD_NAMES[field]}: give a number from {bounds[field]}."
    message = error["msg"].removeprefix("Value error, ")
    if message.lower().startswith(field):  # "labels repeat: a", not "Labels: labels repeat: a"
        return message[:1].upper() + message[1:] + "."
    return f"{_FIELD_NAMES.get(field, field)}: {message[:1].lower() + message[1:]}."


def _form_context(form: dict, errors: list[str], people: list) -> dict:
    return {"form": form, "errors": errors, "strategies": strategy_choices(), "batch_modes": BATCH_MODES,
            "people": people}


def _people(session) -> list:
    """Who can be made a member in the form: active leads and annotators (admins see every project)."""
    return [u for u in list_users(session) if u.is_active and u.role != "admin"]


@router.get("/projects/new")
def new_project_page(request: Request, user: AdminPageUser, session: ReadSessionDep):
    return render(request, "projects/new.html", _form_context(_form_defaults(), [], _people(session)), user=user)


def _strategy_params(text: str, batch_mode: str) -> dict | str:
    """The form's strategy parameters as a dict, or the sentence saying why they are not one."""
    try:
        params = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        where = f" (at character {exc.pos + 1})" if isinstance(exc, json.JSONDecodeError) else ""
        return f"The strategy parameters are not valid JSON{where}; write them like {{\"n_members\": 7}}."
    if not isinstance(params, dict):
        return "The strategy parameters must be a JSON object, like {\"n_members\": 7}."
    if batch_mode != "top_k":
        params["batch_mode"] = batch_mode
    return params


def _holdout_fraction(percent: str) -> float | str:
    try:
        return float(percent) / 100 if percent.strip() else 0.1
    except ValueError:
        return percent  # refused by the schema, with the form's own sentence


def _validated(build, params: dict | str):
    """`build(strategy_params)` (a ProjectCreate or ProjectUpdate) and every problem of the form at
    once: parameters that are not JSON do not hide a bad batch size, nor the other way round."""
    errors = [params] if isinstance(params, str) else []
    try:
        data = build({} if errors else params)
    except ValidationError as exc:
        errors += [_sentence(e) for e in exc.errors()]
    return (None if errors else data), errors


class SettingsFields(Incoming):
    """The settings form as typed: strings, so that a bad number comes back beside the form as a
    sentence instead of as a validation page."""

    # every field has a default: an empty one is sent as missing, and must get the schema's sentence.
    # The lengths here only bound what is read; ProjectCreate's tighter ones come back as sentences
    # beside the form (QA: a 20-digit batch size, past a length of 10 here, lost the whole form).
    name: str = Field(default="", max_length=2000)
    strategy: str = Field(default="auto", max_length=50)
    description: str = Field(default="", max_length=5000)
    batch_mode: str = Field(default="top_k", max_length=20)
    strategy_params: str = Field(default="", max_length=5000)
    batch_size: str = Field(default="10", max_length=100)
    annotations_per_item: str = Field(default="1", max_length=100)
    holdout_percent: str = Field(default="10", max_length=100)
    show_model_guess: bool = False

    def project_values(self, strategy_params: dict) -> dict:
        """What ProjectCreate and ProjectUpdate take from these fields (they validate it)."""
        return {"name": self.name, "description": self.description, "strategy": self.strategy,
                "strategy_params": strategy_params, "batch_size": self.batch_size,
                "annotations_per_item": self.annotations_per_item,
                "holdout_fraction": _holdout_fraction(self.holdout_percent), "show_model_guess": self.show_model_guess}


class NewProjectFields(SettingsFields):
    kind: str = Field(default="", max_length=20)
    labels: str = Field(default="", max_length=20_000)
    members: list[str] = Field(default_factory=list, max_length=1000)


def _label_set_problems(labels: list[str]) -> list[str]:
    """Why labels read from a file cannot be this form's labels: what the field cannot hold (a comma
    parts labels there, a line break is lost), and what a project refuses (app/projects/schemas.py),
    said now rather than at Create project (QA)."""
    problems = []
    for signs, what in ((",", "a comma, which this field puts between labels"),
                        ("\n\r", "a line break, which this field cannot hold")):
        holding = [label for label in labels if any(sign in label for sign in signs)]
        if holding:
            shown = ", ".join(repr(label if len(label) <= 40 else label[:37] + "...") for label in holding[:5])
            problems.append(f"{shown} hold{'s' if len(holding) == 1 else ''} {what}: create the project through the "
                            "API (labels as a JSON list), or change them in the file")
    try:
        clean_labels(labels)
    except ValueError as exc:
        problems.append(f"a project cannot take these labels: {exc}")
    return problems


@router.post("/projects/new/labels-from-file")
def labels_from_file(request: Request, user: AdminPageUser, file: Annotated[UploadFile | None, File()] = None,
                     column: Annotated[str, Form(max_length=200)] = "label",
                     kind: Annotated[str, Form(max_length=20)] = "text"):
    """What the new-project form's labels field gets from a column of a file (UX.md: labels typed or
    taken from a column): the labels, most frequent first, as a new value for the field; or why
    there are none, leaving what was typed there alone. Reads the whole file; imports nothing."""
    column = column.strip() or "label"
    kind = kind if kind in ("text", "tabular", "image") else "text"  # (a .zip of pictures is read as image)
    filename = file.filename if file is not None else None
    if not filename:
        found, errors = {}, ["choose the file first (the field beside Column)"]
    else:
        found, errors = labels_in_column(file.file, filename, column, kind=kind,
                                         max_decoded_bytes=get_settings().max_upload_bytes)
    if found and not errors:
        errors = _label_set_problems(list(found))
    if not found and not errors:
        errors = [f"column {column!r} is empty in every row"]
    ordered = sorted(found.items(), key=lambda pair: -pair[1])  # (stable: ties keep the file's order)
    source = {"filename": filename or "no file",
              "column": repr(column), "errors": errors, "found": ordered}
    return render(request, "projects/_labels_read.html",
                  {"source": source, "form": {"labels": ", ".join(label for label, _ in ordered)}},
                  user=user, status_code=422 if errors else 200)


@router.post("/projects/new")
def new_project(request: Request, user: AdminPageUser, session: SessionDep,
                fields: Annotated[NewProjectFields, Form()]):
    form, people = fields.model_dump(), _people(session)

    def refused(errors: list[str]):
        return render(request, "projects/new.html", _form_context(form, errors, people), user=user, status_code=422)

    label_list = [part.strip() for part in fields.labels.replace("\n", ",").split(",") if part.strip()]
    data, errors = _validated(lambda params: ProjectCreate(kind=fields.kind, labels=label_list, members=fields.members,
                                                           **fields.project_values(params)),
                              _strategy_params(fields.strategy_params, fields.batch_mode))
    if errors:
        return refused(errors)
    try:
        project = create_project(session, data=data, created_by=user)
    except InvalidInput as exc:
        return refused([exc.message])
    return RedirectResponse(f"/projects/{project.id}", status_code=303)


def _settings_form(project) -> dict:
    params = dict(project.strategy_params or {})
    batch_mode = params.pop("batch_mode", "top_k")
    return {"name": project.name, "description": project.description, "strategy": project.strategy,
            "batch_mode": batch_mode, "strategy_params": json.dumps(params) if params else "",
            "batch_size": project.batch_size, "annotations_per_item": project.annotations_per_item,
            "holdout_percent": f"{100 * project.holdout_fraction:g}", "show_model_guess": project.show_model_guess}


@router.get("/projects/{project_id}/settings")
def settings_page(request: Request, user: AdminPageUser, project: ProjectDep):
    return render(request, "projects/new.html", {**_form_context(_settings_form(project), [], []), "project": project},
                  user=user)


@router.post("/projects/{project_id}/settings")
def save_settings(request: Request, user: AdminPageUser, project: ProjectDep, session: SessionDep,
                  fields: Annotated[SettingsFields, Form()]):
    form = fields.model_dump()

    def answer(errors: list[str], notice: str | None = None):
        return render(request, "projects/new.html", {**_form_context(form, errors, []), "project": project,
                                                     "notice": notice},
                      user=user, status_code=422 if errors else 200)

    data, errors = _validated(lambda params: ProjectUpdate(**fields.project_values(params)),
                              _strategy_params(fields.strategy_params, fields.batch_mode))
    if errors:
        return answer(errors)
    try:
        with session.begin_nested():  # a refused change leaves the project as it was
            changed = update_project(session, project=project, data=data)
    except InvalidInput as exc:
        return answer([exc.message])
    names = [_FIELD_NAMES.get(key, key.replace("_", " ").capitalize()) for key in changed]
    return answer([], notice=f"Saved: {', '.join(names)}." if names else "Nothing changed.")


class LabelFields(Incoming):
    """The labels form: each current label beside its name as edited (empty: remove it), and labels to add."""

    current: list[str] = Field(default_factory=list, max_length=100)
    renamed: list[str] = Field(default_factory=list, max_length=100)
    added: str = Field(default="", max_length=20_000)


@router.post("/projects/{project_id}/labels")
def change_labels_page(request: Request, user: AdminPageUser, project: ProjectDep, session: SessionDep,
                       fields: Annotated[LabelFields, Form()]):
    def answer(error: str | None = None, notice: str | None = None, status_code: int = 422):
        return render(request, "projects/new.html",
                      {**_form_context(_settings_form(project), [], []), "project": project,
                       "labels_error": error, "labels_notice": notice},
                      user=user, status_code=status_code if error else 200)

    if fields.current != list(project.labels) or len(fields.renamed) != len(fields.current):
        return answer("The labels were not changed: they changed in the meantime (another tab?). "
                      "Here they are as they are now.")
    names = [name.strip() for name in fields.renamed]
    added = [part.strip() for part in fields.added.replace("\n", ",").split(",") if part.strip()]
    renames = {old: new for old, new in zip(fields.current, names, strict=True) if new and new != old}
    seen: list[str] = []
    for name in [*(n for n in names if n), *added]:
        if name not in seen:  # a rename onto another label's name merges: the name is listed once
            seen.append(name)
    try:
        data = LabelsUpdate(labels=seen, renames=renames)
    except ValidationError as exc:
        return answer("The labels were not changed: " + "; ".join(_sentence(e) for e in exc.errors()))
    try:
        with session.begin_nested():  # a refused change leaves every answer as it was
            change = change_labels(session, project=project, labels=data.labels, renames=data.renames)
    except (InvalidInput, Conflict) as exc:
        return answer(f"The labels were not changed. {exc.message}", status_code=exc.status_code)
    return answer(notice=change.sentence())


@router.post("/projects/{project_id}/delete")
def delete_project_page(request: Request, user: AdminPageUser, project: ProjectDep, session: SessionDep,
                        confirm_name: Annotated[str, Form(max_length=500)] = ""):
    """Delete a project for good, once its name is typed in (as GitHub and Label Studio ask)."""
    if confirm_name.strip() != project.name.strip():
        return render(request, "projects/new.html",
                      {**_form_context(_settings_form(project), [], []), "project": project,
                       "delete_error": "The project was not deleted: type its name exactly as it is shown."},
                      user=user, status_code=422)
    mark_deleted(session, project=project)
    return RedirectResponse(f"/projects?deleted={quote(project.name)}", status_code=303)


@router.get("/projects/{project_id}")
def project_page(request: Request, user: LeadPageUser, project: ProjectDep, session: SessionDep):
    context = _project_context(session, project, user)
    if is_htmx(request) and request.headers.get("hx-target") == "status":  # the 5-second refresh
        return render(request, "projects/detail.html", context, block="status", user=user)
    return render(request, "projects/detail.html", context, user=user)


def _project_context(session, project, user, **extra) -> dict:
    counts = project_counts(session, project_ids=[project.id])[project.id]
    simulations = list_simulations(session, project_id=project.id)
    context = {
        "project": project,
        "counts": counts,
        "models": model_versions(session, project_id=project.id, limit=20),
        "jobs": recent_jobs(session, project_id=project.id, kinds=("train", "cold_start", "simulate")),
        "current": current_model(session, project),
        "simulations": simulations,
        "simulation_charts": {s.id: curve_svg_paths(s.result) for s in simulations if s.result},
        "strategies": strategy_choices(),
        "min_simulation_labels": MIN_LABELS,
        "members": members_of(session, project_id=project.id),
        "simulation_form": {"strategies": ["random", project.strategy], "repeats": "3", "budget": "300"},
        "simulation_errors": [],
        **extra,
    }
    if user.role == "admin":
        member_ids = {m.id for m in context["members"]}
        context["candidates"] = [u for u in list_users(session)
                                 if u.id not in member_ids and u.role != "admin" and u.is_active]
    return context


@router.post("/projects/{project_id}/upload")
def upload_pool(request: Request, user: AdminPageUser, project: ProjectDep, session: SessionDep,
                file: Annotated[UploadFile, File()],
                text_column: Annotated[str, Form(max_length=200)] = "",
                id_column: Annotated[str, Form(max_length=200)] = "",
                feature_columns: Annotated[str, Form(max_length=20_000)] = "",
                label_column: Annotated[str, Form(max_length=200)] = "",
                embedding_column: Annotated[str, Form(max_length=200)] = "",
                progress_token: Annotated[str, Form(max_length=64)] = ""):
    features = column_list(feature_columns)
    # The page polls upload_progress with this token while the server reads the file.
    progress = (ImportProgress(project.id, progress_token, total_bytes=file.size, filename=file.filename)
                if valid_token(progress_token) else None)
    try:
        result = import_pool(session, project=project, fileobj=file.file, filename=file.filename,
                             text_column=text_column or None, id_column=id_column or None,
                             feature_columns=features, label_column=label_column.strip() or None,
                             embedding_column=embedding_column.strip() or None, imported_by=user,
                             on_progress=progress.update if progress is not None else None)
    except ImportRefused as exc:
        if progress is not None:
            progress.finish(ok=False, rows=0)
        return render(request, "projects/upload_result.html",
                      {"errors": exc.errors, "filename": file.filename, "result": None},
                      user=user, status_code=422)
    if progress is not None:
        progress.finish(ok=True, rows=result.imported)
    counts = project_counts(session, project_ids=[project.id])[project.id]
    return render(request, "projects/upload_result.html",
                  {"errors": [], "filename": file.filename, "result": result, "project": project,
                   "all_done": counts.n_items == counts.n_done}, user=user)


@router.post("/projects/{project_id}/upload-preview")
def upload_preview(request: Request, user: AdminPageUser, project: ProjectDep,
                   head: Annotated[UploadFile, File()],
                   filename: Annotated[str, Form(max_length=500)],
                   partial: Annotated[bool, Form()] = False,
                   text_column: Annotated[str, Form(max_length=200)] = "",
                   id_column: Annotated[str, Form(max_length=200)] = "",
                   feature_columns: Annotated[str, Form(max_length=20_000)] = "",
                   label_column: Annotated[str, Form(max_length=200)] = "",
                   embedding_column: Annotated[str, Form(max_length=200)] = ""):
    """The first rows of a chosen file and the part each column would play, before anything is imported."""
    limit = PARQUET_PREVIEW_BYTES if filename.lower().endswith((".parquet", ".pq", ".zip")) else HEAD_BYTES
    data = head.file.read(limit + 1)
    features = column_list(feature_columns)
    preview = preview_pool(project, data[:limit], filename=filename, partial=partial or len(data) > limit,
                           text_column=text_column.strip() or None, id_column=id_column.strip() or None,
                           feature_columns=features, label_column=label_column.strip() or None,
                           embedding_column=embedding_column.strip() or None)
    return render(request, "projects/_upload_preview.html", {"preview": preview, "filename": filename}, user=user)


@router.get("/projects/{project_id}/upload-progress/{token}")
def upload_progress(request: Request, user: AdminPageUser, session: ReadSessionDep, project_id: DbId,
                    token: Annotated[str, PathParam(max_length=64)]):
    """How far the server has got with an upload still in flight (polled by the upload form).

    A read session, not the project dependency's write session: on SQLite that one would queue
    behind the import's own request for as long as the import runs."""
    project = project_for(session, user, project_id)
    if not valid_token(token):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "There is no such upload.")
    return render(request, "projects/_upload_progress.html",
                  {"project": project, "progress": read_progress(project.id, token)}, user=user)


@router.post("/projects/{project_id}/simulations")
def start_simulation(request: Request, user: LeadPageUser, project: ProjectDep, session: SessionDep,
                     strategies: Annotated[list[str] | None, Form(max_length=30)] = None,
                     repeats: Annotated[str, Form(max_length=10)] = "3",
                     budget: Annotated[str, Form(max_length=10)] = "300"):
    # problems go back to the form on the project's page, with what was ticked and typed kept
    form = {"strategies": strategies or [], "repeats": repeats, "budget": budget}
    errors = [] if strategies else ["Tick at least one strategy to compare."]
    if not repeats.strip().isdigit() or not 1 <= int(repeats) <= 10:
        errors.append("Repeats: give a whole number from 1 to 10.")
    if not budget.strip().isdigit() or not 10 <= int(budget) <= 5000:
        errors.append("Labels to simulate up to: give a whole number from 10 to 5,000.")
    if not errors:
        try:
            queue_simulation(session, project=project, user=user, strategies=strategies, repeats=int(repeats),
                             budget=int(budget))
            return RedirectResponse(f"/projects/{project.id}#simulations", status_code=303)
        except InvalidInput as exc:
            errors.append(exc.message[:1].upper() + exc.message[1:] + ".")
    return render(request, "projects/detail.html",
                  _project_context(session, project, user, simulation_form=form, simulation_errors=errors),
                  user=user, status_code=422)


@router.get("/projects/{project_id}/items")
def items_page(request: Request, user: LeadPageUser, project: ProjectDep, session: ReadSessionDep,
               after: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
               show: Annotated[str, Query(max_length=20)] = "all",
               label: Annotated[str | None, Query(max_length=200)] = None,
               deleted: Annotated[str | None, Query(max_length=200)] = None,
               answers: Annotated[int, Query(ge=0, le=10_000)] = 0):
    if show not in FILTERS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"Unknown filter {show!r}.")
    page = browse(session, project=project, after=after, show=show, label=label or None)
    return render(request, "projects/items.html", {"project": project, "page": page, "show": show,
                                                   "label": label or "", "filters": FILTERS,
                                                   "deleted": deleted, "deleted_answers": answers}, user=user)


@router.post("/projects/{project_id}/items/{item_id}/delete")
def delete_item_page(request: Request, user: AdminPageUser, project: ProjectDep, session: SessionDep, item_id: DbId):
    item = session.get(Item, item_id)
    if item is None or item.project_id != project.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"There is no item {item_id} in this project.")
    name = item.external_id
    answers = delete_item(session, project=project, item=item)
    return RedirectResponse(f"/projects/{project.id}/items?deleted={quote(name)}&answers={answers}", status_code=303)


@router.get("/projects/{project_id}/images/{digest}")
def item_image(project: ProjectDep, session: ReadSessionDep,
               digest: Annotated[str, PathParam(pattern=DIGEST_PATTERN)],
               w: Annotated[int | None, Query()] = None):
    """An image project's picture, for anyone who works on the project (annotators included); `w`
    (one of REDUCED_SIDES) asks for a copy no larger than w x w, for lists."""
    if w is not None and w not in REDUCED_SIDES:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"A reduced copy is {' or '.join(map(str, REDUCED_SIDES))} pixels wide.")
    response = image_response(session, project.id, digest, max_side=w)
    if response is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "There is no such image in this project.")
    return response


@router.get("/projects/{project_id}/items/{item_id}")
def item_page(request: Request, user: LeadPageUser, project: ProjectDep, session: ReadSessionDep, item_id: DbId):
    item = session.get(Item, item_id)
    if item is None or item.project_id != project.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"There is no item {item_id} in this project.")
    return render(request, "projects/item.html", {"project": project, "item": item,
                                                  "answers": history(session, item=item)}, user=user)
