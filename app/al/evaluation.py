"""Measuring a model honestly: holdout scores with intervals, prediction stability between
versions, and the pictures of the pool a lead looks at. numpy / scipy / scikit-learn only."""

import numpy as np
from scipy.stats import norm
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.metrics import cohen_kappa_score, f1_score

Z95 = float(norm.ppf(0.975))


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (Wilson 1927): sensible even for small n or p near 0/1."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # At p = 0 (or 1) the bound is exactly 0 (or 1); in floating point centre - half is often 1e-17 off.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return float(low), float(high)


def bootstrap_interval(y_true: np.ndarray, y_pred: np.ndarray, metric, n_boot: int = 1000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of `metric(y_true, y_pred)` over resampled items."""
    rng = np.random.default_rng(seed)
    n = len(y_true)
    values = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, n, size=n)
        values[b] = metric(y_true[idx], y_pred[idx])
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def bootstrap_macro_f1_interval(y_true: np.ndarray, y_pred: np.ndarray, labels: list, n_boot: int = 1000,
                                seed: int = 0, chunk: int = 100) -> tuple[float, float]:
    """`bootstrap_interval` of macro-F1 over `labels` (zero_division=0, as scikit-learn's f1_score
    with those labels), the same resamples from the same seed, computed from per-resample counts
    in numpy: 1,000 calls of f1_score cost seconds per retrain, mostly input validation."""
    rng = np.random.default_rng(seed)
    n = len(y_true)
    index = {label: k for k, label in enumerate(labels)}
    t = np.asarray([index.get(v, -1) for v in y_true])
    p = np.asarray([index.get(v, -1) for v in y_pred])
    k = len(labels)
    true_hot = (t[:, None] == np.arange(k)).astype(np.float64)  # n x k
    pred_hot = (p[:, None] == np.arange(k)).astype(np.float64)
    hit_hot = true_hot * pred_hot
    values = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(b, n))  # the same stream as b draws of size n
        counts = np.bincount((np.arange(b)[:, None] * n + idx).ravel(), minlength=b * n).reshape(b, n)
        tp, n_true, n_pred = counts @ hit_hot, counts @ true_hot, counts @ pred_hot
        denominator = n_true + n_pred
        f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
        values[start:start + b] = f1.mean(axis=1)
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


# A percentile bootstrap says nothing honest on a handful of items: resampling three right answers
# only ever gives 1.0, a zero-width "interval". Below this many holdout items macro-F1 has none.
MIN_BOOTSTRAP_ITEMS = 30


def holdout_scores(y_true, y_pred) -> dict:
    """Accuracy (Wilson interval) and macro-F1 (bootstrap interval from MIN_BOOTSTRAP_ITEMS items on,
    None before) on the labelled holdout."""
    y_true, y_pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    n = len(y_true)
    if n == 0:
        return {"n": 0}
    correct = int((y_true == y_pred).sum())
    labels = sorted(set(y_true.tolist()))

    def macro_f1(t, p):
        return f1_score(t, p, labels=labels, average="macro", zero_division=0)

    low, high = wilson_interval(correct, n)
    f1_low, f1_high = (bootstrap_macro_f1_interval(y_true, y_pred, labels) if n >= MIN_BOOTSTRAP_ITEMS
                       else (None, None))
    return {"n": n, "accuracy": correct / n, "accuracy_low": low, "accuracy_high": high,
            "macro_f1": float(macro_f1(y_true, y_pred)), "macro_f1_low": f1_low, "macro_f1_high": f1_high}


def prediction_agreement(previous: list, current: list) -> float | None:
    """Cohen's kappa between two models' predictions on the same stop set (Bloodgood &
    Vijay-Shanker 2009); 1.0 when both predict one identical constant label."""
    if not previous or len(previous) != len(current):
        return None
    a, b = np.asarray(previous, dtype=object), np.asarray(current, dtype=object)
    if len(set(a.tolist()) | set(b.tolist())) == 1:
        return 1.0
    return float(cohen_kappa_score(a, b))


def stopping_hint(kappas: list[float | None], threshold: float = 0.99, window: int = 3,
                  training_counts: dict[str, int] | None = None, min_examples: int = 10) -> dict:
    """Stabilising predictions: stop when the mean agreement of the last `window` consecutive model
    pairs reaches `threshold` (Bloodgood & Vijay-Shanker 2009 use kappa 0.99 over 3). Given the
    training labels per label, never while one has fewer than `min_examples`: models that have seen
    one or two examples of a label agree by never predicting it (`short`: those labels)."""
    recent = [k for k in kappas if k is not None][-window:]
    short = sorted(label for label, n in (training_counts or {}).items() if n < min_examples)
    stable = len(recent) == window and float(np.mean(recent)) >= threshold and not short
    return {"stable": bool(stable), "recent_kappas": recent, "threshold": threshold, "window": window,
            "min_examples": min_examples, "short": short}


def uncertainty_histogram(proba: np.ndarray, bins: int = 20) -> dict:
    """Histogram of 1 - max probability, rescaled to [0, 1] by its largest value 1 - 1/K."""
    if proba.shape[0] == 0:
        return {"edges": np.linspace(0, 1, bins + 1).tolist(), "counts": [0] * bins}
    k = proba.shape[1]
    uncertainty = (1.0 - proba.max(axis=1)) / (1.0 - 1.0 / k) if k > 1 else np.zeros(proba.shape[0])
    counts, edges = np.histogram(np.clip(uncertainty, 0, 1), bins=bins, range=(0.0, 1.0))
    return {"edges": edges.tolist(), "counts": counts.astype(int).tolist()}


def two_d_projection(X_fit, X_points, random_state: int = 0) -> np.ndarray:
    """2-D coordinates for a pool map: PCA for dense features, truncated SVD for sparse ones
    (which cannot be centred without densifying)."""
    if hasattr(X_fit, "tocsr"):
        if X_fit.shape[1] < 3:
            return np.asarray(X_points[:, :2].toarray(), dtype=float)
        reducer = TruncatedSVD(n_components=2, random_state=random_state)
    else:
        if X_fit.shape[1] < 2:
            points = np.asarray(X_points, dtype=float)
            return np.column_stack([points[:, 0], np.zeros(len(points))])
        reducer = PCA(n_components=2, random_state=random_state)
    reducer.fit(X_fit)
    return reducer.transform(X_points)
