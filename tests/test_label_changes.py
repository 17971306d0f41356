"""An admin changes a project's labels after answers exist: add, rename (carried into every answer
and into the model's names), merge, swap, reorder, remove an unused one; a used one is refused."""

from sqlalchemy import select

from app.db import session_scope
from app.models import Annotation, Item, ModelVersion, Project
from tests.conftest import run_worker_until_idle
from tests.data import rotten_tomatoes, to_csv
from tests.test_pages import csrf_of, login


def _setup(users, **settings):
    _, admin_token = users.create("boss", "admin")
    admin = users.api(admin_token)
    body = {"name": "P", "kind": "text", "labels": ["fresh", "rotten", "plot"], "batch_size": 5,
            "holdout_fraction": 0, **settings}
    pid = admin.post("/api/v1/projects", json=body).json()["id"]
    rows = rotten_tomatoes(60)
    assert admin.post(f"/api/v1/projects/{pid}/items",
                      files={"file": ("p.csv", to_csv(rows, ["id", "text"]), "text/csv")}).status_code == 201
    return admin, pid


def _answer(api, pid, labels):
    for label in labels:
        item = api.get(f"/api/v1/projects/{pid}/next").json()
        assert api.post(f"/api/v1/items/{item['id']}/annotations", json={"label": label}).status_code == 201


def _labels_given(pid):
    with session_scope(write=False) as session:
        return sorted(session.scalars(select(Annotation.label).where(Annotation.project_id == pid)).all())


def test_a_rename_is_carried_into_every_answer_and_the_next_model(users):
    admin, pid = _setup(users)
    _answer(admin, pid, ["fresh", "rotten", "plot"] * 4)
    assert run_worker_until_idle() >= 1
    response = admin.put(f"/api/v1/projects/{pid}/labels",
                         json={"labels": ["positive", "rotten", "plot"], "renames": {"fresh": "positive"}})
    assert response.status_code == 200 and response.json()["labels"] == ["positive", "rotten", "plot"]
    assert _labels_given(pid) == sorted(["positive", "rotten", "plot"] * 4)
    with session_scope(write=False) as session:
        finals = set(session.scalars(select(Item.final_label).where(Item.project_id == pid)).all())
        old_model = session.scalars(select(ModelVersion).where(ModelVersion.project_id == pid)).first()
        assert "fresh" not in finals and "positive" in finals
        assert "positive" in old_model.classes and "fresh" not in old_model.classes
        predictions = (old_model.diagnostics or {}).get("stop_set", {}).get("predictions", [])
        assert "fresh" not in predictions
    # a retrain was queued: the worker fits a model that knows the new name
    assert run_worker_until_idle() >= 1
    with session_scope(write=False) as session:
        project = session.get(Project, pid)
        assert "positive" in session.get(ModelVersion, project.current_model_version_id).classes
    # the old name is no label any more; the new one is
    item = admin.get(f"/api/v1/projects/{pid}/next").json()
    assert admin.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "fresh"}).status_code == 422
    assert admin.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "positive"}).status_code == 201


def test_a_gold_field_under_a_renamed_label_stays_off_the_card(users):
    """QA: a file's gold column is hidden from annotators while it holds a label; after "food" was
    renamed "cuisine", the cards showed "gold: food"."""
    _, admin_token = users.create("boss", "admin")
    admin = users.api(admin_token)
    pid = admin.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": ["sport", "food", "tech"],
                                               "holdout_fraction": 0}).json()["id"]
    admin.post(f"/api/v1/projects/{pid}/items", files={"file": (
        "p.csv", b"id,text,gold,source\nr1,pasta night,food,blog\nr2,a goal,sport,news\n", "text/csv")})
    card = admin.get(f"/api/v1/projects/{pid}/next").json()
    assert card["meta"] in ({"source": "blog"}, {"source": "news"})
    assert admin.put(f"/api/v1/projects/{pid}/labels", json={
        "labels": ["sport", "cuisine", "tech", "misc"], "renames": {"food": "cuisine"}}).status_code == 200
    metas = []
    for _ in range(2):
        card = admin.get(f"/api/v1/projects/{pid}/next").json()
        metas.append(card["meta"])
        admin.post(f"/api/v1/items/{card['id']}/skip")
    assert sorted(m["source"] for m in metas) == ["blog", "news"] and all("gold" not in m for m in metas)
    with session_scope(write=False) as session:
        assert session.get(Project, pid).former_labels == ["food"]


def test_adding_reordering_and_removing_an_unused_label(users):
    admin, pid = _setup(users)
    _answer(admin, pid, ["fresh", "rotten"])
    response = admin.put(f"/api/v1/projects/{pid}/labels", json={"labels": ["rotten", "fresh", "mixed"]})
    assert response.status_code == 200 and response.json()["labels"] == ["rotten", "fresh", "mixed"]
    assert _labels_given(pid) == ["fresh", "rotten"]
    refused = admin.put(f"/api/v1/projects/{pid}/labels", json={"labels": ["rotten", "mixed"]})
    assert refused.status_code == 409
    assert refused.json()["detail"] == ("A label that has been given cannot just be removed: “fresh” is in 1 answer. "
                                        "Rename it onto another label to merge the two, or change those answers "
                                        "first.")
    with session_scope(write=False) as session:
        assert session.get(Project, pid).labels == ["rotten", "fresh", "mixed"]
    bad = admin.put(f"/api/v1/projects/{pid}/labels",
                    json={"labels": ["rotten", "fresh"], "renames": {"plot": "story", "fresh": "nowhere"}})
    assert bad.status_code == 422
    assert bad.json()["detail"] == ("“plot” is not a label of this project, so it cannot be renamed; “fresh” is "
                                    "renamed to “nowhere”, which is not in the new list of labels.")
    assert admin.put(f"/api/v1/projects/{pid}/labels", json={"labels": ["rotten"]}).status_code == 422


def test_a_merge_settles_ties_between_the_two_and_a_swap_keeps_them_apart(users):
    admin, pid = _setup(users, annotations_per_item=2)
    ann = users.api(users.create("ann", "annotator")[1])
    users.join(pid, "ann")
    with session_scope(write=False) as session:
        first, second = session.scalars(select(Item.id).where(Item.project_id == pid).order_by(Item.id).limit(2))
    for item, (a, b) in ((first, ("fresh", "plot")), (second, ("fresh", "rotten"))):
        assert admin.post(f"/api/v1/items/{item}/annotations", json={"label": a}).status_code == 201
        assert ann.post(f"/api/v1/items/{item}/annotations", json={"label": b}).status_code == 201
    # swap: every answer changes sides, the ties stay ties
    assert admin.put(f"/api/v1/projects/{pid}/labels", json={
        "labels": ["rotten", "fresh", "plot"], "renames": {"fresh": "rotten", "rotten": "fresh"}}).status_code == 200
    assert _labels_given(pid) == ["fresh", "plot", "rotten", "rotten"]
    with session_scope(write=False) as session:
        assert session.get(Project, pid).n_training_labels == 0
    # "plot" merges into "rotten": the first item's answers now agree and it becomes a training label
    response = admin.put(f"/api/v1/projects/{pid}/labels",
                         json={"labels": ["rotten", "fresh"], "renames": {"plot": "rotten"}})
    assert response.status_code == 200
    with session_scope(write=False) as session:
        assert session.get(Item, first).final_label == "rotten"
        assert session.get(Item, second).final_label is None
        assert session.get(Project, pid).n_training_labels == 1


def test_the_settings_page_renames_adds_and_says_why_it_refuses(client, users):
    admin, pid = _setup(users)
    _answer(admin, pid, ["fresh", "plot"])
    login(client, "boss")
    page = client.get(f"/projects/{pid}/settings").text
    csrf = csrf_of(page)
    form = {"csrf_token": csrf, "current": ["fresh", "rotten", "plot"], "renamed": ["fresh ", "", "story"],
            "added": "mixed, unclear"}
    response = client.post(f"/projects/{pid}/labels", data=form)
    assert response.status_code == 200
    assert "Labels: added “mixed”, “unclear”; renamed “plot” to “story”; removed “rotten”." in response.text
    with session_scope(write=False) as session:
        assert session.get(Project, pid).labels == ["fresh", "story", "mixed", "unclear"]
    assert _labels_given(pid) == ["fresh", "story"]
    # the form of before (another tab) changes nothing
    stale = client.post(f"/projects/{pid}/labels", data=form)
    assert stale.status_code == 422 and "they changed in the meantime" in stale.text
    used = client.post(f"/projects/{pid}/labels", data={
        "csrf_token": csrf, "current": ["fresh", "story", "mixed", "unclear"], "renamed": ["", "story", "mixed", ""]})
    assert used.status_code == 409 and "“fresh” is in 1 answer" in used.text
    with session_scope(write=False) as session:
        assert session.get(Project, pid).labels == ["fresh", "story", "mixed", "unclear"]


def test_predictions_of_a_model_from_before_a_merge_add_up_the_merged_labels(users):
    """QA: after a merge, and before a model knew of it, predictions.csv had the merged label's
    column twice, each with one old class's probability, contradicting `confidence`."""
    import csv
    import io

    admin, pid = _setup(users)
    _answer(admin, pid, ["fresh", "rotten", "plot"] * 4)
    assert run_worker_until_idle() >= 1
    before = list(csv.DictReader(io.StringIO(admin.get(f"/api/v1/projects/{pid}/export/predictions.csv").text)))
    assert admin.put(f"/api/v1/projects/{pid}/labels", json={
        "labels": ["fresh", "other"], "renames": {"rotten": "other", "plot": "other"}}).status_code == 200
    text = admin.get(f"/api/v1/projects/{pid}/export/predictions.csv").text  # the old model's, renamed
    assert text.splitlines()[0] == "id,predicted,confidence,p_fresh,p_other,label,holdout,model_version"
    after = list(csv.DictReader(io.StringIO(text)))
    assert len(after) == len(before) == 60
    for old, new in zip(before, after, strict=True):
        assert abs(float(new["p_other"]) - float(old["p_rotten"]) - float(old["p_plot"])) < 2e-6
        assert float(new["p_fresh"]) == float(old["p_fresh"])
        assert new["predicted"] == max(("fresh", "other"), key=lambda c: float(new[f"p_{c}"]))
        assert float(new["confidence"]) == float(new[f"p_{new['predicted']}"])
