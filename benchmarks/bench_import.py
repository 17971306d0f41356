"""Pool import speed and peak memory: tabular rows and texts, through the service and over HTTP.

For each pool (a synthetic tabular CSV of `--rows` rows x `--features` features, and `--texts`
movie-review snippets built from the bundled Rotten Tomatoes file, as benchmarks/bench_strategies.py
does) and each import path, a fresh database gets one project and the file is imported whole:

- `service`: `app.pool.service.import_pool` (what `labelloop import` runs) in a fresh Python process,
  timed from the call to the commit; peak memory is that process's RSS high-water mark (VmHWM, reset
  just before the import; ru_maxrss where the kernel refuses the reset);
- `http`: `POST /api/v1/projects/{id}/items` (multipart upload, what the browser and API clients
  use) to a uvicorn started for the purpose, timed at the client on loopback; peak memory is the
  server's VmHWM, reset just before the upload (or counted from its start where Linux refuses).

Both columns `RSS before` (the process just before the import) and `peak RSS` are printed, so the
import's own share is the difference. The database is SQLite in a temporary directory, or, with
`--database-url`, a database created for each measurement on that PostgreSQL server (CREATEDB
needed) and dropped after it. Nothing is downloaded.

    .venv/bin/python benchmarks/bench_import.py                      # 1M rows + 100k texts, SQLite
    scripts/with_postgres.sh .venv/bin/python benchmarks/bench_import.py --postgres  # the same on PostgreSQL
    .venv/bin/python benchmarks/bench_import.py --quick              # 20k rows + 5k texts, a smoke run

Options: --rows, --texts (0 skips a pool), --paths service,http, --json out.json, --keep.
The default run imports 1.1M rows twice (service and http): a few minutes on 2 idle cores at the
~17,000 rows/s docs/benchmarks.md reports for SQLite.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (  # noqa: E402
    LABELS,
    ROOT,
    add_database_args,
    backend_of,
    database_url,
    facts_line,
    free_port,
    machine_facts,
    markdown_table,
    point_app_at,
    proc_status_mb,
    reset_peak_rss,
    scratch_database,
    self_peak_rss_mb,
    size_label,
    start_web,
    stop,
    wait_http,
    workdir,
    write_json,
    write_tabular_csv,
    write_text_csv,
)


def child_import(spec: dict) -> None:
    """Run in a fresh process: import the file into the project and print one JSON line."""
    point_app_at(spec["url"], Path(spec["data_dir"]))
    from app.db import session_scope
    from app.models import Project
    from app.pool.service import import_pool

    with session_scope(write=False) as session:  # connect and load the models before the clock starts
        session.get(Project, spec["project_id"])
    before = proc_status_mb(os.getpid(), "VmRSS")
    reset = reset_peak_rss(os.getpid())  # VmHWM from here on is the import's own peak
    started = time.perf_counter()
    with session_scope() as session, open(spec["file"], "rb") as fh:
        project = session.get(Project, spec["project_id"])
        result = import_pool(session, project=project, fileobj=fh, filename=Path(spec["file"]).name)
    seconds = time.perf_counter() - started
    peak = proc_status_mb(os.getpid(), "VmHWM") if reset else self_peak_rss_mb()
    print(json.dumps({"seconds": seconds, "imported": result.imported, "rss_before_mb": before,
                      "peak_rss_mb": peak, "peak_reset": reset}))


def setup_project(url: str, data_dir: Path, kind: str, labels: list[str]) -> tuple[int, str]:
    """Migrate the fresh database and create an admin (with an API token) and an empty project."""
    point_app_at(url, data_dir)
    from app.db import session_scope
    from app.migrate import upgrade_to_head
    from app.projects.schemas import ProjectCreate
    from app.projects.service import create_project
    from app.users.service import create_user, issue_api_token

    upgrade_to_head(url)
    with session_scope() as session:
        admin = create_user(session, username="bench", password="benchmark-pass", role="admin")
        token = issue_api_token(session, user=admin)
        project = create_project(session, created_by=admin, data=ProjectCreate(
            name=f"import-{kind}", kind=kind, labels=labels, strategy="margin"))
        return project.id, token


def count_items(project_id: int) -> int:
    from sqlalchemy import func, select

    from app.db import get_engine, session_scope
    from app.models import Item

    with session_scope(write=False) as session:
        n = session.scalar(select(func.count()).select_from(Item).where(Item.project_id == project_id))
    get_engine().dispose()  # no connection left open on a database about to be dropped
    return int(n or 0)


def run_service(url: str, data_dir: Path, project_id: int, path: Path) -> dict:
    spec = {"url": url, "data_dir": str(data_dir), "project_id": project_id, "file": str(path)}
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], cwd=ROOT,
                         capture_output=True, text=True, env=dict(os.environ))
    if out.returncode != 0:
        raise SystemExit(f"the import process failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_http(url: str, data_dir: Path, project_id: int, token: str, path: Path, logdir: Path) -> dict:
    import httpx

    point_app_at(url, data_dir)
    port = free_port()
    server = start_web(port, logdir / f"web-{port}.log")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/login", server)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=3600) as client:
            client.get("/api/v1/me")  # warm: first request, token check, connection pool
            reset = reset_peak_rss(server.pid)
            before = proc_status_mb(server.pid, "VmRSS")
            started = time.perf_counter()
            with open(path, "rb") as fh:
                response = client.post(f"/api/v1/projects/{project_id}/items",
                                       files={"file": (path.name, fh, "text/csv")})
            seconds = time.perf_counter() - started
            peak = proc_status_mb(server.pid, "VmHWM")
        if response.status_code != 201:
            raise SystemExit(f"upload answered {response.status_code}: {response.text[:2000]}")
        return {"seconds": seconds, "imported": response.json()["imported"], "rss_before_mb": before,
                "peak_rss_mb": peak, "peak_reset": reset}
    finally:
        stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="tabular rows (0: skip)")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--texts", type=int, default=100_000, help="text rows (0: skip)")
    parser.add_argument("--paths", default="service,http", help="service, http or both")
    add_database_args(parser)
    parser.add_argument("--quick", action="store_true", help="20k rows and 5k texts")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_import(json.loads(args.child))
        return
    if args.quick:
        args.rows, args.texts = min(args.rows, 20_000), min(args.texts, 5_000)
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    args.database_url = database_url(args)
    facts = machine_facts()
    backend = backend_of(args.database_url or "sqlite")
    results = []
    with workdir("bench-import", keep=args.keep) as work:
        pools = []
        if args.rows:
            f = work / "tabular.csv"
            t0 = time.perf_counter()
            write_tabular_csv(f, args.rows, args.features)
            print(f"wrote {args.rows:,} x {args.features} tabular rows ({f.stat().st_size / 1e6:.0f} MB) "
                  f"in {time.perf_counter() - t0:.1f} s", flush=True)
            pools.append(("tabular", f, args.rows, LABELS))
        if args.texts:
            f = work / "texts.csv"
            t0 = time.perf_counter()
            labels = write_text_csv(f, args.texts)
            print(f"wrote {args.texts:,} texts ({f.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s",
                  flush=True)
            pools.append(("text", f, args.texts, labels))
        for kind, path, n, labels in pools:
            for how in paths:
                tag = f"imp_{kind}_{how}"
                with scratch_database(args.database_url, work, tag) as url:
                    data_dir = work / f"data-{tag}"
                    project_id, token = setup_project(url, data_dir, kind, labels)
                    if how == "service":
                        r = run_service(url, data_dir, project_id, path)
                    elif how == "http":
                        r = run_http(url, data_dir, project_id, token, path, work)
                    else:
                        raise SystemExit(f"unknown path {how!r}")
                    stored = count_items(project_id)
                    if stored != n or r["imported"] != n:
                        raise SystemExit(f"{kind}/{how}: {r['imported']} reported, {stored} stored, {n} expected")
                    row = {"data": kind, "database": backend, "path": how, "rows": n,
                           "file_mb": path.stat().st_size / 1e6, **r, "rows_per_s": n / r["seconds"]}
                    results.append(row)
                    print(f"  {kind:<8} {how:<8} {n:>10,} rows  {r['seconds']:7.1f} s  "
                          f"{row['rows_per_s']:>9,.0f} rows/s  peak RSS {r['peak_rss_mb']:,.0f} MB", flush=True)

    print()
    print(f"# pool import, {backend}; rows x features: {size_label(args.rows)} x {args.features}, "
          f"texts: {size_label(args.texts)}")
    print(facts_line(facts))
    print()
    print(markdown_table(
        ["data", "database", "path", "rows", "file MB", "seconds", "rows/s", "RSS before MB", "peak RSS MB"],
        [[r["data"], r["database"], r["path"], r["rows"], r["file_mb"], r["seconds"], r["rows_per_s"],
          r["rss_before_mb"], r["peak_rss_mb"]] for r in results]))
    if any(r.get("peak_reset") is False for r in results):
        print("\n(the kernel refused to reset a peak before the import: that peak counts from the process's start)")
    write_json(args.json, {"benchmark": "import", "machine": facts, "results": results})


if __name__ == "__main__":
    main()
