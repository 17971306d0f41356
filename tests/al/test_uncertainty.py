"""Uncertainty formulas on hand-made probabilities, the registry, and ranking."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from app.al import STRATEGIES, get_strategy
from app.al.strategies.uncertainty import entropy_from_proba, least_confidence_from_proba, margin_from_proba

P = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])


def test_least_confidence():
    np.testing.assert_allclose(least_confidence_from_proba(P), [0.3, 0.6, 0.0, 2 / 3])


def test_margin():
    np.testing.assert_allclose(margin_from_proba(P), [1 - 0.5, 1 - 0.05, 0.0, 1.0])


def test_entropy_matches_scipy():
    from scipy.stats import entropy

    np.testing.assert_allclose(entropy_from_proba(P), entropy(P, axis=1), atol=1e-12)


def test_registry_knows_the_first_strategies_and_refuses_others():
    assert {"random", "least_confidence", "margin", "entropy"} <= set(STRATEGIES)
    with pytest.raises(KeyError, match="unknown strategy 'nope'"):
        get_strategy("nope")


def test_rank_puts_the_most_uncertain_first_and_select_takes_a_prefix():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] > 0).astype(int)
    model = LogisticRegression().fit(X[:20], y[:20])
    strategy = get_strategy("margin", random_state=0)
    utilities = strategy.utilities(model, X)
    order = strategy.rank(utilities)
    assert sorted(order.tolist()) == list(range(200))
    assert np.all(np.diff(utilities[order]) <= 0)
    np.testing.assert_array_equal(strategy.select(utilities, 5), order[:5])
    # the most uncertain rows lie near the decision boundary x0 = 0
    assert np.abs(X[order[:10], 0]).mean() < np.abs(X[:, 0]).mean()


def test_random_is_reproducible_and_needs_no_model():
    a = get_strategy("random", random_state=3).utilities(None, np.zeros((50, 2)))
    b = get_strategy("random", random_state=3).utilities(None, np.zeros((50, 2)))
    np.testing.assert_array_equal(a, b)


def test_chunked_probabilities_equal_whole():
    from app.al.proba import predict_proba_chunked

    rng = np.random.default_rng(1)
    X = rng.normal(size=(1000, 3))
    model = LogisticRegression().fit(X, rng.integers(0, 3, 1000))
    np.testing.assert_allclose(predict_proba_chunked(model, X, chunk_rows=128), model.predict_proba(X))
