"""Deleting a large project: how long the worker takes, and how long any one of its write
transactions holds the database (on SQLite, the write lock every other project's annotators wait on).

A fresh database gets a tabular project of `--rows` items with `--labels` imported labels and one
trained model (so a ranking of every unlabelled item), plus a small second project that must come
through untouched. The big project is then deleted as the admin's request does
(`app.projects.deletion.mark_deleted`) and purged as the worker's job does (`purge_project`), each
write transaction timed. Printed: the total, the items removed per second, and the longest and
median transaction by step. Nothing is downloaded.

    .venv/bin/python benchmarks/bench_delete.py                  # 1M items, SQLite
    scripts/with_postgres.sh .venv/bin/python benchmarks/bench_delete.py --postgres
    .venv/bin/python benchmarks/bench_delete.py --rows 50000     # a smoke run
"""

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (  # noqa: E402
    LABELS,
    add_database_args,
    backend_of,
    database_url,
    facts_line,
    machine_facts,
    markdown_table,
    oracle_label,
    point_app_at,
    scratch_database,
    size_label,
    workdir,
    write_json,
    write_tabular_csv,
)
from benchmarks.bench_import import setup_project  # noqa: E402


def label_some(path: Path, n_labels: int) -> Path:
    """The pool file with a `label` column filled in (by the synthetic oracle) for its first rows."""
    out = path.with_name("labelled.csv")
    with open(path) as src, open(out, "w") as dst:
        dst.write(src.readline().rstrip("\n") + ",label\n")
        for n, line in enumerate(src):
            line = line.rstrip("\n")
            label = oracle_label([float(v) for v in line.split(",")[1:3]]) if n < n_labels else ""
            dst.write(f"{line},{label}\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--labels", type=int, default=200, help="imported labels (the model trains on them)")
    add_database_args(parser)
    parser.add_argument("--json", default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    args.database_url = database_url(args)
    facts = machine_facts()
    backend = backend_of(args.database_url or "sqlite")
    with workdir("bench-delete", keep=args.keep) as work, scratch_database(args.database_url, work, "delete") as url:
        pool = work / "pool.csv"
        write_tabular_csv(pool, args.rows, args.features)
        labelled = label_some(pool, args.labels)
        data_dir = work / "data"
        project_id, _ = setup_project(url, data_dir, "tabular", LABELS)
        point_app_at(url, data_dir)
        from sqlalchemy import func, select

        from app.db import session_scope
        from app.models import Item, Project, RankingEntry, User
        from app.pool.service import import_pool
        from app.projects.deletion import mark_deleted, purge_project
        from app.projects.schemas import ProjectCreate
        from app.projects.service import create_project
        from app.training.service import train_and_rank

        t0 = time.perf_counter()
        with session_scope() as session, open(labelled, "rb") as fh:
            project = session.get(Project, project_id)
            admin = session.scalar(select(User))
            import_pool(session, project=project, fileobj=fh, filename="labelled.csv", label_column="label",
                        imported_by=admin)
            other = create_project(session, created_by=admin, data=ProjectCreate(
                name="other", kind="tabular", labels=LABELS, strategy="margin"))
            other_id = other.id
        with session_scope() as session, open(pool, "rb") as fh:
            head = b"".join(fh.readline() for _ in range(1001))
            import_pool(session, project=session.get(Project, other_id), fileobj=io.BytesIO(head), filename="o.csv")
        print(f"imported {args.rows:,} + 1,000 rows in {time.perf_counter() - t0:.1f} s", flush=True)
        t0 = time.perf_counter()
        result = train_and_rank(project_id)
        print(f"trained and ranked {result.n_ranked:,} items in {time.perf_counter() - t0:.1f} s", flush=True)
        with session_scope(write=False) as session:
            ranking_rows = session.scalar(select(func.count()).select_from(RankingEntry))
            other_items = session.scalar(select(func.count()).select_from(Item).where(Item.project_id == other_id))

        with session_scope() as session:
            started = time.perf_counter()
            mark_deleted(session, project=session.get(Project, project_id))
        request_s = time.perf_counter() - started
        steps: list[tuple[str, int, float]] = []
        started = time.perf_counter()
        removed = purge_project(project_id, on_step=lambda step, rows, s: steps.append((step, rows, s)))
        purge_s = time.perf_counter() - started
        with session_scope(write=False) as session:
            left = session.scalar(select(func.count()).select_from(Item).where(Item.project_id == project_id))
            other_after = session.scalar(select(func.count()).select_from(Item).where(Item.project_id == other_id))
            ranking_left = session.scalar(select(func.count()).select_from(RankingEntry))
        if removed != args.rows or left or other_after != other_items:
            raise SystemExit(f"removed {removed}, left {left}, other project {other_after} of {other_items}")

    rows = []
    for step in ("items", "ranking", "project"):
        seconds = [s for name, _, s in steps if name == step]
        if seconds:
            rows.append([step, len(seconds), sum(seconds), statistics.median(seconds), max(seconds)])
    print()
    print(f"# deleting a project of {size_label(args.rows)} items x {args.features} features, {backend}")
    print(facts_line(facts))
    print()
    print(f"request (mark deleted, call off jobs): {request_s * 1000:.0f} ms; purge: {purge_s:.1f} s "
          f"({removed / purge_s:,.0f} items/s; {ranking_rows - ranking_left:,} ranking rows of the model went with it)")
    print()
    print(markdown_table(["step", "transactions", "total s", "median s", "longest s"], rows))
    print("\n(a ranking's transactions are RANKING_CHUNK rows each; its row is one model version's, all of them)")
    write_json(args.json, {"benchmark": "delete", "machine": facts, "rows": args.rows, "backend": backend,
                           "request_s": request_s, "purge_s": purge_s, "steps": steps})


if __name__ == "__main__":
    main()
