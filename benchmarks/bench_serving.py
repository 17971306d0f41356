"""Next-item latency with 1, 10 and 50 paced annotators, idle and while the worker retrains, and saturation.

For each pool size (`--items`, synthetic tabular rows x 20 features) one fresh database is built
and reused for every measurement at that size: the pool is bulk-imported (`import_pool`), a first
batch of labels is stored and one retrain ranks the pool (as benchmarks/bench_next_item.py does);
the import's cold-start job is marked done (a worker would have run it long before). Then one
uvicorn process serves it on loopback and simulated annotators - one user, API token, keep-alive
httpx client and thread each - work through the JSON API:

- paced: each annotator, once per second (random phase), fetches `GET /api/v1/projects/{id}/next`
  and posts the oracle's label to `POST /api/v1/items/{item}/annotations` right away; a slow pair
  delays that annotator's next tick (no catch-up bursts). Latency is measured at the client, for
  the GET, the POST, and the pair, for `--annotators` 1, 10 and 50 in turn, `--seconds` each;
- saturation: `--saturation-clients` (50) annotators fetch and label with no pause for
  `--saturation-seconds` (capped at 40% of the open pool); labels accepted per second.

Both run twice: `idle` (no worker; the ranking stays as it was) and `retrain` (a `labelloop worker`
subprocess, and a feeder that queues a retrain whenever none is waiting, so the worker retrains
and rescores the whole pool back to back; label-quality jobs follow each retrain as in
production). The retrains that finished within each window are counted. After every window the
annotations in the database are counted against the 201 answers: `lost` must be 0.

    .venv/bin/python benchmarks/bench_serving.py                        # 10k, 100k, 1M on SQLite
    scripts/with_postgres.sh .venv/bin/python benchmarks/bench_serving.py --postgres  # the same on PostgreSQL
    .venv/bin/python benchmarks/bench_serving.py --quick                # 5k items, 1 and 10 annotators, 10 s

With `--database-url` a scratch database is created per pool size on that PostgreSQL server
(CREATEDB needed) and dropped after it. The default run measures 2 phases x (3 x 30 s + 15 s) per
size, about 4 minutes each plus building the pool (1M rows: import and first retrain, 2-4 minutes
on 2 idle cores): about 20 minutes in all. Options: --items, --annotators, --seconds,
--saturation-seconds, --phases idle,retrain, --web-workers, --batch-size, --json out.json, --keep.
Nothing is downloaded.
"""

import argparse
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from benchmarks._common import (  # noqa: E402
    LABELS,
    add_database_args,
    backend_of,
    database_url,
    facts_line,
    free_port,
    latency_stats,
    machine_facts,
    markdown_table,
    oracle_label,
    parse_sizes,
    point_app_at,
    proc_status_mb,
    scratch_database,
    size_label,
    start_web,
    start_worker,
    stop,
    wait_http,
    workdir,
    write_json,
    write_tabular_csv,
)

HTTP_TIMEOUT = 60.0


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # the app stores naive UTC


# ---- building the pool ----------------------------------------------------------------------------------

@dataclass
class Pool:
    project_id: int
    admin_token: str
    tokens: list[str]
    import_s: float
    first_train_s: float
    n_ranked: int


def build_pool(url: str, data_dir: Path, pool_file: Path, n_annotators: int, batch_size: int,
               first_labels: int) -> Pool:
    point_app_at(url, data_dir)
    from sqlalchemy import update

    from app.db import get_engine, session_scope
    from app.labeling import service as labeling
    from app.migrate import upgrade_to_head
    from app.models import Job, JobStatus, Project, User
    from app.pool.service import import_pool
    from app.projects.schemas import ProjectCreate
    from app.projects.service import create_project
    from app.security import hash_password
    from app.training.features import forget
    from app.training.service import train_and_rank
    from app.users.service import issue_api_token

    upgrade_to_head(url)
    names = [f"ann{i:03d}" for i in range(n_annotators)]
    password_hash = hash_password("benchmark-pass")  # one argon2 hash for all: nobody signs in with it
    with session_scope() as session:
        admin = User(username="bench-admin", password_hash=password_hash, role="admin", is_active=True)
        users = [User(username=n, password_hash=password_hash, role="annotator", is_active=True) for n in names]
        session.add_all([admin, *users])
        session.flush()
        admin_token = issue_api_token(session, user=admin)
        tokens = [issue_api_token(session, user=u) for u in users]
        project = create_project(session, created_by=admin, data=ProjectCreate(
            name="serving", kind="tabular", labels=LABELS, strategy="margin", batch_size=batch_size,
            members=names))
        t0 = time.perf_counter()
        with open(pool_file, "rb") as fh:
            import_pool(session, project=project, fileobj=fh, filename=pool_file.name)
        project_id, admin_id = project.id, admin.id
    import_s = time.perf_counter() - t0
    with session_scope() as session:  # a first batch of labels, so there is a model and a ranking
        project, user = session.get(Project, project_id), session.get(User, admin_id)
        for _ in range(first_labels):
            served = labeling.next_item(session, project=project, user=user)
            labeling.annotate(session, project=project, item=served.item, user=user,
                              label=oracle_label(served.item.payload["features"]))
    t0 = time.perf_counter()
    result = train_and_rank(project_id)
    first_train_s = time.perf_counter() - t0
    with session_scope() as session:
        session.execute(update(Job).where(Job.project_id == project_id, Job.status == JobStatus.queued)
                        .values(status=JobStatus.done, finished_at=utcnow(), error="benchmark: done at set-up"))
    forget()
    get_engine().dispose()
    return Pool(project_id, admin_token, tokens, import_s, first_train_s, result.n_ranked)


# ---- database checks ------------------------------------------------------------------------------------

def db_counts(project_id: int) -> dict:
    from sqlalchemy import func, select

    from app.db import session_scope
    from app.models import Annotation, Item, ItemState

    with session_scope(write=False) as session:
        annotations = session.scalar(select(func.count()).select_from(Annotation)
                                     .where(Annotation.project_id == project_id))
        open_items = session.scalar(select(func.count()).select_from(Item).where(
            Item.project_id == project_id, Item.state == ItemState.open))
    return {"annotations": int(annotations or 0), "open": int(open_items or 0)}


def jobs_between(project_id: int, since: datetime, until: datetime) -> dict:
    from sqlalchemy import func, select

    from app.db import session_scope
    from app.models import Job, JobStatus

    with session_scope(write=False) as session:
        rows = session.execute(select(Job.kind, Job.status, Job.started_at, Job.finished_at).where(
            Job.project_id == project_id, Job.finished_at >= since, Job.finished_at <= until)).all()
        running = session.scalar(select(func.count()).select_from(Job).where(
            Job.project_id == project_id, Job.status == JobStatus.running))
    done = [r for r in rows if r.kind == "train" and r.status == JobStatus.done]
    durations = sorted((r.finished_at - r.started_at).total_seconds() for r in done if r.started_at)
    return {"retrains": len(done), "retrain_failed": sum(1 for r in rows if r.kind == "train" and r.status != "done"),
            "retrain_median_s": durations[len(durations) // 2] if durations else float("nan"),
            "quality_jobs": sum(1 for r in rows if r.kind == "quality"), "running_at_end": int(running or 0)}


class Feeder(threading.Thread):
    """Keeps one retrain queued for the project, so the worker retrains back to back."""

    def __init__(self, project_id: int, poll: float = 0.25):
        super().__init__(daemon=True, name="feeder")
        self.project_id, self.poll, self.stop_event, self.queued = project_id, poll, threading.Event(), 0

    def run(self) -> None:
        from sqlalchemy import select

        from app.db import session_scope
        from app.models import Job, JobStatus, Project
        from app.training.queue import queue_training, training_label_counts

        while not self.stop_event.wait(self.poll):
            try:
                with session_scope(write=False) as session:
                    waiting = session.scalar(select(Job.id).where(
                        Job.project_id == self.project_id, Job.kind == "train", Job.status == JobStatus.queued))
                if waiting is None:
                    with session_scope() as session:
                        n_labels, _ = training_label_counts(session, project_id=self.project_id)
                        queue_training(session, project=session.get(Project, self.project_id), n_labels=n_labels)
                        self.queued += 1
            except Exception as exc:  # keep feeding; say so
                print(f"(feeder: {exc!r})", file=sys.stderr)


def wait_for_retrain(project_id: int, since: datetime, timeout: float) -> float:
    """Seconds until a retrain finished after `since` (the worker is warm and the ranking fresh)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if jobs_between(project_id, since, utcnow())["retrains"]:
            return time.monotonic() - t0
        time.sleep(0.5)
    raise SystemExit(f"no retrain finished within {timeout:.0f} s of starting the worker")


# ---- clients ----------------------------------------------------------------------------------------------

@dataclass
class Window:
    next_s: list = field(default_factory=list)
    label_s: list = field(default_factory=list)
    pair_s: list = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    sources: Counter = field(default_factory=Counter)
    accepted: int = 0
    errors: list = field(default_factory=list)


def annotator(base: str, token: str, project_id: int, start: float, stop_at: float, period: float,
              window: Window, budget: list, lock: threading.Lock) -> None:
    with httpx.Client(base_url=base + "/api/v1", headers={"Authorization": f"Bearer {token}"},
                      timeout=HTTP_TIMEOUT) as api:
        api.get("/me")  # connection and token warm before the clock
        tick = start
        while True:
            now = time.monotonic()
            if tick >= stop_at:
                return
            if tick > now:
                time.sleep(tick - now)
            if budget:
                with lock:
                    if budget[0] <= 0:
                        return
                    budget[0] -= 1
            t0 = time.perf_counter()
            try:
                r = api.get(f"/projects/{project_id}/next")
            except httpx.HTTPError as exc:
                window.statuses["next:error"] += 1
                window.errors.append(repr(exc))
                tick = max(tick + period, time.monotonic())
                continue
            t1 = time.perf_counter()
            window.statuses[f"next:{r.status_code}"] += 1
            if r.status_code != 200:
                if r.status_code != 204:
                    window.errors.append(r.text[:300])
                if r.status_code == 204:
                    return
                tick = max(tick + period, time.monotonic())
                continue
            window.next_s.append(t1 - t0)
            body = r.json()
            window.sources[body["why"]["source"]] += 1
            try:
                a = api.post(f"/items/{body['id']}/annotations",
                             json={"label": oracle_label(body["data"]["features"])})
            except httpx.HTTPError as exc:
                window.statuses["label:error"] += 1
                window.errors.append(repr(exc))
                tick = max(tick + period, time.monotonic())
                continue
            t2 = time.perf_counter()
            window.statuses[f"label:{a.status_code}"] += 1
            if a.status_code == 201:
                window.label_s.append(t2 - t1)
                window.pair_s.append(t2 - t0)
                with lock:
                    window.accepted += 1
            else:
                window.errors.append(a.text[:300])
            tick = max(tick + period, time.monotonic()) if period else time.monotonic()


def run_window(base: str, pool: Pool, clients: int, seconds: float, period: float, label_cap: int | None,
               web_pid: int) -> dict:
    before = db_counts(pool.project_id)
    window, lock = Window(), threading.Lock()
    budget = [label_cap] if label_cap is not None else []
    rng = random.Random(clients)
    began_utc = utcnow()
    start = time.monotonic() + 1.0  # every client connected and warm first
    stop_at = start + seconds
    threads = [threading.Thread(target=annotator, daemon=True, args=(
        base, pool.tokens[i], pool.project_id, start + (rng.random() * period if period else 0.0), stop_at, period,
        window, budget, lock)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + HTTP_TIMEOUT + 30)
    hung = sum(t.is_alive() for t in threads)
    elapsed = time.monotonic() - start
    after = db_counts(pool.project_id)
    stored = after["annotations"] - before["annotations"]
    served = sum(window.sources.values())
    return {
        "clients": clients, "seconds": elapsed, "period_s": period, "accepted": window.accepted,
        "stored": stored, "lost": window.accepted - stored, "hung_clients": hung,
        "labels_per_s": window.accepted / elapsed if elapsed > 0 else float("nan"),
        "next": latency_stats(window.next_s), "label": latency_stats(window.label_s),
        "pair": latency_stats(window.pair_s), "statuses": dict(window.statuses),
        "sources": dict(window.sources),
        "from_ranking_pct": 100.0 * window.sources.get("ranking", 0) / served if served else float("nan"),
        "errors": window.errors[:5], "n_errors": len(window.errors), "open_before": before["open"],
        "web_rss_mb": proc_status_mb(web_pid, "VmRSS"), "since_utc": began_utc,
    }


# ---- main ---------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", default="10k,100k,1M", help="pool sizes, e.g. 10k,100k,1M")
    parser.add_argument("--annotators", default="1,10,50", help="paced annotator counts")
    parser.add_argument("--seconds", type=float, default=30.0, help="each paced window")
    parser.add_argument("--saturation-seconds", type=float, default=15.0, help="0: no saturation run")
    parser.add_argument("--saturation-clients", type=int, default=50)
    parser.add_argument("--phases", default="idle,retrain", help="idle, retrain or both")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=10, help="the project's batch size")
    parser.add_argument("--first-labels", type=int, default=20)
    parser.add_argument("--web-workers", type=int, default=1, help="uvicorn processes")
    parser.add_argument("--retrain-wait", type=float, default=600.0, help="max seconds for the worker's first retrain")
    add_database_args(parser)
    parser.add_argument("--quick", action="store_true", help="5k items, 1 and 10 annotators, 10 s windows")
    parser.add_argument("--json", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (server and worker logs)")
    args = parser.parse_args()
    if args.quick:
        args.items, args.annotators, args.seconds = "5k", "1,10", 10.0
        args.saturation_seconds, args.saturation_clients = 8.0, min(args.saturation_clients, 20)
    sizes, counts = parse_sizes(args.items), [int(c) for c in args.annotators.split(",") if c.strip()]
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    n_users = max(counts + [args.saturation_clients if args.saturation_seconds else 0])
    args.database_url = database_url(args)
    facts = machine_facts()
    backend = backend_of(args.database_url or "sqlite")
    per_size = len(phases) * (len(counts) * args.seconds + args.saturation_seconds)
    print(f"measuring {len(sizes)} sizes x {per_size:.0f} s, plus building each pool; {backend}", flush=True)

    windows, builds = [], []
    with workdir("bench-serving", keep=args.keep) as work:
        for n in sizes:
            pool_file = work / f"pool-{n}.csv"
            write_tabular_csv(pool_file, n, args.features)
            tag = f"srv_{n}"
            with scratch_database(args.database_url, work, tag) as url:
                data_dir = work / f"data-{tag}"
                pool = build_pool(url, data_dir, pool_file, n_users, args.batch_size, args.first_labels)
                pool_file.unlink()
                builds.append({"items": n, "import_s": pool.import_s, "first_train_s": pool.first_train_s,
                               "n_ranked": pool.n_ranked})
                print(f"{size_label(n)} items: import {pool.import_s:.1f} s ({n / pool.import_s:,.0f} rows/s), "
                      f"first retrain ranked {pool.n_ranked:,} in {pool.first_train_s:.1f} s", flush=True)
                port = free_port()
                base = f"http://127.0.0.1:{port}"
                web = start_web(port, work / f"web-{tag}.log", args.web_workers)
                worker = feeder = None
                try:
                    wait_http(base + "/login", web)
                    for phase in phases:
                        extra = {}
                        if phase == "retrain":
                            since = utcnow()
                            worker = start_worker(work / f"worker-{tag}.log")
                            feeder = Feeder(pool.project_id)
                            feeder.start()
                            extra["warmup_s"] = wait_for_retrain(pool.project_id, since, args.retrain_wait)
                        plan = [(c, args.seconds, 1.0) for c in counts]
                        if args.saturation_seconds:
                            plan.append((args.saturation_clients, args.saturation_seconds, 0.0))
                        for clients, seconds, period in plan:
                            cap = None
                            if not period:
                                cap = int(0.4 * db_counts(pool.project_id)["open"])
                            w = run_window(base, pool, clients, seconds, period, cap, web.pid)
                            if phase == "retrain":
                                w.update(jobs_between(pool.project_id, w["since_utc"], utcnow()))
                                if worker.poll() is not None:
                                    raise SystemExit(f"the worker exited with {worker.returncode}; see its log")
                            w.update({"items": n, "phase": phase, "mode": "saturation" if not period else "paced",
                                      "database": backend, **extra})
                            windows.append(w)
                            print(f"  {phase:<7} {w['mode']:<10} {clients:>3} clients: "
                                  f"{w['labels_per_s']:7.1f} labels/s, next p50/p95/p99 "
                                  f"{w['next']['p50']:.1f}/{w['next']['p95']:.1f}/"
                                  f"{w['next']['p99']:.1f} ms, lost {w['lost']}, errors {w['n_errors']}"
                                  + (f", retrains {w['retrains']}" if phase == "retrain" else ""), flush=True)
                            if w["errors"]:
                                print(f"    e.g. {w['errors'][:2]}", flush=True)
                        if phase == "retrain":
                            feeder.stop_event.set()
                            feeder.join(timeout=10)
                            stop(worker, timeout=120)
                            worker = feeder = None
                finally:
                    if feeder is not None:
                        feeder.stop_event.set()
                    stop(worker, timeout=120)
                    stop(web)
                    from app.db import get_engine
                    get_engine().dispose()

    print()
    print(f"# next-item latency and saturation, {backend}, {args.web_workers} web process(es), "
          f"tabular x {args.features} features, strategy margin, batch size {args.batch_size}")
    print(facts_line(facts))
    print()
    print(markdown_table(["items", "import s", "rows/s", "first retrain s", "ranked"],
                         [[size_label(b["items"]), b["import_s"], b["items"] / b["import_s"], b["first_train_s"],
                           b["n_ranked"]] for b in builds]))
    print("\npaced: each annotator fetches and labels one item per second; latency in ms at the client, loopback\n")
    rows = []
    for w in windows:
        if w["mode"] != "paced":
            continue
        rows.append([size_label(w["items"]), w["database"], w["phase"], w["clients"], w["labels_per_s"], w["next"]["n"],
                     w["next"]["p50"], w["next"]["p95"], w["next"]["p99"], w["label"]["p50"], w["label"]["p95"],
                     w["label"]["p99"], w["pair"]["p50"], w["pair"]["p95"], w["pair"]["p99"], w["pair"]["max"],
                     w["from_ranking_pct"], w.get("retrains", "-"), w["lost"], w["n_errors"]])
    print(markdown_table(["items", "db", "worker", "annotators", "labels/s", "n", "next p50", "next p95", "next p99",
                          "label p50", "label p95", "label p99", "pair p50", "pair p95", "pair p99", "pair max",
                          "% ranked", "retrains", "lost", "errors"], rows))
    sat = [w for w in windows if w["mode"] == "saturation"]
    if sat:
        print("\nsaturation: clients fetch and label with no pause; lost = 201 answers - annotations stored\n")
        print(markdown_table(
            ["items", "db", "worker", "clients", "seconds", "labels accepted", "labels/s", "next p50", "next p95",
             "label p95", "pair p95", "pair p99", "retrains", "stored", "lost", "errors"],
            [[size_label(w["items"]), w["database"], w["phase"], w["clients"], w["seconds"], w["accepted"],
              w["labels_per_s"], w["next"]["p50"], w["next"]["p95"], w["label"]["p95"], w["pair"]["p95"],
              w["pair"]["p99"], w.get("retrains", "-"), w["stored"], w["lost"], w["n_errors"]] for w in sat]))
    retrain = [w for w in windows if w["phase"] == "retrain"]
    if retrain:
        print("\nretrain phase: median retrain job " + ", ".join(
            f"{size_label(w['items'])} {w['mode']} {w['clients']}: {w['retrain_median_s']:.1f} s" for w in retrain
            if w.get("retrain_median_s") == w.get("retrain_median_s")) + "; quality jobs finished: "
            + str(sum(w.get("quality_jobs", 0) for w in retrain)))
    lost = sum(w["lost"] for w in windows)
    print(f"\nlabels lost in all windows: {lost}" + ("" if lost == 0 else "  <-- NOT ZERO"))
    write_json(args.json, {"benchmark": "serving", "machine": facts, "builds": builds, "windows": windows})
    if lost:
        sys.exit(1)


if __name__ == "__main__":
    main()
