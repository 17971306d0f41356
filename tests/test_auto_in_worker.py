"""`auto` run by the worker: the bandit's state survives from one retrain to the next, rewards
arrive once the last batch is labelled, and served items say which strategy chose them."""

import io

import numpy as np
from sqlalchemy import func, select

from app.al.cold_start import COVER_REASON
from app.db import session_scope
from app.models import ModelVersion
from tests.conftest import run_worker_until_idle
from tests.test_pages import login

BATCH = 10


def tabular_project(users, n: int = 400, seed: int = 3, sectors: int = 0, strategy_params: dict | None = None,
                    strategy: str = "auto"):
    """A 4-feature pool labelled neg / pos by a line, or (sectors > 0) by the angle of its first two
    features, one label per sector."""
    _, token = users.create("admin", "admin")
    api = users.api(token)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    if sectors:
        labels = [f"s{k}" for k in range(sectors)]
        angle = np.mod(np.arctan2(X[:, 1], X[:, 0]), 2 * np.pi)
        oracle = {f"r{i}": labels[int(angle[i] / (2 * np.pi) * sectors) % sectors] for i in range(n)}
    else:
        labels = ["neg", "pos"]
        oracle = {f"r{i}": ("pos" if X[i, 0] + X[i, 1] > 0 else "neg") for i in range(n)}
    out = io.StringIO()
    out.write("id,f0,f1,f2,f3\n")
    for i in range(n):
        out.write(f"r{i}," + ",".join(f"{v:.4f}" for v in X[i]) + "\n")
    pid = api.post("/api/v1/projects", json={
        "name": "Auto", "kind": "tabular", "labels": labels, "strategy": strategy,
        "strategy_params": strategy_params or {},
        "batch_size": BATCH, "holdout_fraction": 0}).json()["id"]
    assert api.post(f"/api/v1/projects/{pid}/items",
                    files={"file": ("p.csv", out.getvalue().encode(), "text/csv")}).status_code == 201
    run_worker_until_idle()  # the cold-start order
    return api, pid, oracle


def retrain() -> None:
    """Run the worker until idle: the retrain, and whatever it queues after it (label quality)."""
    with session_scope(write=False) as session:
        before = session.scalar(select(func.count()).select_from(ModelVersion))
    run_worker_until_idle()
    with session_scope(write=False) as session:
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == before + 1


def label(api, pid, oracle, n):
    served = []
    for _ in range(n):
        item = api.get(f"/api/v1/projects/{pid}/next").json()
        served.append(item)
        assert api.post(f"/api/v1/items/{item['id']}/annotations",
                        json={"label": oracle[item["external_id"]]}).status_code == 201
    return served


def stored(pid):
    with session_scope(write=False) as session:
        rows = session.execute(select(ModelVersion.version, ModelVersion.strategy, ModelVersion.metrics,
                                      ModelVersion.diagnostics).where(ModelVersion.project_id == pid)
                               .order_by(ModelVersion.version)).all()
    return rows


def test_the_worker_carries_the_bandit_state_and_why_names_the_arm(users):
    api, pid, oracle = tabular_project(users)
    label(api, pid, oracle, BATCH)
    retrain()
    served = []
    for _ in range(4):  # four batches, each served from the ranking auto wrote, then a retrain
        served.append(label(api, pid, oracle, BATCH))
        retrain()

    versions = stored(pid)
    assert [v.version for v in versions] == [1, 2, 3, 4, 5]
    arms = {"margin_diverse", "margin"}
    for v in versions:
        base, arm = v.strategy.split(":")
        assert base == "auto" and arm in arms
        choice = v.metrics["strategy_choice"]
        assert choice["arm"] == arm and choice["reason"]
        assert abs(sum(choice["probabilities"].values()) - 1) < 1e-3  # rounded to 4 places
    steps = [v.metrics["strategy_choice"]["step"] for v in versions]
    assert steps == [1, 2, 3, 4, 5]  # one bandit step per retrain: the state went from each to the next
    assert versions[-1].diagnostics["strategy_state"]["step"] == 5  # (older versions' diagnostics are pruned)
    last_state = versions[-1].diagnostics["strategy_state"]
    # The batches served since version 1 were labelled, so their arms were rewarded (or logged with a
    # reason when no evaluation item had a label yet).
    rewarded = [h for h in last_state["history"][:-1] if h["reward"] is not None]
    assert rewarded, last_state["history"]
    assert sum(last_state["rewarded"].values()) == len(rewarded)

    # Each batch served from a ranking names the arm of the version it came from, or the random share.
    for batch, version in zip(served, versions[:4], strict=True):
        strategies = {s["why"]["strategy"] for s in batch if s["why"]["source"] == "ranking"}
        assert strategies <= {version.strategy, "auto:random share"}, (strategies, version.strategy)
    random_share = [s for batch in served for s in batch if s["why"]["strategy"] == "auto:random share"]
    random_ids = {i for v in versions[:4] for i in v.metrics["strategy_choice"]["random_ids"]}
    assert {s["id"] for s in random_share} <= random_ids
    # auto's random share is an expected 10% of each batch: over 40 served items, some came from it
    assert random_ids and random_share

    stats = api.get(f"/api/v1/projects/{pid}/stats").json()
    assert stats["model"]["strategy"] == versions[-1].strategy
    assert stats["model"]["strategy_choice"]["arm"] == versions[-1].strategy.split(":")[1]


def test_with_labels_seen_once_the_worker_covers_the_pool_first(users, client):
    """Eight labels, ten labelled items: some label has fewer than two examples, so auto's batch is
    a cover batch (TypiClust), and the version, its `why` and the dashboard say so."""
    api, pid, oracle = tabular_project(users, n=300, sectors=8)
    label(api, pid, oracle, BATCH)
    retrain()
    (version,) = stored(pid)
    assert version.strategy == "auto:cover"
    choice = version.metrics["strategy_choice"]
    assert choice["arm"] == "cover" and "Cold start" in choice["reason"]
    state = version.diagnostics["strategy_state"]
    assert state["history"][-1]["arm"] == "cover" and sum(state["pulls"].values()) == 0
    login(client, "admin")
    page = client.get(f"/projects/{pid}/dashboard").text
    assert "Strategy auto chose cover" in page
    assert "starts with a cover batch" not in page  # said once, in auto's own paragraph
    assert api.get(f"/api/v1/projects/{pid}/stats").json()["model"]["cover_reason"] == COVER_REASON
    # once a model exists, auto's ranking (not the static coverage order) is served, and says cover
    batch = label(api, pid, oracle, BATCH)
    assert all(s["why"]["source"] == "ranking" for s in batch), [s["why"] for s in batch]
    assert {s["why"]["strategy"] for s in batch} <= {"auto:cover", "auto:random share"}
    # the batch served is the one auto picked: its TypiClust items and its random share
    assert {s["id"] for s in batch} == set(state["pending"]["ids"]) | set(state["pending"]["random_ids"])
    assert {s["id"] for s in batch if s["why"]["strategy"] == "auto:cover"} == set(state["pending"]["ids"])
    # past the batch (no retrain yet) the ranking is the drawn arm's order, and `why` names that arm
    assert version.metrics["cover"]["ids"] == state["pending"]["ids"] and choice["ranked_by"] in state["arms"]
    assert "cover_ids" not in choice  # one place for a cover batch's items, whatever the strategy
    after = api.get(f"/api/v1/projects/{pid}/next").json()
    assert after["id"] not in state["pending"]["ids"] + state["pending"]["random_ids"]
    assert after["why"]["strategy"] == f"auto:{choice['ranked_by']}", after["why"]


def test_settings_without_a_label_set_turn_the_cover_off(users):
    api, pid, oracle = tabular_project(users, n=300, sectors=8, strategy_params={"labels": None})
    label(api, pid, oracle, BATCH)
    retrain()
    (version,) = stored(pid)
    assert version.strategy.split(":")[1] in {"margin_diverse", "margin"}


def test_the_dashboard_says_which_strategy_auto_chose(users, client):
    api, pid, oracle = tabular_project(users, n=120)
    label(api, pid, oracle, BATCH)
    run_worker_until_idle()
    login(client, "admin")
    page = client.get(f"/projects/{pid}/dashboard")
    assert page.status_code == 200
    arm = stored(pid)[-1].strategy.split(":")[1]
    assert f"Strategy auto chose {arm}" in page.text


def test_a_new_text_project_gets_auto_and_the_worker_draws_a_text_arm(users):
    """No strategy given: the project gets the default, auto, and on TF-IDF features the worker
    draws among the text arms."""
    from app.al.strategies.auto import SPARSE_ARMS

    _, token = users.create("admin", "admin")
    api = users.api(token)
    rng = np.random.default_rng(5)
    good, bad, filler = ["good", "great", "lovely", "fine"], ["bad", "awful", "dull", "poor"], ["film", "plot", "cast"]
    lines, oracle = [], {}
    for i in range(200):
        positive = i % 2 == 0
        words = list(rng.choice(good if positive else bad, 2)) + list(rng.choice(filler, 3))
        lines.append(f'{{"id": "t{i}", "text": "{" ".join(words)}"}}')
        oracle[f"t{i}"] = "pos" if positive else "neg"
    project = api.post("/api/v1/projects", json={"name": "Texts", "kind": "text", "labels": ["neg", "pos"],
                                                 "batch_size": BATCH, "holdout_fraction": 0}).json()
    assert project["strategy"] == "auto"
    assert api.post(f"/api/v1/projects/{project['id']}/items", data={"id_column": "id"},
                    files={"file": ("t.jsonl", "\n".join(lines).encode(), "application/jsonl")}).status_code == 201
    run_worker_until_idle()
    for _ in range(2):
        label(api, project["id"], oracle, BATCH)
        retrain()
    versions = stored(project["id"])
    assert versions and all(v.strategy.split(":")[0] == "auto" for v in versions)
    assert {v.strategy.split(":")[1] for v in versions} <= set(SPARSE_ARMS)
