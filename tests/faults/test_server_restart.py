"""The web server is killed (SIGKILL) and restarted on the same port while an annotator is labelling
in the browser flow: signed session cookie, CSRF token from the page, htmx posts of one card at a time.

The annotator carries on as the open page would: the same cookie and CSRF token still work, the card
they held comes back, an answer whose response was lost can be sent again without counting twice, and
nothing labelled before the restart is missing.
"""

import io
import re

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from app.db import session_scope
from app.models import Annotation, Item, Lease, User

PASSWORD = "password-123"
CARD = re.compile(r'id="card" data-item="(\d+)"')
CSRF_HEADER = re.compile(r'hx-headers=\'\{"X-CSRF-Token": "([^"]+)"\}\'')
MINE_TOTAL = re.compile(r'id="mine-total">(\d+)<')


def card(html: str) -> int:
    found = CARD.search(html)
    assert found, f"no card in the page:\n{html[:2000]}"
    return int(found.group(1))


def mine_total(html: str) -> int:
    return int(MINE_TOTAL.search(html).group(1))


def small_pool(rows: int = 200) -> tuple[bytes, dict[str, str]]:
    rng = np.random.default_rng(11)
    X = rng.normal(size=(rows, 5)).round(3)
    out = io.StringIO()
    out.write("id,a,b,c,d,e\n")
    for i in range(rows):
        out.write(f"s{i}," + ",".join(str(v) for v in X[i]) + "\n")
    return out.getvalue().encode(), {f"s{i}": ("yes" if X[i, 0] > 0 else "no") for i in range(rows)}


def log_in(browser: httpx.Client, username: str, next_path: str) -> None:
    page = browser.get("/login")
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    answer = browser.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token,
                                          "next": next_path})
    assert answer.status_code == 303 and answer.headers["location"] == next_path, (answer.status_code, answer.text)
    assert "labelloop_session" in browser.cookies


@pytest.fixture
def project(stack, users):
    _, admin_token = users.create("admin", "admin")
    users.create("ann", "annotator", password=PASSWORD)
    stack.start_web()
    stack.start_worker()  # retrains every 3 labels: the ranking changes under the held card
    with httpx.Client(base_url=stack.url + "/api/v1", headers={"Authorization": f"Bearer {admin_token}"}) as admin:
        created = admin.post("/projects", json={"name": "restart", "kind": "tabular", "labels": ["no", "yes"],
                                                "strategy": "margin", "batch_size": 3, "members": ["ann"]})
        assert created.status_code == 201, created.text
        pid = created.json()["id"]
        pool, oracle = small_pool()
        upload = admin.post(f"/projects/{pid}/items", files={"file": ("pool.csv", pool, "text/csv")})
        assert upload.status_code == 201, upload.text
    return pid, oracle


def test_annotator_carries_on_after_the_web_server_is_killed_and_restarted(stack, project):
    pid, oracle = project
    with session_scope(write=False) as session:
        external = dict(session.execute(select(Item.id, Item.external_id).where(Item.project_id == pid)).all())
        ann_id = session.scalar(select(User.id).where(User.username == "ann"))

    browser = httpx.Client(base_url=stack.url, follow_redirects=False, timeout=30)
    log_in(browser, "ann", f"/projects/{pid}/label")
    page = browser.get(f"/projects/{pid}/label")
    assert page.status_code == 200
    csrf = CSRF_HEADER.search(page.text).group(1)
    htmx = {"X-CSRF-Token": csrf, "HX-Request": "true"}
    current = card(page.text)

    def answer(item_id: int, label: str) -> httpx.Response:
        return browser.post(f"/projects/{pid}/items/{item_id}/label", data={"label": label}, headers=htmx)

    labelled: dict[int, str] = {}
    for n in range(1, 7):
        label = oracle[external[current]]
        response = answer(current, label)
        assert response.status_code == 200, response.text
        assert mine_total(response.text) == n and "banner notice" not in response.text
        labelled[current] = label
        last_answered, current = current, card(response.text)
    held = current
    with session_scope(write=False) as session:
        assert session.scalar(select(Lease.id).where(Lease.item_id == held, Lease.user_id == ann_id))

    # ---- SIGKILL the web server: the next key press cannot reach it --------------------------------------
    web = stack.procs[0]
    stack.kill(web)
    with pytest.raises(httpx.TransportError):
        answer(held, oracle[external[held]])

    # ---- the same port again, a new process; the open page carries on ------------------------------------
    stack.start_web()
    # The answer sent just before the kill again (its response was lost, say): kept once, not twice.
    again = answer(last_answered, labelled[last_answered])
    assert again.status_code == 200, again.text
    assert "Log in" not in again.text and again.headers.get("HX-Redirect") is None  # the cookie still signs in
    assert card(again.text) == held and mine_total(again.text) == len(labelled)
    # A reload shows the same card, with the same CSRF token (the session lives in the signed cookie).
    reloaded = browser.get(f"/projects/{pid}/label")
    assert reloaded.status_code == 200, (reloaded.status_code, reloaded.headers.get("location"))
    assert card(reloaded.text) == held
    assert CSRF_HEADER.search(reloaded.text).group(1) == csrf
    # The held card's answer, with the token the page had before the restart.
    label = oracle[external[held]]
    response = answer(held, label)
    assert response.status_code == 200, response.text
    assert "banner notice" not in response.text, response.text  # no "lease lost" notice
    labelled[held] = label
    assert mine_total(response.text) == len(labelled) == 7
    assert card(response.text) not in labelled

    with session_scope(write=False) as session:
        rows = session.execute(select(Annotation.item_id, Annotation.label, Annotation.skipped).where(
            Annotation.project_id == pid, Annotation.user_id == ann_id)).all()
        finals = dict(session.execute(select(Item.id, Item.final_label).where(
            Item.project_id == pid, Item.final_label.is_not(None))).all())
    assert sorted((r.item_id, r.label) for r in rows) == sorted(labelled.items())
    assert not any(r.skipped for r in rows)
    assert finals == labelled
    browser.close()
