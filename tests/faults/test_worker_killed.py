"""The worker is killed with SIGKILL in the middle of a retrain.

A large tabular pool makes a retrain last seconds, so the kill lands while the job is "running":
either while the worker reads the pool and fits (0.5 s after a freshly started worker claimed the
job), or while it writes the new ranking (the new version's row and part of its ranking are
committed, nothing is published yet). Afterwards: every label is still there, /next keeps serving
the previous model's ranking while the job waits, the job goes back to the queue once its heartbeat
is stale, and a new worker retrains on every label and clears the half-written ranking.
"""

import random
import shutil
import time
from datetime import timedelta

import httpx
import numpy as np
import pytest
from sqlalchemy import func, insert, select

from app.db import session_scope
from app.models import Annotation, Item, ItemState, Job, ModelVersion, Project, RankingEntry, utcnow
from app.pool.service import SHUFFLE_KEYS
from app.training.features import project_cache_dir

# A retrain of this pool on 2 cores: 8-15 s on a worker's first job (it reads every feature row first),
# 3-5 s after that; the first version row is written 3-7 s after a cold worker claims the job.
POOL_ROWS = 100_000
N_FEATURES = 20
BATCH_SIZE = 10
# A job is stale once its heartbeat (every 5 s) is older than this. Below 5 s a healthy job could be
# taken from a live worker by another worker's sweep, so stay above the heartbeat interval.
STALE_SECONDS = 6
JOB_TIMEOUT = 240.0


def insert_pool(project_id: int, seed: int = 3) -> dict[str, str]:
    """POOL_ROWS items straight into the table, shaped as an import makes them (no holdout), and the
    oracle. Bulk insertion keeps the set-up to seconds on both databases; uploads are tested elsewhere."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(POOL_ROWS, N_FEATURES)).round(4)
    keys = random.Random(seed)
    oracle = {}
    with session_scope() as session:
        project = session.get(Project, project_id)
        project.feature_names = [f"f{j}" for j in range(N_FEATURES)]
        for start in range(0, POOL_ROWS, 10_000):
            rows = []
            for i in range(start, min(start + 10_000, POOL_ROWS)):
                oracle[f"r{i}"] = "pos" if X[i, 0] - X[i, 1] > 0 else "neg"
                rows.append({"project_id": project_id, "external_id": f"r{i}",
                             "payload": {"features": X[i].tolist()}, "meta": {}, "state": ItemState.open,
                             "n_annotations": 0, "shuffle_key": keys.getrandbits(31) % SHUFFLE_KEYS,
                             "is_holdout": False})
            session.execute(insert(Item), rows)
    return oracle


def job_row(job_id: int) -> Job:
    with session_scope(write=False) as session:
        job = session.get(Job, job_id)
        session.expunge(job)
        return job


def ranking_rows(project_id: int, version: int) -> int:
    with session_scope(write=False) as session:
        return session.scalar(select(func.count()).select_from(RankingEntry).join(
            ModelVersion, ModelVersion.id == RankingEntry.model_version_id).where(
            ModelVersion.project_id == project_id, ModelVersion.version == version))


def wait_until(predicate, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.mark.parametrize("kill_while", ["fitting", "writing_ranking"])
def test_worker_killed_mid_retrain_loses_nothing_and_the_retry_succeeds(stack, users, kill_while):
    t0 = time.perf_counter()
    _, admin_token = users.create("admin", "admin")
    _, ann_token = users.create("ann", "annotator")
    stack.start_web()
    worker_env = {"LABELLOOP_JOB_STALE_SECONDS": str(STALE_SECONDS)}
    first_worker = stack.start_worker(**worker_env)
    admin = httpx.Client(base_url=stack.url + "/api/v1", headers={"Authorization": f"Bearer {admin_token}"},
                         timeout=60)
    ann = httpx.Client(base_url=stack.url + "/api/v1", headers={"Authorization": f"Bearer {ann_token}"}, timeout=60)
    created = admin.post("/projects", json={"name": "big", "kind": "tabular", "labels": ["neg", "pos"],
                                            "strategy": "margin", "batch_size": BATCH_SIZE,
                                            "holdout_fraction": 0.0, "members": ["ann"]})
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    oracle = insert_pool(pid)
    answered: dict[int, str] = {}  # item id -> label, from 201 answers

    def label_one() -> dict:
        try:
            nxt = ann.get(f"/projects/{pid}/next")
        except httpx.ReadTimeout:
            pytest.fail(f"GET /next did not answer within {ann.timeout.read}s ({POOL_ROWS:,} items in the pool)")
        assert nxt.status_code == 200, nxt.text
        item = nxt.json()
        answer = ann.post(f"/items/{item['id']}/annotations", json={"label": oracle[item["external_id"]]})
        assert answer.status_code == 201, answer.text
        answered[item["id"]] = answer.json()["label"]
        return item

    def jobs() -> list[dict]:
        return sorted(admin.get(f"/projects/{pid}/jobs").json(), key=lambda j: j["id"])

    # ---- a first model, trained by the first worker -------------------------------------------------
    for _ in range(BATCH_SIZE):
        label_one()
    first_job = wait_until(lambda: (j := jobs()) and j[0]["status"] in ("done", "failed") and j[0], JOB_TIMEOUT,
                           "the first retrain", interval=0.2)
    assert first_job["status"] == "done", first_job
    t_first = time.perf_counter()
    # The second retrain runs on a freshly started worker, so it begins by reading the pool's feature
    # rows (its first job): seconds in which the kill surely lands before any new version exists.
    stack.stop(first_worker)
    # The first worker left the pool's features in the disk cache, from which a retrain reaches its
    # new version row in well under a second: without it the victim reads every row from the database.
    shutil.rmtree(project_cache_dir(pid), ignore_errors=True)
    victim = stack.start_worker(**worker_env)
    served = [label_one() for _ in range(BATCH_SIZE)]  # the second batch, served from model v1's ranking
    assert all(s["why"]["source"] == "ranking" and s["why"]["model_version"] == 1 for s in served)
    second_id = [j for j in jobs() if j["id"] != first_job["id"]][0]["id"]

    # ---- kill the worker in the middle of the second retrain ----------------------------------------
    wait_until(lambda: job_row(second_id).status == "running", JOB_TIMEOUT, "the second retrain to start")
    claimed = time.perf_counter()
    if kill_while == "fitting":
        time.sleep(0.5)
    else:  # the version row, then the ranking in chunks (RANKING_CHUNK rows), then the pointer swap
        wait_until(lambda: ranking_rows(pid, version=2), JOB_TIMEOUT, "a first chunk of the new ranking",
                   interval=0.01)
    stack.kill(victim)
    killed = time.perf_counter()

    killed_job = job_row(second_id)
    with session_scope(write=False) as session:
        project = session.get(Project, pid)
        current = session.get(ModelVersion, project.current_model_version_id)
        versions = session.execute(select(ModelVersion.version, ModelVersion.id).where(
            ModelVersion.project_id == pid).order_by(ModelVersion.version)).all()
    print(f"\n[{kill_while}] first retrain {t_first - t0:.1f}s into the test; killed {killed - claimed:.2f}s after "
          f"the claim; model versions in the table: {[v for v, _ in versions]}, "
          f"ranking rows already written for v2: {ranking_rows(pid, version=2)}")
    # The kill landed mid-retrain: the job is still marked running and nothing new is published.
    assert (killed_job.status, killed_job.attempts) == ("running", 1)
    assert current.version == 1
    # "fitting": before any new version row; "writing_ranking": v2's row is there, but nobody serves it.
    assert [v for v, _ in versions] == ([1] if kill_while == "fitting" else [1, 2])

    # ---- while the job waits for its heartbeat to go stale, serving goes on from v1 ------------------
    during = [label_one() for _ in range(5)]
    assert all(s["why"]["source"] == "ranking" and s["why"]["model_version"] == 1 for s in during), [
        s["why"] for s in during]
    assert [j["status"] for j in jobs()] == ["done", "running"]
    wait_until(lambda: utcnow() - job_row(second_id).heartbeat_at > timedelta(seconds=STALE_SECONDS + 0.5),
               STALE_SECONDS + 10, "the heartbeat to go stale", interval=0.2)
    stale_at = time.perf_counter()

    # ---- a new worker: sweeps stale jobs as it starts, retries the job ---------------------------------
    stack.start_worker(**worker_env)
    retried = wait_until(lambda: (j := job_row(second_id)).attempts == 2 and j, 30, "the job to be claimed again")
    peek = ann.get(f"/projects/{pid}/next").json()  # leased to the annotator; answered at the end
    assert (peek["why"]["source"], peek["why"]["model_version"]) == ("ranking", 1), peek["why"]
    assert retried.status in ("running", "done")
    done = wait_until(lambda: (j := job_row(second_id)).status in ("done", "failed") and j, JOB_TIMEOUT,
                      "the retried job to finish", interval=0.2)
    finished = time.perf_counter()
    assert (done.status, done.attempts, done.error) == ("done", 2, None)

    with session_scope(write=False) as session:
        project = session.get(Project, pid)
        new_model = session.get(ModelVersion, done.model_version_id)
        rows = session.execute(select(Annotation.item_id, Annotation.label).where(Annotation.project_id == pid)).all()
        labelled = dict(session.execute(select(Item.id, Item.final_label).where(
            Item.project_id == pid, Item.final_label.is_not(None))).all())
        ranked = session.scalar(select(func.count()).select_from(RankingEntry).where(
            RankingEntry.model_version_id == new_model.id))
        open_items = session.scalar(select(func.count()).select_from(Item).where(
            Item.project_id == pid, Item.state == ItemState.open))
        all_versions = session.execute(select(ModelVersion.version, ModelVersion.n_labels).where(
            ModelVersion.project_id == pid).order_by(ModelVersion.version)).all()
    retrain = new_model.train_seconds + new_model.score_seconds
    print(f"[{kill_while}] stale after {stale_at - killed:.1f}s; the retry took {finished - stale_at:.1f}s "
          f"(fit {new_model.train_seconds:.1f}s + scoring {new_model.score_seconds:.1f}s = {retrain:.1f}s before "
          f"writing the ranking); versions (version, n_labels): {all_versions}; test so far "
          f"{finished - t0:.1f}s")

    # Every label is there, once, and the retried job trained on all of them and ranked the rest.
    assert dict(rows) == answered and labelled == answered
    assert len(answered) == 2 * BATCH_SIZE + 5
    assert project.current_model_version_id == new_model.id
    assert new_model.n_labels == len(answered)
    assert new_model.version == (2 if kill_while == "fitting" else 3)  # a killed v2 row stays, unpublished
    assert ranked == new_model.n_ranked == open_items == POOL_ROWS - len(answered)
    assert ranking_rows(pid, version=1) == 0 and ranking_rows(pid, version=2) == (
        ranked if kill_while == "fitting" else 0)  # superseded and half-written rankings are gone
    assert [j["status"] for j in jobs()] == ["done", "done"]
    # The item leased before the new model came is still the annotator's; then the new ranking serves.
    held = ann.post(f"/items/{peek['id']}/annotations", json={"label": oracle[peek["external_id"]]})
    assert held.status_code == 201, held.text
    after = ann.get(f"/projects/{pid}/next").json()
    assert (after["why"]["source"], after["why"]["model_version"]) == ("ranking", new_model.version)
    admin.close()
    ann.close()
