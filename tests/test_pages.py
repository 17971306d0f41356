"""Browser pages through HTTP: login, roles, CSRF, project creation, upload and the htmx label flow."""

import re

import pytest
from sqlalchemy import func, select

from app.db import session_scope
from app.models import Annotation, Item, User
from tests.data import rotten_tomatoes, to_csv


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(r'"X-CSRF-Token": "([^"]+)"', html)
    return match.group(1)


def login(client, username, password="password-123"):
    page = client.get("/login")
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": csrf_of(page.text), "next": "/projects"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/projects").text)


def test_pages_redirect_to_login_when_signed_out(client):
    response = client.get("/projects", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/projects"
    htmx = client.post("/projects/1/undo", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.status_code in (401, 403)


def test_wrong_password_is_refused(client, users):
    users.create("ann", "annotator")
    page = client.get("/login")
    response = client.post("/login", data={"username": "ann", "password": "wrong-password",
                                           "csrf_token": csrf_of(page.text)})
    assert response.status_code == 401 and "Wrong username or password" in response.text


def test_login_without_csrf_token_is_refused(client, users):
    users.create("ann", "annotator")
    client.get("/login")
    response = client.post("/login", data={"username": "ann", "password": "password-123"})
    assert response.status_code == 403


def test_login_next_cannot_leave_the_site(client, users):
    users.create("ann", "annotator")
    page = client.get("/login")
    response = client.post("/login", data={"username": "ann", "password": "password-123",
                                           "csrf_token": csrf_of(page.text), "next": "https://evil.example/"},
                           follow_redirects=False)
    assert response.headers["location"] == "/projects"


def test_admin_creates_a_project_and_uploads_a_pool(client, users):
    users.create("boss", "admin")
    token = login(client, "boss")
    bad = client.post("/projects/new", data={"name": "R", "kind": "text", "labels": "only-one",
                                             "strategy": "margin", "csrf_token": token})
    assert bad.status_code == 422 and "labels" in bad.text
    created = client.post("/projects/new", data={"name": "Reviews", "kind": "text", "labels": "fresh, rotten, plot",
                                                 "strategy": "entropy", "batch_size": "5", "csrf_token": token},
                          follow_redirects=False)
    assert created.status_code == 303
    url = created.headers["location"]
    overview = client.get(url)
    assert overview.status_code == 200 and "Upload items" in overview.text and "strategy entropy" in overview.text
    rows = rotten_tomatoes(40)
    upload = client.post(f"{url}/upload", files={"file": ("pool.csv", to_csv(rows, ["id", "text"]), "text/csv")},
                         headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert upload.status_code == 200 and "Imported <strong>40</strong>" in upload.text
    broken = client.post(f"{url}/upload", files={"file": ("bad.csv", b"id,text\n1,a,b\n", "text/csv")},
                         headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert broken.status_code == 422 and "line 2: expected 2 fields, found 3" in broken.text
    assert "nothing of it was kept" in broken.text
    # The same texts again without ids: nothing is added twice, and the page says so.
    texts = to_csv(rows[:25], ["text"])
    again = client.post(f"{url}/upload", files={"file": ("again.csv", texts, "text/csv")},
                        headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert again.status_code == 200 and "Imported <strong>0</strong> items" in again.text
    assert ("Nothing in this file was new: <strong>25</strong> rows were already in the project or earlier in the "
            "file (the same content) and were left out, not added twice: line 2, line 3") in again.text
    assert again.text.count(", line ") == 19 and " and 5 more. To add such rows as new items anyway" in again.text


def test_upload_progress_is_kept_per_token_and_only_admins_read_it(client, users):
    users.create("boss", "admin")
    users.create("lead", "lead")
    token = login(client, "boss")
    created = client.post("/projects/new", data={"name": "Reviews", "kind": "text", "labels": "fresh, rotten",
                                                 "strategy": "margin", "csrf_token": token}, follow_redirects=False)
    url = created.headers["location"]
    ok_token, bad_token = "a1" * 16, "b2" * 16
    assert "Sending the file" in client.get(f"{url}/upload-progress/{ok_token}").text  # nothing started yet
    rows = rotten_tomatoes(12_000)  # three chunks of INSERT_CHUNK rows
    upload = client.post(f"{url}/upload", files={"file": ("pool.csv", to_csv(rows, ["id", "text"]), "text/csv")},
                         data={"progress_token": ok_token}, headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert upload.status_code == 200, upload.text
    done = client.get(f"{url}/upload-progress/{ok_token}")
    assert done.status_code == 200 and "Imported <strong>12,000</strong> rows" in done.text
    broken = client.post(f"{url}/upload", files={"file": ("bad.csv", b"id,text\n1,a,b\n", "text/csv")},
                         data={"progress_token": bad_token}, headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert broken.status_code == 422
    assert "refused; nothing of it was kept" in client.get(f"{url}/upload-progress/{bad_token}").text
    # A token is hex of 16-64 digits: anything else never reaches the file system.
    assert client.get(f"{url}/upload-progress/..%2F..%2Fsecret").status_code == 404
    assert client.get(f"{url}/upload-progress/{'g' * 32}").status_code == 404
    # An upload with a malformed token imports as before, without progress.
    more = [{"id": f"new-{i}", "text": f"another review {i}"} for i in range(5)]
    plain = client.post(f"{url}/upload", files={"file": ("more.csv", to_csv(more, ["id", "text"]), "text/csv")},
                        data={"progress_token": "../x"}, headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert plain.status_code == 200 and "Imported <strong>5</strong>" in plain.text
    client.cookies.clear()
    login(client, "lead")
    assert client.get(f"{url}/upload-progress/{ok_token}").status_code == 403


def test_annotator_cannot_open_admin_or_lead_pages(client, users):
    users.create("boss", "admin")
    users.create("ann", "annotator")
    login(client, "boss")
    # make a project as admin, then switch to the annotator
    token = csrf_of(client.get("/projects/new").text)
    client.post("/projects/new", data={"name": "P", "kind": "text", "labels": "a,b", "strategy": "margin",
                                       "csrf_token": token})
    client.cookies.clear()
    token = login(client, "ann")
    assert client.get("/projects/new").status_code == 403
    assert client.get("/projects/1").status_code in (403, 404)
    assert client.post("/projects/new", data={"name": "x", "kind": "text", "labels": "a,b", "strategy": "margin",
                                              "csrf_token": token}).status_code == 403
    assert client.get("/projects").status_code == 200


@pytest.fixture
def labelling_session(client, users):
    _, admin_token = users.create("boss", "admin")
    admin = users.api(admin_token)
    pid = admin.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": ["good", "bad"]}).json()["id"]
    pool = 'id,text,source\n1,<script>alert(1)</script>,web\n2,second item,web\n3,third item,web\n'
    admin.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", pool.encode(), "text/csv")})
    users.create("ann", "annotator")
    users.join(pid, "ann")
    token = login(client, "ann")
    return client, pid, token


def test_label_page_shows_a_card_with_keys_and_escapes_item_text(labelling_session):
    client, pid, _ = labelling_session
    page = client.get(f"/projects/{pid}/label")
    assert page.status_code == 200
    assert '<kbd>1</kbd> good' in page.text and '<kbd>2</kbd> bad' in page.text and '<kbd>s</kbd> Skip' in page.text
    assert "<script>alert(1)</script>" not in page.text
    # whichever item came first, the hostile one is shown as text once it is served
    for _ in range(3):
        if "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text:
            break
        item = re.search(r'data-item="(\d+)"', page.text).group(1)
        page = client.post(f"/projects/{pid}/items/{item}/skip", headers={
            "HX-Request": "true", "X-CSRF-Token": csrf_of(client.get(f"/projects/{pid}/label").text)})
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_the_tenth_label_is_on_key_0_and_the_help_names_labels_without_a_key(client, users):
    """QA: the digits demo's 0 was on key a, and labels past the keys had none, with no word of it."""
    _, token = users.create("boss", "admin")
    admin = users.api(token)
    labels = [f"L{n:02}" for n in range(40)]
    pid = admin.post("/api/v1/projects", json={"name": "Many", "kind": "text", "labels": labels}).json()["id"]
    admin.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", b"text\none\n", "text/csv")})
    login(client, "boss")
    page = client.get(f"/projects/{pid}/label").text
    keys = dict(re.findall(r'data-key="(\w*)"[^>]*>\s*(?:<kbd>\w</kbd>)?\s*(L\d\d)', page))
    keyed = {label: key for key, label in keys.items() if key}
    assert keyed["L08"] == "9" and keyed["L09"] == "0" and keyed["L10"] == "a" and len(keyed) == 34
    assert "The 6 labels after the 34th have no key: click them." in page


def test_the_card_hides_metadata_that_gives_the_answer_and_shows_the_guidelines(client, users):
    """QA: a file's gold column (kept as metadata) was under every card, and the API's /next sent it
    too; the project's description, where guidelines go, was nowhere on the label page."""
    _, admin_token = users.create("boss", "admin")
    admin = users.api(admin_token)
    pid = admin.post("/api/v1/projects", json={
        "name": "P", "kind": "text", "labels": ["good", "bad"], "holdout_fraction": 0,
        "description": "Sarcasm is <b>bad</b>.\nAsk on #labelling."}).json()["id"]
    pool = 'id,text,gold,source,extra\n1,one,good,web,"{""a"": 1}"\n'
    admin.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", pool.encode(), "text/csv")})
    _, ann_token = users.create("ann", "annotator")
    users.join(pid, "ann")
    assert users.api(ann_token).get(f"/api/v1/projects/{pid}/next").json()["meta"] == {
        "source": "web", "extra": '{"a": 1}'}
    login(client, "ann")
    page = client.get(f"/projects/{pid}/label").text
    assert "<dt>source</dt><dd>web</dd>" in page and "<dt>gold</dt>" not in page
    assert '<details class="guidelines" id="guidelines" open>' in page
    assert "Sarcasm is &lt;b&gt;bad&lt;/b&gt;.\nAsk on #labelling." in page


def test_the_last_card_offers_the_items_skipped_long_ago(client, users):
    """QA: 'Pick one under Your last answers, or press u' reached neither the skipped item once five
    answers came after it."""
    _, admin_token = users.create("boss", "admin")
    admin = users.api(admin_token)
    pid = admin.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": ["good", "bad"],
                                               "holdout_fraction": 0, "strategy": "random"}).json()["id"]
    pool = "text\n" + "".join(f"item number {n}\n" for n in range(8))
    admin.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", pool.encode(), "text/csv")})
    users.create("ann", "annotator")
    users.join(pid, "ann")
    token = login(client, "ann")
    hx = {"HX-Request": "true", "X-CSRF-Token": token}
    page = client.get(f"/projects/{pid}/label").text
    skipped = re.search(r'data-item="(\d+)"', page).group(1)
    page = client.post(f"/projects/{pid}/items/{skipped}/skip", headers=hx).text
    for _ in range(7):
        item = re.search(r'data-item="(\d+)"', page).group(1)
        page = client.post(f"/projects/{pid}/items/{item}/label", data={"label": "good"}, headers=hx).text
    assert "Nothing left for you here" in page
    assert f'hx-post="/projects/{pid}/items/{skipped}/change"' in page.split('id="skipped-items"')[1].split("</ul>")[0]
    card = client.post(f"/projects/{pid}/items/{skipped}/change", headers=hx).text
    assert f'data-item="{skipped}"' in card and "You skipped it here." in card


def test_an_answer_on_a_card_someone_else_answered_meanwhile_is_kept_and_said(client, users):
    """QA: a card left open past its lease was served to another annotator; both answers were kept
    and neither was told."""
    from datetime import timedelta

    from sqlalchemy import update

    from app.db import session_scope
    from app.models import Lease, utcnow

    _, admin_token = users.create("boss", "admin")
    admin = users.api(admin_token)
    pid = admin.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": ["good", "bad"],
                                               "holdout_fraction": 0, "strategy": "random"}).json()["id"]
    admin.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", b"text\none\ntwo\n", "text/csv")})
    users.create("ann", "annotator")
    _, bob_token = users.create("bob", "annotator")
    users.join(pid, "ann", "bob")
    token = login(client, "ann")
    item = re.search(r'data-item="(\d+)"', client.get(f"/projects/{pid}/label").text).group(1)
    with session_scope() as session:  # ann's card stays open past its lease
        session.execute(update(Lease).values(expires_at=utcnow() - timedelta(minutes=1)))
    bob = users.api(bob_token)
    served = bob.get(f"/api/v1/projects/{pid}/next").json()["id"]
    if served != int(item):  # the other item came first: answer it, and ann's is next
        assert bob.post(f"/api/v1/items/{served}/annotations", json={"label": "bad"}).status_code == 201
        assert bob.get(f"/api/v1/projects/{pid}/next").json()["id"] == int(item)
    assert bob.post(f"/api/v1/items/{item}/annotations", json={"label": "bad"}).status_code == 201
    page = client.post(f"/projects/{pid}/items/{item}/label", data={"label": "good"},
                       headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert page.status_code == 200
    assert "Your answer is kept, but someone else answered that item while it waited on your screen" in page.text


def test_htmx_label_swaps_in_the_next_card_and_progress_moves(labelling_session):
    client, pid, token = labelling_session
    page = client.get(f"/projects/{pid}/label")
    first = re.search(r'data-item="(\d+)"', page.text).group(1)
    response = client.post(f"/projects/{pid}/items/{first}/label", data={"label": "good"},
                           headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert response.status_code == 200
    assert "<html" not in response.text  # a fragment, not a page
    assert re.search(r'id="mine-total">1<', response.text)
    second = re.search(r'data-item="(\d+)"', response.text).group(1)
    assert second != first
    undo = client.post(f"/projects/{pid}/undo", headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert f'data-item="{first}"' in undo.text
    assert re.search(r"Your answer “good” on #\d+ was taken back; answer this item again.", undo.text)  # (QA: what)
    assert re.search(r'id="mine-total">0<', undo.text)


def test_a_card_left_open_in_another_tab_does_not_overwrite_the_answer(labelling_session):
    client, pid, token = labelling_session
    htmx = {"HX-Request": "true", "X-CSRF-Token": token}
    card = client.get(f"/projects/{pid}/label").text
    first = re.search(r'data-item="(\d+)"', card).group(1)
    first_external = re.search(r'<span class="muted">#([^<]+)</span>', card).group(1)
    assert client.post(f"/projects/{pid}/items/{first}/label", data={"label": "good"}, headers=htmx).status_code == 200
    stale = client.post(f"/projects/{pid}/items/{first}/label", data={"label": "bad"}, headers=htmx)
    assert stale.status_code == 200 and f"You had already answered #{first_external} as “good”" in stale.text
    assert "Your last answers" in stale.text
    again = client.post(f"/projects/{pid}/items/{first}/label", data={"label": "good"}, headers=htmx)
    assert "already" not in again.text  # a double submit of the same answer is no conflict
    skipped = client.post(f"/projects/{pid}/items/{first}/skip", headers=htmx)
    assert "You had already answered" in skipped.text
    with session_scope() as session:
        labels = session.scalars(select(Annotation.label).where(Annotation.item_id == int(first))).all()
    assert labels == ["good"]


def test_an_answer_under_your_last_answers_can_be_changed_and_stands_until_it_is(labelling_session):
    client, pid, token = labelling_session
    htmx = {"HX-Request": "true", "X-CSRF-Token": token}
    first = re.search(r'data-item="(\d+)"', client.get(f"/projects/{pid}/label").text).group(1)
    after_first = client.post(f"/projects/{pid}/items/{first}/label", data={"label": "good"}, headers=htmx).text
    second = re.search(r'data-item="(\d+)"', after_first).group(1)
    after_second = client.post(f"/projects/{pid}/items/{second}/label", data={"label": "bad"}, headers=htmx).text
    assert f'hx-post="/projects/{pid}/items/{first}/change"' in after_second  # the older answer, not only the last

    def answers() -> dict:
        with session_scope() as session:
            return dict(session.execute(select(Annotation.item_id, Annotation.label).where(
                Annotation.item_id.in_([int(first), int(second)]))).all())

    back = client.post(f"/projects/{pid}/items/{first}/change", headers=htmx)
    assert f'data-item="{first}"' in back.text and "You answered “good” here" in back.text
    assert '"change": "true"' in back.text and "Keep my answer" in back.text
    assert answers() == {int(first): "good", int(second): "bad"}  # nothing lost by looking, or by walking away
    kept = client.get(f"/projects/{pid}/label", headers=htmx)  # u: keep it
    assert f'data-item="{first}"' not in kept.text and answers() == {int(first): "good", int(second): "bad"}
    client.post(f"/projects/{pid}/items/{first}/change", headers=htmx)
    client.post(f"/projects/{pid}/items/{first}/label", data={"label": "bad", "change": "true"}, headers=htmx)
    assert answers() == {int(first): "bad", int(second): "bad"}
    nothing = client.post(f"/projects/{pid}/items/999999/change", headers=htmx)
    assert "no longer yours to change" in nothing.text


def test_the_last_card_says_skipped_items_wait_and_how_to_reach_them(labelling_session):
    client, pid, token = labelling_session
    htmx = {"HX-Request": "true", "X-CSRF-Token": token}
    page = client.get(f"/projects/{pid}/label").text
    for _ in range(3):
        item = re.search(r'data-item="(\d+)"', page).group(1)
        page = client.post(f"/projects/{pid}/items/{item}/skip", headers=htmx).text
    assert "Nothing left for you here" in page and "You skipped 3 items that no one has finished yet" in page
    assert "Every item in this project has been answered" not in page


def test_an_answer_after_the_session_ended_leads_back_to_the_label_page(labelling_session):
    client, pid, token = labelling_session
    item = re.search(r'data-item="(\d+)"', client.get(f"/projects/{pid}/label").text).group(1)
    client.cookies.clear()  # signed out in another tab, or the cookie expired
    answer = client.post(f"/projects/{pid}/items/{item}/label", data={"label": "good"},
                         headers={"HX-Request": "true", "X-CSRF-Token": token,
                                  "HX-Current-URL": f"http://testserver/projects/{pid}/label"})
    assert answer.status_code == 401  # not "this form did not come from labelloop"
    target = answer.headers["HX-Redirect"]
    assert target == f"/login?next=/projects/{pid}/label&ended=1"
    assert "what you sent last was not saved" in client.get(target).text
    csrf = csrf_of(client.get("/login").text)
    back = client.post("/login", data={"username": "ann", "password": "password-123", "csrf_token": csrf,
                                       "next": f"/projects/{pid}/label"}, follow_redirects=False)
    assert back.headers["location"] == f"/projects/{pid}/label"
    assert f'data-item="{item}"' in client.get(back.headers["location"]).text  # the same card, still theirs


def test_htmx_post_without_csrf_is_refused(labelling_session):
    client, pid, _ = labelling_session
    page = client.get(f"/projects/{pid}/label")
    item = re.search(r'data-item="(\d+)"', page.text).group(1)
    response = client.post(f"/projects/{pid}/items/{item}/label", data={"label": "good"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 403


def test_label_conflict_is_explained_and_the_page_carries_on(labelling_session, users):
    client, pid, token = labelling_session
    page = client.get(f"/projects/{pid}/label")
    item = re.search(r'data-item="(\d+)"', page.text).group(1)
    response = client.post(f"/projects/{pid}/items/{item}/label", data={"label": "nonsense"},
                           headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert response.status_code == 200 and "is not a label of this project" in response.text
    assert 'data-item="' in response.text


def test_lead_sees_the_project_overview_with_models_and_jobs(client, users):
    _, admin_token = users.create("boss", "admin")
    admin = users.api(admin_token)
    pid = admin.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": ["a", "b"]}).json()["id"]
    users.create("lead", "lead")
    users.join(pid, "lead")
    login(client, "lead")
    page = client.get(f"/projects/{pid}")
    assert page.status_code == 200 and "Model versions" in page.text and "Upload items" not in page.text
    status = client.get(f"/projects/{pid}", headers={"HX-Request": "true", "HX-Target": "status"})
    assert status.status_code == 200 and "<html" not in status.text and "<h2>Jobs</h2>" in status.text


def test_unknown_pages_are_friendly_404s(client, users):
    users.create("ann", "annotator")
    login(client, "ann")
    response = client.get("/projects/999/label")
    assert response.status_code == 404 and "There is no project 999" in response.text
    for address in ("/projects/abc/label", "/projects/99999999999999999999/label"):  # typed by hand
        mistyped = client.get(address)
        assert mistyped.status_code == 404 and "There is no project" in mistyped.text
        assert "not valid" not in mistyped.text
    assert client.get("/nowhere").status_code == 404


def test_logout_ends_the_session_on_the_server_too(client, users):
    users.create("ann", "annotator")
    token = login(client, "ann")
    copied = client.cookies.get("labelloop_session")  # say, left behind on a shared computer
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert client.get("/projects", follow_redirects=False).status_code == 303
    client.cookies.set("labelloop_session", copied)
    assert client.get("/projects", follow_redirects=False).status_code == 303
    refused = client.post("/tokens", data={"name": "x", "csrf_token": token}, follow_redirects=False)
    assert refused.status_code == 303 and "ll_" not in refused.text


def test_project_form_takes_strategy_parameters_and_refuses_bad_ones(client, users):
    users.create("boss", "admin")
    token = login(client, "boss")
    base = {"name": "P", "kind": "text", "labels": "a,b", "strategy": "margin", "csrf_token": token}
    bad_json = client.post("/projects/new", data={**base, "strategy_params": "{nope"})
    assert bad_json.status_code == 422
    assert "The strategy parameters are not valid JSON (at character 2); write them like {&#34;n_members&#34;: 7}" \
        in bad_json.text
    unknown = client.post("/projects/new", data={**base, "strategy_params": '{"n_members": 7}'})
    assert unknown.status_code == 422
    assert "Strategy &#39;margin&#39; has no parameter &#39;n_members&#39;; it takes batch_mode, batch_params." \
        in unknown.text
    no_name = client.post("/projects/new", data={**base, "name": ""})
    assert no_name.status_code == 422 and "Name: the name is empty." in no_name.text and 'value="a,b"' in no_name.text
    one_label = client.post("/projects/new", data={**base, "labels": "only"})
    assert one_label.status_code == 422 and "Give at least two labels" in one_label.text
    assert "List should have" not in one_label.text
    ok = client.post("/projects/new", data={**base, "strategy_params": "{}", "batch_mode": "top_k"},
                     follow_redirects=False)
    assert ok.status_code == 303


def test_the_project_page_counts_training_labels_as_the_dashboard_does(client, users):
    # holdout labels are measured on, never trained on: the overview must not count them as training labels
    _, token = users.create("boss", "admin")
    admin = users.api(token)
    pid = admin.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": ["a", "b"],
                                               "holdout_fraction": 0.5}).json()["id"]
    pool = "id,text,label\n" + "".join(f"{i},text {i},{'ab'[i % 2]}\n" for i in range(40))
    admin.post(f"/api/v1/projects/{pid}/items", data={"label_column": "label"},
               files={"file": ("p.csv", pool, "text/csv")})
    with session_scope() as session:
        training = session.scalar(select(func.count()).select_from(Item).where(
            Item.project_id == pid, Item.is_holdout.is_(False), Item.final_label.is_not(None)))
    assert 0 < training < 40
    login(client, "boss")
    page = client.get(f"/projects/{pid}").text
    assert re.search(r'<span class="value">(\d+)</span><span class="label">training labels', page).group(1) \
        == str(training)


def test_logout_typed_in_the_address_bar_offers_its_button(client, users):
    users.create("ann", "annotator")
    login(client, "ann")
    page = client.get("/logout")
    assert page.status_code == 200 and 'action="/logout"' in page.text and "signed in as <strong>ann" in page.text
    assert client.get("/projects", follow_redirects=False).status_code == 200  # a GET signs no one out


def test_the_last_card_says_why_nothing_is_left(labelling_session):
    client, pid, token = labelling_session
    htmx = {"HX-Request": "true", "X-CSRF-Token": token}
    page = client.get(f"/projects/{pid}/label").text
    for _ in range(3):
        item = re.search(r'data-item="(\d+)"', page).group(1)
        page = client.post(f"/projects/{pid}/items/{item}/label", data={"label": "good"}, headers=htmx).text
    assert "Nothing left for you here" in page and "Every item in this project is done." in page
    from app.projects.schemas import ProjectCreate
    from app.projects.service import create_project

    with session_scope() as session:
        admin = session.scalar(select(User).where(User.username == "boss"))
        empty_id = create_project(session, created_by=admin, data=ProjectCreate(
            name="Empty", kind="text", labels=["a", "b"], members=["ann"])).id
    assert "This project has no items yet" in client.get(f"/projects/{empty_id}/label").text


def test_the_new_project_form_sets_the_holdout_share_and_members(client, users):
    users.create("boss", "admin")
    users.create("ann", "annotator")
    users.create("lee", "lead")
    token = login(client, "boss")
    form = client.get("/projects/new").text
    assert 'name="holdout_percent"' in form and 'value="ann"' in form and 'value="lee"' in form
    base = {"name": "P", "kind": "text", "labels": "a,b", "strategy": "margin", "csrf_token": token}
    too_big = client.post("/projects/new", data={**base, "holdout_percent": "80", "members": ["ann"]})
    assert too_big.status_code == 422 and "Holdout share: give a number from 0 to 50%." in too_big.text
    assert 'value="ann"\n        checked' in too_big.text  # the ticks are kept
    made = client.post("/projects/new", data={**base, "holdout_percent": "25", "members": ["ann", "lee"]},
                       follow_redirects=False)
    assert made.status_code == 303
    pid = int(made.headers["location"].rsplit("/", 1)[1])
    from app.models import Project
    from app.projects.membership import members_of

    with session_scope() as session:
        project = session.get(Project, pid)
        assert project.holdout_fraction == 0.25
        assert sorted(u.username for u in members_of(session, project_id=pid)) == ["ann", "lee"]


def test_a_chosen_file_is_previewed_before_anything_is_imported(client, users):
    _, token = users.create("boss", "admin")
    admin = users.api(token)
    pid = admin.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": ["a", "b"]}).json()["id"]
    csrf = login(client, "boss")
    body = "id,review,source,label\n" + "".join(f"r{i},<b>text {i}</b>,web,{'ab'[i % 2]}\n" for i in range(30))
    preview = client.post(f"/projects/{pid}/upload-preview", files={"head": ("head", body[:200], "text/csv")},
                          data={"filename": "pool.csv", "partial": "true", "text_column": "review",
                                "label_column": "label", "csrf_token": csrf})
    assert preview.status_code == 200 and "Preview of pool.csv" in preview.text
    roles = re.findall(r'<th>(\w+)<br><span class="role role-(\w+)">', preview.text)
    assert roles == [("id", "id"), ("review", "text"), ("source", "metadata"), ("label", "label")]
    assert "&lt;b&gt;text 0&lt;/b&gt;" in preview.text and "<b>text" not in preview.text
    assert "broken" not in preview.text  # the cut at the end of the head is no problem of the file
    # A head cut inside a quoted text, or inside a JSON array, is no broken file either; the same bytes
    # sent as the whole file are.
    quoted = 'text\n"one"\n"a review over\ntwo lines'
    sent = lambda head, name, partial: client.post(  # noqa: E731
        f"/projects/{pid}/upload-preview", files={"head": ("head", head, "text/csv")},
        data={"filename": name, "partial": partial, "csrf_token": csrf}).text
    assert "broken" not in sent(quoted, "p.csv", "true") and ">one<" in sent(quoted, "p.csv", "true")
    assert "line 3: broken CSV" in sent(quoted, "p.csv", "false")
    array = '[{"text": "one"}, {"text": "two"}, {"te'
    assert "item 3" not in sent(array, "p.json", "true") and ">two<" in sent(array, "p.json", "true")
    assert "the file ends inside item 3 of the array" in sent(array, "p.json", "false")
    # a UTF-16 head is the file's problem, cut or not
    assert "UTF-16" in sent("text\none\n".encode("utf-16"), "p.csv", "true")
    export = "id,text,label,holdout,n_annotations,adjudicated\nr1,fine,a,False,1,False\n"
    roles = re.findall(r'<th>(\w+)<br><span class="role role-([\w-]+)">', sent(export, "p.csv", "false"))
    assert roles == [("id", "id"), ("text", "text"), ("label", "metadata"), ("holdout", "left-out"),
                     ("n_annotations", "left-out"), ("adjudicated", "left-out")]
    # a column of the project's labels, not named as the label column, is offered as one
    offered = re.findall(r'data-label-column="(\w+)"', sent(body.replace("review", "text"), "pool.csv", "false"))
    assert offered == ["label"]  # (`source` holds no label)
    assert 'data-label-column' not in preview.text  # named as the label column already
    assert 'data-label-column' not in sent("text,tag\none,a\ntwo,c\n", "p.csv", "false")
    assert 'data-label-column' not in sent("text,tag\none,\ntwo,\n", "p.csv", "false")
    wrong = client.post(f"/projects/{pid}/upload-preview", files={"head": ("head", body, "text/csv")},
                        data={"filename": "pool.csv", "csrf_token": csrf})
    assert "no text column" in wrong.text  # without naming it, 'review' is not taken for the text
    # a small Parquet file is previewed whole (QA: no preview at all); a large one's head cannot be
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": ["p1", "p2"], "text": ["first <i>one</i>", "second"]}), buffer)
    small = client.post(f"/projects/{pid}/upload-preview", files={"head": ("head", buffer.getvalue(), "x")},
                        data={"filename": "pool.parquet", "partial": "false", "csrf_token": csrf}).text
    assert "Preview of pool.parquet" in small and "first &lt;i&gt;one&lt;/i&gt;" in small
    assert re.findall(r'<th>(\w+)<br><span class="role role-(\w+)">', small) == [("id", "id"), ("text", "text")]
    large = sent(b"", "pool.parquet", "true")
    assert "No preview for a Parquet file this large" in large
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Item).where(Item.project_id == pid)) == 0


def test_an_annotator_taken_off_the_project_mid_card_is_told_the_answer_was_not_saved(labelling_session):
    from app.projects.membership import remove_member

    client, pid, token = labelling_session
    item = re.search(r'data-item="(\d+)"', client.get(f"/projects/{pid}/label").text).group(1)
    with session_scope() as session:
        remove_member(session, project_id=pid, user_id=session.scalar(select(User.id).where(User.username == "ann")))
    answer = client.post(f"/projects/{pid}/items/{item}/label", data={"label": "good"},
                         headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert answer.status_code == 404 and "no longer open to you" in answer.text and "not saved" in answer.text
    plain = client.get(f"/projects/{pid}/label")  # a page load says no more than for any missing project
    assert plain.status_code == 404 and "no longer open" not in plain.text


def test_a_plain_form_sent_after_the_session_ended_leads_back_to_its_page(client, users):
    users.create("boss", "admin")
    csrf = login(client, "boss")
    client.cookies.clear()
    sent = client.post("/admin/users/1/role", data={"role": "lead", "csrf_token": csrf},
                       headers={"Referer": "http://testserver/admin/users"}, follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"] == "/login?next=/admin/users&ended=1"


def test_a_card_from_before_signing_in_again_says_the_answer_was_not_saved(labelling_session):
    client, pid, old_token = labelling_session
    item = re.search(r'data-item="(\d+)"', client.get(f"/projects/{pid}/label").text).group(1)
    client.post("/logout", data={"csrf_token": old_token})
    login(client, "ann")  # in another tab
    stale = client.post(f"/projects/{pid}/items/{item}/label", data={"label": "good"},
                        headers={"HX-Request": "true", "X-CSRF-Token": old_token})
    assert stale.status_code == 403 and "opened before you last signed in" in stale.text and "not saved" in stale.text
    forged = client.post(f"/projects/{pid}/items/{item}/label", data={"label": "good"}, headers={"HX-Request": "true"})
    assert forged.status_code == 403 and "did not come from labelloop" in forged.text


def test_the_last_card_tells_waiting_for_others_from_held_by_others(labelling_session, users):
    from fastapi.testclient import TestClient

    client, pid, token = labelling_session
    users.create("bob", "annotator")
    users.join(pid, "bob")
    with TestClient(client.app) as bob:
        login(bob, "bob")
        bob.get(f"/projects/{pid}/label")  # bob holds one item
        page = client.get(f"/projects/{pid}/label").text
        for _ in range(2):
            item = re.search(r'data-item="(\d+)"', page).group(1)
            page = client.post(f"/projects/{pid}/items/{item}/label", data={"label": "good"},
                               headers={"HX-Request": "true", "X-CSRF-Token": token}).text
    assert "Nothing left for you here" in page
    assert "1 is being labelled by someone else right now; this page looks again every 15 seconds" in page
    assert 'hx-trigger="every 15s"' in page  # (QA: it never looked again)
    assert "your answer and wait" not in page


def test_signing_in_from_the_logout_page_goes_to_the_projects(client, users):
    users.create("ann", "annotator")
    csrf = csrf_of(client.get("/login?next=/logout").text)
    signed_in = client.post("/login", data={"username": "ann", "password": "password-123", "csrf_token": csrf,
                                            "next": "/logout"}, follow_redirects=False)
    assert signed_in.headers["location"] == "/projects"


def test_small_sentences_for_small_mistakes(client, users, tmp_path, capsys):
    """QA: a bare "Not Found" page; a CLI traceback for a missing file and for no terminal to ask a
    password on; imported labels counted as labelled by the importer; 4.0 for a whole-number feature."""
    from app.cli import main

    page = client.get("/no/such/page")
    assert page.status_code == 404 and "There is no page at this address." in page.text
    assert main(["import", "1", str(tmp_path / "missing.csv")]) == 2
    assert capsys.readouterr().err == f"error: no file {tmp_path / 'missing.csv'}\n"
    assert main(["create-user", "bot", "--role", "admin"]) == 2  # no terminal here (pytest's stdin)
    assert "error: no password given; pass --password or set LABELLOOP_NEW_PASSWORD" in capsys.readouterr().err
    _, admin_token = users.create("boss", "admin")
    admin = users.api(admin_token)
    pid = admin.post("/api/v1/projects", json={"name": "P", "kind": "tabular", "labels": ["a", "b"],
                                               "holdout_fraction": 0}).json()["id"]
    admin.post(f"/api/v1/projects/{pid}/items", data={"label_column": "label"},
               files={"file": ("p.csv", b"age,height,label\n4,1.5,a\n7,2.25,\n", "text/csv")})
    login(client, "boss")
    page = client.get(f"/projects/{pid}/label").text
    assert "<td>7</td>" in page and "<td>2.25</td>" in page
    assert re.search(r'id="mine-total">0<', page)


def test_a_new_projects_labels_are_read_from_a_column_of_a_file(client, users):
    """UX.md: labels typed or taken from a column. Read as an upload with that label column reads
    them, most frequent first; nothing is imported."""
    import io
    import zipfile

    users.create("boss", "admin")
    users.create("lead", "lead")
    token = login(client, "boss")
    form = client.get("/projects/new").text
    assert "Take the labels from a column of a file" in form and 'form="labels-source"' in form
    rows = [{"id": str(i), "text": f"t{i}", "category": label}
            for i, label in enumerate(["rotten"] * 3 + ["fresh"] * 5 + [""] + ["plot <b>"] * 2)]
    read = client.post("/projects/new/labels-from-file", headers={"X-CSRF-Token": token, "HX-Request": "true"},
                       data={"column": "category", "kind": "text"},
                       files={"file": ("pool.csv", to_csv(rows, ["id", "text", "category"]), "text/csv")})
    assert read.status_code == 200, read.text
    assert 'name="labels" required value="fresh, rotten, plot &lt;b&gt;"' in read.text  # escaped, by count
    assert 'hx-swap-oob="true"' in read.text
    assert "fresh (5 rows), rotten (3 rows), plot &lt;b&gt; (2 rows)" in read.text
    with session_scope(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Item)) == 0

    # a .zip sorted into one folder per label gives the folders' names (a Prodigy answer list counts too)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("cat/1.png", "cat/2.png", "dog/3.png"):
            archive.writestr(name, b"not read: only the names count")
    pictures = client.post("/projects/new/labels-from-file", headers={"X-CSRF-Token": token},
                           data={"column": "folder", "kind": "image"},
                           files={"file": ("pics.zip", buffer.getvalue(), "application/zip")})
    assert 'value="cat, dog"' in pictures.text
    jsonl = b'{"text": "a", "accept": ["yes"]}\n{"text": "b", "accept": ["no"]}\n{"text": "c", "accept": ["yes"]}\n'
    prodigy = client.post("/projects/new/labels-from-file", headers={"X-CSRF-Token": token},
                          data={"column": "accept"}, files={"file": ("p.jsonl", jsonl, "application/jsonl")})
    assert 'value="yes, no"' in prodigy.text

    # what is no label column says so, and fills nothing
    missing = client.post("/projects/new/labels-from-file", headers={"X-CSRF-Token": token},
                          data={"column": "label"},
                          files={"file": ("pool.csv", to_csv(rows, ["id", "text", "category"]), "text/csv")})
    assert missing.status_code == 422 and "column &#39;label&#39; is in no row of the file" in missing.text
    assert 'name="labels"' not in missing.text  # (QA: a refused read emptied what was typed)
    no_file = client.post("/projects/new/labels-from-file", headers={"X-CSRF-Token": token}, data={"column": "label"})
    assert no_file.status_code == 422 and "choose the file first" in no_file.text
    assert 'name="labels"' not in no_file.text  # (QA: the field itself was swapped away)
    # (QA) JSON Lines rows without a label leave the key out: read as an upload reads them
    sparse = b'{"text": "a", "label": "x"}\n{"text": "b"}\n{"text": "c", "label": "y"}\n'
    partly = client.post("/projects/new/labels-from-file", headers={"X-CSRF-Token": token},
                         data={"column": "label"}, files={"file": ("p.jsonl", sparse, "application/jsonl")})
    assert partly.status_code == 200 and 'value="x, y"' in partly.text
    many = "id,label\n" + "".join(f"{i},v{i}\n" for i in range(150))
    too_many = client.post("/projects/new/labels-from-file", headers={"X-CSRF-Token": token}, data={"column": "id"},
                           files={"file": ("p.csv", many.encode(), "text/csv")})
    assert too_many.status_code == 422 and "more than 100 different values" in too_many.text
    comma = client.post("/projects/new/labels-from-file", headers={"X-CSRF-Token": token},
                        files={"file": ("p.csv", b'text,label\na,"x, y"\nb,z\n', "text/csv")})
    assert comma.status_code == 422 and "a comma" in comma.text
    # what a project would refuse is said now, not at Create project (QA)
    for cells, said in ((b"pos\nPos\n", "differ only in case"),
                        ("caf\u00e9\ncafe\u0301\n".encode(), "how a letter is encoded"),
                        (b'"line1\nline2"\nb\n', "a line break"),
                        (b"x" * 201 + b"\nb\n", "longer than 200 characters")):
        refused = client.post("/projects/new/labels-from-file", headers={"X-CSRF-Token": token},
                              files={"file": ("p.csv", b"label\n" + cells, "text/csv")})
        assert refused.status_code == 422 and said in refused.text, (cells, refused.text)
    # admins only, with the form's CSRF token
    assert client.post("/projects/new/labels-from-file",
                       files={"file": ("p.csv", b"text,label\na,b\n", "text/csv")}).status_code == 403
    lead_token = login(client, "lead")
    assert client.post("/projects/new/labels-from-file", headers={"X-CSRF-Token": lead_token},
                       files={"file": ("p.csv", b"text,label\na,b\n", "text/csv")}).status_code == 403
