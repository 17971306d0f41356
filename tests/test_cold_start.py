"""A new project's first items come in k-means coverage order, so a rare kind of item turns up
among the first labels; once a model exists, a label with too few examples gets a cover batch
first; `why` says so; a project with the random strategy stays random."""

import io

from sqlalchemy import func, select

from app.db import session_scope
from app.models import CoverageEntry, ModelVersion, RankingEntry
from tests.al.test_cold_start import blobs
from tests.conftest import run_worker_until_idle
from tests.test_auto_in_worker import BATCH, label, tabular_project
from tests.test_pages import login

NAMES = ("common", "uncommon", "rare")


def project_with_blobs(users, strategy: str):
    _, token = users.create("admin", "admin")
    api = users.api(token)
    X, blob = blobs()
    out = io.StringIO()
    out.write("id," + ",".join(f"f{j}" for j in range(X.shape[1])) + "\n")
    for i, row in enumerate(X):
        out.write(f"r{i}," + ",".join(f"{v:.4f}" for v in row) + "\n")
    pid = api.post("/api/v1/projects", json={
        "name": "Blobs", "kind": "tabular", "labels": list(NAMES), "strategy": strategy,
        "batch_size": 10, "holdout_fraction": 0}).json()["id"]
    assert api.post(f"/api/v1/projects/{pid}/items",
                    files={"file": ("p.csv", out.getvalue().encode(), "text/csv")}).status_code == 201
    oracle = {f"r{i}": NAMES[b] for i, b in enumerate(blob)}
    return api, pid, oracle


def serve_and_label(api, pid, oracle, n):
    served = []
    for _ in range(n):
        item = api.get(f"/api/v1/projects/{pid}/next").json()
        served.append(item)
        assert api.post(f"/api/v1/items/{item['id']}/annotations",
                        json={"label": oracle[item["external_id"]]}).status_code == 201
    return served


def test_the_first_labels_cover_the_pool_and_why_says_so(users, client):
    api, pid, oracle = project_with_blobs(users, "margin")
    run_worker_until_idle()  # the import queued the cold-start job
    login(client, "admin")
    assert "in k-means coverage order" in client.get(f"/projects/{pid}").text  # the project page says so
    client.cookies.clear()
    with session_scope(write=False) as session:
        assert session.scalar(select(func.count()).select_from(CoverageEntry)
                              .where(CoverageEntry.project_id == pid)) == 1_000
    first = serve_and_label(api, pid, oracle, 10)
    assert all(s["why"]["source"] == "cold_start" and s["why"]["strategy"] == "coverage" for s in first)
    assert {oracle[s["external_id"]] for s in first} == set(NAMES)  # the 1% blob among the first ten
    # a first model on ten labels, more than two per label: its ranking takes over from the order
    run_worker_until_idle()
    following = serve_and_label(api, pid, oracle, 1)[0]
    assert following["why"]["source"] == "ranking" and following["why"]["strategy"] == "margin"


def test_once_a_model_exists_a_label_seen_once_gets_a_cover_batch_first(users, client):
    """Eight labels, ten labelled: some label has fewer than two examples, so a margin project's new
    ranking starts with TypiClust's batch; `why`, the card and the dashboard say so; with two of
    each label (or two labels per label) margin ranks alone."""
    api, pid, oracle = tabular_project(users, n=300, sectors=8, strategy="margin")
    first = label(api, pid, oracle, BATCH)
    assert all(s["why"]["source"] == "cold_start" for s in first)
    run_worker_until_idle()
    with session_scope(write=False) as session:
        version = session.scalars(select(ModelVersion).where(ModelVersion.project_id == pid)).one()
        cover_ids = version.metrics["cover"]["ids"]
        assert version.strategy == "margin:cover" and len(cover_ids) == BATCH
        ranked = session.scalars(select(RankingEntry.item_id).where(RankingEntry.model_version_id == version.id)
                                 .order_by(RankingEntry.rank).limit(BATCH)).all()
    assert ranked == cover_ids  # the cover batch heads the ranking
    login(client, "admin")
    assert "starts with a cover batch" in client.get(f"/projects/{pid}/dashboard").text
    card = client.get(f"/projects/{pid}/label").text
    assert "cold start: covering the pool (TypiClust)" in card
    client.cookies.clear()
    batch = label(api, pid, oracle, BATCH)
    assert {s["why"]["strategy"] for s in batch} == {"margin:cover"} and {s["id"] for s in batch} == set(cover_ids)
    # past the cover batch (the worker has not retrained yet) the ranking is margin's own, and says so
    after = api.get(f"/api/v1/projects/{pid}/next").json()
    assert after["id"] not in cover_ids and after["why"]["strategy"] == "margin", after["why"]
    run_worker_until_idle()  # 20 labels for 8 labels: at least two per label, so no more cover
    with session_scope(write=False) as session:
        latest = session.scalars(select(ModelVersion).where(ModelVersion.project_id == pid)
                                 .order_by(ModelVersion.version.desc())).first()
        assert latest.strategy == "margin" and "cover" not in latest.metrics


def test_the_random_strategy_stays_uniform(users, client):
    api, pid, oracle = project_with_blobs(users, "random")
    run_worker_until_idle()
    login(client, "admin")
    assert "items come in random order" in client.get(f"/projects/{pid}").text
    client.cookies.clear()
    first = serve_and_label(api, pid, oracle, 5)
    assert all(s["why"]["strategy"] == "random" for s in first)
