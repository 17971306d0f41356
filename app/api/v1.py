"""The JSON API under /api/v1, authenticated with bearer tokens."""

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Query, Response, UploadFile, status
from pydantic import ConfigDict, Field

from app.api.schemas import (
    AnnotationCreate,
    AnnotationRead,
    ImportRead,
    JobRead,
    MemberAdd,
    ModelVersionRead,
    ServedItem,
    SimulationCreate,
    SimulationRead,
    UserRead,
    WhyRead,
)
from app.deps import (
    ApiAdmin,
    ApiLead,
    ApiUser,
    DbId,
    ReadSessionDep,
    SessionDep,
    UnitOfWorkRoute,
    project_for,
    visible_project,
)
from app.errors import as_sentence
from app.incoming import Incoming
from app.labeling import service as labeling
from app.models import Annotation, Item, Project, Simulation, User
from app.pool.images import image_response, picture_of
from app.pool.parsing import column_list
from app.pool.service import import_pool
from app.projects.deletion import mark_deleted
from app.projects.items import FILTERS, browse, delete_item
from app.projects.labels import change_labels
from app.projects.membership import add_member, members_of, remove_member
from app.projects.schemas import LabelsUpdate, ProjectCreate, ProjectSummary, ProjectUpdate
from app.projects.service import (
    create_project,
    list_projects,
    model_versions,
    project_counts,
    recent_jobs,
    update_project,
)
from app.simulations.service import list_simulations, queue_simulation
from app.users.service import UserExists, create_user, list_users, set_active, set_role, user_named

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1", tags=["api"])


def _project(session, project_id: int, user: User) -> Project:
    return project_for(session, user, project_id)


def _summary(session, project: Project) -> ProjectSummary:
    counts = project_counts(session, project_ids=[project.id])[project.id]
    model = labeling.current_model(session, project)
    return ProjectSummary.model_validate({
        **{k: getattr(project, k) for k in ProjectSummary.model_fields if hasattr(project, k)},
        "n_items": counts.n_items, "n_done": counts.n_done, "n_done_tied": counts.n_done_tied,
        "n_training_labels": counts.n_training_labels,
        "current_model_version": model.version if model else None})


def _annotation_read(a: Annotation) -> AnnotationRead:
    return AnnotationRead(id=a.id, item_id=a.item_id, project_id=a.project_id, user_id=a.user_id, label=a.label,
                          skipped=a.skipped, created_at=a.created_at, seconds_spent=a.seconds_spent,
                          why=WhyRead(source=a.source, strategy=a.strategy, score=a.score,
                                      model_version=a.model_version))


@router.get("/me", response_model=UserRead)
def me(user: ApiUser):
    return user


@router.post("/projects", response_model=ProjectSummary, status_code=status.HTTP_201_CREATED)
def api_create_project(data: ProjectCreate, user: ApiAdmin, session: SessionDep):
    project = create_project(session, data=data, created_by=user)
    return _summary(session, project)


@router.get("/projects", response_model=list[ProjectSummary])
def api_list_projects(user: ApiUser, session: ReadSessionDep):
    return [_summary(session, p) for p in list_projects(session, user=user)]


@router.get("/projects/{project_id}", response_model=ProjectSummary)
def api_get_project(project_id: DbId, user: ApiUser, session: ReadSessionDep):
    return _summary(session, _project(session, project_id, user))


@router.patch("/projects/{project_id}", response_model=ProjectSummary)
def api_update_project(project_id: DbId, data: ProjectUpdate, user: ApiAdmin, session: SessionDep):
    """Change a project's name, description, strategy (and its settings), batch size, annotations per
    item or holdout share (for items imported from then on). A new strategy re-ranks the pool at once."""
    project = _project(session, project_id, user)
    update_project(session, project=project, data=data)
    return _summary(session, project)


@router.put("/projects/{project_id}/labels", response_model=ProjectSummary)
def api_change_labels(project_id: DbId, data: LabelsUpdate, user: ApiAdmin, session: SessionDep):
    """Give a project a new label list: add labels, rename them (`renames`: old -> new, carried into
    every answer; onto a label that stays, the two merge), reorder them, or remove one nobody has given
    (409 otherwise). A retrain follows, so the model learns the new names."""
    project = _project(session, project_id, user)
    change_labels(session, project=project, labels=data.labels, renames=data.renames)
    return _summary(session, project)


@router.delete("/projects/{project_id}", status_code=status.HTTP_204_NO_CONTENT)
def api_delete_project(project_id: DbId, user: ApiAdmin, session: SessionDep):
    """Delete a project for good: from now on it answers 404 to everyone, and the worker removes its
    items, answers and models in the background."""
    mark_deleted(session, project=_project(session, project_id, user))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/projects/{project_id}/items", response_model=ImportRead, status_code=status.HTTP_201_CREATED)
def api_import_items(project_id: DbId, user: ApiAdmin, session: SessionDep, file: Annotated[UploadFile, File()],
                     format: Annotated[str | None, Form(max_length=10)] = None,
                     text_column: Annotated[str | None, Form(max_length=200)] = None,
                     id_column: Annotated[str | None, Form(max_length=200)] = None,
                     feature_columns: Annotated[str | None, Form(max_length=20_000)] = None,
                     label_column: Annotated[str | None, Form(max_length=200)] = None,
                     embedding_column: Annotated[str | None, Form(max_length=200)] = None):
    """Import a pool: CSV, TSV, JSON Lines, a JSON array of objects, Parquet, or .txt (one text per line);
    for an image project also a .zip of images (with at most one table at its top naming them).
    All rows or none: a bad file answers 422 with every problem found.

    `text_column` names the text (text projects) or the image (image projects: base64, a data URI,
    image bytes, or a file of the .zip). `embedding_column` (by default a column named `embedding`,
    `embeddings`, `vector` or `emb`) holds each item's own embedding, which the model then learns from.

    `label_column` names a column of labels already given (an export's `label`, say): they become
    training labels recorded under the caller, with `why.source` "import"; empty cells stay unlabelled."""
    project = _project(session, project_id, user)
    features = column_list(feature_columns)
    result = import_pool(session, project=project, fileobj=file.file, filename=file.filename, fmt=format,
                         text_column=text_column, id_column=id_column, feature_columns=features,
                         label_column=label_column, embedding_column=embedding_column, imported_by=user)
    return ImportRead(**result.__dict__)


@router.get("/projects/{project_id}/next", response_model=ServedItem,
            responses={204: {"description": "Nothing is left for this annotator"}})
def api_next_item(project_id: DbId, user: ApiUser, session: SessionDep):
    """The next item for the caller, leased to them, with why it was chosen."""
    project = _project(session, project_id, user)
    return _served_or_204(labeling.next_item(session, project=project, user=user), project)


def _served_or_204(served: labeling.Served | None, project: Project):
    if served is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    item = served.item
    return ServedItem(id=item.id, external_id=item.external_id, data=public_payload(project, item),
                      meta=served.card_meta(project),
                      why=WhyRead(**served.why.as_dict()), lease_expires_at=served.lease.expires_at)


def public_payload(project: Project, item: Item) -> dict:
    """An item's data as the API shows it: the text, a table's features, or an image's digest and
    address (its thumbnail pixels are the model's business); an embedding is the caller's own."""
    if project.kind == "image":
        return {**picture_of(item.payload), "image_url": f"/api/v1/items/{item.id}/image"}
    return {key: value for key, value in item.payload.items() if key != "embedding"}


@router.get("/items/{item_id}/image", response_class=Response,
            responses={200: {"content": {"image/png": {}, "image/jpeg": {}}, "description": "The item's picture"}})
def api_item_image(item_id: DbId, user: ApiUser, session: ReadSessionDep):
    """An image project's item's picture, under the type read from its bytes."""
    item, project = _item(session, item_id, user)
    response = image_response(session, project.id, item.payload.get("image", "")) \
        if project.kind == "image" else None
    if response is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Item {item_id} is not an image.")
    return response


def _item(session, item_id: int, user: User) -> tuple[Item, Project]:
    item = session.get(Item, item_id)
    project = visible_project(session, user, item.project_id) if item is not None else None
    if project is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"There is no item {item_id}.")
    return item, project


@router.post("/items/{item_id}/annotations", response_model=AnnotationRead, status_code=status.HTTP_201_CREATED,
             responses={200: {"description": "The same answer was already recorded (or changed)"},
                        409: {"description": "Leased to someone else or already complete"}})
def api_annotate(item_id: DbId, data: AnnotationCreate, user: ApiUser, session: SessionDep, response: Response):
    item, project = _item(session, item_id, user)
    annotation, created = labeling.annotate(session, project=project, item=item, user=user, label=data.label,
                                            seconds_spent=data.seconds_spent)
    if not created:
        response.status_code = status.HTTP_200_OK
    session.flush()
    return _annotation_read(annotation)


@router.post("/items/{item_id}/skip", response_model=AnnotationRead, status_code=status.HTTP_201_CREATED)
def api_skip(item_id: DbId, user: ApiUser, session: SessionDep, response: Response):
    item, project = _item(session, item_id, user)
    annotation, created = labeling.skip(session, project=project, item=item, user=user)
    if not created:
        response.status_code = status.HTTP_200_OK
    session.flush()
    return _annotation_read(annotation)


class UserCreate(Incoming):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=80)
    role: str = Field(description="admin, lead or annotator")
    password: str = Field(min_length=1, max_length=1000, description="at least 8 characters")


class UserChange(Incoming):
    model_config = ConfigDict(extra="forbid")

    role: str | None = None
    active: bool | None = Field(default=None, description="false ends their sessions and revokes their tokens")


def _user_read(user: User) -> dict:
    return {"id": user.id, "username": user.username, "role": user.role, "active": user.is_active}


@router.get("/users")
def api_list_users(user: ApiAdmin, session: ReadSessionDep):
    """Every user, with role and whether they may sign in (admin)."""
    return [_user_read(u) for u in list_users(session)]


@router.post("/users", status_code=status.HTTP_201_CREATED)
def api_create_user(data: UserCreate, user: ApiAdmin, session: SessionDep):
    """A new user (admin); the password is hashed with argon2 and never returned."""
    try:
        return _user_read(create_user(session, username=data.username, password=data.password, role=data.role))
    except UserExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, as_sentence(str(exc))) from None


@router.patch("/users/{user_id}")
def api_change_user(user_id: DbId, data: UserChange, user: ApiAdmin, session: SessionDep):
    """Change a user's role, or deactivate / reactivate them (admin; not yourself)."""
    target = session.get(User, user_id)
    if target is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"There is no user {user_id}.")
    if target.id == user.id:
        raise HTTPException(status.HTTP_409_CONFLICT, "You cannot change your own role or deactivate yourself; "
                                                      "another admin can.")
    if data.role is not None:
        try:
            set_role(session, user=target, role=data.role)
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, as_sentence(str(exc))) from None
    if data.active is not None:
        set_active(session, user=target, active=data.active)
    return _user_read(target)


@router.get("/projects/{project_id}/items")
def api_list_items(project_id: DbId, user: ApiLead, session: ReadSessionDep,
                   after: Annotated[int | None, Query(ge=0, le=2**31 - 1, description="the last id of the page "
                                                      "before (next_after)")] = None,
                   show: Annotated[str, Query(description="all, labelled, unlabelled, holdout or "
                                              "disagreement")] = "all",
                   label: Annotated[str | None, Query(max_length=200)] = None,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    """The project's items in id order, a page at a time (`next_after` names the next page's start)."""
    if show not in FILTERS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"Unknown filter {show!r}; use one of {', '.join(FILTERS)}.")
    project = _project(session, project_id, user)
    page = browse(session, project=project, after=after, show=show, label=label, limit=limit)
    return {"items": [{"id": i.id, "external_id": i.external_id, "data": public_payload(project, i), "meta": i.meta,
                       "label": i.final_label, "state": i.state, "n_annotations": i.n_annotations,
                       "holdout": i.is_holdout} for i in page.items],
            "next_after": page.next_after}


@router.delete("/items/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
def api_delete_item(item_id: DbId, user: ApiAdmin, session: SessionDep):
    """Remove an item for good, with its answers; a retrain follows if it was a training label."""
    item, project = _item(session, item_id, user)
    delete_item(session, project=project, item=item)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/projects/{project_id}/undo", response_model=ServedItem,
             responses={204: {"description": "Nothing to undo"}})
def api_undo(project_id: DbId, user: ApiUser, session: SessionDep,
             answer_id: Annotated[int | None, Query(description="the answer you mean to take back: if it is no "
                                                    "longer your latest (this undo was sent twice), 409")] = None):
    """Take back the caller's latest answer in the project; the item is leased back to them. A skip
    taken back on an item others have finished since gives the next item instead."""
    project = _project(session, project_id, user)
    undone = labeling.undo_last(session, project=project, user=user, expected=answer_id)
    if undone is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return _served_or_204(undone.served or labeling.next_item(session, project=project, user=user), project)


@router.post("/projects/{project_id}/release", status_code=status.HTTP_204_NO_CONTENT)
def api_release(project_id: DbId, user: ApiUser, session: SessionDep):
    """Give back the items leased to the caller in this project (a labelling client closing): others
    are served them now instead of when the leases run out. An answer sent on one later is still kept."""
    project = _project(session, project_id, user)
    labeling.release_cards(session, project=project, user=user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/projects/{project_id}/models", response_model=list[ModelVersionRead])
def api_models(project_id: DbId, user: ApiLead, session: ReadSessionDep):
    project = _project(session, project_id, user)
    return [ModelVersionRead(is_current=m.id == project.current_model_version_id,
                             **{k: getattr(m, k) for k in ModelVersionRead.model_fields if k != "is_current"})
            for m in model_versions(session, project_id=project.id)]


@router.get("/projects/{project_id}/jobs", response_model=list[JobRead])
def api_jobs(project_id: DbId, user: ApiLead, session: ReadSessionDep):
    return recent_jobs(session, project_id=_project(session, project_id, user).id, limit=50)


@router.post("/projects/{project_id}/simulations", response_model=SimulationRead,
             status_code=status.HTTP_202_ACCEPTED)
def api_start_simulation(project_id: DbId, data: SimulationCreate, user: ApiLead, session: SessionDep):
    """Replay the project's labels through these strategies in the worker; poll the result."""
    return queue_simulation(session, project=_project(session, project_id, user), user=user, strategies=data.strategies,
                            initial=data.initial, budget=data.budget, repeats=data.repeats)


@router.get("/projects/{project_id}/simulations", response_model=list[SimulationRead])
def api_list_simulations(project_id: DbId, user: ApiLead, session: ReadSessionDep):
    return list_simulations(session, project_id=_project(session, project_id, user).id, limit=50)


@router.get("/projects/{project_id}/simulations/{simulation_id}", response_model=SimulationRead)
def api_get_simulation(project_id: DbId, simulation_id: DbId, user: ApiLead, session: ReadSessionDep):
    _project(session, project_id, user)
    simulation = session.get(Simulation, simulation_id)
    if simulation is None or simulation.project_id != project_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"There is no simulation {simulation_id} in this project.")
    return simulation


@router.get("/projects/{project_id}/members", response_model=list[UserRead])
def api_members(project_id: DbId, user: ApiLead, session: ReadSessionDep):
    return members_of(session, project_id=_project(session, project_id, user).id)


@router.post("/projects/{project_id}/members", response_model=list[UserRead], status_code=status.HTTP_201_CREATED)
def api_add_member(project_id: DbId, data: MemberAdd, user: ApiAdmin, session: SessionDep):
    project = _project(session, project_id, user)
    member = user_named(session, data.username)
    if member is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"There is no user {data.username!r}.")
    add_member(session, project_id=project.id, user=member)
    return members_of(session, project_id=project.id)


@router.delete("/projects/{project_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def api_remove_member(project_id: DbId, user_id: DbId, user: ApiAdmin, session: SessionDep):
    remove_member(session, project_id=_project(session, project_id, user).id, user_id=user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
