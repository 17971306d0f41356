"""The annotator's page: one card at a time, swapped in by htmx after each answer."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response

from app.deps import DbId, PageUser, ProjectDep, SessionDep, UnitOfWorkRoute, csrf_protect, load_page_project
from app.errors import DomainError, quoted
from app.labeling import service
from app.models import Item, ItemState, Project, User
from app.templating import LABEL_KEYS, is_htmx, render

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False, dependencies=[Depends(csrf_protect)])


def _answering_project(request: Request, project_id: DbId, session: SessionDep, user: PageUser) -> Project:
    """The project of an answer sent from its label page. Taken off it (or the project removed) since
    the page was opened, the annotator is told so, and that this answer was not kept; the wording is
    the same either way, so it says no more about the project than the page already did."""
    try:
        return load_page_project(project_id, session, user)
    except HTTPException as exc:
        if exc.status_code != 404 or not is_htmx(request):
            raise
        raise HTTPException(404, "This project is no longer open to you (you were taken off it, or it was "
                                 "removed), so what you just sent was not saved. Reload the page to see your "
                                 "projects.") from None


AnsweringProjectDep = Annotated[Project, Depends(_answering_project)]


def _as_stored(moment: datetime | None) -> datetime | None:
    """A time the page sent back, as the database keeps times: naive UTC (app/models/_common.py)."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _work(request: Request, session, project: Project, user: User, *, served=None, notice: str | None = None,
          status_code: int = 200, changing: bool = False):
    """The card, progress line and recent answers: a whole page, or the `work` block for htmx."""
    if served is None:
        served = service.next_item(session, project=project, user=user)
    context = {
        "project": project,
        "served": served,
        "keys": LABEL_KEYS[: len(project.labels)],
        "progress": service.progress(session, project=project, user=user),
        "recent": service.recent_answers(session, project=project, user=user),
        "notice": notice,
        "changing": changing,  # the card changes an answer given before: its buttons say so
        "open_with_mine": service.open_with_my_answer(session, project=project, user=user) if served is None
        else (0, 0),
        "skipped_items": service.open_skipped(session, project=project, user=user) if served is None else [],
    }
    block = "work" if is_htmx(request) else None
    return render(request, "label.html", context, block=block, user=user, status_code=status_code)


@router.get("/projects/{project_id}/label")
def label_page(request: Request, user: PageUser, project: ProjectDep, session: SessionDep):
    response = _work(request, session, project, user)
    # Never from the browser's cache: Back to this page must ask for its card again, since leaving it
    # gave that card back (QA: a cached copy showed a card someone else was then served)
    response.headers["Cache-Control"] = "no-store"
    return response


def _item(session, project: Project, item_id: int) -> Item | None:
    item = session.get(Item, item_id)
    return item if item is not None and item.project_id == project.id else None


@router.post("/projects/{project_id}/items/{item_id}/label")
def submit_label(request: Request, user: PageUser, project: AnsweringProjectDep, session: SessionDep, item_id: DbId,
                 label: Annotated[str, Form(max_length=200)], change: Annotated[bool, Form()] = False):
    item = _item(session, project, item_id)
    if item is None:
        return _work(request, session, project, user, notice="That item no longer exists; here is the next one.")
    had_enough = item.state == ItemState.done  # every opinion asked for was in before this one
    try:
        _, created = service.annotate(session, project=project, item=item, user=user, label=label, change=change)
    except DomainError as exc:
        # The answer could not be kept (lease lost, unknown label): say so and carry on.
        return _work(request, session, project, user, notice=exc.message)
    if created and had_enough:
        return _work(request, session, project, user, notice=(
            "Your answer is kept, but someone else answered that item while it waited on your screen (its "
            "card had been open too long), so it has one opinion more than asked for; if the two differ, a "
            "lead settles it."))
    return _work(request, session, project, user)


@router.post("/projects/{project_id}/items/{item_id}/skip")
def skip_item(request: Request, user: PageUser, project: AnsweringProjectDep, session: SessionDep, item_id: DbId,
              change: Annotated[bool, Form()] = False):
    item = _item(session, project, item_id)
    if item is not None:
        try:
            service.skip(session, project=project, item=item, user=user, change=change)
        except DomainError as exc:
            return _work(request, session, project, user, notice=exc.message)
    return _work(request, session, project, user)


@router.post("/projects/{project_id}/items/{item_id}/change")
def change_answer(request: Request, user: PageUser, project: AnsweringProjectDep, session: SessionDep, item_id: DbId):
    """An answer picked under Your last answers comes back as the card; it stands until replaced."""
    item = _item(session, project, item_id)
    try:
        again = service.answer_again(session, project=project, user=user, item=item) if item is not None else None
    except DomainError as exc:
        return _work(request, session, project, user, notice=exc.message)
    if again is None:
        return _work(request, session, project, user, notice="That answer is no longer yours to change.")
    served, mine = again
    given = "skipped it" if mine.skipped else f"answered {quoted(mine.label)}"
    return _work(request, session, project, user, served=served, changing=True,
                 notice=f"You {given} here. Pick the new answer; that one stands until you do "
                        "(u keeps it).")


@router.post("/projects/{project_id}/undo")
def undo(request: Request, user: PageUser, project: AnsweringProjectDep, session: SessionDep,
         last: Annotated[int | None, Form()] = None):
    """`last`: the answer the page showed as the latest, so an undo sent twice takes back one answer,
    and one from a page that missed later answers none."""
    try:
        undone = service.undo_last(session, project=project, user=user, expected=last)
    except DomainError as exc:
        return _work(request, session, project, user, notice=exc.message)
    if undone is None:
        return _work(request, session, project, user, notice="Nothing to undo yet.")
    if undone.served is None:
        since = "someone else is labelling that item now" if undone.held_by_others else \
            "others have answered that item since, so it needs no answer from you"
        return _work(request, session, project, user, notice=(
            f"Your skip of #{undone.item.external_id} was taken back, but {since}; here is the next one."))
    what = "skip" if undone.given is None else f"answer “{undone.given}”"
    return _work(request, session, project, user, served=undone.served,
                 notice=f"Your {what} on #{undone.item.external_id} was taken back; answer this item again.")


@router.post("/projects/{project_id}/release", status_code=204)
def release(user: PageUser, project: ProjectDep, session: SessionDep,
            held_until: Annotated[datetime | None, Form()] = None):
    """Sent by the page as it goes away (closed, reloaded, left): the cards it showed are let go at
    once, so others get them now rather than when the lease runs out. `held_until` is the expiry on
    the page's card; a card the user was served again since (the reload itself, another tab) stays."""
    service.release_cards(session, project=project, user=user, held_until=_as_stored(held_until))
    return Response(status_code=204)
