"""Label quality over HTTP: the JSON API (tokens, roles, clear refusals, idempotent decisions) and the
pages (CSRF, htmx row swaps, escaped item text)."""

from sqlalchemy import select

from app.db import session_scope
from app.models import Item, Job
from tests.conftest import run_worker_until_idle
from tests.data import rotten_tomatoes, to_csv
from tests.test_pages import login
from tests.test_quality import labelled_pool  # noqa: F401  (the fixture)


def _tokens(users) -> dict:
    from app.users.service import issue_api_token

    out = {}
    with session_scope() as session:
        from app.models import User

        for name in ("boss", "lead", "ann"):
            out[name] = issue_api_token(session, user=session.scalar(select(User).where(User.username == name)))
    return {name: users.api(token) for name, token in out.items()}


def test_api_lists_suspicious_labels_and_takes_decisions(labelled_pool, users):  # noqa: F811
    pid = labelled_pool["pid"]
    api = _tokens(users)
    body = api["lead"].get(f"/api/v1/projects/{pid}/quality").json()
    assert body["report"]["model_version"] == body["report"]["current_model_version"] == 1
    assert not body["report"]["stale"] and body["report"]["n_holdout"] == 60
    first = body["items"][0]
    assert {"given_label", "suggested_label", "p_given", "p_suggested", "self_influence", "loo_p_given",
            "labelled_by", "flagged", "score"} <= first.keys()
    assert api["ann"].get(f"/api/v1/projects/{pid}/quality").status_code == 403

    url = f"/api/v1/projects/{pid}/quality/reviews"
    decision = {"item_id": first["item_id"], "action": "relabel", "label": first["suggested_label"]}
    created = api["lead"].post(url, json=decision)
    assert created.status_code == 201, created.text
    assert created.json()["final_label"] == first["suggested_label"] and created.json()["retrain_queued"]
    again = api["lead"].post(url, json=decision)
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]

    second = body["items"][1]
    unknown = api["lead"].post(url, json={"item_id": second["item_id"], "action": "relabel", "label": "purple"})
    assert unknown.status_code == 422 and "'purple' is not a label of this project" in unknown.json()["detail"]
    missing = api["lead"].post(url, json={"item_id": second["item_id"], "action": "relabel"})
    assert missing.status_code == 422 and "needs the new label" in missing.json()["detail"]
    assert api["lead"].post(url, json={"item_id": second["item_id"], "action": "delete"}).status_code == 422
    assert api["ann"].post(url, json={"item_id": second["item_id"], "action": "confirm"}).status_code == 403

    confirm = api["boss"].post(url, json={"item_id": second["item_id"], "action": "confirm"})
    assert confirm.status_code == 201 and confirm.json()["label"] == second["given_label"]
    listed = {i["item_id"] for i in api["lead"].get(f"/api/v1/projects/{pid}/quality").json()["items"]}
    assert first["item_id"] not in listed and second["item_id"] not in listed

    third = body["items"][2]
    requeue = api["lead"].post(url, json={"item_id": third["item_id"], "action": "requeue"})
    assert requeue.status_code == 201 and requeue.json()["item_state"] == "open"
    assert api["lead"].post(url, json={"item_id": third["item_id"], "action": "requeue"}).status_code == 200


def test_api_refuses_other_projects(labelled_pool, users):  # noqa: F811
    pid = labelled_pool["pid"]
    api = _tokens(users)
    other = api["boss"].post("/api/v1/projects", json={"name": "Other", "kind": "text", "labels": ["a", "b"]}).json()
    api["boss"].post(f"/api/v1/projects/{other['id']}/items",
                     files={"file": ("o.csv", b"text\none\ntwo\n", "text/csv")})
    # the lead is not a member of the other project: it does not exist for them
    for path in ("quality", "influence", "items/1/explanation"):
        response = api["lead"].get(f"/api/v1/projects/{other['id']}/{path}")
        assert response.status_code == 404 and "no project" in response.json()["detail"]
    # an item of the other project, reviewed through this one
    with session_scope(write=False) as session:
        foreign = session.scalar(select(Item.id).where(Item.project_id == other["id"]).limit(1))
    response = api["lead"].post(f"/api/v1/projects/{pid}/quality/reviews",
                                json={"item_id": foreign, "action": "confirm"})
    assert response.status_code == 404 and f"no item {foreign}" in response.json()["detail"]
    response = api["lead"].get(f"/api/v1/projects/{pid}/items/{foreign}/explanation")
    assert response.status_code == 404


def test_api_influence_verify_and_explanation(labelled_pool, users):  # noqa: F811
    pid = labelled_pool["pid"]
    api = _tokens(users)
    body = api["lead"].get(f"/api/v1/projects/{pid}/influence?per_side=5").json()
    assert len(body["helpful"]) == len(body["harmful"]) == 5 and not body["verifying"]
    assert body["helpful"][0]["holdout_influence"] > 0 > body["harmful"][0]["holdout_influence"]
    started = api["lead"].post(f"/api/v1/projects/{pid}/influence/verify")
    assert started.status_code == 202 and started.json()["status"] == "queued"
    assert api["lead"].post(f"/api/v1/projects/{pid}/influence/verify").json()["job_id"] == started.json()["job_id"]
    assert api["lead"].get(f"/api/v1/projects/{pid}/influence").json()["verifying"]
    run_worker_until_idle()
    body = api["lead"].get(f"/api/v1/projects/{pid}/influence?per_side=5").json()
    assert body["report"]["verify"]["n"] > 0 and body["helpful"][0]["holdout_loo"] is not None

    item_id = body["helpful"][0]["item_id"]
    why = api["lead"].get(f"/api/v1/projects/{pid}/items/{item_id}/explanation").json()
    assert why["available"] and set(why["probabilities"]) == {"malignant", "benign"}
    assert why["helpful"] and why["explains"] == "given label"


def test_pages_review_with_csrf_and_htmx(labelled_pool, client):  # noqa: F811
    pid = labelled_pool["pid"]
    token = login(client, "lead")
    page = client.get(f"/projects/{pid}/quality")
    assert page.status_code == 200 and "Label quality" in page.text and 'id="q-' in page.text
    with session_scope(write=False) as session:
        from app.models import ItemQuality

        item_id = session.scalar(select(ItemQuality.item_id).order_by(ItemQuality.score.desc()).limit(1))
    url = f"/projects/{pid}/quality/items/{item_id}/review"
    assert client.post(url, data={"action": "confirm"}).status_code == 403  # no CSRF token
    swapped = client.post(url, data={"action": "confirm"}, headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert swapped.status_code == 200 and f'id="q-{item_id}"' in swapped.text and "kept" in swapped.text
    assert "<html" not in swapped.text  # a fragment, not the page
    plain = client.post(url, data={"action": "confirm", "csrf_token": token}, follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"].startswith(f"/projects/{pid}/quality")
    status = client.get(f"/projects/{pid}/quality?loaded=1",
                        headers={"HX-Request": "true", "HX-Target": "quality-status"})
    assert 'id="current-model"' in status.text and "<html" not in status.text

    influence = client.get(f"/projects/{pid}/influence")
    assert influence.status_code == 200 and 'id="helpful"' in influence.text and 'id="harmful"' in influence.text
    assert client.post(f"/projects/{pid}/influence/verify", data={"csrf_token": token},
                       follow_redirects=False).status_code == 303
    with session_scope(write=False) as session:
        assert session.scalar(select(Job.status).where(Job.kind == "verify")) == "queued"
    item_page = client.get(f"/projects/{pid}/items/{item_id}")
    assert f'hx-get="/projects/{pid}/items/{item_id}/why"' in item_page.text
    why = client.get(f"/projects/{pid}/items/{item_id}/why", headers={"HX-Request": "true"})
    assert 'id="why-prediction"' in why.text and "Helped most" in why.text and "<html" not in why.text
    assert "<html" in client.get(f"/projects/{pid}/items/{item_id}/why").text  # without JS: a page of its own


def test_item_text_is_escaped_on_the_quality_pages(users, client):
    _, token = users.create("boss", "admin")
    users.create("lead", "lead")
    api = users.api(token)
    rows = rotten_tomatoes(60, seed=3)
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    rows.append({"id": "evil", "text": evil, "category": "fresh", "movie": "x"})
    pid = api.post("/api/v1/projects", json={"name": "Esc", "kind": "text", "labels": ["fresh", "rotten", "plot"],
                                             "batch_size": 61, "holdout_fraction": 0.0,
                                             "members": ["lead"]}).json()["id"]
    api.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", to_csv(rows, ["id", "text"]), "text/csv")})
    gold = {r["id"]: r["category"] for r in rows}
    gold["evil"] = "plot"  # a label the words do not support, so it is listed
    while (item := api.get(f"/api/v1/projects/{pid}/next")).status_code == 200:
        api.post(f"/api/v1/items/{item.json()['id']}/annotations", json={"label": gold[item.json()["external_id"]]})
    run_worker_until_idle()
    login(client, "lead")
    with session_scope(write=False) as session:
        evil_id = session.scalar(select(Item.id).where(Item.external_id == "evil"))
    for path in (f"/projects/{pid}/quality", f"/projects/{pid}/items/{evil_id}/why", f"/projects/{pid}/influence"):
        html = client.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert" in client.get(f"/projects/{pid}/quality").text
