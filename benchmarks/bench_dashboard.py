"""What one open dashboard costs the server on a big project: the figures behind every 5-second refresh.

A fresh database gets a tabular project of `--rows` items, each answered by two annotators
(`--agree` of the pairs agreeing; the rest tie and wait for adjudication), and one trained model.
Then `app.dashboard.service.project_stats` (what the page and `GET /api/v1/projects/{id}/stats`
both call) is timed the way polling dashboards meet it: the first call (agreement computed), calls
with no new answer (agreement reused), a call right after a new answer (reused while it is younger
than AGREEMENT_REUSE_FACTOR times its cost), and a call after that window (recomputed). Each
section of the call is timed too. Nothing is downloaded.

    .venv/bin/python benchmarks/bench_dashboard.py                 # 100k items, 200k answers, SQLite
    scripts/with_postgres.sh .venv/bin/python benchmarks/bench_dashboard.py --postgres
    .venv/bin/python benchmarks/bench_dashboard.py --rows 5000     # a smoke run
"""

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (  # noqa: E402
    LABELS,
    add_database_args,
    backend_of,
    database_url,
    facts_line,
    machine_facts,
    markdown_table,
    scratch_database,
    size_label,
    workdir,
    write_json,
    write_tabular_csv,
)
from benchmarks.bench_import import setup_project  # noqa: E402

CHUNK = 20_000


def answer_everything(project_id: int, agree: float, seed: int = 0) -> tuple[int, int]:
    """Two annotators answer every item; returns (answers, ties). Written in bulk, as the labelling
    service would have left them (counts, majority label, state, the project's training counter)."""
    from sqlalchemy import func, insert, select, update

    from app.db import session_scope
    from app.models import Annotation, Item, Project, ServeSource, utcnow
    from app.users.service import create_user

    rng = np.random.default_rng(seed)
    with session_scope() as session:
        users = [create_user(session, username=f"ann{i}", password="benchmark-pass", role="annotator").id
                 for i in (1, 2)]
        ids = session.scalars(select(Item.id).where(Item.project_id == project_id).order_by(Item.id)).all()
    now = utcnow()
    ties = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        first = rng.integers(0, len(LABELS), len(chunk))
        same = rng.random(len(chunk)) < agree
        second = np.where(same, first, (first + 1) % len(LABELS))
        seconds = rng.uniform(2, 12, (2, len(chunk)))
        ago = rng.uniform(0, 4 * 3600, (2, len(chunk)))  # answered over the last four hours
        rows, items = [], []
        for n, item_id in enumerate(chunk):
            for who, label in ((0, first[n]), (1, second[n])):
                at = now - timedelta(seconds=float(ago[who, n]))
                rows.append({"project_id": project_id, "item_id": item_id, "user_id": users[who],
                             "label": LABELS[label], "skipped": False, "created_at": at, "updated_at": at,
                             "seconds_spent": float(seconds[who, n]), "source": ServeSource.ranking,
                             "strategy": "margin", "score": 0.5, "model_version": 1})
            items.append({"id": item_id, "n_annotations": 2, "state": "done",
                          "final_label": LABELS[first[n]] if same[n] else None})
        ties += int((~same).sum())
        with session_scope() as session:
            session.execute(insert(Annotation), rows)
            session.execute(update(Item), items)
    with session_scope() as session:
        training = session.scalar(select(func.count()).select_from(Item).where(
            Item.project_id == project_id, Item.final_label.is_not(None), Item.is_holdout.is_(False)))
        session.execute(update(Project).where(Project.id == project_id).values(n_training_labels=training))
    return 2 * len(ids), ties


def timed_sections(project_id: int) -> dict[str, float]:
    """project_stats with each of its sections timed (by wrapping the module's helpers)."""
    from app.dashboard import service
    from app.db import session_scope
    from app.models import Project

    sections: dict[str, float] = {}
    originals = {}
    for name in ("_counts", "_label_distribution", "_learning_curve", "_answer_summary", "_labels_last_hour",
                 "_annotators", "open_disagreement_count"):
        original = getattr(service, name)
        originals[name] = original

        def wrapper(*args, _original=original, _name=name, **kwargs):
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                sections[_name] = sections.get(_name, 0.0) + time.perf_counter() - started
        setattr(service, name, wrapper)
    try:
        started = time.perf_counter()
        with session_scope(write=False) as session:
            service.project_stats(session, session.get(Project, project_id))
        sections["total"] = time.perf_counter() - started
    finally:
        for name, original in originals.items():
            setattr(service, name, original)
    return sections


def one_more_answer(project_id: int) -> None:
    """An annotator changes one answer: the agreement's fingerprint changes."""
    from sqlalchemy import select

    from app.db import session_scope
    from app.models import Annotation, utcnow

    with session_scope() as session:
        answer = session.scalar(select(Annotation).where(Annotation.project_id == project_id).limit(1))
        answer.label = LABELS[(LABELS.index(answer.label) + 1) % len(LABELS)]
        answer.updated_at = utcnow()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--agree", type=float, default=0.8, help="share of items both annotators label alike")
    parser.add_argument("--polls", type=int, default=10, help="timed calls with no new answer")
    add_database_args(parser)
    parser.add_argument("--json", default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    args.database_url = database_url(args)
    facts = machine_facts()
    backend = backend_of(args.database_url or "sqlite")
    with workdir("bench-dashboard", keep=args.keep) as work, \
            scratch_database(args.database_url, work, "dashboard") as url:
        pool = work / "pool.csv"
        write_tabular_csv(pool, args.rows, args.features)
        project_id, _ = setup_project(url, work / "data", "tabular", LABELS)
        from sqlalchemy import select

        from app.dashboard import service
        from app.db import get_engine, session_scope
        from app.models import Project, User
        from app.pool.service import import_pool
        from app.training.service import train_and_rank

        t0 = time.perf_counter()
        with session_scope() as session, open(pool, "rb") as fh:
            import_pool(session, project=session.get(Project, project_id), fileobj=fh, filename="pool.csv",
                        imported_by=session.scalar(select(User)))
        n_answers, ties = answer_everything(project_id, args.agree)
        print(f"imported {args.rows:,} rows and wrote {n_answers:,} answers in {time.perf_counter() - t0:.1f} s",
              flush=True)
        t0 = time.perf_counter()
        trained = train_and_rank(project_id)
        print(f"trained v{trained.version} on {trained.n_labels:,} labels in {time.perf_counter() - t0:.1f} s",
              flush=True)

        first = timed_sections(project_id)
        agreement_cost = next(iter(service._summaries.values())).seconds
        polls = [timed_sections(project_id)["total"] for _ in range(args.polls)]
        cached = timed_sections(project_id)
        # a fresh agreement, then a new answer at once: still inside the reuse window
        service._summaries.clear()
        timed_sections(project_id)
        agreement_cost = next(iter(service._summaries.values())).seconds
        window = service.AGREEMENT_REUSE_FACTOR * agreement_cost
        kept = next(iter(service._summaries.values()))
        one_more_answer(project_id)
        within = timed_sections(project_id)
        reused = next(iter(service._summaries.values())) is kept
        time.sleep(window + 0.5)
        one_more_answer(project_id)
        after = timed_sections(project_id)
        recomputed = next(iter(service._summaries.values())) is not kept
        get_engine().dispose()

    print()
    print(f"# the dashboard's figures on {size_label(args.rows)} items, {n_answers:,} answers "
          f"({ties:,} ties), {backend}")
    print(facts_line(facts))
    print()
    print(markdown_table(["call", "seconds"], [
        ["first (agreement computed)", first["total"]],
        [f"no new answer, median of {args.polls}", statistics.median(polls)],
        [f"no new answer, slowest of {args.polls}", max(polls)],
        [f"right after a new answer (agreement {'reused' if reused else 'recomputed'})", within["total"]],
        [f"a new answer after the reuse window of {window:.1f} s (agreement "
         f"{'recomputed' if recomputed else 'reused'})", after["total"]],
    ]))
    print()
    names = [name for name in first if name != "total"]
    print(markdown_table(["section", "first s", "no new answer s", "new answer, in window s", "after window s"],
                         [[name, first.get(name, 0.0), cached.get(name, 0.0), within.get(name, 0.0),
                           after.get(name, 0.0)] for name in names]))
    print(f"\nanswer summary (agreement, annotators' totals) computed in {agreement_cost:.2f} s; reused for "
          f"{window:.1f} s after each computation (AGREEMENT_REUSE_FACTOR {service.AGREEMENT_REUSE_FACTOR:g}; "
          f"never below {service.SUMMARY_ALWAYS_FRESH_SECONDS} s of cost)")
    write_json(args.json, {"benchmark": "dashboard", "machine": facts, "rows": args.rows, "answers": n_answers,
                           "ties": ties, "backend": backend, "first": first, "polls": polls, "cached": cached,
                           "within_window": within, "after_window": after, "reused": reused, "recomputed": recomputed,
                           "summary_seconds": agreement_cost})


if __name__ == "__main__":
    main()
