"""Roles and membership, sessions, login throttling, tokens, and body limits."""

import re

import pytest

from tests.test_pages import csrf_of, login


@pytest.fixture
def project(users):
    _, token = users.create("boss", "admin")
    admin = users.api(token)
    pid = admin.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": ["a", "b"]}).json()["id"]
    admin.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", b"text\none\ntwo\n", "text/csv")})
    return admin, pid


def test_non_members_see_neither_the_project_nor_its_items(users, project):
    admin, pid = project
    outsider = users.api(users.create("out", "annotator")[1])
    member = users.api(users.create("in", "annotator")[1])
    assert admin.post(f"/api/v1/projects/{pid}/members", json={"username": "in"}).status_code == 201
    assert outsider.get(f"/api/v1/projects/{pid}").status_code == 404
    assert outsider.get(f"/api/v1/projects/{pid}/next").status_code == 404
    assert outsider.get("/api/v1/projects").json() == []
    item = member.get(f"/api/v1/projects/{pid}/next").json()
    assert outsider.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "a"}).status_code == 404
    assert [p["id"] for p in member.get("/api/v1/projects").json()] == [pid]
    member_id = next(u["id"] for u in admin.get(f"/api/v1/projects/{pid}/members").json() if u["username"] == "in")
    assert admin.delete(f"/api/v1/projects/{pid}/members/{member_id}").status_code == 204
    assert member.get(f"/api/v1/projects/{pid}/next").status_code == 404


def test_members_only_admins_manage(users, project):
    _, pid = project
    lead = users.api(users.create("lead", "lead")[1])
    users.join(pid, "lead")
    assert lead.get(f"/api/v1/projects/{pid}/members").status_code == 200
    assert lead.post(f"/api/v1/projects/{pid}/members", json={"username": "lead"}).status_code == 403


def test_login_is_throttled_after_repeated_failures(client, users):
    users.create("ann", "annotator")
    token = csrf_of(client.get("/login").text)
    for _ in range(5):
        assert client.post("/login", data={"username": "ann", "password": "nope-nope",
                                           "csrf_token": token}).status_code == 401
    blocked = client.post("/login", data={"username": "ann", "password": "password-123", "csrf_token": token})
    assert blocked.status_code == 429 and "Too many failed attempts" in blocked.text
    assert int(blocked.headers["retry-after"]) > 0


def test_guesses_from_the_same_address_do_not_lock_out_a_browser_that_signed_in_before(app, users):
    """QA: behind a proxy every client has its address, so 5 guesses at a name locked its user out
    and 30 locked out everyone."""
    from fastapi.testclient import TestClient

    users.create("victim", "annotator")
    users.create("other", "annotator")
    with TestClient(app) as own, TestClient(app) as guesser, TestClient(app) as fresh:
        login(own, "victim")
        assert own.cookies.get("labelloop_device")
        own.post("/logout", data={"csrf_token": csrf_of(own.get("/projects").text)})
        token = csrf_of(guesser.get("/login").text)
        for name in ["victim"] * 5 + [f"nobody{n}" for n in range(30)]:
            guesser.post("/login", data={"username": name, "password": "nope-nope", "csrf_token": token})
        assert guesser.post("/login", data={"username": "victim", "password": "password-123",
                                            "csrf_token": token}).status_code == 429
        # the victim's own browser still signs in; another name from it, or a browser new to it, waits
        login(own, "VICTIM")
        token = csrf_of(own.get("/login").text)
        assert own.post("/login", data={"username": "other", "password": "password-123",
                                        "csrf_token": token}).status_code == 429
        token = csrf_of(fresh.get("/login").text)
        assert fresh.post("/login", data={"username": "victim", "password": "password-123",
                                          "csrf_token": token}).status_code == 429
        # its own failures still count: 5 wrong passwords from it, and it waits too
        own.post("/logout", data={"csrf_token": csrf_of(own.get("/projects").text)})
        token = csrf_of(own.get("/login").text)
        for _ in range(5):
            assert own.post("/login", data={"username": "victim", "password": "nope-nope",
                                            "csrf_token": token}).status_code == 401
        assert own.post("/login", data={"username": "victim", "password": "password-123",
                                        "csrf_token": token}).status_code == 429
        # a forged or another user's cookie is no known browser
        forged = TestClient(app, cookies={"labelloop_device": own.cookies.get("labelloop_device")[:-3] + "xyz"})
        with forged:
            token = csrf_of(forged.get("/login").text)
            assert forged.post("/login", data={"username": "victim", "password": "password-123",
                                               "csrf_token": token}).status_code == 429


def test_a_deactivated_user_is_signed_out_and_their_token_stops(client, users):
    users.create("boss", "admin")
    ann_id, ann_token = users.create("ann", "annotator")
    api = users.api(ann_token)
    assert api.get("/api/v1/me").status_code == 200
    admin_csrf = login(client, "boss")
    response = client.post(f"/admin/users/{ann_id}/active", data={"active": "false", "csrf_token": admin_csrf})
    assert response.status_code == 200 and "deactivated" in response.text
    assert api.get("/api/v1/me").status_code == 401
    # coming back does not revive a token that may have leaked meanwhile
    client.post(f"/admin/users/{ann_id}/active", data={"active": "true", "csrf_token": admin_csrf})
    assert api.get("/api/v1/me").status_code == 401


def test_a_password_reset_ends_existing_sessions_and_revokes_tokens(app, users):
    from fastapi.testclient import TestClient

    users.create("boss", "admin")
    ann_id, ann_token = users.create("ann", "annotator")
    with TestClient(app) as ann_browser, TestClient(app) as admin_browser:
        login(ann_browser, "ann")
        assert ann_browser.get("/projects", follow_redirects=False).status_code == 200
        admin_csrf = login(admin_browser, "boss")
        reset = admin_browser.post(f"/admin/users/{ann_id}/password",
                                   data={"password": "a-new-password", "csrf_token": admin_csrf})
        assert reset.status_code == 200 and "tokens are revoked" in reset.text
        assert ann_browser.get("/projects", follow_redirects=False).status_code == 303
        assert users.api(ann_token).get("/api/v1/me").status_code == 401
        login(ann_browser, "ann", "a-new-password")
        assert ann_browser.get("/projects", follow_redirects=False).status_code == 200
        assert admin_browser.get("/admin/users", follow_redirects=False).status_code == 200  # others stay in


def test_an_admin_resetting_their_own_password_stays_signed_in_here_only(app, users):
    from fastapi.testclient import TestClient

    users.create("boss", "admin")
    with TestClient(app) as here, TestClient(app) as elsewhere:
        login(elsewhere, "boss")
        csrf = login(here, "boss")
        me = here.get("/admin/users").text
        my_id = re.search(r'action="/admin/users/(\d+)/password"', me).group(1)
        reset = here.post(f"/admin/users/{my_id}/password", data={"password": "a-new-password", "csrf_token": csrf})
        assert reset.status_code == 200 and "Your new password is set" in reset.text
        assert here.get("/admin/users", follow_redirects=False).status_code == 200
        assert elsewhere.get("/admin/users", follow_redirects=False).status_code == 303


def test_tokens_are_created_once_listed_by_prefix_and_revocable(client, users):
    users.create("ann", "annotator")
    csrf = login(client, "ann")
    page = client.post("/tokens", data={"name": "script", "csrf_token": csrf})
    token = page.text.split('id="new-token">', 1)[1].split("<", 1)[0]
    assert token.startswith("ll_") and page.headers["cache-control"] == "no-store"
    api = users.api(token)
    assert api.get("/api/v1/me").json()["username"] == "ann"
    listing = client.get("/tokens").text
    assert token not in listing and token[:10] in listing
    token_id = int(listing.split('action="/tokens/', 1)[1].split("/", 1)[0])
    client.post(f"/tokens/{token_id}/revoke", data={"csrf_token": csrf})
    assert api.get("/api/v1/me").status_code == 401


def test_a_token_form_sent_again_mints_no_second_token(client, users):
    """QA: a reload of the page a new token was shown on sent the form again and made a second live
    token nobody saw."""
    import re

    users.create("ann", "annotator")
    login(client, "ann")
    form = client.get("/tokens").text
    data = {"name": "script", "csrf_token": csrf_of(form),
            "form_id": re.search(r'name="form_id" value="([^"]+)"', form)[1]}
    first = client.post("/tokens", data=data)
    assert 'id="new-token"' in first.text
    again = client.post("/tokens", data=data)  # the browser's "Confirm form resubmission"
    assert 'id="new-token"' not in again.text and "That form was sent before" in again.text
    assert again.text.count("<td>script</td>") == 1
    # the page it was shown on has a new form: another token is one click
    data["form_id"] = re.search(r'name="form_id" value="([^"]+)"', first.text)[1]
    assert 'id="new-token"' in client.post("/tokens", data=data).text


def test_someone_elses_token_cannot_be_revoked_by_an_annotator(client, users):
    from sqlalchemy import select

    from app.db import session_scope
    from app.models import ApiToken

    users.create("ann", "annotator")
    users.create("bob", "annotator")
    with session_scope(write=False) as session:
        bob_token_id = session.scalars(select(ApiToken.id).join(ApiToken.user).where(
            ApiToken.user.has(username="bob"))).one()
    csrf = login(client, "ann")
    assert client.post(f"/tokens/{bob_token_id}/revoke", data={"csrf_token": csrf}).status_code == 404


def test_oversized_bodies_get_413_not_5xx(users, project):
    admin, pid = project
    huge = {"name": "x" * (2 * 1024 * 1024), "kind": "text", "labels": ["a", "b"]}
    assert admin.post("/api/v1/projects", json=huge).status_code == 413

    def chunks():
        for _ in range(3):
            yield b"[" + b"1," * 400_000 + b"1]"

    chunked = admin.post("/api/v1/projects", content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413


def test_upload_over_the_size_limit_is_413(monkeypatch, users, project):
    from app.config import get_settings
    from app.main import create_app

    admin, pid = project
    monkeypatch.setattr(get_settings(), "max_upload_bytes", 1000)
    small_app = create_app()
    from fastapi.testclient import TestClient

    with TestClient(small_app, headers=dict(admin.headers)) as limited:
        response = limited.post(f"/api/v1/projects/{pid}/items",
                                files={"file": ("big.csv", b"text\n" + b"x" * 5000 + b"\n", "text/csv")})
    assert response.status_code == 413
    assert response.json()["detail"] == ("The file is larger than this server's upload limit of 1000 bytes: split "
                                         "it into smaller files and upload them one after the other.")
    from app.main import size_text

    assert [size_text(n) for n in (300_000, 1536 * 1024, 512 * 1024 ** 2, 20 * 1024 ** 3)] == \
        ["293 KB", "1.5 MB", "512 MB", "20 GB"]


def test_only_an_admins_upload_gets_the_upload_allowance(client, users, project):
    # a form is read (its files spooled to disk) before any route dependency runs, so the caller is
    # judged from the headers first: anyone else may send no more than an ordinary body (1 MB)
    admin, pid = project
    big = b"text\n" + b"".join(b"row %d %s\n" % (i, b"x" * 100) for i in range(22_000))  # about 2.4 MB
    assert len(big) > 2 * 1024 * 1024
    files = {"file": ("big.csv", big, "text/csv")}
    anonymous = client.post("/login", files=files, data={"username": "x", "password": "y"})
    assert anonymous.status_code == 413
    assert client.post(f"/projects/{pid}/upload", files=files).status_code == 413
    lead = users.api(users.create("lead", "lead")[1])
    assert lead.post(f"/api/v1/projects/{pid}/items", files=files).status_code == 413
    assert users.api("ll_not-a-token").post(f"/api/v1/projects/{pid}/items", files=files).status_code == 413
    assert admin.post(f"/api/v1/projects/{pid}/items", files=files).status_code == 201
    csrf = login(client, "boss")
    page = client.post(f"/projects/{pid}/upload", files={"file": ("again.csv", big.replace(b"row", b"line"),
                                                                 "text/csv")}, data={"csrf_token": csrf})
    assert page.status_code == 200 and "22,000" in page.text


def _login_cookie(app, base_url: str) -> str:
    """The Set-Cookie header of a successful sign-in on this app."""
    from fastapi.testclient import TestClient

    with TestClient(app, base_url=base_url) as browser:
        page = browser.get("/login")
        response = browser.post("/login", data={"username": "ann", "password": "password-123",
                                                "csrf_token": csrf_of(page.text), "next": "/projects"},
                                follow_redirects=False)
    assert response.status_code == 303, response.text
    cookies = [c for c in response.headers.get_list("set-cookie") if c.startswith("labelloop_session=")]
    assert len(cookies) == 1
    return cookies[0]


def _attributes(set_cookie: str) -> dict[str, str]:
    pairs = [part.strip().partition("=") for part in set_cookie.split(";")[1:]]
    return {name.lower(): value.lower() for name, _, value in pairs}


def test_the_session_cookie_is_httponly_lax_and_not_secure_by_default(app, users):
    users.create("ann", "annotator")
    attributes = _attributes(_login_cookie(app, "http://testserver"))
    assert "httponly" in attributes
    assert attributes["samesite"] == "lax"
    assert "secure" not in attributes
    assert attributes["path"] == "/"


def test_the_session_cookie_is_secure_when_https_only_is_set(monkeypatch, users):
    from app.config import Settings
    from app.main import create_app

    users.create("ann", "annotator")
    monkeypatch.setenv("LABELLOOP_HTTPS_ONLY", "true")
    settings = Settings()
    assert settings.https_only is True
    attributes = _attributes(_login_cookie(create_app(settings), "https://testserver"))
    assert "secure" in attributes
    assert "httponly" in attributes and attributes["samesite"] == "lax"


def test_every_answer_carries_the_anti_framing_headers(client, users):
    users.create("boss", "admin")
    login(client, "boss")
    for path in ("/login", "/admin/users", "/static/css/app.css", "/api/v1/me", "/nowhere"):
        headers = client.get(path, follow_redirects=False).headers
        assert headers["x-frame-options"] == "DENY", path
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self';" in policy, path
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "same-origin", path
    # the API docs too: their Swagger UI is vendored and started from a file (QA: a CDN's, blank offline)
    docs = client.get("/docs")
    assert "script-src 'self';" in docs.headers["content-security-policy"]
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200


def test_an_admin_changes_roles_and_names_are_one_whatever_their_case(app, client, users):
    from fastapi.testclient import TestClient

    boss_id, _ = users.create("boss", "admin")
    ann_id, ann_token = users.create("ann", "annotator")
    csrf = login(client, "boss")
    api = users.api(ann_token)
    promoted = client.post(f"/admin/users/{ann_id}/role", data={"role": "lead", "csrf_token": csrf})
    assert promoted.status_code == 200 and "ann is now a lead." in promoted.text
    assert api.get("/api/v1/me").json()["role"] == "lead"  # at once, token and all
    bogus = client.post(f"/admin/users/{ann_id}/role", data={"role": "god", "csrf_token": csrf})
    assert bogus.status_code == 422 and "unknown role" in bogus.text
    mine = client.post(f"/admin/users/{boss_id}/role", data={"role": "annotator", "csrf_token": csrf})
    assert mine.status_code == 422 and "cannot change your own role" in mine.text
    twin = client.post("/admin/users", data={"username": "ANN", "role": "annotator", "password": "password-123",
                                             "csrf_token": csrf})
    assert twin.status_code == 422 and "A user named &#39;ann&#39; already exists" in twin.text
    with TestClient(app) as fresh:
        login(fresh, "ANN")  # signing in does not depend on the case either
        assert fresh.get("/projects", follow_redirects=False).status_code == 200


def test_an_admin_sees_and_revokes_a_users_live_tokens_without_knowing_their_ids(client, users):
    users.create("boss", "admin")
    ann_id, ann_token = users.create("ann", "annotator")
    csrf = login(client, "boss")
    assert re.search(rf'/admin/users/{ann_id}/tokens/revoke', client.get("/admin/users").text)
    done = client.post(f"/admin/users/{ann_id}/tokens/revoke", data={"csrf_token": csrf})
    assert done.status_code == 200 and "Revoked 1 API token of ann." in done.text
    assert users.api(ann_token).get("/api/v1/me").status_code == 401
    assert f"/admin/users/{ann_id}/tokens/revoke" not in done.text  # none live now


def test_passwords_are_argon2id_at_the_recommended_cost_outside_the_test_suite(users):
    from argon2 import PasswordHasher

    from app.config import Settings
    from app.db import session_scope
    from app.models import User
    from app.security import verify_password

    # The suite runs at a lower cost (tests/conftest.py); a deployment gets argon2-cffi's defaults,
    # RFC 9106's second recommended profile: 3 passes over 64 MiB.
    defaults = {name: Settings.model_fields[name].default
                for name in ("password_hash_time_cost", "password_hash_memory_kib")}
    assert defaults == {"password_hash_time_cost": 3, "password_hash_memory_kib": 65536}
    assert (PasswordHasher().time_cost, PasswordHasher().memory_cost) == (3, 65536)
    users.create("ann", "annotator", password="password-123")
    with session_scope(write=False) as session:
        stored = session.query(User).filter_by(username="ann").one().password_hash
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,")  # the suite's cost, recorded in the hash
    # a hash records its own cost, so one made at the production cost verifies here as well
    assert verify_password(PasswordHasher().hash("password-123"), "password-123")
    assert not verify_password(stored, "password-124")
