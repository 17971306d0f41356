"""50 annotators at once against a live server while the worker retrains in the background.

Each simulated annotator has their own user, API token, HTTP client and thread, and loops
GET /next -> POST the oracle's label until 2,000 labels have been accepted between them. Every
response is recorded and then checked against the database: no 5xx, no lost or duplicated
label, no item handed to two annotators, and the worker kept publishing models meanwhile.
"""

import io
import statistics
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass

import httpx
import numpy as np
from sqlalchemy import func, select

from app.db import session_scope
from app.models import Annotation, Item, ItemState, User
from app.security import hash_password
from app.users.service import issue_api_token

N_ANNOTATORS = 50
POOL_ROWS = 3_000
N_FEATURES = 10
TARGET_LABELS = 2_000
BATCH_SIZE = 100
LABELLING_TIME_LIMIT = 400.0  # seconds: a bound for a hung run, not a speed test (46-50 s on an idle machine)
HTTP_TIMEOUT = 60.0


def tabular_pool(seed: int = 7) -> tuple[bytes, dict[str, str]]:
    """A CSV pool and its oracle: `pos` exactly when f0 + f1/2 > 0."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(POOL_ROWS, N_FEATURES)).round(4)
    oracle = {f"r{i}": ("pos" if X[i, 0] + 0.5 * X[i, 1] > 0 else "neg") for i in range(POOL_ROWS)}
    out = io.StringIO()
    out.write("id," + ",".join(f"f{j}" for j in range(N_FEATURES)) + "\n")
    for i in range(POOL_ROWS):
        out.write(f"r{i}," + ",".join(f"{v:.4f}" for v in X[i]) + "\n")
    return out.getvalue().encode(), oracle


@dataclass
class Call:
    kind: str  # "next" or "label"
    user: str
    started: float
    seconds: float
    status: int | None  # None: no HTTP answer at all (connection error, timeout)
    item_id: int | None = None
    body: dict | None = None
    error: str | None = None


def api_users(names: list[str], role: str) -> dict[str, str]:
    """Users with an API token each. One argon2 hash for all of them: 50 hashes would take ~20 s here,
    and these users never sign in with a password."""
    password_hash = hash_password("password-123")
    with session_scope() as session:
        users = [User(username=name, password_hash=password_hash, role=role, is_active=True) for name in names]
        session.add_all(users)
        session.flush()
        return {user.username: issue_api_token(session, user=user) for user in users}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def test_fifty_annotators_label_2000_items_while_the_worker_retrains(stack):
    test_started = time.perf_counter()
    admin_token = api_users(["admin"], "admin")["admin"]
    names = [f"ann{n:02d}" for n in range(N_ANNOTATORS)]
    tokens = api_users(names, "annotator")

    stack.start_web()
    stack.start_worker()
    admin = httpx.Client(base_url=stack.url + "/api/v1", headers={"Authorization": f"Bearer {admin_token}"},
                         timeout=HTTP_TIMEOUT)
    created = admin.post("/projects", json={
        "name": "crowd", "kind": "tabular", "labels": ["neg", "pos"], "strategy": "margin",
        "batch_size": BATCH_SIZE, "annotations_per_item": 1, "members": names})
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    pool, oracle = tabular_pool()
    upload = admin.post(f"/projects/{pid}/items", files={"file": ("pool.csv", pool, "text/csv")})
    assert upload.status_code == 201, upload.text
    assert upload.json()["imported"] == POOL_ROWS

    setup_seconds = time.perf_counter() - test_started
    calls: list[Call] = []  # list.append is atomic under the GIL
    lock = threading.Lock()
    counts = {"reserved": 0, "accepted": 0}
    start_line = threading.Barrier(N_ANNOTATORS + 1)

    def release() -> None:
        with lock:
            counts["reserved"] -= 1

    def annotate(name: str, deadline_holder: list[float]) -> None:
        with httpx.Client(base_url=stack.url + "/api/v1", timeout=HTTP_TIMEOUT,
                          headers={"Authorization": f"Bearer {tokens[name]}"}) as api:
            start_line.wait()
            deadline = deadline_holder[0]
            while time.monotonic() < deadline:
                # Take a slot first, so exactly TARGET_LABELS labels are asked for, never more.
                with lock:
                    if counts["reserved"] >= TARGET_LABELS:
                        return
                    counts["reserved"] += 1
                t0 = time.perf_counter()
                try:
                    r = api.get(f"/projects/{pid}/next")
                except httpx.HTTPError as exc:
                    calls.append(Call("next", name, t0, time.perf_counter() - t0, None, error=repr(exc)))
                    release()
                    continue
                body = r.json() if r.status_code == 200 else None
                calls.append(Call("next", name, t0, time.perf_counter() - t0, r.status_code,
                                  item_id=body["id"] if body else None, body=body,
                                  error=None if r.status_code in (200, 204) else r.text[:500]))
                if r.status_code != 200:
                    release()
                    if r.status_code == 204:
                        return  # nothing left for this annotator: with 3,000 items for 2,000 labels, a bug
                    continue
                t1 = time.perf_counter()
                try:
                    a = api.post(f"/items/{body['id']}/annotations", json={"label": oracle[body["external_id"]]})
                except httpx.HTTPError as exc:
                    calls.append(Call("label", name, t1, time.perf_counter() - t1, None, item_id=body["id"],
                                      error=repr(exc)))
                    release()
                    continue
                calls.append(Call("label", name, t1, time.perf_counter() - t1, a.status_code, item_id=body["id"],
                                  body=a.json() if a.status_code in (200, 201) else None,
                                  error=None if a.status_code == 201 else a.text[:500]))
                if a.status_code == 201:
                    with lock:
                        counts["accepted"] += 1
                else:
                    release()

    deadline_holder = [0.0]
    threads = [threading.Thread(target=annotate, args=(name, deadline_holder), name=name, daemon=True)
               for name in names]
    for t in threads:
        t.start()
    deadline_holder[0] = time.monotonic() + LABELLING_TIME_LIMIT
    began = time.perf_counter()
    start_line.wait()
    for t in threads:
        t.join(timeout=LABELLING_TIME_LIMIT + HTTP_TIMEOUT + 10)
    elapsed = time.perf_counter() - began
    assert not any(t.is_alive() for t in threads), "an annotator thread hung"
    try:
        models_during_run = admin.get(f"/projects/{pid}/models").json()
    except httpx.HTTPError as exc:  # reported after the per-call failures below
        models_during_run = []
        print(f"\nGET /models after the run failed: {exc!r}")

    # ---- what the clients saw ---------------------------------------------------------------------
    nexts = [c for c in calls if c.kind == "next"]
    labels = [c for c in calls if c.kind == "label"]
    accepted = [c for c in labels if c.status == 201]
    next_latency = [c.seconds for c in nexts if c.status == 200]
    label_latency = [c.seconds for c in labels if c.status == 201]
    served_versions = Counter(c.body["why"]["model_version"] for c in nexts if c.status == 200)
    print(f"\nset-up (51 users, web + worker start, upload): {setup_seconds:.1f}s")
    print(f"{len(accepted)} labels by {N_ANNOTATORS} annotators in {elapsed:.1f}s: "
          f"{len(accepted) / elapsed:.1f} labels/s, {len(calls) / elapsed:.1f} requests/s")
    for what, latency in (("GET /next ", next_latency), ("POST label", label_latency)):
        print(f"{what}  p50 {percentile(latency, 50) * 1000:.0f} ms, p95 {percentile(latency, 95) * 1000:.0f} ms, "
              f"max {max(latency, default=0) * 1000:.0f} ms")
    print(f"model versions published during the run: {len(models_during_run)}; items served per model version: "
          f"{dict(sorted(served_versions.items(), key=lambda kv: (kv[0] is not None, kv[0] or 0)))}")
    print(f"labels per annotator: min {min(Counter(c.user for c in accepted).values(), default=0)}, "
          f"max {max(Counter(c.user for c in accepted).values(), default=0)}")

    failures = [c for c in calls if c.status is None or c.status >= 500]
    assert not failures, (f"{len(failures)} failed calls {dict(Counter((c.kind, c.status) for c in failures))}, "
                          f"e.g. {failures[:3]}\n{stack.log_tail()}")

    # ---- no item handed to two annotators ---------------------------------------------------------
    served_to = defaultdict(set)
    times_served = Counter()
    for c in nexts:
        if c.status == 200:
            served_to[c.item_id].add(c.user)
            times_served[c.item_id] += 1
    shared = {item: who for item, who in served_to.items() if len(who) > 1}
    assert not shared, f"{len(shared)} items were served to more than one annotator, e.g. {list(shared.items())[:5]}"
    # Each annotator answers what they were served before asking again, so nothing comes twice.
    assert max(times_served.values(), default=0) <= 1, times_served.most_common(3)

    unexpected = [c for c in calls if (c.kind == "next" and c.status != 200) or (c.kind == "label" and c.status != 201)]
    # Every item came from /next, leased to its annotator for 10 minutes: a 409 or 204 here means
    # the item was handed to someone else too, or the pool ran dry with 1,000 items still open.
    assert not unexpected, f"{len(unexpected)} unexpected answers, e.g. {unexpected[:3]}"
    assert len(accepted) == TARGET_LABELS, (
        f"only {len(accepted)} labels accepted within {LABELLING_TIME_LIMIT}s")


    # ---- every accepted label is in the database, once ----------------------------------------------
    answered = {(c.item_id, c.body["user_id"], c.body["label"]) for c in accepted}
    annotation_ids = [c.body["id"] for c in accepted]
    assert len(set(annotation_ids)) == len(accepted) == len(answered)
    user_of = {c.body["user_id"]: c.user for c in accepted}
    with session_scope(write=False) as session:
        rows = session.execute(select(Annotation.id, Annotation.item_id, Annotation.user_id, Annotation.label,
                                      Annotation.skipped).where(Annotation.project_id == pid)).all()
        per_item = session.execute(
            select(Annotation.item_id, func.count()).where(Annotation.project_id == pid)
            .group_by(Annotation.item_id).having(func.count() > 1)).all()
        states = dict(session.execute(select(Item.state, func.count()).where(Item.project_id == pid)
                                      .group_by(Item.state)).all())
        over = session.scalar(select(func.count()).select_from(Item).where(
            Item.project_id == pid, Item.n_annotations > 1))
        external = dict(session.execute(select(Item.id, Item.external_id).where(Item.project_id == pid)).all())
    assert len(rows) == len(accepted), f"{len(accepted)} answered 201 but the database holds {len(rows)} annotations"
    assert {r.id for r in rows} == set(annotation_ids)
    assert {(r.item_id, r.user_id, r.label) for r in rows} == answered
    assert not any(r.skipped for r in rows)
    assert all(r.label == oracle[external[r.item_id]] for r in rows)
    assert per_item == [] and over == 0, f"items with several annotations: {per_item[:5]}"
    assert states.get(ItemState.done, 0) == TARGET_LABELS
    # Every annotated item was served to exactly the annotator whose label it carries.
    assert all(served_to[r.item_id] == {user_of[r.user_id]} for r in rows)

    # ---- the worker kept up ---------------------------------------------------------------------------
    assert len(models_during_run) >= 2, f"only {len(models_during_run)} model versions while labelling"
    assert len([v for v in served_versions if v is not None]) >= 2, served_versions  # new rankings were served
    deadline = time.monotonic() + 60
    while True:
        jobs = admin.get(f"/projects/{pid}/jobs").json()
        if all(j["status"] in ("done", "failed") for j in jobs) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    print(f"retrain jobs: {len(jobs)}, "
          f"statuses {dict(Counter(j['status'] for j in jobs))}, attempts {dict(Counter(j['attempts'] for j in jobs))}")
    assert jobs and all(j["status"] == "done" for j in jobs), [
        (j["id"], j["status"], j["error"]) for j in jobs if j["status"] != "done"]
    assert all(j["attempts"] == 1 for j in jobs)
    final = admin.get(f"/projects/{pid}/models").json()
    with session_scope(write=False) as session:  # holdout items are labelled but never trained on
        training_labels = session.scalar(select(func.count()).select_from(Item).where(
            Item.project_id == pid, Item.final_label.is_not(None), Item.is_holdout.is_(False)))
    holdout_served = sum(1 for c in accepted if c.body["why"]["source"] == "holdout")
    assert training_labels == TARGET_LABELS - holdout_served
    # A retrain is queued per batch_size training labels, so the newest model has every label up to
    # the last batch boundary (and whatever else had arrived when its job started), never fewer.
    newest_job = max(jobs, key=lambda j: j["id"])
    assert final[0]["is_current"], final[0]
    assert newest_job["n_labels"] <= final[0]["n_labels"] <= training_labels < newest_job["n_labels"] + BATCH_SIZE, (
        training_labels, [(j["id"], j["n_labels"]) for j in jobs], [(m["version"], m["n_labels"]) for m in final])
    print(f"final model v{final[0]['version']} on {final[0]['n_labels']} of {training_labels} training labels "
          f"({holdout_served} labels in the holdout): "
          f"cv accuracy {final[0]['metrics'].get('cv_accuracy', float('nan')):.3f}; "
          f"median fit {statistics.median(m['train_seconds'] for m in final):.2f}s, "
          f"median scoring {statistics.median(m['score_seconds'] for m in final):.3f}s")
    print(f"checks after the run (incl. waiting for the last retrain): {time.perf_counter() - began - elapsed:.1f}s")
    admin.close()
