"""Which cold-start rule, once a first model exists: the one the app used until 2026-12-02 for
every strategy but auto, against auto's, which every strategy now gets (app/al/cold_start.cover_first).

Each strategy runs the suite's protocol (benchmarks/al_suite.py: batches of 10 up to 300, 30%
test) under three rules for the batches after the first labels:
  none    the strategy ranks from the first model on (the suite's textbook strategies)
  static  the rule replaced: the next items of the k-means coverage order (3 clusters per label,
          10 to 50) while some label has fewer than 3 labels and the labels number fewer than 5
          per label; kept here, and only here, to compare
  cover   the rule now: TypiClust's batch (`typical_uncovered`) while `still_covering` (some label
          has fewer than 2 examples, fewer than 2 labels per label), as the simulator's `cover_first`
Prints, per dataset, the mean AULC gain (x100) over random with its paired standard error (and for
static the number of batches it took from the strategy), then the mean over datasets and cover - static.

    python benchmarks/bench_cover_rules.py --initial 10 --initial-mode coverage   # as a project starts
    python benchmarks/bench_cover_rules.py --datasets olive,digits,leaf --strategies margin,entropy --repeats 10
"""

import argparse
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # two processes on two cores: no BLAS threads on top
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.al.cold_start import coverage_order  # noqa: E402
from app.al.models import build_classifier, build_featurizer  # noqa: E402
from app.al.simulate import (  # noqa: E402
    SimulationConfig,
    _coverage_sample,
    _initial_sample,
    _take,
    protocol_split,
    run_strategy,
)
from app.al.strategies import get_strategy  # noqa: E402
from benchmarks.al_suite import strategy_params  # noqa: E402
from benchmarks.datasets import DATASETS, load  # noqa: E402

RULES = ("none", "static", "cover")
# the replaced rule's settings (app/labeling/service.py and app/training/cold_start.py before 2026-12-02)
STATIC_LABELS_PER_CLASS, STATIC_CAP_PER_LABEL = 3, 5


def _static_curve(strategy: str, params: dict, *, X_train, y_train, X_test, y_test, initial, config, kind, seed,
                  labels) -> tuple[list, int]:
    """A learning curve under the replaced rule, and how many batches it took from the strategy."""
    from sklearn.metrics import accuracy_score

    order = coverage_order(X_train, n_clusters=int(min(50, max(10, 3 * len(labels)))), limit=1_000,
                           random_state=seed)
    labeled = list(initial)
    in_pool = np.ones(len(y_train), dtype=bool)
    in_pool[initial] = False
    curve, took = [], 0
    while True:
        classifier = build_classifier(kind)
        classifier.fit(X_train[labeled], y_train[labeled])
        curve.append([len(labeled), float(accuracy_score(y_test, classifier.predict(X_test)))])
        room = min(config.batch_size, config.budget - len(labeled), int(in_pool.sum()))
        if room <= 0:
            return curve, took
        pool = np.flatnonzero(in_pool)
        y_lab = [str(v) for v in y_train[labeled]]
        chosen = None
        if len(labeled) < STATIC_CAP_PER_LABEL * len(labels) and \
                min(y_lab.count(label) for label in labels) < STATIC_LABELS_PER_CLASS:
            chosen = np.asarray([i for i in order if in_pool[i]][:room], dtype=np.int64)
            took += 1 if len(chosen) else 0
        if chosen is None or not len(chosen):
            s = get_strategy(strategy, random_state=seed + len(labeled), **params)
            utilities = s.utilities(classifier, X_train[pool], X_train[labeled], y_train[labeled])
            chosen = pool[s.select(utilities, room, X_train[pool], X_train[labeled])]
        labeled.extend(int(i) for i in chosen)
        in_pool[chosen] = False


def run(task: tuple) -> dict:
    name, strategy, rule, repeat, seed0, initial_mode, initial = task
    warnings.filterwarnings("ignore")
    dataset = load(name)
    config = SimulationConfig(initial=initial, cover_first=(rule == "cover"))
    seed = seed0 + repeat
    y = np.asarray(dataset.y, dtype=object)
    train_idx, test_idx = protocol_split(y, config.test_fraction, seed)
    featurizer = build_featurizer(dataset.kind, n_items=len(train_idx))
    X_train = featurizer.fit_transform(_take(dataset.X_raw, train_idx))
    X_test = featurizer.transform(_take(dataset.X_raw, test_idx))
    if hasattr(X_train, "tocsr"):
        X_train, X_test = X_train.tocsr(), X_test.tocsr()
    y_train, y_test = y[train_idx], y[test_idx]
    labels = [str(c) for c in np.unique(y)]
    first = (_coverage_sample(X_train, y_train, initial, seed) if initial_mode == "coverage"
             else _initial_sample(y_train, initial, np.random.default_rng(seed)))
    common = dict(X_train=X_train, y_train=y_train, X_test=X_test, y_test=y_test, initial=first, config=config,
                  kind=dataset.kind, seed=seed)
    params = strategy_params(strategy, dataset.kind)
    if rule == "static":
        curve, took = _static_curve(strategy, params, labels=labels, **common)
    else:  # the simulator itself, with or without its cover_first
        curve, took = run_strategy(strategy, params, **common), None
    return {"dataset": name, "strategy": strategy, "rule": rule, "repeat": repeat,
            "aulc": float(np.mean([point[1] for point in curve])), "batches": took}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--strategies", default="margin,least_confidence")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--initial", type=int, default=20)
    parser.add_argument("--initial-mode", choices=("random", "coverage"), default="random")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    datasets, strategies = args.datasets.split(","), args.strategies.split(",")
    tasks = [(d, "random", "none", r, args.seed, args.initial_mode, args.initial)
             for d in datasets for r in range(args.repeats)]
    tasks += [(d, s, rule, r, args.seed, args.initial_mode, args.initial)
              for d in datasets for s in strategies for rule in RULES for r in range(args.repeats)]
    started = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run, tasks, chunksize=1))
    base = {(r["dataset"], r["repeat"]): r["aulc"] for r in results if r["strategy"] == "random"}

    def gains(d, s, rule):
        rows = sorted((r for r in results if (r["dataset"], r["strategy"], r["rule"]) == (d, s, rule)),
                      key=lambda r: r["repeat"])
        return np.asarray([r["aulc"] - base[(d, r["repeat"])] for r in rows]) * 100, rows

    print(f"{args.repeats} repeats from seed {args.seed}, {args.initial} first labels ({args.initial_mode}); "
          "gain over random in AULC points +- paired SE (static: batches the old rule took)\n")
    columns = [(s, rule) for s in strategies for rule in RULES]
    print("| dataset | " + " | ".join(f"{s} {rule}" for s, rule in columns) + " |")
    print("|---" * (1 + len(columns)) + "|")
    means = {c: [] for c in columns}
    for d in datasets:
        cells = []
        for s, rule in columns:
            g, rows = gains(d, s, rule)
            means[(s, rule)].append(g.mean())
            took = f" ({np.mean([r['batches'] for r in rows]):.1f})" if rule == "static" else ""
            cells.append(f"{g.mean():+.2f} +- {g.std(ddof=1) / np.sqrt(len(g)):.2f}{took}")
        print(f"| {d} | " + " | ".join(cells) + " |")
    print("| mean | " + " | ".join(f"{np.mean(means[c]):+.2f}" for c in columns) + " |\n")
    for s in strategies:
        diff = [means[(s, "cover")][i] - means[(s, "static")][i] for i in range(len(datasets))]
        print(f"{s}: cover - static {np.mean(diff):+.2f} on average; "
              + ", ".join(f"{d} {x:+.2f}" for d, x in zip(datasets, diff, strict=True) if abs(x) >= 0.005))
    print(f"\n{len(tasks)} curves in {time.perf_counter() - started:.0f} s with {args.jobs} processes")


if __name__ == "__main__":
    main()
