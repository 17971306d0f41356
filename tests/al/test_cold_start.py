"""Cold start by coverage: the first positions visit every cluster of the pool, rare ones too."""

import numpy as np
import scipy.sparse as sp

from app.al.cold_start import coverage_order


def blobs(sizes=(900, 90, 10), seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0] * 5, [8.0] + [0.0] * 4, [0.0, 8.0, 0.0, 0.0, 0.0]])
    X = np.vstack([centres[b] + rng.normal(scale=0.5, size=(n, 5)) for b, n in enumerate(sizes)])
    blob = np.repeat(np.arange(len(sizes)), sizes)
    perm = rng.permutation(len(X))
    return X[perm], blob[perm]


def test_the_first_positions_cover_every_blob_even_a_rare_one():
    X, blob = blobs()
    order = coverage_order(X, n_clusters=10, limit=30, random_state=0)
    assert len(order) == len(set(order.tolist())) == 30
    assert set(blob[order[:10]]) == {0, 1, 2}  # a uniform draw of 10 misses the 1% blob 90% of the time
    # round robin: the first 10 positions are one item from each of the 10 clusters, the largest first
    assert blob[order[0]] == 0


def test_each_cluster_leads_with_the_item_nearest_its_centre():
    X, _ = blobs(sizes=(200, 200, 200))
    order = coverage_order(X, n_clusters=3, limit=600, random_state=1)
    assert sorted(order.tolist()) == list(range(600))  # a permutation when the limit allows
    first = X[order[:3]]
    centres = np.array([[0.0] * 5, [8.0] + [0.0] * 4, [0.0, 8.0, 0.0, 0.0, 0.0]])
    # each of the first three is close to a different true centre
    nearest = np.argmin(((first[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    assert sorted(nearest.tolist()) == [0, 1, 2]
    assert np.all(((first - centres[nearest]) ** 2).sum(-1) < 1.0)


def test_small_pools_sparse_rows_and_determinism():
    X, _ = blobs(sizes=(3, 2, 1))
    assert sorted(coverage_order(X, n_clusters=20, limit=100).tolist()) == list(range(6))
    assert len(coverage_order(np.empty((0, 5)))) == 0
    S = sp.random(500, 200, density=0.05, random_state=0, format="csr")
    S = sp.csr_matrix(S.multiply(1 / np.maximum(sp.linalg.norm(S, axis=1), 1e-12)[:, None]))
    a = coverage_order(S, n_clusters=8, limit=50, random_state=3)
    b = coverage_order(S, n_clusters=8, limit=50, random_state=3)
    assert np.array_equal(a, b) and len(set(a.tolist())) == 50
