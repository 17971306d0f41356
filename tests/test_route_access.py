"""Every route in the app, tried by each role and by nobody: only the roles meant for it get through.

The table below must name every route; a new route without an entry fails the test, so access is
decided on purpose, never by default.
"""

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.test_pages import csrf_of, login

ANON, ANNOTATOR, LEAD, ADMIN = "anonymous", "annotator", "lead", "admin"
SIGNED_IN = {ANNOTATOR, LEAD, ADMIN}
LEADS = {LEAD, ADMIN}
EVERYONE = {ANON} | SIGNED_IN

ACCESS: dict[tuple[str, str], set[str]] = {
    ("GET", "/"): EVERYONE,
    ("GET", "/login"): EVERYONE,
    ("GET", "/docs"): EVERYONE,  # the API's reference (the OpenAPI document is public too)
    ("POST", "/login"): EVERYONE,
    ("GET", "/logout"): SIGNED_IN,
    ("POST", "/logout"): SIGNED_IN,
    ("GET", "/projects"): SIGNED_IN,
    ("GET", "/projects/new"): {ADMIN},
    ("POST", "/projects/new"): {ADMIN},
    ("POST", "/projects/new/labels-from-file"): {ADMIN},
    ("GET", "/projects/{project_id}"): LEADS,
    ("POST", "/projects/{project_id}/upload"): {ADMIN},
    ("POST", "/projects/{project_id}/upload-preview"): {ADMIN},
    ("GET", "/projects/{project_id}/settings"): {ADMIN},
    ("POST", "/projects/{project_id}/settings"): {ADMIN},
    ("POST", "/projects/{project_id}/labels"): {ADMIN},
    ("POST", "/projects/{project_id}/items/{item_id}/delete"): {ADMIN},
    ("POST", "/projects/{project_id}/delete"): {ADMIN},
    ("GET", "/projects/{project_id}/upload-progress/{token}"): {ADMIN},
    ("POST", "/projects/{project_id}/simulations"): LEADS,
    ("POST", "/projects/{project_id}/members"): {ADMIN},
    ("POST", "/projects/{project_id}/members/{user_id}/remove"): {ADMIN},
    ("GET", "/projects/{project_id}/label"): SIGNED_IN,
    ("POST", "/projects/{project_id}/items/{item_id}/label"): SIGNED_IN,
    ("POST", "/projects/{project_id}/items/{item_id}/skip"): SIGNED_IN,
    ("POST", "/projects/{project_id}/items/{item_id}/change"): SIGNED_IN,
    ("POST", "/projects/{project_id}/undo"): SIGNED_IN,
    ("POST", "/projects/{project_id}/release"): SIGNED_IN,
    ("GET", "/admin/users"): {ADMIN},
    ("POST", "/admin/users"): {ADMIN},
    ("POST", "/admin/users/{user_id}/active"): {ADMIN},
    ("POST", "/admin/users/{user_id}/password"): {ADMIN},
    ("POST", "/admin/users/{user_id}/role"): {ADMIN},
    ("POST", "/admin/users/{user_id}/tokens/revoke"): {ADMIN},
    ("GET", "/tokens"): SIGNED_IN,
    ("POST", "/tokens"): SIGNED_IN,
    ("POST", "/tokens/{token_id}/revoke"): SIGNED_IN,
    ("GET", "/api/v1/me"): SIGNED_IN,
    ("POST", "/api/v1/projects"): {ADMIN},
    ("GET", "/api/v1/projects"): SIGNED_IN,
    ("GET", "/api/v1/projects/{project_id}"): SIGNED_IN,
    ("PATCH", "/api/v1/projects/{project_id}"): {ADMIN},
    ("PUT", "/api/v1/projects/{project_id}/labels"): {ADMIN},
    ("GET", "/api/v1/projects/{project_id}/items"): LEADS,
    ("DELETE", "/api/v1/items/{item_id}"): {ADMIN},
    ("GET", "/api/v1/users"): {ADMIN},
    ("POST", "/api/v1/users"): {ADMIN},
    ("PATCH", "/api/v1/users/{user_id}"): {ADMIN},
    ("DELETE", "/api/v1/projects/{project_id}"): {ADMIN},
    ("POST", "/api/v1/projects/{project_id}/items"): {ADMIN},
    ("GET", "/api/v1/projects/{project_id}/next"): SIGNED_IN,
    ("POST", "/api/v1/items/{item_id}/annotations"): SIGNED_IN,
    ("POST", "/api/v1/items/{item_id}/skip"): SIGNED_IN,
    # an image project's pictures: for its members (anyone else gets the 404 of a missing project)
    ("GET", "/api/v1/items/{item_id}/image"): SIGNED_IN,
    ("GET", "/projects/{project_id}/images/{digest}"): SIGNED_IN,
    ("POST", "/api/v1/projects/{project_id}/undo"): SIGNED_IN,
    ("POST", "/api/v1/projects/{project_id}/release"): SIGNED_IN,
    ("GET", "/api/v1/projects/{project_id}/models"): LEADS,
    ("GET", "/api/v1/projects/{project_id}/jobs"): LEADS,
    ("POST", "/api/v1/projects/{project_id}/simulations"): LEADS,
    ("GET", "/api/v1/projects/{project_id}/simulations"): LEADS,
    ("GET", "/api/v1/projects/{project_id}/simulations/{simulation_id}"): LEADS,
    ("GET", "/api/v1/projects/{project_id}/members"): LEADS,
    ("POST", "/api/v1/projects/{project_id}/members"): {ADMIN},
    ("DELETE", "/api/v1/projects/{project_id}/members/{user_id}"): {ADMIN},
    ("GET", "/projects/{project_id}/dashboard"): LEADS,
    ("GET", "/projects/{project_id}/items"): LEADS,
    ("GET", "/projects/{project_id}/items/{item_id}"): LEADS,
    ("GET", "/projects/{project_id}/disagreements"): LEADS,
    ("POST", "/projects/{project_id}/items/{item_id}/adjudicate"): LEADS,
    ("GET", "/projects/{project_id}/export/{name}"): LEADS,
    ("GET", "/api/v1/projects/{project_id}/stats"): LEADS,
    ("GET", "/api/v1/projects/{project_id}/export/{name}"): LEADS,
    ("POST", "/api/v1/items/{item_id}/adjudication"): LEADS,
    ("GET", "/projects/{project_id}/quality"): LEADS,
    ("POST", "/projects/{project_id}/quality/items/{item_id}/review"): LEADS,
    ("GET", "/projects/{project_id}/influence"): LEADS,
    ("POST", "/projects/{project_id}/influence/verify"): LEADS,
    ("GET", "/projects/{project_id}/items/{item_id}/why"): LEADS,
    ("GET", "/api/v1/projects/{project_id}/quality"): LEADS,
    ("POST", "/api/v1/projects/{project_id}/quality/reviews"): LEADS,
    ("GET", "/api/v1/projects/{project_id}/influence"): LEADS,
    ("POST", "/api/v1/projects/{project_id}/influence/verify"): LEADS,
    ("GET", "/api/v1/projects/{project_id}/items/{item_id}/explanation"): LEADS,
}
# FastAPI's own documentation pages and the static files are public by design.
PUBLIC_FRAMEWORK_PATHS = {"/openapi.json", "/static"}


def app_routes(app) -> set[tuple[str, str]]:
    """(method, path) of every route, including those in included routers."""
    found = set()

    def visit(routes):
        for route in routes:
            if hasattr(route, "effective_route_contexts"):  # FastAPI's included routers
                for context in route.effective_route_contexts():
                    found.update((m, context.path) for m in context.methods if m != "HEAD")
            elif isinstance(route, APIRoute):
                found.update((m, route.path) for m in route.methods if m != "HEAD")
            elif getattr(route, "path", None) not in PUBLIC_FRAMEWORK_PATHS:
                raise AssertionError(f"unexpected route {route!r}")

    visit(app.routes)
    return found


def test_the_table_names_every_route(app):
    routes = app_routes(app)
    assert routes - set(ACCESS) == set(), "routes with no access decision"
    assert set(ACCESS) - routes == set(), "the table names routes that no longer exist"


@pytest.fixture
def world(app, users):
    """A project every role is a member of, with an item, a throwaway user and tokens."""
    ids = {}
    for role in (ADMIN, LEAD, ANNOTATOR):
        ids[role], token = users.create(role, role)
        ids[f"{role}_token"] = token
    ids["victim"], _ = users.create("victim", "annotator")
    admin = users.api(ids["admin_token"])
    pid = admin.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": ["a", "b"],
                                               "members": [LEAD, ANNOTATOR, "victim"]}).json()["id"]
    admin.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", b"text\none\ntwo\nthree\n", "text/csv")})
    ids["project"] = pid
    ids["item"] = admin.get(f"/api/v1/projects/{pid}/next").json()["id"]
    return ids


def _path(template: str, world: dict, role: str) -> str:
    from sqlalchemy import select

    from app.db import session_scope
    from app.models import ApiToken

    values = {"project_id": world["project"], "item_id": world["item"], "user_id": world["victim"],
              "simulation_id": 1, "name": "items.csv", "token": "ab" * 16,
              "digest": "0" * 64}
    if "{token_id}" in template:
        with session_scope(write=False) as session:
            owner = world.get(role, world[ADMIN])
            values["token_id"] = session.scalars(select(ApiToken.id).where(ApiToken.user_id == owner)).first()
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), template)


def _is_refused(response, *, anonymous: bool) -> bool:
    if response.status_code == 403:
        return True
    if anonymous and response.status_code == 401:
        return True
    return anonymous and response.status_code == 303 and response.headers["location"].startswith("/login")


@pytest.mark.parametrize("role", [ANON, ANNOTATOR, LEAD, ADMIN])
def test_each_route_lets_through_only_its_roles(app, world, role):
    # One browser session per role; deleting the project, revoking the role's API token and signing
    # out come last (in this order) so they cannot end the project, the token or the session early.
    ends = [("POST", "/projects/{project_id}/items/{item_id}/delete"), ("DELETE", "/api/v1/items/{item_id}"),
            ("DELETE", "/api/v1/projects/{project_id}"), ("POST", "/tokens/{token_id}/revoke"), ("POST", "/logout")]
    routes = sorted(ACCESS, key=lambda route: (ends.index(route) if route in ends else -1, route))
    with TestClient(app, base_url="http://testserver") as client:
        if role != ANON:
            login(client, role)
        csrf = csrf_of(client.get("/login" if role == ANON else "/tokens").text)
        for method, template in routes:
            path = _path(template, world, role)
            headers = {"X-CSRF-Token": csrf}
            if template.startswith("/api/") and role != ANON:
                headers = {"Authorization": f"Bearer {world[f'{role}_token']}"}
            response = client.request(method, path, headers=headers, follow_redirects=False)
            allowed = role in ACCESS[(method, template)]
            # For a public route, the sign-in redirect is where it leads, not a refusal.
            refused = _is_refused(response, anonymous=role == ANON and ANON not in ACCESS[(method, template)])
            assert response.status_code < 500, (method, path, role, response.text[:300])
            assert refused != allowed, f"{role} {method} {path} -> {response.status_code}"
