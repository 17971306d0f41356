"""A new project's first items come in k-means coverage order, so a rare kind of item turns up
among the first labels; `why` says so; a project with the random strategy stays random."""

import io

from sqlalchemy import func, select

from app.db import session_scope
from app.models import CoverageEntry
from tests.al.test_cold_start import blobs
from tests.conftest import run_worker_until_idle

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


def test_the_first_labels_cover_the_pool_and_why_says_so(users):
    api, pid, oracle = project_with_blobs(users, "margin")
    run_worker_until_idle()  # the import queued the cold-start job
    with session_scope(write=False) as session:
        assert session.scalar(select(func.count()).select_from(CoverageEntry)
                              .where(CoverageEntry.project_id == pid)) == 1_000
    first = serve_and_label(api, pid, oracle, 10)
    assert all(s["why"]["source"] == "cold_start" and s["why"]["strategy"] == "coverage" for s in first)
    assert {oracle[s["external_id"]] for s in first} == set(NAMES)  # the 1% blob among the first ten
    run_worker_until_idle()  # a first model; the rare label has fewer than three examples, so coverage goes on
    counts = {name: sum(oracle[s["external_id"]] == name for s in first) for name in NAMES}
    following = serve_and_label(api, pid, oracle, 1)[0]
    if min(counts.values()) < 3:
        assert following["why"]["source"] == "cold_start"
    # once every label has three examples (or the model has 15 labels), the model's ranking takes over
    for _ in range(3):
        serve_and_label(api, pid, oracle, 10)
        run_worker_until_idle()
    assert api.get(f"/api/v1/projects/{pid}/next").json()["why"]["source"] == "ranking"


def test_the_random_strategy_stays_uniform(users):
    api, pid, oracle = project_with_blobs(users, "random")
    run_worker_until_idle()
    first = serve_and_label(api, pid, oracle, 5)
    assert all(s["why"]["strategy"] == "random" for s in first)
