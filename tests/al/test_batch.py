"""Batch selection: top-k unchanged, k-means diversity (Zhdanov 2019), ranked batch (Cardoso et
al. 2017) step for step as modAL's, on dense and sparse pools."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

from app.al.batch import (
    BATCH_MODES,
    order_by_utility,
    select_batch,
    top_k,
    validate_batch_params,
)
from app.al.strategies.base import QueryStrategy


def rng(seed=0):
    return np.random.default_rng(seed)


def duplicated_pool(seed=0):
    """200 rows; the top-20 utilities are 5 copies each of 4 distinct points, the copies of one
    point holding consecutive ranks, so top-4 is 4 copies of the same point."""
    g = np.random.default_rng(seed)
    X = g.normal(size=(200, 5))
    points = g.normal(size=(4, 5)) * 5
    X[:20] = np.repeat(points, 5, axis=0)
    utilities = g.uniform(0, 0.5, 200)
    utilities[:20] = np.linspace(1.0, 0.9, 20)
    perm = g.permutation(200)  # the duplicates are not simply the first rows
    return X[perm], utilities[perm]


def distinct_rows(X, index):
    rows = X[index].toarray() if sp.issparse(X) else X[index]
    return np.unique(np.round(rows, 12), axis=0).shape[0]


def sparse_pool(n=300, d=80, seed=0):
    g = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.08, random_state=seed, format="csr", data_rvs=g.random)
    X = X + sp.csr_matrix((np.ones(n), (np.arange(n), g.integers(0, d, n))), shape=(n, d))  # no empty row
    return normalize(X.tocsr())


# --- top_k -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 7, 50, 500])
def test_top_k_is_the_prefix_of_order_by_utility_even_with_ties_and_nan(k):
    utilities = np.round(rng(1).random(300), 1)  # many ties
    utilities[[3, 30, 300 - 1]] = np.nan
    expected = order_by_utility(utilities, rng(5))[:k]
    np.testing.assert_array_equal(select_batch(utilities, k, mode="top_k", rng=rng(5)), expected)
    np.testing.assert_array_equal(top_k(utilities, k, rng(5)), expected)


def test_top_k_with_continuous_utilities_takes_the_largest():
    utilities = rng(2).random(1000)
    batch = select_batch(utilities, 10, rng=rng(0))
    np.testing.assert_array_equal(batch, np.argsort(-utilities)[:10])


# --- kmeans ----------------------------------------------------------------------------------------

def test_kmeans_picks_one_copy_per_duplicated_point_where_top_k_takes_copies():
    X, utilities = duplicated_pool()
    plain = select_batch(utilities, 4, X_pool=X, mode="top_k", rng=rng())
    assert distinct_rows(X, plain) == 1  # top-k: four copies of one point
    batch = select_batch(utilities, 4, X_pool=X, mode="kmeans", rng=rng(), candidates=20)
    assert len(set(batch.tolist())) == 4
    assert distinct_rows(X, batch) == 4
    # copies are equally near their centre: each cluster gives its best copy, ordered by utility
    top20 = np.argsort(-utilities)[:20]
    assert set(batch) <= set(top20)
    assert np.all(np.diff(utilities[batch]) < 0)
    assert batch[0] == plain[0]


def test_kmeans_takes_the_row_nearest_each_utility_weighted_centre():
    """Zhdanov 2019: weighted k-means over the candidates, the row nearest each centre. One cluster
    on a line: the weighted mean (0 * 10 + 1 + 2 + 3 + 4) / 14 = 0.71 is nearest x = 1; the
    unweighted mean would give x = 2 and the highest-utility rule x = 0."""
    X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])
    utilities = np.array([10.0, 1.0, 1.0, 1.0, 1.0])
    assert select_batch(utilities, 1, X_pool=X, mode="kmeans", rng=rng(), candidates=5).tolist() == [1]
    # negative utilities are shifted by the lowest one: weights 9, 0, 0, 0, 0 (+ a floor), centre at 0
    assert select_batch(utilities - 20, 1, X_pool=X, mode="kmeans", rng=rng(), candidates=5).tolist() == [0]


def test_kmeans_candidates_on_a_small_pool_are_at_most_a_quarter_of_it():
    from app.al.batch import default_candidates

    assert default_candidates("kmeans", 10, 10_000) == 100 and default_candidates("ranked", 10, 40) == 100
    assert default_candidates("kmeans", 10, 200) == 50 and default_candidates("kmeans", 10, 30) == 10
    X = rng(4).normal(size=(40, 3))
    utilities = rng(5).random(40)
    batch = select_batch(utilities, 4, X_pool=X, mode="kmeans", rng=rng())
    assert set(batch) <= set(np.argsort(-utilities)[:10])  # drawn from the 10 best, not from 40 of 40
    small = select_batch(utilities[:12], 4, X_pool=X[:12], mode="kmeans", rng=rng())  # 12 // 4 < 4: plain top-k
    np.testing.assert_array_equal(np.sort(small), np.sort(np.argsort(-utilities[:12])[:4]))


@pytest.mark.parametrize("seed", range(5))
def test_kmeans_default_candidates_has_no_near_duplicates(seed):
    X, utilities = duplicated_pool(seed)
    batch = select_batch(utilities, 4, X_pool=X, mode="kmeans", rng=rng(seed))  # 40 candidates
    distances = np.linalg.norm(X[batch][:, None] - X[batch][None], axis=-1)
    assert distances[np.triu_indices(4, 1)].min() > 1e-6


def test_kmeans_on_sparse_tfidf_rows():
    X = sparse_pool()
    X = sp.vstack([X[:3]] * 6 + [X[3:]]).tocsr()  # 18 rows that are 6 copies each of 3 rows
    utilities = rng(3).uniform(0, 0.5, X.shape[0])
    utilities[:18] = 1 - np.arange(18) / 100
    batch = select_batch(utilities, 3, X_pool=X, mode="kmeans", rng=rng(), candidates=18)
    assert distinct_rows(X, batch) == 3
    assert select_batch(utilities, 10, X_pool=X, mode="kmeans", rng=rng()).shape == (10,)


@pytest.mark.parametrize("mode", ["kmeans", "ranked"])
def test_sparse_pool_of_empty_rows_still_gives_a_full_batch(mode):
    X = sp.csr_matrix((30, 10))
    batch = select_batch(rng(0).random(30), 4, X_pool=X, mode=mode, rng=rng(), candidates=30)
    assert len(set(batch.tolist())) == 4


def test_kmeans_with_fewer_distinct_points_than_the_batch_still_fills_it():
    X = np.repeat(np.eye(3), 10, axis=0)
    utilities = rng(0).random(30)
    batch = select_batch(utilities, 5, X_pool=X, mode="kmeans", rng=rng(), candidates=30)
    assert len(set(batch.tolist())) == 5
    assert distinct_rows(X, batch[:3]) == 3  # the three distinct points come first


# --- ranked (modAL equivalence) --------------------------------------------------------------------

def modal_ranked(X_pool, uncertainty, n, X_training=None, y_training=None, metric="euclidean"):
    from modAL.batch import ranked_batch
    from modAL.models import ActiveLearner

    learner = ActiveLearner(LogisticRegression(), X_training=X_training, y_training=y_training)
    index, _ = ranked_batch(learner, unlabeled=X_pool, uncertainty_scores=uncertainty, n_instances=n,
                            metric=metric, n_jobs=None)
    return index


def labelled_problem(seed, sparse=False):
    g = np.random.default_rng(seed)
    if sparse:
        X = sparse_pool(120, 40, seed)
        y = g.integers(0, 2, 120)
    else:
        X = g.normal(size=(120, 4))
        y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    X_labeled, y_labeled, X_pool = X[:8], y[:8], X[8:]
    model = LogisticRegression().fit(X_labeled, y_labeled)
    uncertainty = 1 - model.predict_proba(X_pool).max(axis=1)  # modAL's classifier_uncertainty
    return X_pool, uncertainty, X_labeled, y_labeled


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_ranked_matches_modal_ranked_batch_order(seed, sparse, metric):
    X_pool, uncertainty, X_labeled, y_labeled = labelled_problem(seed, sparse)
    expected = modal_ranked(X_pool, uncertainty, 15, X_labeled, y_labeled, metric)
    batch = select_batch(uncertainty, 15, X_pool=X_pool, mode="ranked", rng=rng(), X_labeled=X_labeled,
                         candidates=X_pool.shape[0], metric=metric)
    np.testing.assert_array_equal(batch, expected)
    # X_labeled may also come through the strategy's batch_params
    strategy = QueryStrategy(batch_mode="ranked", batch_params={"X_labeled": X_labeled, "metric": metric,
                                                                "candidates": X_pool.shape[0]})
    np.testing.assert_array_equal(strategy.select(uncertainty, 15, X_pool), expected)


@pytest.mark.parametrize("seed", range(3))
def test_ranked_cold_start_matches_modal(seed):
    X_pool, uncertainty, _, _ = labelled_problem(seed)
    expected = modal_ranked(X_pool, uncertainty, 12)
    assert len(set(expected.tolist())) == 12  # modAL may repeat its cold-start row; not on these data
    batch = select_batch(uncertainty, 12, X_pool=X_pool, mode="ranked", rng=rng(), candidates=X_pool.shape[0])
    np.testing.assert_array_equal(batch, expected)


def test_ranked_spreads_the_batch_where_top_k_takes_copies():
    X, utilities = duplicated_pool()
    X_labeled = rng(9).normal(size=(3, 5))
    batch = select_batch(utilities, 4, X_pool=X, mode="ranked", rng=rng(), candidates=20, X_labeled=X_labeled)
    assert distinct_rows(X, batch) == 4


def test_ranked_restricts_itself_to_the_top_candidates():
    X_pool, uncertainty, X_labeled, _ = labelled_problem(0)
    batch = select_batch(uncertainty, 5, X_pool=X_pool, mode="ranked", rng=rng(), X_labeled=X_labeled,
                         candidates=20)
    assert set(batch) <= set(np.argsort(-uncertainty)[:20])
    assert len(set(batch.tolist())) == 5


# --- every mode ------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", BATCH_MODES)
@pytest.mark.parametrize("sparse", [False, True])
def test_every_mode_is_deterministic_distinct_and_sized(mode, sparse):
    X = sparse_pool(400, 60, 1) if sparse else rng(1).normal(size=(400, 6))
    utilities = rng(2).random(400)
    a = select_batch(utilities, 25, X_pool=X, mode=mode, rng=rng(7))
    b = select_batch(utilities, 25, X_pool=X, mode=mode, rng=rng(7))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (25,) and len(set(a.tolist())) == 25
    assert a.min() >= 0 and a.max() < 400
    small = select_batch(utilities[:6], 25, X_pool=X[:6], mode=mode, rng=rng(7))  # pool < batch
    assert sorted(small.tolist()) == list(range(6))


@pytest.mark.parametrize("mode", ["kmeans", "ranked"])
def test_non_finite_utilities_only_fill_the_batch(mode):
    X = rng(1).normal(size=(50, 3))
    utilities = np.full(50, np.nan)
    utilities[:3] = [0.5, 0.9, 0.1]
    batch = select_batch(utilities, 6, X_pool=X, mode=mode, rng=rng(), candidates=50)
    assert batch.shape == (6,) and len(set(batch.tolist())) == 6
    assert set(batch[:3]) == {0, 1, 2}


@pytest.mark.parametrize("mode", ["kmeans", "ranked"])
def test_rank_puts_the_diverse_batch_first_and_is_a_permutation(mode):
    X, utilities = duplicated_pool()
    strategy = QueryStrategy(random_state=0, batch_mode=mode, batch_params={"candidates": 20})
    order = strategy.rank(utilities, X, batch_size=4)
    assert sorted(order.tolist()) == list(range(200))
    np.testing.assert_array_equal(order[:4], strategy.select(utilities, 4, X))
    assert distinct_rows(X, order[:4]) == 4
    rest = utilities[order[4:]]
    assert np.all(np.diff(rest) <= 0)


# --- validation ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "message"), [
    ({"mode": "nope"}, "unknown batch mode 'nope'"),
    ({"mode": "top_k", "candidates": 5}, "unknown parameter.*top_k.*candidates.*takes no parameters"),
    ({"mode": "kmeans", "size": 5}, "unknown parameter.*kmeans.*size.*accepts candidates"),
    ({"mode": "kmeans", "metric": "cosine"}, "unknown parameter.*kmeans.*metric"),
    ({"mode": "kmeans", "candidates": 0}, "candidates must be a positive whole number"),
    ({"mode": "kmeans", "candidates": 2.5}, "candidates must be a positive whole number"),
    ({"mode": "kmeans", "candidates": True}, "candidates must be a positive whole number"),
    ({"mode": "kmeans", "candidates": 3}, r"candidates \(3\) must be at least the batch size \(5\)"),
    ({"mode": "ranked", "metric": "manhattan"}, "metric for batch mode 'ranked' must be one of euclidean, cosine"),
    ({"mode": "kmeans", "X_pool": None}, "needs the pool's features"),
    ({"mode": "ranked", "X_pool": np.zeros((7, 2))}, "the pool has 7 rows but there are 20 utilities"),
    ({"mode": "ranked", "X_labeled": np.zeros((3, 5))}, "X_labeled must have the pool's 2 columns"),
    ({"batch_size": 0}, "batch size must be a positive whole number"),
    ({"batch_size": 2.0}, "batch size must be a positive whole number"),
    ({"utilities": np.zeros((20, 2))}, "utilities must be one number per pool row"),
])
def test_bad_settings_raise_clear_value_errors(kwargs, message):
    g = rng()
    call = {"utilities": g.random(20), "batch_size": 5, "X_pool": g.normal(size=(20, 2)), "mode": "top_k"}
    call.update(kwargs)
    with pytest.raises(ValueError, match=message):
        select_batch(call.pop("utilities"), call.pop("batch_size"), rng=g, **call)


def test_strategies_accept_the_new_modes_and_refuse_unknown_ones():
    for mode in ("kmeans", "ranked"):
        assert QueryStrategy(batch_mode=mode).batch_mode == mode
    with pytest.raises(ValueError, match="choose one of top_k, kmeans, ranked"):
        QueryStrategy(batch_mode="greedy")
    validate_batch_params("ranked", {"candidates": 100, "metric": "cosine", "X_labeled": None})
    with pytest.raises(ValueError, match="unknown parameter"):
        validate_batch_params("ranked", {"alpha": 0.5})
