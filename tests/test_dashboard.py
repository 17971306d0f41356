"""The lead's figures: kappa, holdout accuracy and throughput checked by hand; adjudication; exports."""

import csv
import io
import json

import joblib
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from app.db import session_scope
from app.models import Annotation, Item, ModelVersion, Project, User
from app.training.queue import queue_training
from tests.conftest import run_worker_until_idle
from tests.data import rotten_tomatoes, to_csv
from tests.test_pages import login


@pytest.fixture
def two_annotators(users):
    _, admin_token = users.create("boss", "admin")
    admin = users.api(admin_token)
    rows = rotten_tomatoes(150, seed=5)
    gold = {r["id"]: r["category"] for r in rows}
    pid = admin.post("/api/v1/projects", json={
        "name": "Two", "kind": "text", "labels": ["fresh", "rotten", "plot"], "batch_size": 10,
        "annotations_per_item": 2, "holdout_fraction": 0.2}).json()["id"]
    admin.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", to_csv(rows, ["id", "text"]), "text/csv")})
    clients = {}
    for name in ("ann", "bob"):
        clients[name] = users.api(users.create(name, "annotator")[1])
        users.join(pid, name)
    return admin, clients, pid, gold


def label_round(clients, pid, gold, n, *, bob_noise=0.3, seed=0):
    """Both annotators label n items each; ann is always right, bob wrong on a share of items."""
    rng = np.random.default_rng(seed)
    others = {"fresh": "rotten", "rotten": "plot", "plot": "fresh"}
    for _ in range(n):
        for name, client in clients.items():
            item = client.get(f"/api/v1/projects/{pid}/next").json()
            label = gold[item["external_id"]]
            if name == "bob" and rng.random() < bob_noise:
                label = others[label]
            assert client.post(f"/api/v1/items/{item['id']}/annotations",
                               json={"label": label, "seconds_spent": 2.0 if name == "ann" else 4.0}).status_code == 201
            run_worker_until_idle()


def test_stats_match_hand_computations(two_annotators):
    admin, clients, pid, gold = two_annotators
    label_round(clients, pid, gold, 60)
    # one more retrain on exactly the labels there are now, so the stored holdout score can be redone by hand
    with session_scope() as session:
        n_labels = session.query(Item).filter(Item.project_id == pid, Item.final_label.is_not(None)).count()
        queue_training(session, project=session.get(Project, pid), n_labels=n_labels)
    run_worker_until_idle()
    stats = admin.get(f"/api/v1/projects/{pid}/stats").json()

    with session_scope(write=False) as session:
        rows = session.query(Annotation.item_id, Annotation.user_id, Annotation.label).filter(
            Annotation.project_id == pid).all()
        users_by_name = {a["username"]: a["user_id"] for a in stats["annotators"]}
        by_item: dict = {}
        for item_id, user_id, label in rows:
            by_item.setdefault(item_id, {})[user_id] = label
        both = [answers for answers in by_item.values() if len(answers) == 2]
        a_id, b_id = sorted(users_by_name.values())
        expected_kappa = cohen_kappa_score([x[a_id] for x in both], [x[b_id] for x in both])

        project = session.get(Project, pid)
        model = session.get(ModelVersion, project.current_model_version_id)
        from app.training.service import load_pipeline

        pipeline = load_pipeline(model.artifact)
        holdout = session.query(Item).filter(Item.project_id == pid, Item.is_holdout.is_(True),
                                             Item.final_label.is_not(None)).all()
        # the holdout accuracy of the current model, by hand, on the holdout labels it was scored on
        predicted = pipeline.predict([i.payload["text"] for i in holdout])
        labelled_then = {i.id for i in holdout}

    pair = stats["agreement"]["pairs"][0]
    assert pair["n_items"] == len(both)
    assert pair["kappa"] == pytest.approx(expected_kappa, abs=1e-12)

    holdout_stats = stats["model"]["holdout"]
    assert holdout_stats["n"] == len(labelled_then) >= 1
    by_hand = float(np.mean([p == i.final_label for p, i in zip(predicted, holdout, strict=True)]))
    assert holdout_stats["accuracy"] == pytest.approx(by_hand)
    assert holdout_stats["accuracy_low"] <= holdout_stats["accuracy"] <= holdout_stats["accuracy_high"]

    ann = next(a for a in stats["annotators"] if a["username"] == "ann")
    bob = next(a for a in stats["annotators"] if a["username"] == "bob")
    assert ann["labels"] == bob["labels"] == 60
    assert ann["median_seconds"] == 2.0 and bob["median_seconds"] == 4.0
    assert ann["labels_per_hour"] == pytest.approx(3600 / 2.0) and bob["labels_per_hour"] == pytest.approx(900)
    assert stats["labels_last_hour"] == 120
    assert [p["n_labels"] for p in stats["learning_curve"]] == sorted(p["n_labels"] for p in stats["learning_curve"])
    assert stats["counts"]["annotations"] == 120


def test_training_uses_adjudication_then_majority_and_leaves_ties_out(two_annotators, client, users):
    admin, clients, pid, gold = two_annotators
    label_round(clients, pid, gold, 25, bob_noise=1.0)  # bob always disagrees: every item is a tie
    with session_scope(write=False) as session:
        tied = session.query(Item).filter(Item.project_id == pid, Item.n_annotations == 2).all()
        assert tied and all(i.final_label is None for i in tied)
    stats = admin.get(f"/api/v1/projects/{pid}/stats").json()
    assert stats["disagreements_open"] == len(tied)
    # QA: the project page counted the ties done while the dashboard's labelled figure left them out,
    # and neither said so; now both name the difference (the API too)
    summary = admin.get(f"/api/v1/projects/{pid}").json()
    assert summary["n_done_tied"] == stats["counts"]["done_tied"] == len(tied)
    with session_scope(write=False) as session:
        done_labelled = session.query(Item).filter(Item.project_id == pid, Item.state == "done",
                                                   Item.final_label.is_not(None)).count()
    assert summary["n_done"] == done_labelled + len(tied)
    login(client, "boss")
    for page, said in ((f"/projects/{pid}", f"{len(tied)} without a label"),
                       (f"/projects/{pid}/dashboard", f"{len(tied)} more are done without a label"),
                       ("/projects", f"({len(tied)} without a label")):
        assert said in client.get(page).text, page
    target = tied[0]
    assert admin.post(f"/api/v1/items/{target.id}/adjudication", json={"label": "plot"}).status_code == 204
    with session_scope(write=False) as session:
        decided = session.get(Item, target.id)
        assert decided.final_label == "plot" and decided.adjudicated_label == "plot"
    assert admin.get(f"/api/v1/projects/{pid}/stats").json()["disagreements_open"] == len(tied) - 1
    assert admin.post(f"/api/v1/items/{target.id}/adjudication", json={"label": "nope"}).status_code == 422


def test_exports_round_trip_and_the_model_predicts_like_the_worker(two_annotators):
    admin, clients, pid, gold = two_annotators
    label_round(clients, pid, gold, 40, bob_noise=0.0)
    exported = admin.get(f"/api/v1/projects/{pid}/export/items.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    with session_scope(write=False) as session:
        n_labelled = session.query(Item).filter(Item.project_id == pid, Item.final_label.is_not(None)).count()
    assert {r["label"] for r in rows} <= {"fresh", "rotten", "plot"} and len(rows) == n_labelled >= 40
    holdout_rows = list(csv.DictReader(io.StringIO(
        admin.get(f"/api/v1/projects/{pid}/export/items.csv?slice=holdout").text)))
    active_rows = list(csv.DictReader(io.StringIO(
        admin.get(f"/api/v1/projects/{pid}/export/items.csv?slice=active").text)))
    assert len(holdout_rows) + len(active_rows) == len(rows) and all(r["holdout"] == "True" for r in holdout_rows)

    # the export is a pool file: without the label option it imports as an unlabelled pool, the
    # label kept as metadata...
    plain = admin.post("/api/v1/projects", json={"name": "Plain copy", "kind": "text",
                                                 "labels": ["fresh", "rotten", "plot"]}).json()["id"]
    imported = admin.post(f"/api/v1/projects/{plain}/items",
                          files={"file": ("export.csv", exported.content, "text/csv")})
    assert imported.status_code == 201 and imported.json()["imported"] == n_labelled
    assert imported.json()["labelled"] == 0 and "label" in imported.json()["meta_columns"]
    # the old project's bookkeeping is no metadata of the copy
    assert imported.json()["left_out_columns"] == ["holdout", "n_annotations", "adjudicated"]
    assert not {"holdout", "n_annotations", "adjudicated"} & set(imported.json()["meta_columns"])
    with session_scope(write=False) as session:
        copies = {i.external_id: i for i in session.query(Item).filter(Item.project_id == plain)}
        assert {r["id"]: r["text"] for r in rows} == {k: v.payload["text"] for k, v in copies.items()}
        assert all(copies[r["id"]].meta["label"] == r["label"] and copies[r["id"]].final_label is None for r in rows)
        assert all(set(copies[r["id"]].meta) == {"label"} for r in rows)

    # ...and with label_column=label into a new project, the same items with the same labels, as training labels
    new = admin.post("/api/v1/projects", json={"name": "Copy", "kind": "text", "batch_size": 10,
                                               "labels": ["fresh", "rotten", "plot"]}).json()["id"]
    imported = admin.post(f"/api/v1/projects/{new}/items", data={"label_column": "label"},
                          files={"file": ("export.csv", exported.content, "text/csv")})
    assert imported.status_code == 201, imported.text
    assert imported.json()["imported"] == imported.json()["labelled"] == n_labelled
    assert imported.json()["label_column"] == "label" and "label" not in imported.json()["meta_columns"]
    with session_scope(write=False) as session:
        boss = session.query(User).filter(User.username == "boss").one()
        copies = {i.external_id: i for i in session.query(Item).filter(Item.project_id == new)}
        assert {r["id"]: (r["text"], r["label"]) for r in rows} == {
            k: (v.payload["text"], v.final_label) for k, v in copies.items()}
        assert all(v.n_annotations == 1 and v.state == "done" for v in copies.values())
        answers = session.query(Annotation).filter(Annotation.project_id == new).all()
        assert len(answers) == n_labelled
        assert {a.item_id: a.label for a in answers} == {v.id: v.final_label for v in copies.values()}
        assert all(a.source == "import" and a.user_id == boss.id and not a.skipped for a in answers)
        training = [v for v in copies.values() if not v.is_holdout]
        assert session.get(Project, new).n_training_labels == len(training) >= 30
        expected_counts = {label: sum(v.final_label == label for v in training)
                           for label in ("fresh", "rotten", "plot")}
    copy_stats = admin.get(f"/api/v1/projects/{new}/stats").json()
    assert copy_stats["counts"]["training_labels"] == len(training)
    assert copy_stats["counts"]["holdout_labels"] == n_labelled - len(training)
    assert {k: v for k, v in copy_stats["label_distribution"]["training"].items() if v} == {
        k: v for k, v in expected_counts.items() if v}
    # imported labels are nobody's throughput: the importer is not listed as an annotator
    assert copy_stats["annotators"] == []
    # the import queued a retrain, as labelling does; the worker trains on exactly the imported labels
    assert [j["status"] for j in admin.get(f"/api/v1/projects/{new}/jobs").json()] == ["queued"]
    run_worker_until_idle()
    assert [j["status"] for j in admin.get(f"/api/v1/projects/{new}/jobs").json()] == ["done"]
    copy_models = admin.get(f"/api/v1/projects/{new}/models").json()
    assert len(copy_models) == 1 and copy_models[0]["n_labels"] == len(training)
    assert copy_models[0]["metrics"]["label_counts"] == {k: v for k, v in expected_counts.items() if v}

    answers = admin.get(f"/api/v1/projects/{pid}/export/annotations.jsonl")
    import json

    lines = [json.loads(line) for line in answers.text.splitlines()]
    assert len(lines) == 80 and {"annotator", "seconds_spent", "holdout", "source", "model_version"} <= set(lines[0])

    model_file = admin.get(f"/api/v1/projects/{pid}/export/model.joblib")
    bundle = joblib.load(io.BytesIO(model_file.content))
    assert bundle["classes"] and bundle["library_versions"]["scikit-learn"]
    with session_scope(write=False) as session:
        project = session.get(Project, pid)
        stop = session.get(ModelVersion, project.current_model_version_id).diagnostics["stop_set"]
        texts = {i.id: i.payload["text"] for i in session.query(Item).filter(Item.id.in_(stop["ids"]))}
    predicted = bundle["pipeline"].predict([texts[i] for i in stop["ids"]])
    assert list(predicted) == stop["predictions"]  # what the worker predicted on the same items

    with_holdout = joblib.load(io.BytesIO(admin.get(
        f"/api/v1/projects/{pid}/export/model.joblib?include_holdout=true").content))
    assert with_holdout["includes_holdout"] and with_holdout["n_labels"] == n_labelled

    # the model's predictions for every item of the pool, as the worker predicted them (QA: no such export)
    predictions = admin.get(f"/api/v1/projects/{pid}/export/predictions.csv")
    assert predictions.status_code == 200
    table = list(csv.DictReader(io.StringIO(predictions.text)))
    with session_scope(write=False) as session:
        by_id = {i.id: i.external_id for i in session.query(Item).filter(Item.project_id == pid)}
    assert len(table) == len(by_id)
    predicted = {row["id"]: row["predicted"] for row in table}
    assert [predicted[by_id[i]] for i in stop["ids"]] == stop["predictions"]
    row = table[0]
    assert abs(sum(float(row[f"p_{c}"]) for c in bundle["classes"]) - 1) < 1e-4
    assert float(row["confidence"]) == max(float(row[f"p_{c}"]) for c in bundle["classes"])


def test_a_retrain_whose_worker_went_silent_is_not_shown_as_retraining(client, users):
    """QA: the worker killed mid-retrain, the dashboard said "retraining now" for good."""
    from datetime import timedelta

    from app.models import Job, JobStatus, utcnow

    _, token = users.create("boss", "admin")
    body = {"name": "P", "kind": "text", "labels": ["a", "b"]}
    pid = users.api(token).post("/api/v1/projects", json=body).json()["id"]
    login(client, "boss")
    with session_scope() as session:
        job = Job(project_id=pid, kind="train", status=JobStatus.running, n_labels=10, heartbeat_at=utcnow())
        session.add(job)
    assert "retraining now" in client.get(f"/projects/{pid}/dashboard").text
    with session_scope() as session:
        session.get(Job, job.id).heartbeat_at = utcnow() - timedelta(minutes=3)
    page = client.get(f"/projects/{pid}/dashboard", headers={"HX-Request": "true"}).text
    assert "retraining now" not in page
    assert "its worker has not been heard from for 3 min" in page and "is a worker running?" in page


def test_dashboard_page_for_leads_and_its_live_block(client, users, two_annotators):
    admin, clients, pid, gold = two_annotators
    label_round(clients, pid, gold, 15)
    users.create("lead", "lead")
    users.join(pid, "lead")
    login(client, "lead")
    page = client.get(f"/projects/{pid}/dashboard")
    assert page.status_code == 200 and 'id="chart-curve"' in page.text and 'id="dashboard-data"' in page.text
    live = client.get(f"/projects/{pid}/dashboard", headers={"HX-Request": "true"})
    assert "<html" not in live.text and "Annotators" in live.text and 'id="chart-curve"' not in live.text
    assert client.get(f"/projects/{pid}/export/items.csv").status_code == 200
    assert client.get(f"/projects/{pid}/disagreements").status_code == 200


def test_export_of_a_project_without_a_model_is_404(users):
    _, token = users.create("boss", "admin")
    api = users.api(token)
    pid = api.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": ["a", "b"]}).json()["id"]
    assert api.get(f"/api/v1/projects/{pid}/export/model.joblib").status_code == 404
    assert api.get(f"/api/v1/projects/{pid}/export/predictions.csv").status_code == 404
    assert api.get(f"/api/v1/projects/{pid}/export/items.csv?slice=bogus").status_code == 422


def test_exports_of_an_empty_slice_are_empty_files_with_their_header(users):
    # a new project's dashboard shows the export buttons before anyone has labelled
    _, token = users.create("boss", "admin")
    api = users.api(token)
    text_pid = api.post("/api/v1/projects", json={"name": "T", "kind": "text", "labels": ["a", "b"]}).json()["id"]
    table_pid = api.post("/api/v1/projects", json={"name": "R", "kind": "tabular", "labels": ["a", "b"]}).json()["id"]
    api.post(f"/api/v1/projects/{table_pid}/items", files={"file": ("t.csv", "id,x1,x2\nr1,1,2\n", "text/csv")})
    headers = {(text_pid, "items"): "id,text,label,holdout,n_annotations,adjudicated",
               (table_pid, "items"): "id,x1,x2,label,holdout,n_annotations,adjudicated",
               (text_pid, "annotations"): "item_id,label,skipped,annotator,created_at,updated_at,seconds_spent,"
                                          "holdout,source,strategy,score,model_version"}
    for (pid, kind), header in headers.items():
        for slice_ in ("all", "active", "holdout"):
            csv_file = api.get(f"/api/v1/projects/{pid}/export/{kind}.csv?slice={slice_}")
            assert csv_file.status_code == 200 and csv_file.text.splitlines() == [header]
            jsonl = api.get(f"/api/v1/projects/{pid}/export/{kind}.jsonl?slice={slice_}")
            assert jsonl.status_code == 200 and jsonl.text == ""


def test_item_list_pages_by_keyset_and_item_page_shows_answers(client, users):
    _, token = users.create("boss", "admin")
    api = users.api(token)
    pid = api.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": ["a", "b"]}).json()["id"]
    pool = "id,text\n" + "".join(f"k{i:03d},<b>text {i}</b>\n" for i in range(120))
    api.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", pool.encode(), "text/csv")})
    item = api.get(f"/api/v1/projects/{pid}/next").json()
    api.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "b", "seconds_spent": 3})
    csrf = login(client, "boss")
    first = client.get(f"/projects/{pid}/items")
    assert first.status_code == 200 and first.text.count('<tr><td><a href') == 50
    after = int(first.text.split("after=")[1].split('"')[0])
    second = client.get(f"/projects/{pid}/items?after={after}")
    assert "#k050" in second.text and "#k049" not in second.text
    assert "&lt;b&gt;text" in second.text  # item text escaped in the list
    labelled = client.get(f"/projects/{pid}/items?show=labelled")
    assert labelled.text.count('<tr><td><a href') == 1
    page = client.get(f"/projects/{pid}/items/{item['id']}")
    assert page.status_code == 200 and "boss" in page.text and "3.0" in page.text
    decided = client.post(f"/projects/{pid}/items/{item['id']}/adjudicate", data={"label": "a", "csrf_token": csrf},
                          follow_redirects=False)
    assert decided.status_code == 303
    assert "decided by a lead" in client.get(f"/projects/{pid}/items/{item['id']}").text
    assert client.get(f"/projects/{pid}/items?show=bogus").status_code == 422


def test_csv_exports_defuse_spreadsheet_formulas_but_keep_numbers(users):
    # item text, labels, metadata and usernames are untrusted; a spreadsheet would run "=..." as a formula
    _, token = users.create("=boss", "admin")
    api = users.api(token)
    pid = api.post("/api/v1/projects", json={"name": "F", "kind": "text", "labels": ["=1+1", "b"]}).json()["id"]
    pool = ('id,text,label,note\n'
            '=2+5,"=HYPERLINK(""http://evil.example/"",""x"")",=1+1,@SUM(1)\n'
            '-3.5,- a dash is fine to read,b,+1\n')
    assert api.post(f"/api/v1/projects/{pid}/items", data={"label_column": "label"},
                    files={"file": ("f.csv", pool, "text/csv")}).status_code == 201
    items = list(csv.DictReader(io.StringIO(api.get(f"/api/v1/projects/{pid}/export/items.csv").text)))
    by_text = {row["text"]: row for row in items}
    first = by_text["'=HYPERLINK(\"http://evil.example/\",\"x\")"]
    assert (first["id"], first["label"], first["note"]) == ("'=2+5", "'=1+1", "'@SUM(1)")
    second = by_text["'- a dash is fine to read"]
    assert (second["id"], second["note"]) == ("-3.5", "+1")  # plain numbers are not formulas
    answers = list(csv.DictReader(io.StringIO(api.get(f"/api/v1/projects/{pid}/export/annotations.csv").text)))
    assert {row["annotator"] for row in answers} == {"'=boss"}
    assert {row["label"] for row in answers} == {"'=1+1", "b"}
    # JSONL is data for programs, not spreadsheets: it stays as imported
    jsonl = api.get(f"/api/v1/projects/{pid}/export/items.jsonl").text
    assert '"id": "=2+5"' in jsonl


def test_a_csv_export_imports_back_as_it_was(users):
    # the apostrophe that keeps a spreadsheet from running a cell is taken off again on import
    _, token = users.create("boss", "admin")
    api = users.api(token)
    pid = api.post("/api/v1/projects", json={"name": "F", "kind": "text", "labels": ["=1+1", "b"]}).json()["id"]
    pool = 'id,text,label\n=2+5,=cmd,=1+1\nr2,-2 minus,b\nr3,\'quoted\' as typed,b\n'
    api.post(f"/api/v1/projects/{pid}/items", data={"label_column": "label"},
             files={"file": ("f.csv", pool, "text/csv")})
    exported = api.get(f"/api/v1/projects/{pid}/export/items.csv").text
    assert "'=cmd" in exported
    again = api.post("/api/v1/projects", json={"name": "G", "kind": "text", "labels": ["=1+1", "b"]}).json()["id"]
    assert api.post(f"/api/v1/projects/{again}/items", data={"label_column": "label"},
                    files={"file": ("export.csv", exported, "text/csv")}).status_code == 201
    rows = [json.loads(line) for line in api.get(f"/api/v1/projects/{again}/export/items.jsonl").text.splitlines()]
    assert sorted((r["id"], r["text"], r["label"]) for r in rows) == [
        ("=2+5", "=cmd", "=1+1"), ("r2", "-2 minus", "b"), ("r3", "'quoted' as typed", "b")]


def test_the_items_csv_has_a_column_for_every_metadata_key_not_only_the_first_rows(users):
    _, token = users.create("boss", "admin")
    api = users.api(token)
    pid = api.post("/api/v1/projects", json={"name": "M", "kind": "text", "labels": ["a", "b"]}).json()["id"]
    pool = '{"id": "1", "text": "one", "label": "a"}\n{"id": "2", "text": "two", "label": "b", "note": "late key"}\n'
    api.post(f"/api/v1/projects/{pid}/items", data={"label_column": "label"},
             files={"file": ("p.jsonl", pool, "application/x-ndjson")})
    rows = list(csv.DictReader(io.StringIO(api.get(f"/api/v1/projects/{pid}/export/items.csv").text)))
    assert [(r["id"], r["note"]) for r in rows] == [("1", ""), ("2", "late key")]


def test_an_export_is_named_after_its_project_letters_and_all_and_the_header_stays_whole(users):
    """QA: "Ünïcode" became "n-code" in the download's name; a quote or line break must not reach the header."""
    from urllib.parse import unquote

    _, token = users.create("boss", "admin")
    api = users.api(token)
    pid = api.post("/api/v1/projects", json={"name": 'Ünïcode "quoted" / ; name\r\nX-Evil: 1', "kind": "text",
                                             "labels": ["a", "b"]}).json()["id"]
    header = api.get(f"/api/v1/projects/{pid}/export/items.csv").headers["content-disposition"]
    plain, encoded = header.split("; filename*=UTF-8''")
    assert plain == 'attachment; filename="Unicode-quoted-name-X-Evil-1-items-all.csv"'
    assert unquote(encoded) == "Ünïcode-quoted-name-X-Evil-1-items-all.csv"
    assert not set(encoded) & set('"; \r\n')
    odd = api.post("/api/v1/projects", json={"name": "日本語", "kind": "text", "labels": ["a", "b"]}).json()["id"]
    header = api.get(f"/api/v1/projects/{odd}/export/items.csv").headers["content-disposition"]
    assert header.startswith(f'attachment; filename="project-{odd}-items-all.csv"')
    assert unquote(header.split("''")[1]) == "日本語-items-all.csv"
