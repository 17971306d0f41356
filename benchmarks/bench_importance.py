"""Sample importance and label quality (app/al/importance.py): accuracy against real refits, label-noise
detection against cleanlab, and speed.

1. Leave-one-out: on breast cancer and digits (features standardized on the training split, the project's
   LogisticRegression(C=1.0, max_iter=2000), and C=0.1 for comparison), a stratified 25% holdout
   (train_test_split, random_state=seed) and 100 training items - drawn uniformly at random (seed), and
   separately the 100 with the largest |first-order influence| (Koh & Liang's choice) - the predicted change
   of the summed holdout log-loss when each is removed is compared with the change measured by refitting
   without it (exact refits, solved to 1e-10). Pearson and Spearman, for first-order influence
   (approx="influence") and the Newton/ALO estimate (approx="newton"); seeds 0-2.
2. Suspicious labels: 10% of the labels flipped uniformly to another class (seeds 0-4), the project's model
   (StandardScaler + LogisticRegression C=1 for tables; TF-IDF + LogisticRegression C=10 newton-cg for the
   rotten-tomatoes texts, 1,500 snippets, 3 classes), 5-fold out-of-fold probabilities shared by every method.
   k = number of flipped items. Ours: the top k of `suspicious_labels`. cleanlab: find_label_issues
   (default prune_by_noise_rate, ranked by self-confidence) cut at k - it may return fewer than k items, so
   its precision is over what it returned and its recall over k; its whole flagged set is also shown.
   Ablations: out-of-fold alone (= cleanlab's self-confidence ranking) and leave-one-out alone.
3. Speed: 10,000 labels x 300 features x 10 classes (dense synthetic Gaussian classes, 2,000 holdout rows),
   the project's tabular model in a Pipeline (StandardScaler + LogisticRegression C=1); seconds and peak
   memory (tracemalloc: numpy allocations) for the influence of every training item on the holdout loss
   (including refining the optimum), then for the self-influence of every item (forms H, its inverse and
   the per-item forms). The machine's load average is printed: the machine may be shared.

    python benchmarks/bench_importance.py             # everything
    python benchmarks/bench_importance.py --only 3    # one section
"""

import argparse
import gc
import os
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.al.importance import SampleImportance, out_of_fold_proba, suspicious_labels  # noqa: E402
from app.al.models import build_classifier, build_featurizer  # noqa: E402


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


def load():
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


# ---------------------------------------------------------------------------------------------------------
# 1. predicted vs actual leave-one-out change of the holdout loss
# ---------------------------------------------------------------------------------------------------------

def loo_section(seeds):
    from scipy.stats import pearsonr, spearmanr
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    print("\n## 1. Predicted vs actual change of the holdout loss when one training item is removed")
    print("(sum of holdout log-losses; 100 items; Pearson / Spearman; 'refit s' = seconds for the 100 exact refits)\n")
    header = (f"{'data':<14}{'C':>5}{'seed':>5}  {'items':<8}{'influence P':>12}{'S':>7}{'newton P':>10}{'S':>7}"
              f"{'refit s':>9}")
    print(header)
    print("-" * len(header))
    summary = {}
    for name, loader in [("breast_cancer", load_breast_cancer), ("digits", load_digits)]:
        X, y = loader(return_X_y=True)
        for C in (1.0, 0.1):
            for seed in seeds:
                Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
                scaler = StandardScaler().fit(Xtr)
                Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
                model = LogisticRegression(C=C, max_iter=2000).fit(Xtr, ytr)
                eng = SampleImportance(model, Xtr, ytr)
                first = eng.influence_on_loss(Xte, yte)
                picks = {"random": np.random.default_rng(seed).choice(len(ytr), 100, replace=False),
                         "top|inf|": np.argsort(-np.abs(first))[:100]}
                for how, items in picks.items():
                    started = time.perf_counter()
                    actual = eng.leave_one_out(Xte, yte, indices=items)
                    refit_s = time.perf_counter() - started
                    newton = eng.influence_on_loss(Xte, yte, approx="newton", indices=items)
                    row = (pearsonr(first[items], actual)[0], spearmanr(first[items], actual)[0],
                           pearsonr(newton, actual)[0], spearmanr(newton, actual)[0])
                    summary.setdefault((name, C, how), []).append(row)
                    print(f"{name:<14}{C:>5}{seed:>5}  {how:<8}{row[0]:>12.3f}{row[1]:>7.3f}{row[2]:>10.3f}"
                          f"{row[3]:>7.3f}{refit_s:>9.2f}", flush=True)
    print("\nmean over seeds")
    for (name, C, how), rows in summary.items():
        r = np.mean(rows, axis=0)
        print(f"{name:<14}{C:>5}{'':>5}  {how:<8}{r[0]:>12.3f}{r[1]:>7.3f}{r[2]:>10.3f}{r[3]:>7.3f}")


# ---------------------------------------------------------------------------------------------------------
# 2. suspicious labels vs cleanlab
# ---------------------------------------------------------------------------------------------------------

def noisy_dataset(name, seed):
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "rotten_tomatoes":
        from tests.data import rotten_tomatoes

        rows = rotten_tomatoes(1500, seed=0)
        X = build_featurizer("text", n_items=len(rows)).fit_transform([r["text"] for r in rows]).tocsr()
        y = np.asarray([r["category"] for r in rows], dtype=object)
        make_model = lambda: build_classifier("text")  # noqa: E731
    else:
        X, y = {"digits": load_digits, "breast_cancer": load_breast_cancer, "wine": load_wine}[name](return_X_y=True)
        make_model = lambda: make_pipeline(StandardScaler(), build_classifier("tabular"))  # noqa: E731
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    flipped = rng.choice(len(y), int(round(0.10 * len(y))), replace=False)
    noisy = y.copy()
    for i in flipped:
        noisy[i] = rng.choice(classes[classes != y[i]])
    return X, noisy, flipped, make_model


def noise_section(datasets, seeds):
    from cleanlab.filter import find_label_issues

    print("\n## 2. Finding 10% flipped labels: ours vs cleanlab on the same out-of-fold probabilities")
    print("(P = precision, R = recall at k = number flipped; means over seeds "
          f"{list(seeds)}; 'cl set' = cleanlab's whole flagged set)\n")
    header = (f"{'data':<16}{'n':>6}{'k':>5}  {'ours P=R':>9}  {'cleanlab P':>10}{'R':>7}  {'oof-only':>8}"
              f"{'loo-only':>9}  {'cl set n':>8}{'P':>7}{'R':>7}{'ours s':>8}")
    print(header)
    print("-" * len(header))
    for name in datasets:
        rows = []
        for seed in seeds:
            X, noisy, flipped, make_model = noisy_dataset(name, seed)
            model = make_model().fit(X, noisy)
            oof = out_of_fold_proba(model, X, noisy, cv=5, random_state=seed)
            started = time.perf_counter()
            issues = suspicious_labels(model, X, noisy, oof_proba=oof)
            ours_s = time.perf_counter() - started
            k = len(flipped)
            truth = np.zeros(len(noisy), dtype=bool)
            truth[flipped] = True
            codes = np.searchsorted(model.classes_, noisy) if noisy.dtype != object else \
                np.asarray([list(model.classes_).index(v) for v in noisy])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cl = find_label_issues(codes, oof, return_indices_ranked_by="self_confidence", n_jobs=1)
            ours_hits = truth[issues.ranking[:k]].sum()
            cl_top = cl[:k]
            oof_only = np.argsort(issues.p_given, kind="stable")[:k]
            loo_only = np.argsort(issues.loo_p_given, kind="stable")[:k]
            rows.append((ours_hits / k, truth[cl_top].sum() / max(1, len(cl_top)), truth[cl_top].sum() / k,
                         truth[oof_only].mean(), truth[loo_only].mean(), len(cl),
                         truth[cl].sum() / max(1, len(cl)), truth[cl].sum() / k, ours_s))
            print(f"  {name} seed {seed}: ours {rows[-1][0]:.3f}  cleanlab P {rows[-1][1]:.3f} R {rows[-1][2]:.3f}",
                  file=sys.stderr, flush=True)
        r = np.mean(rows, axis=0)
        print(f"{name:<16}{len(noisy):>6}{k:>5}  {r[0]:>9.3f}  {r[1]:>10.3f}{r[2]:>7.3f}  {r[3]:>8.3f}{r[4]:>9.3f}  "
              f"{r[5]:>8.0f}{r[6]:>7.3f}{r[7]:>7.3f}{r[8]:>8.2f}", flush=True)


# ---------------------------------------------------------------------------------------------------------
# 3. speed
# ---------------------------------------------------------------------------------------------------------

def speed_section(n=10_000, d=300, n_classes=10, n_holdout=2_000):
    from sklearn.linear_model import LogisticRegression  # noqa: F401  (the project's model below)
    from sklearn.pipeline import make_pipeline

    print(f"\n## 3. Speed: {n:,} labels x {d} features x {n_classes} classes (dense), holdout {n_holdout:,}")
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=0.12, size=(n_classes, d))
    y = rng.integers(0, n_classes, size=n + n_holdout)
    X = centers[y] + rng.normal(size=(n + n_holdout, d))
    Xtr, ytr, Xte, yte = X[:n], y[:n], X[n:], y[n:]
    model = make_pipeline(build_featurizer("tabular"), build_classifier("tabular")).fit(Xtr, ytr)
    print(f"model: {model[-1]!r}, holdout accuracy {model.score(Xte, yte):.3f}; {load()}")
    holder = {}

    def influence():
        holder["eng"] = SampleImportance(model, Xtr, ytr)
        return holder["eng"].influence_on_loss(Xte, yte)

    s1, m1, infl = measure(influence)
    eng = holder["eng"]
    print(f"{'influence on the holdout loss, all 10k items':<52}{s1:>8.2f} s{m1:>8.0f} MB peak   "
          f"(method {eng.method}, p = {eng.n_params:,}; includes refining the optimum)")
    s2, m2, si = measure(eng.self_influence)
    print(f"{'self-influence, all 10k items':<52}{s2:>8.2f} s{m2:>8.0f} MB peak   (forms H, H^-1, per-item forms)")
    s3, m3, _ = measure(lambda: eng.influence_on_loss(Xte, yte))
    print(f"{'influence again, H already factorised':<52}{s3:>8.2f} s{m3:>8.0f} MB peak")
    import resource

    print(f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; {load()}")
    assert np.all(np.isfinite(infl)) and np.all(si >= -1e-12)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", type=int, choices=[1, 2, 3])
    parser.add_argument("--loo-seeds", type=int, default=3)
    parser.add_argument("--noise-seeds", type=int, default=5)
    parser.add_argument("--datasets", default="digits,breast_cancer,wine,rotten_tomatoes")
    args = parser.parse_args()
    print(f"# bench_importance  (python {sys.version.split()[0]}, numpy {np.__version__}; {load()})")
    if args.only in (None, 1):
        loo_section(range(args.loo_seeds))
    if args.only in (None, 2):
        noise_section(args.datasets.split(","), range(args.noise_seeds))
    if args.only in (None, 3):
        speed_section()


if __name__ == "__main__":
    main()
