"""Issue 6: "the worker keeps serving while [label quality] runs".

The real worker loop runs in a thread (`run_worker(stop=...)`) on the test database, and the web app
is driven in-process through its HTTP API. The label-quality computation (`app.quality.jobs.analyse`,
the slow, numpy-only step that `compute_quality` runs with no transaction open) is held on an event
until the test lets it go, so the job is certainly still running while annotators label and a retrain
is claimed, trained and published. Nothing else is replaced. Only the app's sessions and ORM are used,
so the test runs unchanged on SQLite and on PostgreSQL.
"""

import threading
import time

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sqlalchemy import func, select

from app.db import session_scope
from app.labeling import service as labeling
from app.models import Annotation, Item, Job, JobStatus, ModelVersion, Project, QualityReport, User
from app.quality import jobs as quality_jobs
from app.worker.runner import run_worker
from tests.conftest import run_worker_until_idle

N_ITEMS, N_HOLDOUT, BATCH = 200, 40, 10
TIMEOUT = 60.0


def wait_until(condition, what: str, timeout: float = TIMEOUT):
    """Poll `condition` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


class Gate:
    """Stands in for `analyse`: the n-th call waits for `release[n]`, then runs the real computation."""

    def __init__(self, real, n_gates: int):
        self.real = real
        self.release = [threading.Event() for _ in range(n_gates)]
        self.entered: list[int] = []  # model_version_id of each call, in order
        self._lock = threading.Lock()

    def __call__(self, inputs):
        with self._lock:
            n = len(self.entered)
            self.entered.append(inputs.model_version_id)
        if n < len(self.release) and not self.release[n].wait(4 * TIMEOUT):
            raise RuntimeError("the test never released the label-quality computation")
        return self.real(inputs)

    def open_all(self) -> None:
        for event in self.release:
            event.set()


def _pool() -> tuple[bytes, dict[str, str]]:
    data = load_breast_cancer()
    rows = np.random.default_rng(0).choice(len(data.target), size=N_ITEMS, replace=False)
    lines = ["id," + ",".join(f"f{j}" for j in range(8))]
    gold = {}
    for n, r in enumerate(rows):
        lines.append(f"c{n}," + ",".join(f"{v:.6g}" for v in data.data[r, :8]))
        gold[f"c{n}"] = str(data.target_names[data.target[r]])
    return "\n".join(lines).encode(), gold


def _job(job_id: int) -> tuple[str, str]:
    with session_scope(write=False) as session:
        job = session.get(Job, job_id)
        return job.kind, job.status


def _jobs(pid: int, kind: str) -> list[tuple[int, str]]:
    with session_scope(write=False) as session:
        return [tuple(row) for row in session.execute(
            select(Job.id, Job.status).where(Job.project_id == pid, Job.kind == kind).order_by(Job.id)).all()]


def _model_id(pid: int, version: int) -> int:
    with session_scope(write=False) as session:
        return session.scalar(select(ModelVersion.id).where(ModelVersion.project_id == pid,
                                                            ModelVersion.version == version))


def _label_one(api, pid: int, gold: dict[str, str]) -> dict:
    """What an annotator does: take the next item and answer it; both calls must succeed."""
    served = api.get(f"/api/v1/projects/{pid}/next")
    assert served.status_code == 200, served.text
    item = served.json()
    answer = api.post(f"/api/v1/items/{item['id']}/annotations", json={"label": gold[item["external_id"]]})
    assert answer.status_code == 201, answer.text
    return item


@pytest.fixture
def project(users):
    """A tabular project with a labelled holdout (set aside here, so serving never draws it) and a
    first batch of labels from an annotator through the API; its retrain is queued, not run."""
    _, admin_token = users.create("boss", "admin")
    _, lead_token = users.create("lead", "lead")
    _, ann_token = users.create("ann", "annotator")
    admin = users.api(admin_token)
    pid = admin.post("/api/v1/projects", json={
        "name": "Cells", "kind": "tabular", "labels": ["malignant", "benign"], "batch_size": BATCH,
        "holdout_fraction": 0.0, "members": ["lead", "ann"]}).json()["id"]
    body, gold = _pool()
    assert admin.post(f"/api/v1/projects/{pid}/items", files={"file": ("c.csv", body, "text/csv")}).status_code == 201
    with session_scope() as session:
        project = session.get(Project, pid)
        lead = session.scalar(select(User).where(User.username == "lead"))
        for item in session.scalars(select(Item).where(Item.project_id == pid).order_by(Item.id).limit(N_HOLDOUT)):
            item.is_holdout = True
            labeling.annotate(session, project=project, item=item, user=lead, label=gold[item.external_id])
    run_worker_until_idle()  # the import's cold-start job (coverage order), out of the way
    ann = users.api(ann_token)
    for _ in range(BATCH):
        _label_one(ann, pid, gold)
    assert [status for _, status in _jobs(pid, "train")] == [JobStatus.queued]
    return {"pid": pid, "ann": ann, "lead": users.api(lead_token), "gold": gold}


def test_annotators_and_retrains_go_on_while_label_quality_runs(project, monkeypatch):
    pid, ann, lead, gold = project["pid"], project["ann"], project["lead"], project["gold"]
    gate = Gate(quality_jobs.analyse, n_gates=2)
    monkeypatch.setattr(quality_jobs, "analyse", gate)
    stop = threading.Event()
    worker = threading.Thread(target=run_worker, kwargs={"stop": stop}, name="test-worker", daemon=True)
    worker.start()
    try:
        # The worker trains v1 and queues its label-quality job, which it hands to its background
        # thread; the computation starts (inputs read for v1) and is held there.
        wait_until(lambda: gate.entered, "the label-quality computation of model v1 to start")
        v1 = _model_id(pid, 1)
        assert gate.entered == [v1]
        [(first_quality, status)] = _jobs(pid, "quality")
        assert status == JobStatus.running
        quality = lead.get(f"/api/v1/projects/{pid}/quality").json()["report"]
        assert (quality["model_version"], quality["current_model_version"], quality["computing"]) == (None, 1, True)

        # Annotators keep being served, and their labels are stored, while the job runs.
        served_during = [_label_one(ann, pid, gold) for _ in range(BATCH)]
        with session_scope(write=False) as session:
            stored = set(session.scalars(select(Annotation.item_id).where(
                Annotation.project_id == pid, Annotation.label.is_not(None))))
        assert {item["id"] for item in served_during} <= stored
        assert len(stored) == N_HOLDOUT + 2 * BATCH
        # Those labels queued a retrain: it is claimed and finishes, and a new model is published...
        retrains = _jobs(pid, "train")
        assert len(retrains) == 2 and retrains[1][0] > first_quality
        wait_until(lambda: _job(retrains[1][0])[1] == JobStatus.done, "the retrain queued during label quality")
        models = lead.get(f"/api/v1/projects/{pid}/models").json()
        assert sorted(m["version"] for m in models) == [1, 2]
        assert next(m for m in models if m["is_current"])["version"] == 2
        assert next(m for m in models if m["version"] == 2)["n_labels"] == 2 * BATCH
        # ...and served from, while the first label-quality job is still held.
        assert _label_one(ann, pid, gold)["why"]["model_version"] == 2
        assert _job(first_quality)[1] == JobStatus.running and not gate.release[0].is_set()
        assert gate.entered == [v1]  # the v2 quality job cannot start: one quality job per project at a time
        assert [status for _, status in _jobs(pid, "quality")] == [JobStatus.running, JobStatus.queued]

        # Released, the job finishes with a report on the model it started on (v1): the app shows it as
        # stale while the job the v2 retrain queued computes the newer one.
        gate.release[0].set()
        wait_until(lambda: _job(first_quality)[1] == JobStatus.done, "the first label-quality job to finish")
        with session_scope(write=False) as session:
            report = session.scalar(select(QualityReport).where(QualityReport.project_id == pid))
            assert report.model_version_id == v1
            assert (report.n_items, report.n_holdout) == (BATCH, N_HOLDOUT)  # the labels read when it started
        quality = lead.get(f"/api/v1/projects/{pid}/quality").json()["report"]
        assert (quality["model_version"], quality["current_model_version"]) == (1, 2)
        assert quality["stale"] and quality["computing"]
        v2 = _model_id(pid, 2)
        wait_until(lambda: gate.entered == [v1, v2], "the label-quality job of model v2 to start")

        gate.release[1].set()
        wait_until(lambda: all(status == JobStatus.done for _, status in _jobs(pid, "quality")),
                   "the label-quality job of model v2 to finish")
        quality = lead.get(f"/api/v1/projects/{pid}/quality").json()["report"]
        assert (quality["model_version"], quality["current_model_version"]) == (2, 2)
        assert not quality["stale"] and not quality["computing"] and quality["last_error"] is None
        assert (quality["n_items"], quality["n_holdout"]) == (2 * BATCH + 1, N_HOLDOUT)
        with session_scope(write=False) as session:  # the newer report replaced the older one
            assert session.scalar(select(func.count()).select_from(QualityReport)
                                  .where(QualityReport.project_id == pid)) == 1
    finally:
        gate.open_all()
        stop.set()
        worker.join(timeout=2 * TIMEOUT)
        # run_worker does not wait for its background thread: let it end before the tables are emptied.
        for thread in threading.enumerate():
            if thread.name.startswith(("quality-", "verify-")):
                thread.join(timeout=2 * TIMEOUT)
    assert not worker.is_alive()
