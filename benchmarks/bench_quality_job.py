"""Time the worker's label-quality job end to end on a throwaway SQLite database.

    python benchmarks/bench_quality_job.py [--labels 10000 --features 300 --classes 10 --holdout 2000]

A tabular project gets `labels + holdout` synthetic rows (Gaussian classes, as in bench_importance.py
section 3), their labels are written straight into the items (the job reads only the final labels),
the model is trained by the worker's own `train_and_rank`, and then `compute_quality` runs as the
worker would run it: reading the labels, the model and the cached feature rows, out-of-fold
probabilities, self-influence, leave-one-out probabilities, holdout influence, and the row writes.
"""

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def load() -> str:
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=int, default=10_000)
    parser.add_argument("--features", type=int, default=300)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--holdout", type=int, default=2_000)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="bench-quality-")
    os.environ["DATABASE_URL"] = f"sqlite:///{directory}/bench.db"
    os.environ["LABELLOOP_DATA_DIR"] = directory

    from sqlalchemy import func, select, update

    from app.db import session_scope
    from app.migrate import upgrade_to_head
    from app.models import Item, ItemQuality, ItemState, QualityReport
    from app.pool.service import import_pool
    from app.projects.schemas import ProjectCreate
    from app.projects.service import create_project
    from app.quality.jobs import compute_quality
    from app.training.service import train_and_rank

    upgrade_to_head(os.environ["DATABASE_URL"])
    n, d, k, m = args.labels, args.features, args.classes, args.holdout
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=0.12, size=(k, d))
    y = rng.integers(0, k, size=n + m)
    X = centers[y] + rng.normal(size=(n + m, d))
    labels = [f"c{j}" for j in range(k)]
    csv = io.StringIO()
    csv.write("id," + ",".join(f"f{j}" for j in range(d)) + "\n")
    for i, row in enumerate(X):
        csv.write(f"r{i}," + ",".join(f"{v:.5f}" for v in row) + "\n")
    with session_scope() as session:
        project = create_project(session, created_by=None, data=ProjectCreate(
            name="bench", kind="tabular", labels=labels, batch_size=10, holdout_fraction=0.0))
        import_pool(session, project=project, fileobj=io.BytesIO(csv.getvalue().encode()), filename="bench.csv")
        pid = project.id
    with session_scope() as session:
        ids = session.scalars(select(Item.id).where(Item.project_id == pid).order_by(Item.id)).all()
        by_label: dict[str, list[int]] = {}
        for i, item_id in enumerate(ids):
            by_label.setdefault(labels[y[i]], []).append(item_id)
        for label, members in by_label.items():
            session.execute(update(Item).where(Item.id.in_(members)).values(
                final_label=label, n_annotations=1, state=ItemState.done))
        session.execute(update(Item).where(Item.id.in_(ids[n:])).values(is_holdout=True))
    print(f"# bench_quality_job: {n:,} training labels x {d} features x {k} classes, {m:,} holdout labels; {load()}")
    started = time.perf_counter()
    train_and_rank(pid)
    print(f"retrain (train_and_rank, for reference)   {time.perf_counter() - started:8.2f} s; {load()}")
    started = time.perf_counter()
    compute_quality(pid)
    seconds = time.perf_counter() - started
    with session_scope(write=False) as session:
        report = session.scalar(select(QualityReport).where(QualityReport.project_id == pid))
        rows = session.scalar(select(func.count()).select_from(ItemQuality))
    import resource

    print(f"quality job (compute_quality)             {seconds:8.2f} s; {rows:,} rows, method "
          f"{report.details['method']}, holdout influence {report.approx}, leave-one-out evidence "
          f"{report.details['leave_one_out_evidence']}; max RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; {load()}")


if __name__ == "__main__":
    main()
