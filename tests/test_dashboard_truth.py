"""What the lead's dashboard says must be true of the project: a QA pass recomputed every figure, and
these are the places it found the page saying more than the data did."""

import re

from sqlalchemy import select

from app.db import session_scope
from app.models import Job, ModelVersion
from tests.conftest import run_worker_until_idle
from tests.data import rotten_tomatoes, to_csv
from tests.test_pages import login


def _project(admin, **settings) -> int:
    body = {"name": "P", "kind": "text", "labels": ["fresh", "rotten"], "batch_size": 10, "holdout_fraction": 0,
            **settings}
    return admin.post("/api/v1/projects", json=body).json()["id"]


def test_imported_labels_are_nobodys_throughput_nor_agreement_but_their_ties_are_disagreements(users):
    _, admin_token = users.create("boss", "admin")
    _, ann_token = users.create("ann", "annotator")
    admin, ann = users.api(admin_token), users.api(ann_token)
    pid = _project(admin, annotations_per_item=2, members=["ann"])
    rows = rotten_tomatoes(40)
    for r in rows[:10]:
        r["label"] = r["category"] if r["category"] in ("fresh", "rotten") else "fresh"
    body = to_csv([{**r, "label": r.get("label", "")} for r in rows], ["id", "text", "label"])
    assert admin.post(f"/api/v1/projects/{pid}/items", data={"label_column": "label"},
                      files={"file": ("p.csv", body, "text/csv")}).json()["labelled"] == 10
    stats = admin.get(f"/api/v1/projects/{pid}/stats").json()
    assert stats["labels_last_hour"] == 0 and stats["annotators"] == []
    # ann answers two imported items: one as the file has it, one the other way
    with session_scope(write=False) as session:
        from app.models import Item

        imported = session.execute(select(Item.id, Item.final_label).where(
            Item.project_id == pid, Item.final_label.is_not(None)).order_by(Item.id).limit(2)).all()
    flip = {"fresh": "rotten", "rotten": "fresh"}
    for (item_id, label), agree in zip(imported, (True, False), strict=True):
        assert ann.post(f"/api/v1/items/{item_id}/annotations",
                        json={"label": label if agree else flip[label]}).status_code == 201
    stats = admin.get(f"/api/v1/projects/{pid}/stats").json()
    assert stats["labels_last_hour"] == 2
    assert stats["agreement"]["pairs"] == [] and stats["agreement"]["items_with_several_labels"] == 0
    assert stats["disagreements_open"] == 1  # the item whose file label and ann's answer tie


def test_labels_per_hour_count_only_the_labels_whose_time_is_known_and_changes_are_activity(users):
    _, admin_token = users.create("boss", "admin")
    _, ann_token = users.create("ann", "annotator")
    admin, ann = users.api(admin_token), users.api(ann_token)
    pid = _project(admin, members=["ann"])
    admin.post(f"/api/v1/projects/{pid}/items",
               files={"file": ("p.csv", to_csv(rotten_tomatoes(30), ["id", "text"]), "text/csv")})
    for _ in range(4):
        item = ann.get(f"/api/v1/projects/{pid}/next").json()
        ann.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "fresh", "seconds_spent": 9.0})
    row = admin.get(f"/api/v1/projects/{pid}/stats").json()["annotators"][0]
    assert row["labels_per_hour"] == 4 / (36 / 3600)
    with session_scope(write=False) as session:
        from app.models import Annotation, Item

        unseen = session.scalar(select(Item.id).where(Item.project_id == pid, Item.n_annotations == 0).limit(1))
        first = session.scalar(select(Annotation).where(Annotation.project_id == pid).order_by(Annotation.id))
        first_item, first_at = first.item_id, first.updated_at
    # a label sent without a card has no time: the rate stays what the timed labels say
    assert ann.post(f"/api/v1/items/{unseen}/annotations", json={"label": "rotten"}).status_code == 201
    row = admin.get(f"/api/v1/projects/{pid}/stats").json()["annotators"][0]
    assert row["labels"] == 5 and row["labels_per_hour"] == 4 / (36 / 3600)
    # changing an old answer is work done now
    before = admin.get(f"/api/v1/projects/{pid}/stats").json()
    assert ann.post(f"/api/v1/items/{first_item}/annotations", json={"label": "rotten"}).status_code == 200
    after = admin.get(f"/api/v1/projects/{pid}/stats").json()
    assert after["annotators"][0]["last_at"] > before["annotators"][0]["last_at"] >= first_at.isoformat()
    assert after["labels_last_hour"] == before["labels_last_hour"] == 5


def test_the_stopping_hint_waits_for_new_labels_and_for_examples_of_every_label():
    from app.al.evaluation import stopping_hint
    from app.dashboard.service import _new_label_kappas

    # refits on the same labels (v3, v4: a strategy change) are not evidence of stability
    curve = [{"n_labels": 10, "stability_kappa": None}, {"n_labels": 20, "stability_kappa": 0.8},
             {"n_labels": 20, "stability_kappa": 1.0}, {"n_labels": 20, "stability_kappa": 1.0},
             {"n_labels": 30, "stability_kappa": 0.9}]
    assert _new_label_kappas(curve) == [0.8, 0.9]
    assert not stopping_hint(_new_label_kappas(curve))["stable"]
    assert stopping_hint([1.0, 1.0, 1.0], training_counts={"a": 30, "b": 12})["stable"]
    short = stopping_hint([1.0, 1.0, 1.0], training_counts={"a": 30, "b": 1})
    assert not short["stable"] and short["short"] == ["b"] and short["min_examples"] == 10


def test_a_retrain_job_says_how_many_labels_its_model_was_fitted_on(users):
    _, admin_token = users.create("boss", "admin")
    admin = users.api(admin_token)
    pid = _project(admin, batch_size=4)
    rows = rotten_tomatoes(40)
    admin.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", to_csv(rows, ["id", "text"]), "text/csv")})
    run_worker_until_idle()
    for n in range(7):  # the retrain is queued at 4 labels and runs once 7 are in
        item = admin.get(f"/api/v1/projects/{pid}/next").json()
        admin.post(f"/api/v1/items/{item['id']}/annotations", json={"label": ("fresh", "rotten")[n % 2]})
    run_worker_until_idle()
    with session_scope(write=False) as session:
        job = session.scalar(select(Job).where(Job.project_id == pid, Job.kind == "train", Job.status == "done"))
        model = session.get(ModelVersion, job.model_version_id)
    assert job.n_labels == model.n_labels == 7


def test_the_pool_map_shows_an_item_with_one_of_two_opinions_once_in_its_colour(users):
    _, admin_token = users.create("boss", "admin")
    admin = users.api(admin_token)
    pid = _project(admin, annotations_per_item=2, batch_size=6)
    admin.post(f"/api/v1/projects/{pid}/items",
               files={"file": ("p.csv", to_csv(rotten_tomatoes(60), ["id", "text"]), "text/csv")})
    run_worker_until_idle()
    for n in range(6):  # one opinion each: the items stay open for a second one
        item = admin.get(f"/api/v1/projects/{pid}/next").json()
        admin.post(f"/api/v1/items/{item['id']}/annotations", json={"label": ("fresh", "rotten")[n % 2]})
    run_worker_until_idle()
    stats = admin.get(f"/api/v1/projects/{pid}/stats?include_map=true").json()
    points = stats["diagnostics"]["pool_map"]["points"]
    ids = [p[4] for p in points]
    assert len(ids) == len(set(ids)) == 60
    assert sum(p[2] is not None for p in points) == 6
    assert sum(stats["diagnostics"]["uncertainty_histogram"]["counts"]) == 54


def test_the_page_says_why_a_figure_is_missing(client, users):
    _, admin_token = users.create("boss", "admin")
    admin = users.api(admin_token)
    pid = _project(admin, annotations_per_item=2)
    admin.post(f"/api/v1/projects/{pid}/items",
               files={"file": ("p.csv", to_csv(rotten_tomatoes(30), ["id", "text"]), "text/csv")})
    _, ann_token = users.create("ann", "annotator")
    _, bob_token = users.create("bob", "annotator")
    users.join(pid, "ann", "bob")
    for token in (ann_token, bob_token):
        api = users.api(token)
        for _ in range(3):
            item = api.get(f"/api/v1/projects/{pid}/next").json()
            api.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "fresh"})
    login(client, "boss")
    page = client.get(f"/projects/{pid}/dashboard").text
    assert "no model yet: the first one needs training labels of two labels, and so far every one is fresh" in page
    assert "this project keeps no holdout" in page
    assert "every answer is the same label, so Krippendorff's α is undefined" in page
    assert "No hint before every label has 10 training examples; short: fresh, rotten." in page
    empty = _project(admin, name="Empty")
    assert "no model yet: upload items, then label a few" in client.get(f"/projects/{empty}/dashboard").text


def test_the_disagreements_page_says_when_it_shows_the_first_of_more(client, users, monkeypatch):
    from app.dashboard import service
    from app.models import Item

    monkeypatch.setattr(service, "DISAGREEMENTS_PAGE", 3)
    _, admin_token = users.create("boss", "admin")
    admin = users.api(admin_token)
    pid = _project(admin, annotations_per_item=2)
    admin.post(f"/api/v1/projects/{pid}/items",
               files={"file": ("p.csv", to_csv(rotten_tomatoes(30), ["id", "text"]), "text/csv")})
    with session_scope(write=False) as session:
        item_ids = session.scalars(select(Item.id).where(Item.project_id == pid).order_by(Item.id).limit(4)).all()
    for name, label in (("ann", "fresh"), ("bob", "rotten")):
        _, token = users.create(name, "annotator")
        users.join(pid, name)
        api = users.api(token)
        for item_id in item_ids:
            assert api.post(f"/api/v1/items/{item_id}/annotations", json={"label": label}).status_code == 201
    login(client, "boss")
    page = client.get(f"/projects/{pid}/disagreements").text
    assert len(re.findall(r'class="panel disagreement"', page)) == 3
    assert "The first 3 of 4 open disagreements, oldest first" in page


def test_agreement_is_reused_until_the_answers_change_and_then_by_its_cost(users, monkeypatch):
    from app.dashboard import service

    _, admin_token = users.create("boss", "admin")
    admin = users.api(admin_token)
    pid = _project(admin, annotations_per_item=2)
    admin.post(f"/api/v1/projects/{pid}/items",
               files={"file": ("p.csv", to_csv(rotten_tomatoes(30), ["id", "text"]), "text/csv")})
    monkeypatch.setattr(service, "AGREEMENT_REUSE_FACTOR", 0.0)  # changed answers: recomputed at once
    calls = []
    real = service._answers_by_item
    monkeypatch.setattr(service, "_answers_by_item", lambda *a: calls.append(1) or real(*a))
    apis = {name: users.api(users.create(name, "annotator")[1]) for name in ("ann", "bob")}
    users.join(pid, "ann", "bob")
    for api in apis.values():
        item = api.get(f"/api/v1/projects/{pid}/next").json()
        api.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "fresh"})
    admin.get(f"/api/v1/projects/{pid}/stats")
    admin.get(f"/api/v1/projects/{pid}/stats")
    assert len(calls) == 1  # nothing changed in between
    item = apis["ann"].get(f"/api/v1/projects/{pid}/next").json()
    apis["ann"].post(f"/api/v1/items/{item['id']}/annotations", json={"label": "rotten"})
    admin.get(f"/api/v1/projects/{pid}/stats")
    assert len(calls) == 2
    monkeypatch.setattr(service, "AGREEMENT_REUSE_FACTOR", 1e9)
    # a summary that was quick to compute is never reused once the answers change, whatever the factor
    item = apis["bob"].get(f"/api/v1/projects/{pid}/next").json()
    apis["bob"].post(f"/api/v1/items/{item['id']}/annotations", json={"label": "rotten"})
    rows = admin.get(f"/api/v1/projects/{pid}/stats").json()["annotators"]
    assert next(a for a in rows if a["username"] == "bob")["labels"] == 2
    assert len(calls) == 3
    monkeypatch.setattr(service, "SUMMARY_ALWAYS_FRESH_SECONDS", 0.0)  # as if it were costly
    item = apis["bob"].get(f"/api/v1/projects/{pid}/next").json()
    apis["bob"].post(f"/api/v1/items/{item['id']}/annotations", json={"label": "rotten"})
    stats = admin.get(f"/api/v1/projects/{pid}/stats").json()
    assert len(calls) == 3 and stats["agreement"]["as_of"] <= stats["generated_at"]
    # the totals wait with the agreement; the last hour's labels are counted now
    bob = next(a for a in stats["annotators"] if a["username"] == "bob")
    assert (bob["labels"], bob["last_hour"], stats["labels_last_hour"]) == (2, 3, 5)


def test_holdout_items_left_out_by_a_tie_are_counted_and_said(client, users):
    """QA O5: a tied holdout item has no label, so accuracy leaves out exactly the hard items; the page says so."""
    from app.models import Item

    _, admin_token = users.create("boss", "admin")
    admin = users.api(admin_token)
    pid = _project(admin, annotations_per_item=2, holdout_fraction=0.5)
    admin.post(f"/api/v1/projects/{pid}/items",
               files={"file": ("p.csv", to_csv(rotten_tomatoes(30), ["id", "text"]), "text/csv")})
    ann, bob = (users.api(users.create(name, "annotator")[1]) for name in ("ann", "bob"))
    users.join(pid, "ann", "bob")
    with session_scope(write=False) as session:
        tied, agreed, half = session.scalars(select(Item.id).where(Item.project_id == pid, Item.is_holdout.is_(True))
                                             .order_by(Item.id).limit(3)).all()
    for item, (a, b) in ((tied, ("fresh", "rotten")), (agreed, ("fresh", "fresh")), (half, ("rotten", None))):
        assert ann.post(f"/api/v1/items/{item}/annotations", json={"label": a}).status_code == 201
        if b:
            assert bob.post(f"/api/v1/items/{item}/annotations", json={"label": b}).status_code == 201
    counts = admin.get(f"/api/v1/projects/{pid}/stats").json()["counts"]
    assert (counts["holdout_labels"], counts["holdout_ties"]) == (2, 1)
    login(client, "boss")
    page = client.get(f"/projects/{pid}/dashboard").text
    assert "1 holdout item is left out while its annotators disagree" in page
    assert admin.post(f"/api/v1/items/{tied}/adjudication", json={"label": "fresh"}).status_code == 204
    counts = admin.get(f"/api/v1/projects/{pid}/stats").json()["counts"]
    assert (counts["holdout_labels"], counts["holdout_ties"]) == (3, 0)


def test_model_age_reads_in_its_unit_and_a_retrain_nobody_picks_up_is_called_out(client, users):
    from datetime import timedelta

    from app.models import utcnow
    from app.templating import duration

    assert [duration(s) for s in (0, 59.9, 60, 3599, 3600, 86399, 86400, 3 * 86400)] == \
        ["0 s", "59 s", "1 min", "59 min", "1 h", "23 h", "1 day", "3 days"]
    _, admin_token = users.create("boss", "admin")
    admin = users.api(admin_token)
    pid = _project(admin)
    with session_scope() as session:
        session.add(Job(project_id=pid, kind="train", created_at=utcnow() - timedelta(minutes=12)))
    login(client, "boss")
    stats = admin.get(f"/api/v1/projects/{pid}/stats").json()["jobs"]
    assert stats["queued"] == 1 and 12 * 60 <= stats["queued_seconds"] < 13 * 60
    assert "retrain queued 12 min ago and not started: is a worker running?" in \
        re.sub(r"<[^>]+>", "", client.get(f"/projects/{pid}/dashboard").text)


def test_a_failed_cold_start_order_is_listed_until_a_later_one_is_computed(client, users):
    """QA: a cold-start coverage job failed (out of memory) and no page said so."""
    from app.models import JobStatus, utcnow

    _, admin_token = users.create("boss", "admin")
    admin = users.api(admin_token)
    pid = _project(admin)
    with session_scope() as session:
        session.add(Job(project_id=pid, kind="cold_start", status=JobStatus.failed, error="MemoryError: too big",
                        finished_at=utcnow()))
    failed = admin.get(f"/api/v1/projects/{pid}/stats").json()["jobs"]["failed_recent"]
    assert [(j["kind"], j["error"]) for j in failed] == [("cold_start", "MemoryError: too big")]
    login(client, "boss")
    assert "The cold-start coverage order #" in client.get(f"/projects/{pid}/dashboard").text
    assert "cold-start coverage" in client.get(f"/projects/{pid}").text
    with session_scope() as session:
        session.add(Job(project_id=pid, kind="cold_start", status=JobStatus.done, finished_at=utcnow()))
    assert admin.get(f"/api/v1/projects/{pid}/stats").json()["jobs"]["failed_recent"] == []


def test_agreement_on_a_single_shared_item_says_why_it_has_no_figure(client, users):
    """QA: "agreement (Krippendorff's α) on 1 items labelled twice or more" beside a dash, no reason."""
    _, admin_token = users.create("boss", "admin")
    admin = users.api(admin_token)
    pid = _project(admin, annotations_per_item=2)
    admin.post(f"/api/v1/projects/{pid}/items",
               files={"file": ("p.csv", to_csv(rotten_tomatoes(5), ["id", "text"]), "text/csv")})
    ann, bob = (users.api(users.create(name, "annotator")[1]) for name in ("ann", "bob"))
    users.join(pid, "ann", "bob")
    item = ann.get(f"/api/v1/projects/{pid}/next").json()["id"]
    ann.post(f"/api/v1/items/{item}/annotations", json={"label": "fresh"})
    bob.post(f"/api/v1/items/{item}/annotations", json={"label": "rotten"})
    login(client, "boss")
    assert "Krippendorff's α needs at least two items labelled twice or more, and one is so far" in \
        client.get(f"/projects/{pid}/dashboard").text
