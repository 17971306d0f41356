"""Retrain + rescore time and the worker's peak memory, by pool size, cold and with cached features.

For each pool (synthetic tabular rows x 20 features at `--tabular` sizes, Rotten Tomatoes texts at
`--text` sizes), a fresh database gets the pool (bulk import through `import_pool`) and `--labels`
labels on random items (through `app.labeling.service.annotate`, as annotators' answers are
stored). Then `app.training.service.train_and_rank` - the whole of a worker's retrain job: read the
labels, features, fit, cross-validate, score the open pool with the strategy, diagnostics, write the
ranking, publish it - runs in fresh Python processes, exactly as in a worker:

- `cold`: the first retrain of a new pool in a new process: features are computed (and written to
  the disk cache under data_dir/features);
- `disk cache`: a second new process: features come from the disk cache (a restarted or second worker);
- `memory cache`: a second retrain in the first process (a long-running worker's usual case).

Peak memory is the process's VmHWM, reset just before the retrain (RSS before: the process with
the app and scikit-learn loaded). Growth columns give, for each row against the same run on the
next smaller pool, the factor per 10x more rows (1 = flat, 10 = linear, 100 = quadratic) of the time
and of the retrain's own memory (peak - before). SQLite by default; `--database-url` creates and
drops a scratch database per pool on that PostgreSQL server. Nothing is downloaded.

    .venv/bin/python benchmarks/bench_retrain.py                 # 10k/100k/1M rows, 10k/100k texts
    .venv/bin/python benchmarks/bench_retrain.py --quick         # 5k/20k rows, 5k texts
    scripts/with_postgres.sh .venv/bin/python benchmarks/bench_retrain.py --postgres

Options: --tabular 10k,100k,1M --text 10k,100k (empty: skip), --labels 200, --strategy margin,
--json out.json, --keep. The default run builds five pools (1M rows: about a minute to import)
and retrains each three times: roughly 10 minutes on 2 idle cores.
"""

import argparse
import json
import math
import os
import random
import shutil
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
    machine_facts,
    markdown_table,
    oracle_label,
    parse_sizes,
    point_app_at,
    proc_status_mb,
    reset_peak_rss,
    scratch_database,
    self_peak_rss_mb,
    size_label,
    text_labels,
    workdir,
    write_json,
    write_tabular_csv,
    write_text_csv,
)


def child_retrain(spec: dict) -> None:
    """In a fresh process: `runs` retrains in a row; one JSON line per retrain."""
    point_app_at(spec["url"], Path(spec["data_dir"]))
    import app.training.service as training
    from app.db import session_scope
    from app.models import ModelVersion, Project

    spent: dict[str, float] = {}

    def timed(owner, name: str, key: str) -> None:
        original = getattr(owner, name)

        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                spent[key] = spent.get(key, 0.0) + time.perf_counter() - t0

        setattr(owner, name, wrapper)

    # Module attributes train_and_rank looks up at call time: timing them changes nothing else.
    timed(training, "pool_features", "features")
    timed(training.diagnostics, "compute", "diagnostics")
    timed(training, "_dump", "artifact")
    with session_scope(write=False) as session:  # connect and load the models before the clock starts
        session.get(Project, spec["project_id"])
    for _ in range(spec["runs"]):
        spent.clear()
        before = proc_status_mb(os.getpid(), "VmRSS")
        reset = reset_peak_rss(os.getpid())
        started = time.perf_counter()
        result = training.train_and_rank(spec["project_id"])
        total = time.perf_counter() - started
        peak = proc_status_mb(os.getpid(), "VmHWM") if reset else self_peak_rss_mb()
        with session_scope(write=False) as session:
            model = session.get(ModelVersion, result.model_version_id)
            train_s, score_s = model.train_seconds, model.score_seconds
        features_s, diag_s, artifact_s = (spent.get(k, 0.0) for k in ("features", "diagnostics", "artifact"))
        print(json.dumps({"total_s": total, "features_s": features_s, "fit_s": train_s - features_s,
                          "score_s": score_s, "diagnostics_s": diag_s, "artifact_s": artifact_s,
                          "write_s": total - train_s - score_s - diag_s - artifact_s, "n_labels": result.n_labels,
                          "n_ranked": result.n_ranked, "rss_before_mb": before, "peak_rss_mb": peak,
                          "peak_reset": reset}), flush=True)


def retrain_in_child(url: str, data_dir: Path, project_id: int, runs: int) -> list[dict]:
    spec = {"url": url, "data_dir": str(data_dir), "project_id": project_id, "runs": runs}
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], cwd=ROOT, capture_output=True,
                         text=True, env=dict(os.environ))
    if out.returncode != 0:
        raise SystemExit(f"the retrain process failed:\n{out.stderr[-3000:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def build_pool(url: str, data_dir: Path, kind: str, n: int, pool_file: Path, labels: list[str],
               n_labels: int, strategy: str, gold_text: list[str] | None) -> tuple[int, float]:
    """Fresh schema, an admin, a project with the pool and `n_labels` answers. Returns (project id, import s)."""
    point_app_at(url, data_dir)
    from sqlalchemy import select

    from app.db import get_engine, session_scope
    from app.labeling import service as labeling
    from app.migrate import upgrade_to_head
    from app.models import Item, Project, User
    from app.pool.service import import_pool
    from app.projects.schemas import ProjectCreate
    from app.projects.service import create_project
    from app.users.service import create_user

    upgrade_to_head(url)
    with session_scope() as session:
        admin = create_user(session, username="bench", password="benchmark-pass", role="admin")
        project = create_project(session, created_by=admin, data=ProjectCreate(
            name=f"retrain-{kind}", kind=kind, labels=labels, strategy=strategy))
        t0 = time.perf_counter()
        with open(pool_file, "rb") as fh:
            import_pool(session, project=project, fileobj=fh, filename=pool_file.name)
        project_id, admin_id = project.id, admin.id
    import_seconds = time.perf_counter() - t0
    picks = random.Random(1).sample(range(n), n_labels)
    with session_scope() as session:
        project, user = session.get(Project, project_id), session.get(User, admin_id)
        items = session.scalars(select(Item).where(Item.project_id == project_id,
                                                   Item.external_id.in_([str(i) for i in picks]))).all()
        for item in items:
            label = gold_text[int(item.external_id)] if kind == "text" else oracle_label(item.payload["features"])
            labeling.annotate(session, project=project, item=item, user=user, label=label)
        # No worker runs here: the cold-start and retrain jobs these queue stay queued and change nothing.
    get_engine().dispose()
    return project_id, import_seconds


def growth(rows: list[dict]) -> None:
    """Factor per 10x rows against the same (data, run) at the next smaller size."""
    by_key: dict[tuple, dict] = {}
    for r in sorted(rows, key=lambda r: r["rows"]):
        key = (r["data"], r["run"])
        prev = by_key.get(key)
        r["time_x_per_10x"] = r["mem_x_per_10x"] = float("nan")
        if prev is not None and r["rows"] > prev["rows"]:
            decades = math.log10(r["rows"] / prev["rows"])
            if prev["total_s"] > 0:
                r["time_x_per_10x"] = (r["total_s"] / prev["total_s"]) ** (1 / decades)
            own, prev_own = r["peak_rss_mb"] - r["base_mb"], prev["peak_rss_mb"] - prev["base_mb"]
            if own > 0 and prev_own > 0:
                r["mem_x_per_10x"] = (own / prev_own) ** (1 / decades)
        by_key[key] = r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tabular", default="10k,100k,1M", help="tabular pool sizes (empty: none)")
    parser.add_argument("--text", default="10k,100k", help="text pool sizes (empty: none)")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--labels", type=int, default=200, help="labelled items before the retrains")
    parser.add_argument("--strategy", default="margin")
    add_database_args(parser)
    parser.add_argument("--quick", action="store_true", help="5k and 20k rows, 5k texts")
    parser.add_argument("--json", default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_retrain(json.loads(args.child))
        return
    if args.quick:
        args.tabular, args.text = "5k,20k", "5k"
    args.database_url = database_url(args)
    facts = machine_facts()
    backend = backend_of(args.database_url or "sqlite")
    pools = [("tabular", n) for n in parse_sizes(args.tabular)] + [("text", n) for n in parse_sizes(args.text)]
    results = []
    with workdir("bench-retrain", keep=args.keep) as work:
        for kind, n in pools:
            pool_file = work / f"{kind}-{n}.csv"
            if kind == "text":
                labels, gold = write_text_csv(pool_file, n), text_labels(n)
                gold = [gold[i % len(gold)] for i in range(n)]
            else:
                write_tabular_csv(pool_file, n, args.features)
                labels, gold = LABELS, None
            tag = f"rt_{kind}_{n}"
            with scratch_database(args.database_url, work, tag) as url:
                data_dir = work / f"data-{tag}"
                project_id, import_s = build_pool(url, data_dir, kind, n, pool_file, labels,
                                                  min(args.labels, n // 2), args.strategy, gold)
                pool_file.unlink()
                shutil.rmtree(data_dir / "features", ignore_errors=True)  # the first retrain is cold
                first = retrain_in_child(url, data_dir, project_id, runs=2)
                cached = (data_dir / "features").exists() and any((data_dir / "features").rglob("complete"))
                second = retrain_in_child(url, data_dir, project_id, runs=1)
                for run, r, base in (("cold", first[0], first[0]), ("disk cache", second[0], second[0]),
                                     ("memory cache", first[1], first[0])):
                    results.append({"data": kind, "rows": n, "run": run, "database": backend,
                                    "base_mb": base["rss_before_mb"],
                                    "import_s": import_s, "disk_cache_written": cached, **r})
                print(f"  {kind:<8} {n:>10,} rows: import {import_s:.1f} s; retrain cold {first[0]['total_s']:.1f} s "
                      f"(peak {first[0]['peak_rss_mb']:,.0f} MB), disk cache {second[0]['total_s']:.1f} s, "
                      f"memory cache {first[1]['total_s']:.1f} s", flush=True)
    growth(results)

    print()
    print(f"# retrain + rescore, {backend}, strategy {args.strategy}, {args.labels} labels; "
          f"tabular {args.tabular or '-'} x {args.features} features, texts {args.text or '-'}")
    print(facts_line(facts))
    print()
    order = {"cold": 0, "disk cache": 1, "memory cache": 2}
    results.sort(key=lambda r: (r["data"] != "tabular", order[r["run"]], r["rows"]))
    print(markdown_table(
        ["data", "rows", "run", "features s", "fit s", "score s", "diagnostics s", "artifact s", "ranking write s",
         "total s", "RSS before MB", "peak RSS MB", "time x per 10x", "memory x per 10x"],
        [[r["data"], size_label(r["rows"]), r["run"], r["features_s"], r["fit_s"], r["score_s"], r["diagnostics_s"],
          r["artifact_s"], r["write_s"],
          r["total_s"], r["rss_before_mb"], r["peak_rss_mb"], r["time_x_per_10x"], r["mem_x_per_10x"]]
         for r in results]))
    print("\nfeatures s: pool_features (read the pool + fit the featurizer, or load the cache); fit s: labels read, "
          "fit, cross-validation; score s: the strategy over the open pool; diagnostics s: holdout, stopping and map "
          "figures; artifact s: the compressed pipeline; ranking write s: the rest (model row, ranking bulk insert, "
          "planner statistics, the swap, dropping the old ranking). memory x per 10x: of peak minus the process's "
          "RSS before its first retrain.")
    if not all(r["disk_cache_written"] for r in results):
        print("(warning: a first retrain left no disk cache of its features)")
    write_json(args.json, {"benchmark": "retrain", "machine": facts, "results": results})


if __name__ == "__main__":
    main()
