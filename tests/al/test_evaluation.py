"""The holdout's macro-F1 interval: the numpy bootstrap equals a loop over scikit-learn's f1_score."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from app.al.evaluation import bootstrap_interval, bootstrap_macro_f1_interval, holdout_scores


@pytest.mark.parametrize(("n", "k"), [(2, 2), (7, 3), (120, 4), (400, 6)])
def test_numpy_bootstrap_equals_the_f1_score_loop(n, k):
    rng = np.random.default_rng(n)
    y_true = rng.choice([f"c{i}" for i in range(k)], size=n).astype(object)
    # predictions are mostly right, sometimes a label the holdout never has
    y_pred = np.where(rng.random(n) < 0.7, y_true, rng.choice([f"c{i}" for i in range(k + 1)], size=n)).astype(object)
    labels = sorted(set(y_true.tolist()))

    def macro_f1(t, p):
        return f1_score(t, p, labels=labels, average="macro", zero_division=0)

    for seed in (0, 3):
        expected = bootstrap_interval(y_true, y_pred, macro_f1, n_boot=200, seed=seed)
        got = bootstrap_macro_f1_interval(y_true, y_pred, labels, n_boot=200, seed=seed, chunk=64)
        assert got == pytest.approx(expected, abs=1e-12)


def test_holdout_scores_bracket_the_point_estimate():
    rng = np.random.default_rng(0)
    y_true = rng.choice(["a", "b", "c"], size=300).astype(object)
    y_pred = np.where(rng.random(300) < 0.8, y_true, "a").astype(object)
    scores = holdout_scores(y_true, y_pred)
    assert scores["macro_f1_low"] <= scores["macro_f1"] <= scores["macro_f1_high"]
    assert scores["accuracy_low"] <= scores["accuracy"] <= scores["accuracy_high"]
