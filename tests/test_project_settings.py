"""An admin changes a project after it was made: its strategy re-ranks the pool at once, a new number
of annotations per item reopens or closes items, and a refused change changes nothing."""

import re

from sqlalchemy import delete, func, select

from app.db import session_scope
from app.models import Item, Job, Lease, Project, RankingEntry
from tests.conftest import run_worker_until_idle
from tests.test_pages import login


def _project_with_answers(users):
    _, token = users.create("boss", "admin")
    api = users.api(token)
    pid = api.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": ["a", "b"], "batch_size": 4,
                                             "strategy": "margin", "holdout_fraction": 0}).json()["id"]
    pool = "text\n" + "".join(f"item number {i}\n" for i in range(12))
    api.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", pool, "text/csv")})
    for label in "abab":
        item = api.get(f"/api/v1/projects/{pid}/next").json()
        api.post(f"/api/v1/items/{item['id']}/annotations", json={"label": label})
    run_worker_until_idle()
    return api, pid


def test_a_new_strategy_reranks_at_once_through_the_api(users):
    api, pid = _project_with_answers(users)
    assert api.get(f"/api/v1/projects/{pid}/models").json()[0]["strategy"] == "margin"
    changed = api.patch(f"/api/v1/projects/{pid}", json={"strategy": "entropy", "batch_size": 7,
                                                         "name": " Renamed "})
    assert changed.status_code == 200
    body = changed.json()
    assert (body["strategy"], body["batch_size"], body["name"]) == ("entropy", 7, "Renamed")
    run_worker_until_idle()
    assert api.get(f"/api/v1/projects/{pid}/models").json()[0]["strategy"] == "entropy"
    with session_scope() as session:
        assert session.get(Project, pid).next_train_at == 4 + 7  # the last retrain (4 labels) plus the new batch
    assert api.patch(f"/api/v1/projects/{pid}", json={"kind": "tabular"}).status_code == 422  # fixed
    assert api.patch(f"/api/v1/projects/{pid}", json={"strategy": "crystal_ball"}).status_code == 422
    refused = api.patch(f"/api/v1/projects/{pid}", json={"strategy_params": {"n_members": 3}})
    assert refused.status_code == 422 and "has no parameter 'n_members'" in refused.json()["detail"]
    assert api.get(f"/api/v1/projects/{pid}").json()["strategy_params"] == {}


def test_more_annotations_per_item_reopen_answered_items_and_fewer_close_them(users):
    api, pid = _project_with_answers(users)

    def done():
        with session_scope() as session:
            return session.scalar(select(func.count()).select_from(Item).where(Item.project_id == pid,
                                                                              Item.state == "done"))
    assert done() == 4
    assert api.patch(f"/api/v1/projects/{pid}", json={"annotations_per_item": 2}).status_code == 200
    assert done() == 0
    assert api.patch(f"/api/v1/projects/{pid}", json={"annotations_per_item": 1}).status_code == 200
    assert done() == 4
    with session_scope() as session:  # no strategy change, no retrain queued
        assert session.scalar(select(func.count()).select_from(Job).where(
            Job.project_id == pid, Job.status == "queued")) == 0


def test_the_settings_page_shows_the_project_and_saves_it(client, users):
    _, pid = _project_with_answers(users)
    csrf = login(client, "boss")
    page = client.get(f"/projects/{pid}/settings")
    assert page.status_code == 200 and 'value="margin" checked' in page.text and 'name="labels"' not in page.text
    assert f'href="/projects/{pid}/settings"' in client.get(f"/projects/{pid}").text
    base = {"name": "P", "strategy": "margin", "batch_size": "4", "annotations_per_item": "1",
            "holdout_percent": "0", "csrf_token": csrf}
    saved = client.post(f"/projects/{pid}/settings", data={**base, "batch_mode": "kmeans", "description": "new"})
    assert saved.status_code == 200 and "Saved: Description, Strategy parameters." in saved.text
    assert 'value="kmeans" selected' in saved.text
    bad = client.post(f"/projects/{pid}/settings", data={**base, "batch_size": "0"})
    assert bad.status_code == 422 and "Batch size: give a number from 1 to 10,000." in bad.text
    assert "Nothing was changed" in bad.text
    # QA: a number longer than the form read (HTML limits bypassed) gave a bare 422 page, the form lost
    huge = client.post(f"/projects/{pid}/settings", data={**base, "batch_size": "9" * 20, "description": "kept"})
    assert huge.status_code == 422 and "Batch size: give a number from 1 to 10,000." in huge.text
    assert ">kept</textarea>" in huge.text
    # every problem of the form at once, whichever stage finds it
    worse = client.post(f"/projects/{pid}/settings", data={**base, "batch_size": "0", "holdout_percent": "80",
                                                           "strategy_params": "{n_members: 7"})
    assert worse.status_code == 422
    for sentence in ("The strategy parameters are not valid JSON", "Batch size: give a number from 1 to 10,000.",
                     "Holdout share: give a number from 0 to 50%."):
        assert sentence in worse.text
    with session_scope() as session:
        project = session.get(Project, pid)
        assert (project.batch_size, project.description, project.strategy_params) == (4, "new",
                                                                                      {"batch_mode": "kmeans"})


def test_the_model_guess_is_off_by_default_and_shown_on_ranked_cards_when_on(client, users):
    api, pid = _project_with_answers(users)
    users.create("ann", "annotator")
    users.join(pid, "ann")
    login(client, "ann")
    card = client.get(f"/projects/{pid}/label").text
    assert 'data-item="' in card and "model's guess" not in card
    assert api.patch(f"/api/v1/projects/{pid}", json={"show_model_guess": True}).json()["show_model_guess"] is True
    run_worker_until_idle()  # switching it on re-ranks: the guesses are stored with the ranking
    with session_scope() as session:
        guesses = session.execute(select(RankingEntry.guess, RankingEntry.guess_confidence).join(
            Project, Project.current_model_version_id == RankingEntry.model_version_id)
            .where(Project.id == pid)).all()
    assert guesses and all(g in (0, 1) and 0.5 <= c <= 1 for g, c in guesses)
    client.cookies.clear()
    login(client, "ann")
    with session_scope() as session:  # ann's earlier card (served before) is let go, so a ranked one comes
        session.execute(delete(Lease))
    card = client.get(f"/projects/{pid}/label").text
    shown = re.search(r"model's guess:\s+(\w+) \((\d+)%\)", card)
    assert shown and shown.group(1) in ("a", "b") and 50 <= int(shown.group(2)) <= 100


def test_a_smaller_batch_starts_the_retrain_now_due(users):
    api, pid = _project_with_answers(users)  # a model at 4 labels, the next due at 8
    for label in "ab":
        item = api.get(f"/api/v1/projects/{pid}/next").json()
        api.post(f"/api/v1/items/{item['id']}/annotations", json={"label": label})
    def retrains() -> list[str]:
        with session_scope() as session:
            return session.scalars(select(Job.status).where(Job.project_id == pid, Job.kind == "train")
                                   .order_by(Job.id)).all()

    assert retrains() == ["done"]
    assert api.patch(f"/api/v1/projects/{pid}", json={"batch_size": 2}).status_code == 200
    assert retrains() == ["done", "queued"]


def test_members_are_found_whatever_the_case_of_their_name(users):
    _, token = users.create("boss", "admin")
    users.create("ann", "annotator")
    api = users.api(token)
    made = api.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": ["a", "b"], "members": ["ANN"]})
    assert made.status_code == 201
    members = api.get(f"/api/v1/projects/{made.json()['id']}/members").json()
    assert [m["username"] for m in members] == ["ann"]
