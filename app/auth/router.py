"""Signing in and out of the browser pages."""

from typing import Annotated
from urllib.parse import urlparse

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from app.auth import devices, throttle
from app.config import get_settings
from app.deps import PageUser, SessionDep, UnitOfWorkRoute, csrf_protect, page_user
from app.security import new_csrf_token
from app.templating import render
from app.users.service import authenticate, end_browser_session, start_browser_session

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only same-site paths, so the login form cannot bounce a user to another site."""
    if not target:
        return "/projects"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/projects"
    if parsed.path == "/logout":  # signing in to be offered signing out again
        return "/projects"
    return target


@router.get("/login")
def login_page(request: Request, next: str | None = None, ended: bool = False):
    # `ended`: the session ended under a form the user had just sent; say so, since it was not saved
    return render(request, "login.html", {"next": _safe_next(next), "error": None, "ended": ended})


@router.post("/login", dependencies=[Depends(csrf_protect)])
def login(request: Request, session: SessionDep, username: Annotated[str, Form(max_length=200)],
          password: Annotated[str, Form(max_length=1000)], next: Annotated[str | None, Form()] = None):
    name = username.strip()
    # A browser that signed in as this user before is counted by its own failures, not its address
    # (app/auth/devices.py): guesses from behind the same proxy or NAT cannot lock its user out.
    device = devices.known_device(request.cookies.get(devices.COOKIE), name)
    address = f"device {device}" if device else request.client.host if request.client else "unknown"
    wait = throttle.seconds_until_allowed(session, username=name, address=address)
    if wait:
        minutes = max(1, round(wait / 60))
        return render(request, "login.html", {"next": _safe_next(next), "username": username,
                                              "error": f"Too many failed attempts. Try again in about {minutes} "
                                                       f"minute{'s' if minutes > 1 else ''}."},
                      status_code=429, headers={"Retry-After": str(wait)})
    user = authenticate(session, username=name, password=password)
    if user is None:
        throttle.record_failure(session, username=name, address=address)
        return render(request, "login.html", {"next": _safe_next(next), "error": "Wrong username or password.",
                                              "username": username}, status_code=401)
    throttle.forget_failures(session, username=name, address=address)
    request.session.clear()  # a fresh session (and CSRF token) for the signed-in user
    request.session["sid"] = start_browser_session(session, user=user)
    request.session["csrf"] = new_csrf_token()
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(devices.COOKIE, devices.device_cookie(user.username, device),
                        max_age=devices.MAX_AGE_SECONDS, path=devices.COOKIE_PATH, httponly=True, samesite="lax",
                        secure=get_settings().https_only)
    return response


@router.get("/logout")
def logout_page(request: Request, user: PageUser):
    """/logout typed in the address bar: signing out is a form post (CSRF), so offer its button."""
    return render(request, "logout.html", {}, user=user)


@router.post("/logout", dependencies=[Depends(csrf_protect), Depends(page_user)])
def logout(request: Request, session: SessionDep):
    # on the server too: a copy of the cookie must not keep working after signing out
    end_browser_session(session, session_id=request.session["sid"])
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def home(request: Request):
    return RedirectResponse("/projects" if request.session.get("sid") else "/login", status_code=303)
