"""Every registered strategy, with every batch mode, runs in the worker and in the simulator."""

import numpy as np
import pytest
from sklearn.datasets import load_iris

from app.al import STRATEGIES
from app.al.batch import BATCH_MODES
from app.al.simulate import Dataset, SimulationConfig, simulate
from tests.conftest import run_worker_until_idle
from tests.data import rotten_tomatoes, to_csv


def _label_and_train(api, pid, answer, n=15):
    """n labels, then the worker: 15 = five per label of these three-label projects, the most the
    cold start's coverage order can take (app/labeling/service.py), so /next then serves the ranking."""
    for _ in range(n):
        item = api.get(f"/api/v1/projects/{pid}/next").json()
        assert api.post(f"/api/v1/items/{item['id']}/annotations", json={"label": answer(item)}).status_code == 201
    run_worker_until_idle()


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_strategy_runs_in_the_worker_on_tabular_rows(users, strategy):
    iris = load_iris()
    _, token = users.create("admin", "admin")
    api = users.api(token)
    pid = api.post("/api/v1/projects", json={"name": strategy, "kind": "tabular", "strategy": strategy,
                                             "labels": list(iris.target_names), "batch_size": 10,
                                             "holdout_fraction": 0}).json()["id"]
    lines = ["id,a,b,c,d"] + [f"i{n}," + ",".join(map(str, row)) for n, row in enumerate(iris.data)]
    api.post(f"/api/v1/projects/{pid}/items", files={"file": ("iris.csv", "\n".join(lines).encode(), "text/csv")})
    _label_and_train(api, pid, lambda item: iris.target_names[iris.target[int(item["external_id"][1:])]])
    jobs = api.get(f"/api/v1/projects/{pid}/jobs").json()
    assert jobs[0]["status"] == "done", jobs[0]["error"]
    nxt = api.get(f"/api/v1/projects/{pid}/next").json()
    expected = "random" if strategy == "random" else "ranking"
    assert nxt["why"]["source"] == expected and nxt["why"]["model_version"] == 1


@pytest.mark.parametrize("batch_mode", BATCH_MODES)
def test_batch_modes_run_in_the_worker_on_texts(users, batch_mode):
    _, token = users.create("admin", "admin")
    api = users.api(token)
    rows = rotten_tomatoes(200, seed=2)
    gold = {r["id"]: r["category"] for r in rows}
    pid = api.post("/api/v1/projects", json={"name": batch_mode, "kind": "text", "strategy": "entropy",
                                             "strategy_params": {"batch_mode": batch_mode},
                                             "labels": ["fresh", "rotten", "plot"], "batch_size": 10,
                                             "holdout_fraction": 0}).json()["id"]
    api.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", to_csv(rows, ["id", "text"]), "text/csv")})
    _label_and_train(api, pid, lambda item: gold[item["external_id"]])
    jobs = api.get(f"/api/v1/projects/{pid}/jobs").json()
    assert jobs[0]["status"] == "done", jobs[0]["error"]
    assert api.get(f"/api/v1/projects/{pid}/next").json()["why"]["source"] == "ranking"


def test_every_strategy_runs_in_the_simulator():
    iris = load_iris()
    dataset = Dataset("iris", "tabular", iris.data.astype(float), iris.target.astype(str).astype(object))
    config = SimulationConfig(initial=10, batch_size=5, budget=25, repeats=1, seed=0)
    result = simulate(dataset, sorted(STRATEGIES), config=config)
    assert set(result["summary"]) == set(STRATEGIES)
    assert all(np.isfinite(row["aulc_mean"]) for row in result["summary"].values())
