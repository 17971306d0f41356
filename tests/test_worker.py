"""Job claiming, failures with a reason, and recovery from a worker that vanished."""

from datetime import timedelta

from sqlalchemy import select, update

from app.db import session_scope
from app.models import Job, JobStatus, Project, utcnow
from app.training.queue import queue_training
from app.worker.runner import claim_next_job, requeue_stale_jobs, run_job
from tests.conftest import run_worker_until_idle


def make_project(users):
    _, token = users.create("admin", "admin")
    api = users.api(token)
    pid = api.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": ["a", "b"],
                                             "batch_size": 2, "holdout_fraction": 0}).json()["id"]
    pool = "text\n" + "".join(f"item number {i}\n" for i in range(10))
    api.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", pool.encode(), "text/csv")})
    assert run_worker_until_idle() == 1  # the import's cold-start job (coverage order), out of the way
    return api, pid


def test_one_class_only_fails_with_a_reason_and_serving_goes_on(users):
    api, pid = make_project(users)
    for _ in range(2):
        item = api.get(f"/api/v1/projects/{pid}/next").json()
        api.post(f"/api/v1/items/{item['id']}/annotations", json={"label": "a"})
    assert api.get(f"/api/v1/projects/{pid}/jobs").json() == []  # one class: nothing queued yet
    with session_scope() as session:  # a retrain asked for anyway (say, by a lead) fails cleanly
        queue_training(session, project=session.get(Project, pid), n_labels=2)
    run_worker_until_idle()
    jobs = api.get(f"/api/v1/projects/{pid}/jobs").json()
    assert jobs[0]["status"] == "failed" and "at least two labels" in jobs[0]["error"]
    nxt = api.get(f"/api/v1/projects/{pid}/next").json()
    assert nxt["why"]["source"] == "cold_start"


def test_two_classes_queue_one_job_per_batch(users):
    api, pid = make_project(users)
    for label in ["a", "b", "a"]:
        item = api.get(f"/api/v1/projects/{pid}/next").json()
        api.post(f"/api/v1/items/{item['id']}/annotations", json={"label": label})
    jobs = api.get(f"/api/v1/projects/{pid}/jobs").json()
    assert [(j["status"], j["n_labels"]) for j in jobs] == [("queued", 2)]
    assert run_worker_until_idle() == 2  # the retrain, then the label-quality job it queues
    assert api.get(f"/api/v1/projects/{pid}/jobs").json()[0]["status"] == "done"
    assert len(api.get(f"/api/v1/projects/{pid}/models").json()) == 1


def test_a_job_whose_worker_went_silent_is_requeued_and_then_succeeds(users):
    api, pid = make_project(users)
    for label in ["a", "b"]:
        item = api.get(f"/api/v1/projects/{pid}/next").json()
        api.post(f"/api/v1/items/{item['id']}/annotations", json={"label": label})
    job_id = claim_next_job("ghost:1").id
    assert claim_next_job("other:2") is None  # one retrain per project at a time
    with session_scope() as session:
        session.execute(update(Job).values(heartbeat_at=utcnow() - timedelta(hours=1)))
    assert requeue_stale_jobs() == 1
    assert claim_next_job("worker:3").id == job_id
    run_job(job_id)
    with session_scope(write=False) as session:
        job = session.get(Job, job_id)
        assert (job.status, job.attempts, job.model_version_id is not None) == (JobStatus.done, 2, True)


def test_a_job_that_keeps_losing_its_worker_gives_up(users):
    api, pid = make_project(users)
    with session_scope() as session:
        queue_training(session, project=session.get(Project, pid), n_labels=0)
    for _ in range(3):
        assert claim_next_job("ghost") is not None
        with session_scope() as session:
            session.execute(update(Job).values(heartbeat_at=utcnow() - timedelta(hours=1)))
        requeue_stale_jobs()
    with session_scope(write=False) as session:
        job = session.scalars(select(Job).where(Job.kind == "train")).one()
        assert job.status == JobStatus.failed and "stopped responding 3 times" in job.error


def test_a_pool_of_punctuation_and_emoji_trains_on_characters(users):
    # no word of two letters anywhere: TF-IDF's word vocabulary would be empty and every job fail
    _, token = users.create("admin", "admin")
    api = users.api(token)
    pid = api.post("/api/v1/projects", json={"name": "P", "kind": "text", "labels": ["a", "b"],
                                             "batch_size": 2, "holdout_fraction": 0}).json()["id"]
    texts = ["!!!", "?!", ":)", ":(", "\U0001F600", "\U0001F622", "...", "+1", "-1", "x"]
    api.post(f"/api/v1/projects/{pid}/items", files={"file": ("p.csv", ("text\n" + "\n".join(texts) + "\n").encode(),
                                                              "text/csv")})
    for label in ["a", "b", "a", "b"]:
        item = api.get(f"/api/v1/projects/{pid}/next").json()
        api.post(f"/api/v1/items/{item['id']}/annotations", json={"label": label})
    run_worker_until_idle()
    jobs = api.get(f"/api/v1/projects/{pid}/jobs").json()
    assert jobs and all(j["status"] == "done" for j in jobs), jobs
    assert api.get(f"/api/v1/projects/{pid}/next").json()["why"]["source"] == "ranking"
