"""Dependencies shared by the routes: the request's session, who is asking, what they may do.

One place commits: the session dependency, after the route returns and before the response
is sent (scope="function"), so a client never sees success for a write that did not land.
"""

import asyncio
import functools
import inspect
import weakref
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Annotated

import anyio
from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.db import get_engine, is_sqlite, read_session, session_scope, write_session
from app.models import Project, Role, User, utcnow
from app.projects.membership import is_member
from app.security import csrf_tokens_match, new_csrf_token
from app.users.service import browser_session_user, live_token, touch_token

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

# Row ids in paths: PostgreSQL integers are 32-bit, so anything larger is refused as a 422 up front.
DbId = Annotated[int, Path(ge=1, le=2**31 - 1)]


# SQLite has one write lock per database. A request that holds it (BEGIN IMMEDIATE at its first
# statement, often in a dependency) goes on in later threadpool calls; if every pool thread were
# meanwhile blocked in SQLite's busy-wait for that same lock, the holder could never finish and all
# of them would time out together ("database is locked"). So on SQLite, write requests queue here,
# in the event loop, where waiting costs no thread; SQLite would serialise them anyway.
_write_gates: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = weakref.WeakKeyDictionary()


def _write_gate() -> asyncio.Lock | None:
    if not is_sqlite(get_engine()):
        return None  # PostgreSQL locks rows, not the database (see UnitOfWorkRoute)
    loop = asyncio.get_running_loop()
    gate = _write_gates.get(loop)
    if gate is None:
        gate = _write_gates[loop] = asyncio.Lock()
    return gate


async def get_session() -> AsyncIterator[Session]:
    gate = _write_gate()
    if gate is not None:
        await gate.acquire()
    session = write_session()
    try:
        yield session
        await run_in_threadpool(session.commit)
    except BaseException:
        # Shielded: a request cancelled because its client went away must give its locks back now,
        # not whenever the garbage collector finds the session.
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(session.rollback)
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(session.close)
        if gate is not None:
            gate.release()


def get_read_session() -> Iterator[Session]:
    with session_scope(write=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


class UnitOfWorkRoute(APIRoute):
    """Commits a sync route's sessions in the thread that ran the route, as soon as it returns.

    The session dependency would commit too, but in a later threadpool call. Under load every pool
    thread can be blocked on a lock (a PostgreSQL row lock, a pooled connection) that only that
    commit would free: committing here, before the thread is given back, means a transaction never
    waits for a thread. The dependency's commit then finds nothing left to do.
    """

    def __init__(self, path: str, endpoint, **kwargs):
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _committing(endpoint)
        super().__init__(path, endpoint, **kwargs)


def _committing(endpoint):
    @functools.wraps(endpoint)
    def run(*args, **kwargs):
        sessions = [value for value in kwargs.values() if isinstance(value, Session)]
        try:
            result = endpoint(*args, **kwargs)
        except BaseException:
            for session in sessions:
                session.rollback()
            raise
        for session in sessions:
            session.commit()
        return result

    return run
ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]


class LoginRequired(Exception):
    """The page needs a signed-in user; answered with a redirect to the login page."""


def _signed_in_user(session_id: str) -> User | None:
    with read_session() as session:
        user = browser_session_user(session, session_id=session_id)
        if user is not None:
            session.expunge(user)
        return user


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = new_csrf_token()
    return token


# ---- browser pages: signed session cookie --------------------------------------------------
def page_user(request: Request) -> User:
    session_id = request.session.get("sid")
    user = _signed_in_user(session_id) if isinstance(session_id, str) else None
    if user is None:
        # Never signed in, signed out, expired, deactivated, or signed in before a password reset.
        request.session.pop("sid", None)
        raise LoginRequired()
    return user


async def csrf_protect(request: Request) -> None:
    """Every state-changing form post or htmx request carries the session's CSRF token."""
    if request.method in SAFE_METHODS:
        return
    given = request.headers.get("x-csrf-token")
    if not given:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            given = (await request.form()).get("csrf_token")
    if not csrf_tokens_match(request.session.get("csrf"), given if isinstance(given, str) else None):
        if "sid" not in request.session and request.url.path != "/login":
            # no token because no session: signed out (in another tab) or expired, not a forged form
            raise LoginRequired()
        if isinstance(given, str) and given:  # a token of an earlier session: signed out and in since
            raise HTTPException(status.HTTP_403_FORBIDDEN, "This page was opened before you last signed in (in "
                                "another tab?), so what you sent was not saved. Reload the page to carry on.")
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "This form has expired or did not come from labelloop. Reload the page and try again.")


def _page_role(*roles: str):
    def check(user: Annotated[User, Depends(page_user)]) -> User:
        if user.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Your role does not give access to this page.")
        return user
    return check


PageUser = Annotated[User, Depends(page_user)]
LeadPageUser = Annotated[User, Depends(_page_role(Role.admin, Role.lead))]
AdminPageUser = Annotated[User, Depends(_page_role(Role.admin))]


# ---- JSON API: bearer tokens -------------------------------------------------------------------
TOUCH_EVERY = timedelta(minutes=5)


def _bearer_token(authorization: str) -> str | None:
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def api_user(request: Request) -> User:
    token = _bearer_token(request.headers.get("authorization", ""))
    if token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Send an API token: Authorization: Bearer <token>",
                            headers={"WWW-Authenticate": "Bearer"})
    with read_session() as session:
        row = live_token(session, token=token)
        if row is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "This API token is unknown or revoked",
                                headers={"WWW-Authenticate": "Bearer"})
        user, token_id = row.user, row.id
        stale = row.last_used_at is None or utcnow() - row.last_used_at > TOUCH_EVERY
        session.expunge(user)
    if stale:  # a write only every few minutes per token, not on every call
        with write_session() as session:
            touch_token(session, token_id=token_id)
            session.commit()
    return user


def _api_role(*roles: str):
    def check(user: Annotated[User, Depends(api_user)]) -> User:
        if user.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"This needs the role {' or '.join(roles)}; yours is {user.role}.")
        return user
    return check


ApiUser = Annotated[User, Depends(api_user)]
ApiLead = Annotated[User, Depends(_api_role(Role.admin, Role.lead))]
ApiAdmin = Annotated[User, Depends(_api_role(Role.admin))]


def is_admin_request(headers: dict[bytes, bytes], session_data: dict) -> bool:
    """Whether a request comes from an active admin, by API token or browser session, judged from its
    headers alone (before its body is read)."""
    token = _bearer_token(headers.get(b"authorization", b"").decode("latin-1"))
    if token is not None:
        with read_session() as session:
            row = live_token(session, token=token)
            return row is not None and row.user.role == Role.admin
    session_id = session_data.get("sid")
    user = _signed_in_user(session_id) if isinstance(session_id, str) else None
    return user is not None and user.role == Role.admin


# ---- lookups that 404 ----------------------------------------------------------------------------
def visible_project(session: Session, user: User, project_id: int) -> Project | None:
    """The project if it exists, is not deleted and `user` may work on it; else None."""
    project = session.get(Project, project_id)
    if project is None or project.deleted_at is not None or not is_member(session, user=user, project_id=project_id):
        return None
    return project


def project_for(session: Session, user: User, project_id: int) -> Project:
    """The project if `user` may work on it. Others get the same 404 as for a missing project, so
    project ids reveal nothing."""
    project = visible_project(session, user, project_id)
    if project is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"There is no project {project_id}.")
    return project


def load_page_project(project_id: DbId, session: SessionDep, user: Annotated[User, Depends(page_user)]) -> Project:
    return project_for(session, user, project_id)


ProjectDep = Annotated[Project, Depends(load_page_project)]
