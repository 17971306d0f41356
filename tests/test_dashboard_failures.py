"""A retrain that fails is shown to leads on the dashboard, with its reason, and serving goes on."""

import html
import re

from app.db import session_scope
from app.models import Project
from app.training.queue import queue_training
from tests.conftest import run_worker_until_idle
from tests.test_pages import login

REASON = "only one label so far (a): a model needs examples of at least two labels"


def failures_listed(page: str) -> list[tuple[int, str]]:
    """(job id, reason) of every failed retrain in the dashboard's "Needs a human" list."""
    return [(int(job_id), html.unescape(reason)) for job_id, reason in re.findall(
        r'<li class="error">Retrain #(\d+) failed[^<]*?: <pre class="reason">(.*?)</pre></li>', page, flags=re.S)]


def test_a_failed_retrain_is_shown_to_the_lead_and_serving_goes_on(client, users):
    _, admin_token = users.create("admin", "admin")
    admin = users.api(admin_token)
    pid = admin.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": ["a", "b"],
                                               "batch_size": 2, "holdout_fraction": 0}).json()["id"]
    words = ["apple", "banana", "cherry", "damson", "elder", "fig", "grape", "hazel", "iris", "juniper"]
    pool = "text\n" + "".join(f"{w} {w} tart\n" for w in words)
    admin.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", pool.encode(), "text/csv")})
    _, annotator_token = users.create("ann", "annotator")
    users.create("lead", "lead")
    users.join(pid, "ann", "lead")
    annotator = users.api(annotator_token)
    run_worker_until_idle()  # the import's coverage order

    # A first model on two labels; then the "b" is taken back and only "a" is left to train on.
    for label in ["a", "b"]:
        item = annotator.get(f"/api/v1/projects/{pid}/next").json()
        assert annotator.post(f"/api/v1/items/{item['id']}/annotations", json={"label": label}).status_code == 201
    run_worker_until_idle()
    assert [m["version"] for m in admin.get(f"/api/v1/projects/{pid}/models").json()] == [1]
    assert annotator.post(f"/api/v1/projects/{pid}/undo").status_code == 200
    with session_scope() as session:  # a retrain asked for anyway fails cleanly
        job_id = queue_training(session, project=session.get(Project, pid), n_labels=1).id
    run_worker_until_idle()
    job = next(j for j in admin.get(f"/api/v1/projects/{pid}/jobs").json() if j["id"] == job_id)
    assert job["status"] == "failed" and job["error"] == REASON

    login(client, "lead")
    page = client.get(f"/projects/{pid}/dashboard")
    assert page.status_code == 200 and "<html" in page.text
    assert failures_listed(page.text) == [(job_id, REASON)]
    live = client.get(f"/projects/{pid}/dashboard", headers={"HX-Request": "true"})
    assert live.status_code == 200 and "<html" not in live.text
    assert failures_listed(live.text) == [(job_id, REASON)]
    # the model that was serving is still the current one
    assert re.search(r'id="fig-model">v1<', live.text)
    assert client.get(f"/api/v1/projects/{pid}/stats",
                      headers={"Authorization": f"Bearer {admin_token}"}).json()["model"]["version"] == 1

    # Serving goes on: the annotator gets items and their answers are kept.
    served = annotator.get(f"/api/v1/projects/{pid}/next")
    assert served.status_code == 200
    answer = annotator.post(f"/api/v1/items/{served.json()['id']}/annotations", json={"label": "b"})
    assert answer.status_code == 201
    assert annotator.get(f"/api/v1/projects/{pid}/next").status_code == 200
    # once a later retrain succeeds, the failure no longer needs anyone
    with session_scope() as session:
        queue_training(session, project=session.get(Project, pid), n_labels=2)
    run_worker_until_idle()
    live = client.get(f"/projects/{pid}/dashboard", headers={"HX-Request": "true"})
    assert re.search(r'id="fig-model">v2<', live.text) and failures_listed(live.text) == []
