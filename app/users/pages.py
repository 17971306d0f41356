"""User management for admins, and API tokens for everyone."""

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import RedirectResponse

from app.deps import AdminPageUser, DbId, PageUser, ProjectDep, SessionDep, UnitOfWorkRoute, csrf_protect
from app.models import Role, User
from app.projects.membership import add_member, remove_member
from app.templating import render
from app.users.service import (
    create_user,
    issue_api_token,
    list_users,
    live_token_counts,
    reset_password,
    revoke_token,
    revoke_tokens_of,
    set_active,
    set_role,
    start_browser_session,
    tokens_of,
    user_named,
)

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False, dependencies=[Depends(csrf_protect)])


def _users_page(request: Request, session, user: User, *, errors=None, notice=None, status_code=200):
    return render(request, "users/list.html", {"users": list_users(session), "roles": [r.value for r in Role],
                                               "tokens": live_token_counts(session),
                                               "errors": errors or [], "notice": notice},
                  user=user, status_code=status_code)


@router.get("/admin/users")
def users_page(request: Request, user: AdminPageUser, session: SessionDep):
    return _users_page(request, session, user)


@router.post("/admin/users")
def create_user_page(request: Request, user: AdminPageUser, session: SessionDep,
                     username: Annotated[str, Form(max_length=80)], role: Annotated[str, Form(max_length=20)],
                     password: Annotated[str, Form(max_length=1000)]):
    try:
        created = create_user(session, username=username, password=password, role=role)
    except ValueError as exc:
        return _users_page(request, session, user, errors=[str(exc)], status_code=422)
    return _users_page(request, session, user, notice=f"Created {created.role} {created.username}.")


def _target(session, user_id: int) -> User:
    target = session.get(User, user_id)
    if target is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"There is no user {user_id}.")
    return target


@router.post("/admin/users/{user_id}/active")
def set_active_page(request: Request, user: AdminPageUser, session: SessionDep, user_id: DbId,
                    active: Annotated[bool, Form()]):
    target = _target(session, user_id)
    if target.id == user.id and not active:
        return _users_page(request, session, user, errors=["You cannot deactivate yourself."], status_code=422)
    set_active(session, user=target, active=active)
    return _users_page(request, session, user,
                       notice=f"{target.username} is active again; they sign in anew and make new API tokens." if active
                       else f"{target.username} is deactivated; their browser sessions have ended and their API "
                            "tokens are revoked.")


@router.post("/admin/users/{user_id}/role")
def set_role_page(request: Request, user: AdminPageUser, session: SessionDep, user_id: DbId,
                  role: Annotated[str, Form(max_length=20)]):
    target = _target(session, user_id)
    if target.id == user.id:
        return _users_page(request, session, user, status_code=422,
                           errors=["You cannot change your own role; another admin can."])
    try:
        set_role(session, user=target, role=role)
    except ValueError as exc:
        return _users_page(request, session, user, errors=[str(exc)], status_code=422)
    return _users_page(request, session, user, notice=f"{target.username} is now {'an' if role[0] in 'ae' else 'a'} "
                                                      f"{role}.")


@router.post("/admin/users/{user_id}/tokens/revoke")
def revoke_tokens_page(request: Request, user: AdminPageUser, session: SessionDep, user_id: DbId):
    """An admin revokes all of a user's API tokens (say, one leaked), without knowing their ids."""
    target = _target(session, user_id)
    n = revoke_tokens_of(session, user=target)
    return _users_page(request, session, user, notice=f"Revoked {n} API token{'s' if n != 1 else ''} of "
                                                      f"{target.username}.")


@router.post("/admin/users/{user_id}/password")
def reset_password_page(request: Request, user: AdminPageUser, session: SessionDep, user_id: DbId,
                        password: Annotated[str, Form(max_length=1000)]):
    target = _target(session, user_id)
    try:
        reset_password(session, user=target, password=password)
    except ValueError as exc:
        return _users_page(request, session, user, errors=[str(exc)], status_code=422)
    if target.id == user.id:  # their own: this browser, which made the change, stays signed in
        request.session["sid"] = start_browser_session(session, user=user)
        return _users_page(request, session, user, notice="Your new password is set; your other browser sessions "
                                                          "have ended and your API tokens are revoked.")
    return _users_page(request, session, user,
                       notice=f"New password set for {target.username}; their browser sessions have ended and "
                              "their API tokens are revoked.")


# The token forms this browser session has sent, newest last (a few: one per page shown)
SENT_FORMS = 20


def _tokens(request: Request, session, user, *, new_token: str | None = None, notice: str | None = None):
    # each page's form carries an id of its own, so the same form sent again mints nothing
    return render(request, "users/tokens.html", {"tokens": tokens_of(session, user_id=user.id), "new_token": new_token,
                                                 "form_id": secrets.token_urlsafe(12), "notice": notice},
                  user=user, headers={"Cache-Control": "no-store"})


@router.get("/tokens")
def tokens_page(request: Request, user: PageUser, session: SessionDep):
    return _tokens(request, session, user)


@router.post("/tokens")
def create_token_page(request: Request, user: PageUser, session: SessionDep,
                      name: Annotated[str, Form(max_length=80)] = "token",
                      form_id: Annotated[str, Form(max_length=40)] = ""):
    """The new token is shown on this page and never again (only its hash is kept). QA: a reload
    sent the form again and minted a second live token nobody saw; a form sent twice now mints none."""
    sent = list(request.session.get("token_forms", []))
    if form_id and form_id in sent:
        return _tokens(request, session, user, notice="That form was sent before (a reload?): its token was shown "
                                                      "then and is not shown again, and no other was made.")
    token = issue_api_token(session, user=session.get(User, user.id), name=name.strip() or "token")
    if form_id:
        request.session["token_forms"] = [*sent, form_id][-SENT_FORMS:]
    return _tokens(request, session, user, new_token=token)


@router.post("/tokens/{token_id}/revoke")
def revoke_token_page(request: Request, user: PageUser, session: SessionDep, token_id: DbId):
    if revoke_token(session, token_id=token_id, owner_id=None if user.role == Role.admin else user.id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"There is no token {token_id} of yours.")
    return RedirectResponse("/tokens", status_code=303)


@router.post("/projects/{project_id}/members")
def add_member_page(request: Request, user: AdminPageUser, project: ProjectDep, session: SessionDep,
                    username: Annotated[str, Form(max_length=80)]):
    member = user_named(session, username)
    if member is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"There is no user {username!r}.")
    add_member(session, project_id=project.id, user=member)
    return RedirectResponse(f"/projects/{project.id}#members", status_code=303)


@router.post("/projects/{project_id}/members/{user_id}/remove")
def remove_member_page(request: Request, user: AdminPageUser, project: ProjectDep, session: SessionDep,
                       user_id: DbId):
    remove_member(session, project_id=project.id, user_id=user_id)
    return RedirectResponse(f"/projects/{project.id}#members", status_code=303)
