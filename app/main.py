"""create_app(): routers, static files, sessions and the error pages."""

import logging
import re
from pathlib import Path
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.v1 import router as api_router
from app.auth.router import router as auth_router
from app.config import Settings, get_settings
from app.dashboard.pages import api_router as dashboard_api_router
from app.dashboard.pages import router as dashboard_router
from app.deps import LoginRequired, is_admin_request
from app.errors import DomainError, validation_sentence
from app.incoming import NUL_MESSAGE
from app.labeling.pages import router as labeling_router
from app.pool.service import ImportRefused
from app.projects.pages import router as projects_router
from app.quality.pages import api_router as quality_api_router
from app.quality.pages import router as quality_router
from app.templating import is_htmx, render
from app.users.pages import router as users_router

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
log = logging.getLogger(__name__)


# The two routes that take a pool file; only an admin's request to them may be large.
UPLOAD_ROUTES = re.compile(r"/projects/\d+/upload|/api/v1/projects/\d+/items|/projects/new/labels-from-file")


def size_text(n_bytes: int) -> str:
    """A byte count as people read it: "512 MB", "1.5 MB", "300 KB"."""
    for unit, size in (("GB", 1024 ** 3), ("MB", 1024 ** 2), ("KB", 1024)):
        if n_bytes >= size:
            value = n_bytes / size
            return f"{value:.0f} {unit}" if value >= 10 or value == int(value) else f"{value:.1f} {unit}"
    return f"{n_bytes} bytes"


class BodySizeLimit:
    """Refuse request bodies over the limit (413): an admin's upload may be large, anything else is small.

    A declared Content-Length is checked before reading; a chunked body is counted as it arrives. The
    caller is checked here, before the body is read, because a form is parsed (and its files spooled
    to disk) before any route dependency runs: otherwise anyone could send the upload allowance to
    any route. Needs the session decoded, so it runs inside SessionMiddleware.
    """

    def __init__(self, app: ASGIApp, max_upload_bytes: int, max_body_bytes: int):
        self.app, self.max_upload_bytes, self.max_body_bytes = app, max_upload_bytes, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        is_upload = (scope["method"] == "POST" and UPLOAD_ROUTES.fullmatch(scope["path"]) is not None
                     and headers.get(b"content-type", b"").startswith(b"multipart/form-data")
                     and await run_in_threadpool(is_admin_request, headers, scope.get("session") or {}))
        limit = self.max_upload_bytes if is_upload else self.max_body_bytes
        message = (f"The file is larger than this server's upload limit of {size_text(limit)}: split it into "
                   "smaller files and upload them one after the other." if is_upload
                   else f"The request body is larger than the limit of {size_text(limit)}.")
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            if headers.get(b"hx-request") == b"true":  # the upload page swaps the answer in: a sentence
                response = HTMLResponse(f'<p class="error" role="alert">{message}</p>', status_code=413)
            else:
                response = JSONResponse({"detail": message}, status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive():
            nonlocal received
            event = await receive()
            received += len(event.get("body", b""))
            if received > limit:
                raise HTTPException(413, message)
            return event

        await self.app(scope, counting_receive, send)


# Sent with every answer. No page is meant to be framed (clickjacking: a CSRF token does not stop a
# click on a hidden frame), no response is to be sniffed as another type, and addresses with project
# and item ids stay on this site. Scripts come only from /static (the pages have no inline script or
# event attribute), a second wall behind the escaping of untrusted item text; the API docs page too
# (its Swagger UI is vendored and started from a file).
CONTENT_SECURITY_POLICY = (b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           b"img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
                           b"form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin")]


class SecurityHeaders:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                # a response with a policy of its own (an item's picture: sandboxed) keeps it
                own = any(name.lower() == b"content-security-policy" for name, _ in headers)
                message["headers"] = [*headers, *SECURITY_HEADERS,
                                      *(() if own else ((b"content-security-policy", CONTENT_SECURITY_POLICY),))]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error_page(request: Request, status_code: int, message: str, errors: list[str] | None = None) -> Response:
    block = "message" if is_htmx(request) else None
    return render(request, "error.html", {"status_code": status_code, "message": message, "errors": errors or []},
                  block=block, status_code=status_code)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # /docs is served below from vendored files (QA: Swagger UI from its CDN was a blank page offline)
    app = FastAPI(title="labelloop", version="0.1.0", docs_url=None, redoc_url=None,
                  description="Active-learning labelling: a model in the loop that never makes annotators wait.")
    # the last added runs first: the session is decoded before BodySizeLimit looks at who is calling
    app.add_middleware(BodySizeLimit, max_upload_bytes=settings.max_upload_bytes,
                       max_body_bytes=settings.max_body_bytes)
    app.add_middleware(SessionMiddleware, secret_key=settings.resolved_secret_key(), session_cookie="labelloop_session",
                       max_age=settings.session_max_age_seconds, same_site="lax", https_only=settings.https_only)
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, 413s and error pages included
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.include_router(auth_router)
    app.include_router(projects_router)
    app.include_router(labeling_router)
    app.include_router(users_router)
    app.include_router(dashboard_router)
    app.include_router(dashboard_api_router)
    app.include_router(quality_router)
    app.include_router(quality_api_router)
    app.include_router(api_router)

    @app.get("/docs", include_in_schema=False)
    def api_docs(request: Request):
        return render(request, "api_docs.html")

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired):
        # Back, once signed in, to the page the user was on: for an htmx post (an answer on the label
        # page) that is the page htmx names, not the post's own URL, which has no page to show.
        # A plain form's post has no page either: its Referer (same-origin policy) names the page.
        shown = request.headers.get("hx-current-url" if is_htmx(request) else "referer", "")
        page = urlsplit(shown).path if request.method not in ("GET", "HEAD") or is_htmx(request) else ""
        target = f"/login?next={quote(page or request.url.path, safe='/')}"
        if request.method not in ("GET", "HEAD"):
            target += "&ended=1"
        if is_htmx(request):  # htmx would swap the login page into a fragment; send the browser there instead
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(ImportRefused)
    async def _import_refused(request: Request, exc: ImportRefused):
        if _wants_json(request):
            return JSONResponse({"detail": "The file was not imported.", "errors": exc.errors}, status_code=422)
        return _error_page(request, 422, "The file was not imported.", exc.errors)

    @app.exception_handler(DomainError)
    async def _domain_error(request: Request, exc: DomainError):
        if _wants_json(request):
            return JSONResponse({"detail": exc.message}, status_code=exc.status_code)
        return _error_page(request, exc.status_code, exc.message)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        detail = exc.detail
        if exc.status_code == 404 and detail == "Not Found":  # the router's own: no route at this address
            detail = "There is no page at this address. Check it, or start again from your projects."
        elif exc.status_code == 405 and detail == "Method Not Allowed":
            detail = "This address does not take that kind of request."
        if _wants_json(request):
            return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)
        return _error_page(request, exc.status_code, str(detail))

    @app.exception_handler(DataError)
    async def _data_error(request: Request, exc: DataError):
        # The request models refuse NUL characters (app/incoming.py); a plain form field that still
        # brings one to PostgreSQL's text gets the same 422, not a 500. Any other DataError is a bug.
        if "NUL" not in str(exc.orig):
            raise exc
        message = f"The request was not saved: {NUL_MESSAGE}; take it out and send it again."
        if _wants_json(request):
            return JSONResponse({"detail": message}, status_code=422)
        return _error_page(request, 422, message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        in_path = [e for e in exc.errors() if e["loc"][:1] == ("path",)]
        if in_path:  # a mistyped or made-up address (/projects/abc): nothing there, not a bad form
            name = str(in_path[0]["loc"][-1]).removesuffix("_id")
            message = f"There is no {name} {in_path[0].get('input')!r}."
            if _wants_json(request):
                return JSONResponse({"detail": message}, status_code=404)
            return _error_page(request, 404, message)
        problems = [validation_sentence(e) for e in exc.errors()]
        if _wants_json(request):
            return JSONResponse({"detail": "The request is not valid.", "errors": problems}, status_code=422)
        return _error_page(request, 422, "The form is not valid.", problems)

    return app
