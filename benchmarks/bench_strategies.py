"""Scoring speed of every query strategy, beside modAL's where it has the same strategy.

For each strategy: seconds for `utilities()` on pools of 10k, 100k and 1M rows (50 numeric
features, 5 classes, a logistic regression fitted on 500 labels) and on 100k TF-IDF texts
(the demo snippets, reshuffled into 100k distinct documents), and the peak memory that call
allocated (tracemalloc). modAL runs beside it: the uncertainty and committee measures at every
size, information density at 20k rows, expected error reduction at 2k. Also printed: the Spearman
correlation of the density estimate with the exact density on 10k rows, and the learning curves of
fast expected error reduction against modAL's on a 2k pool (AULC over repeats).

    python benchmarks/bench_strategies.py                 # the full table (takes a while)
    python benchmarks/bench_strategies.py --sizes 10000   # a quick look
"""

import argparse
import gc
import os
import sys
import time
import tracemalloc
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.al import STRATEGIES, build_classifier, build_featurizer, get_strategy  # noqa: E402

N_FEATURES, N_CLASSES, N_LABELED = 50, 5, 500
# Strategies that are quadratic or refit-based in their exact forms get their own size caps.
SIZE_CAP = {"expected_error_reduction": 100_000}


def tabular_pool(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(N_CLASSES, N_FEATURES))
    y = rng.integers(0, N_CLASSES, size=n)
    X = (centers[y] + rng.normal(size=(n, N_FEATURES))).astype(np.float64)
    return X, y


def text_pool(n: int, seed: int = 0):
    from tests.data import rotten_tomatoes

    rows = rotten_tomatoes(13_891, seed=seed)
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        row = rows[i % len(rows)]
        words = row["text"].split()
        if i >= len(rows):  # later copies: drop and shuffle words so documents stay distinct
            keep = rng.random(len(words)) > 0.2
            words = list(np.asarray(words, dtype=object)[keep]) or words
            rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(row["category"])
    featurizer = build_featurizer("text", n_items=n)
    return featurizer.fit_transform(texts).tocsr(), np.asarray(labels, dtype=object)


def fitted(kind: str, X, y, seed: int = 0):
    rng = np.random.default_rng(seed)
    labeled = rng.choice(X.shape[0], size=N_LABELED, replace=False)
    model = build_classifier(kind).fit(X[labeled], y[labeled])
    return model, X[labeled], y[labeled]


def measure(fn):
    """(seconds, peak MB allocated while fn ran, result)."""
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 2**20, result


def timed(fn):
    """(seconds, result), without tracemalloc: it slows allocation-heavy Python code (modAL's refits)
    far more than numpy code, which would flatter the comparison."""
    gc.collect()
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def modal_scorer(name: str, model, X_lab, y_lab):
    """A function scoring a pool with modAL's version of `name`, or None where modAL has none."""
    from modAL import disagreement, uncertainty

    simple = {"least_confidence": uncertainty.classifier_uncertainty, "margin": uncertainty.classifier_margin,
              "entropy": uncertainty.classifier_entropy}
    if name in simple:
        return lambda X: simple[name](model, X)
    committee_fn = {"vote_entropy": disagreement.vote_entropy, "consensus_entropy": disagreement.consensus_entropy,
                    "kl_disagreement": disagreement.KL_max_disagreement}
    if name in committee_fn:
        from modAL.models import ActiveLearner, Committee
        from sklearn.base import clone

        rng = np.random.default_rng(0)
        learners = []
        for _ in range(5):
            idx = rng.integers(0, len(y_lab), size=len(y_lab))
            learners.append(ActiveLearner(estimator=clone(model), X_training=X_lab[idx], y_training=y_lab[idx]))
        committee = Committee(learner_list=learners)
        return lambda X: committee_fn[name](committee, X)
    return None


def run_sizes(sizes: list[int], strategies: list[str], with_text: bool) -> list[dict]:
    rows = []
    pools = [(f"{n // 1000}k x {N_FEATURES}", "tabular", n) for n in sizes]
    if with_text:
        pools.append(("100k texts (TF-IDF)", "text", 100_000))
    for label, kind, n in pools:
        X, y = tabular_pool(n) if kind == "tabular" else text_pool(n)
        model, X_lab, y_lab = fitted(kind, X, y)
        print(f"# pool {label}: {X.shape[0]:,} x {X.shape[1]:,}", file=sys.stderr, flush=True)
        for name in strategies:
            if n > SIZE_CAP.get(name, n):
                rows.append({"pool": label, "strategy": name, "seconds": None, "peak_mb": None,
                             "modal_seconds": None, "note": f"not run above {SIZE_CAP[name]:,} rows"})
                continue
            strategy = get_strategy(name, random_state=0)
            seconds, peak, _ = measure(partial(strategy.utilities, model, X, X_lab, y_lab))
            modal_seconds = None
            scorer = modal_scorer(name, model, X_lab, y_lab) if kind == "tabular" else None
            if scorer is not None:
                modal_seconds, _, _ = measure(partial(scorer, X))
            rows.append({"pool": label, "strategy": name, "seconds": seconds, "peak_mb": peak,
                         "modal_seconds": modal_seconds, "note": ""})
            print(f"  {name:<26} {seconds:8.3f} s  {peak:8.0f} MB"
                  + (f"  modAL {modal_seconds:.3f} s" if modal_seconds is not None else ""), file=sys.stderr,
                  flush=True)
        del X
        gc.collect()
    return rows


def density_checks():
    from modAL.density import information_density
    from scipy.stats import spearmanr

    from app.al.strategies.density import mean_similarity

    X, _ = tabular_pool(10_000, seed=1)
    exact = mean_similarity(X, metric="euclidean", exact_threshold=10_000)
    estimate = mean_similarity(X, metric="euclidean", exact_threshold=0, random_state=0)
    yield (f"density estimate vs exact, 10k x 50, euclidean: Spearman {spearmanr(exact, estimate)[0]:.4f}")
    X20, _ = tabular_pool(20_000, seed=2)
    ours, _ = timed(lambda: mean_similarity(X20, metric="euclidean", random_state=0))
    theirs, _ = timed(lambda: information_density(X20, "euclidean"))
    yield (f"information density at 20k x 50: labelloop {ours:.2f} s (estimate), modAL {theirs:.2f} s "
                 f"(exact), {theirs / ours:.0f}x")
    X100, _ = tabular_pool(100_000, seed=3)
    seconds, _ = timed(lambda: mean_similarity(X100, metric="euclidean", random_state=0))
    yield (f"density at 100k x 50 (euclidean estimate): {seconds:.2f} s")


def eer_pool(seed: int = 4):
    """A binary pool on which the learning curve still climbs between 20 and 100 labels (the
    synthetic pool of the speed table is separable from the first labels, so every curve is flat
    at 1.0): 3,000 rows, 20 features of which 6 informative, 5% of the labels flipped."""
    from sklearn.datasets import make_classification

    return make_classification(n_samples=3_000, n_features=20, n_informative=6, n_redundant=4, n_classes=2,
                               flip_y=0.05, class_sep=0.8, random_state=seed)


def eer_checks(repeats: int, out=None):
    """Fast expected error reduction against modAL's on the same 2k pool: speed and AULC."""
    if not hasattr(np, "float"):  # modAL 0.4.2's signature still names np.float, removed in numpy 1.24
        np.float = float
    from modAL.expected_error import expected_error_reduction
    from modAL.models import ActiveLearner
    from sklearn.metrics import accuracy_score

    X, y = eer_pool()
    test = np.arange(2_000, 3_000)
    pool_all = np.arange(2_000)

    rng = np.random.default_rng(0)
    lab = rng.choice(pool_all, size=100, replace=False)
    model = build_classifier("tabular").fit(X[lab], y[lab])
    ours = get_strategy("expected_error_reduction", random_state=0)
    t_ours, _ = timed(lambda: ours.utilities(model, X[pool_all], X[lab], y[lab]))
    learner = ActiveLearner(estimator=build_classifier("tabular"), X_training=X[lab], y_training=y[lab])
    t_modal, _ = timed(lambda: expected_error_reduction(learner, X[pool_all], n_instances=10))
    yield (f"expected error reduction, one call on a 2k x 20 pool (100 labels, 2 classes): labelloop fast "
           f"{t_ours:.3f} s, modAL {t_modal:.1f} s: {t_modal / t_ours:.0f}x faster")

    def curve(pick, seed):
        rng = np.random.default_rng(seed)
        labeled = list(rng.choice(pool_all, size=20, replace=False))
        accs, picking = [], 0.0
        while True:
            clf = build_classifier("tabular").fit(X[labeled], y[labeled])
            accs.append(accuracy_score(y[test], clf.predict(X[test])))
            if len(labeled) >= 100:
                return float(np.mean(accs)), picking
            pool = np.setdiff1d(pool_all, labeled)
            started = time.perf_counter()
            chosen = pick(clf, pool, labeled, seed)
            picking += time.perf_counter() - started
            labeled += list(pool[chosen])

    def pick_ours(clf, pool, labeled, seed):
        s = get_strategy("expected_error_reduction", random_state=seed)
        return s.select(s.utilities(clf, X[pool], X[labeled], y[labeled]), 10)

    def pick_modal(clf, pool, labeled, seed):
        lrn = ActiveLearner(estimator=build_classifier("tabular"), X_training=X[labeled], y_training=y[labeled])
        idx, _ = expected_error_reduction(lrn, X[pool], n_instances=10)
        return np.asarray(idx)

    def pick_random(clf, pool, labeled, seed):
        return np.random.default_rng(seed + len(labeled)).choice(len(pool), size=10, replace=False)

    results = {}
    for name, pick in (("random", pick_random), ("labelloop fast", pick_ours), ("modAL", pick_modal)):
        runs = [curve(pick, seed) for seed in range(repeats)]
        aulcs = np.array([a for a, _ in runs])
        results[name] = aulcs
        stderr = np.std(aulcs, ddof=1) / np.sqrt(repeats)
        line = (f"AULC 20->100 labels (batches of 10), 2k pool, {repeats} repeats, {name}: {aulcs.mean():.4f} "
                f"+- {stderr:.4f} (s.e.); selection {sum(t for _, t in runs):.1f} s in all")
        if name == "modAL":
            diff = results["labelloop fast"] - aulcs
            line += (f"; labelloop fast - modAL, paired: {diff.mean():+.4f} +- "
                     f"{np.std(diff, ddof=1) / np.sqrt(repeats):.4f}")
        yield line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--strategies", default=",".join(sorted(STRATEGIES)))
    parser.add_argument("--no-text", action="store_true")
    parser.add_argument("--no-extras", action="store_true", help="skip the density and EER comparisons")
    parser.add_argument("--eer-repeats", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    strategies = [s for s in args.strategies.split(",") if s]
    rows = run_sizes(sizes, strategies, with_text=not args.no_text)
    print(f"# strategy scoring: {os.cpu_count()} cores; seconds for utilities() on the whole pool, "
          f"model = logistic regression on {N_LABELED} labels")
    print("| strategy | pool | labelloop s | peak MB | modAL s |")
    print("|---|---|---|---|---|")
    for r in rows:
        if r["seconds"] is None:
            print(f"| {r['strategy']} | {r['pool']} | {r['note']} | | |")
            continue
        modal = f"{r['modal_seconds']:.3f}" if r["modal_seconds"] is not None else "-"
        print(f"| {r['strategy']} | {r['pool']} | {r['seconds']:.3f} | {r['peak_mb']:.0f} | {modal} |")
    if not args.no_extras:
        print()
        for check in (density_checks(), eer_checks(args.eer_repeats)):
            for line in check:
                print(line, flush=True)


if __name__ == "__main__":
    main()
