"""Simulations on a project's own labels: queued from the API or the page, run by the worker."""

import re

from tests.conftest import run_worker_until_idle
from tests.data import rotten_tomatoes, to_csv
from tests.test_pages import login


def labelled_project(users, n_labels=80):
    _, token = users.create("boss", "admin")
    api = users.api(token)
    pid = api.post("/api/v1/projects", json={"name": "R", "kind": "text", "labels": ["fresh", "rotten", "plot"],
                                             "batch_size": 1000}).json()["id"]
    rows = rotten_tomatoes(n_labels + 20, seed=4)
    gold = {r["id"]: r["category"] for r in rows}
    api.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", to_csv(rows, ["id", "text"]), "text/csv")})
    for _ in range(n_labels):
        item = api.get(f"/api/v1/projects/{pid}/next").json()
        api.post(f"/api/v1/items/{item['id']}/annotations", json={"label": gold[item["external_id"]]})
    return api, pid


def test_simulation_through_the_api(users):
    api, pid = labelled_project(users)
    started = api.post(f"/api/v1/projects/{pid}/simulations",
                       json={"strategies": ["random", "margin"], "repeats": 2, "budget": 50})
    assert started.status_code == 202 and started.json()["status"] == "queued"
    run_worker_until_idle()
    done = api.get(f"/api/v1/projects/{pid}/simulations/{started.json()['id']}").json()
    assert done["status"] == "done" and set(done["result"]["summary"]) == {"random", "margin"}
    assert done["result"]["config"]["budget"] == 50 and len(done["result"]["runs"]) == 4
    # 80 labels: 56 to draw from after the test split, so the cold start is capped at a quarter of them
    assert done["result"]["config"]["initial"] == 14 and done["result"]["runs"][0]["curve"][0][0] == 14


def test_too_few_labels_or_unknown_strategy_is_422(users):
    api, pid = labelled_project(users, n_labels=10)
    few = api.post(f"/api/v1/projects/{pid}/simulations", json={"strategies": ["random"]})
    assert few.status_code == 422 and "at least 60 labels" in few.json()["detail"]
    unknown = api.post(f"/api/v1/projects/{pid}/simulations", json={"strategies": ["crystal_ball"]})
    assert unknown.status_code == 422 and "unknown: crystal_ball" in unknown.json()["detail"]


def test_simulation_from_the_project_page(client, users):
    api, pid = labelled_project(users)
    token = login(client, "boss", "password-123")
    page = client.get(f"/projects/{pid}")
    assert "Compare strategies on your labels" in page.text
    response = client.post(f"/projects/{pid}/simulations", data={
        "strategies": ["random", "entropy"], "repeats": "1", "budget": "40", "csrf_token": token},
        follow_redirects=False)
    assert response.status_code == 303
    run_worker_until_idle()
    page = client.get(f"/projects/{pid}")
    assert re.search(r"#\d+ · done · random, entropy", page.text)
    assert page.text.count("<polyline") == 2


def test_the_simulation_form_says_what_is_wrong_beside_itself(client, users):
    api, pid = labelled_project(users)
    token = login(client, "boss", "password-123")
    none_ticked = client.post(f"/projects/{pid}/simulations", data={"repeats": "abc", "budget": "40",
                                                                    "csrf_token": token})
    assert none_ticked.status_code == 422 and "Compare strategies on your labels" in none_ticked.text
    assert "Tick at least one strategy to compare." in none_ticked.text
    assert "Repeats: give a whole number from 1 to 10." in none_ticked.text
    assert 'name="repeats" type="number" min="1" max="10" value="abc"' in none_ticked.text
    few = users.api(users.create("other", "admin")[1])
    small = few.post("/api/v1/projects", json={"name": "S", "kind": "text", "labels": ["a", "b"]}).json()["id"]
    page = client.get(f"/projects/{small}").text
    assert "Available once the project has" in page and "<button type=\"submit\" disabled>Run simulation" in page
    refused = client.post(f"/projects/{small}/simulations", data={"strategies": ["margin"], "csrf_token": token})
    assert refused.status_code == 422 and "A simulation needs at least" in refused.text
    assert 'value="margin" checked' in refused.text
