"""Information density (Settles & Craven 2008): exact against modAL and brute force, the scalable
estimate against the exact values on 10k rows, the strategy's formula, and validation."""

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import spearmanr
from sklearn.datasets import make_blobs
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics.pairwise import cosine_similarity
from sklearn.preprocessing import StandardScaler

from app.al.strategies.base import QueryStrategy
from app.al.strategies.density import DensityWeighted, mean_similarity
from app.al.strategies.random import RandomSampling
from app.al.strategies.uncertainty import EntropySampling, MarginSampling

DEMO_CSV = Path(__file__).resolve().parents[2] / "app" / "demo_data" / "rotten_tomatoes.csv.bz2"


def clustered(n, seed=0, d=50):
    """Standardised dense features with cluster structure: blobs of different spreads."""
    g = np.random.default_rng(seed)
    X, _ = make_blobs(n_samples=n, n_features=d, centers=10, cluster_std=g.uniform(0.5, 3, 10), random_state=seed)
    return StandardScaler().fit_transform(X)


_TEXTS = {}


def tfidf(n):
    if "texts" not in _TEXTS:
        import pandas as pd

        _TEXTS["texts"] = pd.read_csv(DEMO_CSV)["text"].fillna("").tolist()
    texts = _TEXTS["texts"]
    assert len(texts) >= n
    return TfidfVectorizer().fit_transform(texts[:n])


def brute_force_mean_cosine(X, chunk=2000):
    return np.concatenate([cosine_similarity(X[i : i + chunk], X).mean(axis=1) for i in range(0, X.shape[0], chunk)])


# --- exact values ----------------------------------------------------------------------------------

@pytest.mark.parametrize("sparse", [False, True])
def test_exact_euclidean_equals_modal_information_density(sparse):
    from modAL.density import information_density

    X = tfidf(300) if sparse else clustered(300, d=8)
    np.testing.assert_allclose(mean_similarity(X, "euclidean"), information_density(X, "euclidean"),
                               rtol=0, atol=1e-9)


def test_cosine_is_the_mean_cosine_similarity_self_included_as_modal_averages():
    """The linear-time formula equals the brute-force mean over all n rows, the row itself included,
    which is modAL's convention; modAL's own "cosine" averages 1 / (2 - cos) instead."""
    from modAL.density import information_density

    X = tfidf(100).toarray()
    X[7] = 0.0  # an empty text: similarity 0 to everything
    ours = mean_similarity(X, "cosine")
    np.testing.assert_allclose(ours, brute_force_mean_cosine(X), rtol=0, atol=1e-12)
    assert ours[7] == 0.0

    def distance_whose_modal_similarity_is_cosine(a, b):  # modAL's 1 / (1 + d) gives back cos
        norms = np.sqrt(a @ a) * np.sqrt(b @ b)
        cos = a @ b / norms if norms > 0 else 0.0
        return 1 / cos - 1 if cos > 0 else np.inf

    modal = information_density(X, distance_whose_modal_similarity_is_cosine)
    np.testing.assert_allclose(ours, modal, rtol=0, atol=1e-9)
    cos = cosine_similarity(X)
    np.fill_diagonal(cos, 1.0)  # sklearn's cosine_distances sets self-distance 0, even for a zero row
    np.testing.assert_allclose(information_density(X, "cosine"), (1 / (2 - cos)).mean(axis=1), atol=1e-9)


def test_cosine_on_dense_features_may_be_negative_and_is_returned_as_is():
    X = clustered(500, d=6)
    density = mean_similarity(X, "cosine")
    np.testing.assert_allclose(density, brute_force_mean_cosine(X), rtol=0, atol=1e-12)
    assert density.min() < 0 < density.max()


# --- the scalable estimate on 10k rows -------------------------------------------------------------

def test_euclidean_estimate_ranks_like_exact_on_10k_dense_clustered_rows():
    X = clustered(10_000)
    exact = mean_similarity(X, "euclidean", exact_threshold=10_000)
    estimate = mean_similarity(X, "euclidean", exact_threshold=9_999, n_reference=2000, random_state=0)
    assert not np.array_equal(exact, estimate)  # the estimate was used
    assert spearmanr(exact, estimate).statistic >= 0.98
    assert np.median(np.abs(estimate / exact - 1)) < 0.01
    np.testing.assert_array_equal(
        estimate, mean_similarity(X, "euclidean", exact_threshold=0, n_reference=2000, random_state=0))


def test_euclidean_estimate_ranks_like_exact_on_10k_tfidf_rows():
    X = tfidf(10_000)
    exact = mean_similarity(X, "euclidean", exact_threshold=10_000)
    estimate = mean_similarity(X, "euclidean", exact_threshold=0, random_state=1)
    assert spearmanr(exact, estimate).statistic >= 0.98


@pytest.mark.parametrize("data", ["tfidf", "dense"])
def test_cosine_at_10k_rows_is_exact_without_any_estimate(data):
    X = tfidf(10_000) if data == "tfidf" else clustered(10_000)
    density = mean_similarity(X, "cosine", exact_threshold=0, n_reference=2)
    np.testing.assert_allclose(density, brute_force_mean_cosine(X), rtol=0, atol=1e-9)


# --- the strategy ----------------------------------------------------------------------------------

def fitted(seed=0, n=400):
    X = clustered(n, seed, d=5)
    X = np.vstack([X, np.random.default_rng(seed).normal(0, 8, size=(20, 5))])  # outliers
    y = (X[:, 0] > 0).astype(int)
    return LogisticRegression().fit(X[:40], y[:40]), X


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.5])
def test_utilities_are_base_utilities_times_modal_density_to_the_beta(beta):
    from modAL.density import information_density

    model, X = fitted()
    strategy = DensityWeighted(base="margin", beta=beta, metric="euclidean")
    expected = MarginSampling().utilities(model, X) * information_density(X, "euclidean") ** beta
    np.testing.assert_allclose(strategy.utilities(model, X), expected, rtol=1e-12)
    # a cached density gives the same
    np.testing.assert_allclose(strategy.utilities(model, X, density=strategy.density(X)), expected, rtol=1e-12)


def test_density_weighting_moves_outliers_down():
    model, X = fitted()
    plain = EntropySampling().utilities(model, X)
    weighted = DensityWeighted(metric="euclidean").utilities(model, X)
    outliers = np.arange(400, 420)
    plain_rank = np.argsort(np.argsort(-plain))[outliers].mean()
    weighted_rank = np.argsort(np.argsort(-weighted))[outliers].mean()
    assert weighted_rank > plain_rank + 20


def test_negative_cosine_density_is_clipped_to_zero_and_default_base_is_entropy():
    model, X = fitted()
    strategy = DensityWeighted()
    density = mean_similarity(X, "cosine")
    assert density.min() < 0
    utilities = strategy.utilities(model, X)
    np.testing.assert_allclose(utilities, EntropySampling().utilities(model, X) * np.clip(density, 0, None))
    assert np.all(utilities[density < 0] == 0)


def test_base_can_be_a_strategy_object_and_random_needs_no_model():
    X = tfidf(200)
    strategy = DensityWeighted(base=RandomSampling(random_state=4), metric="cosine")
    assert strategy.needs_model is False
    expected = RandomSampling(random_state=4).utilities(None, X) * mean_similarity(X, "cosine")
    np.testing.assert_allclose(strategy.utilities(None, X), expected)
    by_name = DensityWeighted(base="random", base_params={"random_state": 4})
    np.testing.assert_allclose(by_name.utilities(None, X), expected)
    assert DensityWeighted().needs_model is True


def test_negative_base_utilities_are_shifted_not_inverted():
    class Signed(QueryStrategy):
        def utilities(self, model, X_pool, X_labeled=None, y_labeled=None):
            return np.array([-1.0, -2.0, 0.5])

    density = np.array([0.5, 0.5, 0.5])
    u = DensityWeighted(base=Signed(), beta=1.0).utilities(None, np.eye(3), density=density)
    np.testing.assert_allclose(u, [0.5, 0.0, 1.25])


def test_get_params_round_trip_and_batch_modes():
    strategy = DensityWeighted(base="least_confidence", beta=0.5, metric="euclidean", exact_threshold=100,
                               n_reference=50, random_state=3, batch_mode="kmeans",
                               batch_params={"candidates": 40}, base_params={})
    params = strategy.get_params()
    assert params == {"random_state": 3, "batch_mode": "kmeans", "batch_params": {"candidates": 40},
                      "base": "least_confidence", "base_params": {}, "beta": 0.5, "metric": "euclidean",
                      "exact_threshold": 100, "n_reference": 50}
    assert DensityWeighted(**params).get_params() == params
    assert DensityWeighted.name == "density_weighted" and DensityWeighted.description


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"alpha": 1}, TypeError, "alpha"),
    ({"beta": -1}, ValueError, "beta must be a number >= 0"),
    ({"beta": float("nan")}, ValueError, "beta must be a number >= 0"),
    ({"beta": "2"}, ValueError, "beta must be a number >= 0"),
    ({"beta": True}, ValueError, "beta must be a number >= 0"),
    ({"metric": "manhattan"}, ValueError, "metric must be one of cosine, euclidean"),
    ({"exact_threshold": -1}, ValueError, "exact_threshold must be a whole number >= 0"),
    ({"exact_threshold": 1e4}, ValueError, "exact_threshold must be a whole number >= 0"),
    ({"n_reference": 1}, ValueError, "n_reference must be a whole number >= 2"),
    ({"base": "nope"}, ValueError, "unknown base strategy 'nope'; choose one of .*entropy"),
    ({"base": "density_weighted"}, ValueError, "another strategy than density_weighted"),
    ({"base": 3}, ValueError, "base must be a strategy name or a QueryStrategy"),
    ({"base": EntropySampling(), "base_params": {"random_state": 1}}, ValueError, "base_params only apply"),
    ({"base_params": {"gamma": 1}}, TypeError, "gamma"),
    ({"batch_mode": "greedy"}, ValueError, "unknown batch mode 'greedy'"),
])
def test_bad_settings(kwargs, error, message):
    with pytest.raises(error, match=message):
        DensityWeighted(**kwargs)


def test_mean_similarity_validates_and_handles_edge_cases():
    with pytest.raises(ValueError, match="metric must be one of"):
        mean_similarity(np.eye(3), "l1")
    with pytest.raises(ValueError, match="2-D"):
        mean_similarity(np.ones(3))
    assert mean_similarity(np.zeros((0, 4))).shape == (0,)
    np.testing.assert_allclose(mean_similarity(sp.csr_matrix(np.eye(4)), "cosine"), 0.25)
    np.testing.assert_allclose(mean_similarity(np.eye(4, dtype=int), "euclidean"),
                               (1 + 3 / (1 + np.sqrt(2))) / 4)
