"""Next-item latency over loopback on a large pool, served from a real ranking.

Builds a fresh database (SQLite by default; --database-url for PostgreSQL), imports a
synthetic tabular pool, labels a first batch and trains a model so the pool is ranked, then
starts uvicorn and times, from one client over HTTP keep-alive, `GET /api/v1/projects/{id}/next`
and the label submit that follows it. Prints a table of percentiles in milliseconds.

    python benchmarks/bench_next_item.py --items 100000 --requests 1000
"""

import argparse
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def synthetic_csv(n_items: int, n_features: int, seed: int = 0) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_items, n_features)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    out = io.StringIO()
    out.write("id," + ",".join(f"f{j}" for j in range(n_features)) + "\n")
    np.savetxt(out, np.column_stack([np.arange(n_items), X]), delimiter=",",
               fmt=["%d"] + ["%.5f"] * n_features)
    return out.getvalue().encode(), y


def percentile_row(name: str, samples_ms: list[float]) -> str:
    a = np.asarray(samples_ms)
    return (f"| {name:<22} | {len(a):>6} | {np.percentile(a, 50):>7.2f} | {np.percentile(a, 95):>7.2f} | "
            f"{np.percentile(a, 99):>7.2f} | {a.max():>7.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="labelloop-bench-"))
    url = args.database_url or f"sqlite:///{workdir}/bench.db"
    os.environ.update({"DATABASE_URL": url, "LABELLOOP_DATA_DIR": str(workdir / "data"),
                       "LABELLOOP_SECRET_KEY": "benchmark-only"})

    from app.db import session_scope
    from app.labeling import service as labeling
    from app.migrate import upgrade_to_head
    from app.models import Item, Project, User
    from app.pool.service import import_pool
    from app.projects.schemas import ProjectCreate
    from app.projects.service import create_project
    from app.training.service import train_and_rank
    from app.users.service import create_user, issue_api_token

    upgrade_to_head(url)
    data, gold = synthetic_csv(args.items, args.features)
    with session_scope() as session:
        admin = create_user(session, username="bench", password="benchmark-pass", role="admin")
        token = issue_api_token(session, user=admin)
        project = create_project(session, created_by=admin, data=ProjectCreate(
            name="bench", kind="tabular", labels=["neg", "pos"], strategy="margin", batch_size=10))
        started = time.perf_counter()
        import_pool(session, project=project, fileobj=io.BytesIO(data), filename="pool.csv")
        import_seconds = time.perf_counter() - started
        project_id, admin_id = project.id, admin.id
    with session_scope() as session:  # a first batch of labels, so there is a model and a ranking
        project, user = session.get(Project, project_id), session.get(User, admin_id)
        for _ in range(20):
            served = labeling.next_item(session, project=project, user=user)
            label = "pos" if gold[int(served.item.external_id)] else "neg"
            labeling.annotate(session, project=project, item=served.item, user=user, label=label)
    started = time.perf_counter()
    result = train_and_rank(project_id)
    train_seconds = time.perf_counter() - started

    port = 8700 + os.getpid() % 200
    env = {**os.environ, "LABELLOOP_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host",
                               "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
                              cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if client.get("/api/v1/me").status_code == 200:
                        break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the server did not start") from None
                    time.sleep(0.2)
            for _ in range(20):  # warm up connections and caches
                client.get("/api/v1/me")
            next_ms, label_ms, sources = [], [], []
            for _ in range(args.requests):
                t0 = time.perf_counter()
                response = client.get(f"/api/v1/projects/{project_id}/next")
                t1 = time.perf_counter()
                item = response.json()
                sources.append(item["why"]["source"])
                label = "pos" if gold[int(item["external_id"])] else "neg"
                answer = client.post(f"/api/v1/items/{item['id']}/annotations", json={"label": label})
                t2 = time.perf_counter()
                assert answer.status_code == 201, answer.text
                next_ms.append((t1 - t0) * 1000)
                label_ms.append((t2 - t1) * 1000)
    finally:
        server.terminate()
        server.wait(timeout=10)

    with session_scope(write=False) as session:
        from sqlalchemy import func, select

        labelled = session.scalar(select(func.count()).select_from(Item).where(Item.final_label.is_not(None)))
    backend = url.split(":", 1)[0]
    print(f"# next-item latency: {args.items:,} items x {args.features} features, {backend}, one client, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"import {args.items:,} rows: {import_seconds:.1f} s ({args.items / import_seconds:,.0f} rows/s); "
          f"train + rank {result.n_ranked:,} items: {train_seconds:.1f} s")
    print(f"served from the ranking: {sources.count('ranking')}, as random holdout: {sources.count('holdout')} "
          f"(of {len(sources)}); labels stored: {labelled}")
    print()
    print("| request                | n      | p50 ms  | p95 ms  | p99 ms  | max ms  |")
    print("|------------------------|--------|---------|---------|---------|---------|")
    print(percentile_row("GET next", next_ms))
    print(percentile_row("POST annotation", label_ms))
    print(percentile_row("next + annotation", [a + b for a, b in zip(next_ms, label_ms, strict=True)]))
    print(f"\nmean next {statistics.fmean(next_ms):.2f} ms")


if __name__ == "__main__":
    main()
