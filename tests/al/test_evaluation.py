"""The holdout's intervals: the numpy bootstrap of macro-F1 equals a loop over scikit-learn's f1_score,
and the Wilson interval of accuracy matches known values."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from app.al.evaluation import Z95, bootstrap_interval, bootstrap_macro_f1_interval, holdout_scores, wilson_interval


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
    # on three items, all right, there is no honest bootstrap interval; Wilson's stays wide
    few = holdout_scores(np.array(["a", "a", "b"], dtype=object), np.array(["a", "a", "b"], dtype=object))
    assert (few["macro_f1"], few["macro_f1_low"], few["macro_f1_high"]) == (1.0, None, None)
    assert few["accuracy_low"] < 0.5 and few["accuracy_high"] == 1.0


def test_wilson_interval_known_values():
    assert pytest.approx(1.959964, abs=1e-6) == Z95
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    low, high = wilson_interval(5, 10)
    assert low + high == pytest.approx(1.0, abs=1e-12)  # symmetric about one half
    assert wilson_interval(0, 0) == (0.0, 1.0)  # no data: anything is possible


@pytest.mark.parametrize("n", [1, 3, 7, 10, 13, 25, 100, 1000])
def test_wilson_interval_ends_exactly_at_zero_and_one(n):
    z2 = Z95 ** 2
    low, high = wilson_interval(0, n)
    assert low == 0.0 and high == pytest.approx(z2 / (n + z2), abs=1e-12)  # closed form at p = 0
    low, high = wilson_interval(n, n)
    assert high == 1.0 and low == pytest.approx(n / (n + z2), abs=1e-12)  # and at p = 1
    # one success short of the ends, the interval no longer reaches them
    assert wilson_interval(1, n)[0] > 0.0 and wilson_interval(n - 1, n)[1] < 1.0
