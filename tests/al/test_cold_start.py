"""Cold start by coverage: the first positions visit every cluster of the pool, rare ones too; with
some labels, TypiClust's batch goes to clusters no label covers, and the cover rule of auto."""

import numpy as np
import scipy.sparse as sp

import app.al.cold_start as cold_start
from app.al.cold_start import coverage_order, still_covering, typical_uncovered


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


def test_typical_uncovered_skips_the_labelled_blob_and_takes_central_items():
    X, blob = blobs(sizes=(300, 300, 300))
    labeled = np.flatnonzero(blob == 0)[:5]
    pool = np.setdiff1d(np.arange(len(X)), labeled)
    picked = typical_uncovered(X[pool], X[labeled], 2, random_state=0)
    assert len(set(picked.tolist())) == 2
    # 5 labelled + 2 = 7 clusters: the two largest without a labelled row lie in blobs 1 and 2
    # (blob 0's clusters are the ones holding its labelled rows, or split finer)
    assert set(blob[pool[picked]]) <= {1, 2}
    centres = np.array([[0.0] * 5, [8.0] + [0.0] * 4, [0.0, 8.0, 0.0, 0.0, 0.0]])
    # typical = dense: each pick lies nearer its blob's centre than the blob's average member
    for i in pool[picked]:
        members = X[blob == blob[i]]
        spread = np.sqrt(((members - centres[blob[i]]) ** 2).sum(-1)).mean()
        assert np.sqrt(((X[i] - centres[blob[i]]) ** 2).sum()) < spread


def test_typical_uncovered_on_small_sparse_and_sampled_pools(monkeypatch):
    X, _ = blobs(sizes=(3, 2, 1))
    assert sorted(typical_uncovered(X, None, 10, random_state=0).tolist()) == list(range(6))  # all, no repeat
    assert len(typical_uncovered(X, X[:0], 0)) == 0
    S = sp.random(400, 100, density=0.05, random_state=0, format="csr")
    picked = typical_uncovered(S[50:], S[:50], 8, random_state=1)
    assert len(set(picked.tolist())) == 8 and picked.max() < 350
    assert np.array_equal(picked, typical_uncovered(S[50:], S[:50], 8, random_state=1))  # deterministic
    # a pool bigger than the fit sample: clustered on a sample, every row assigned
    monkeypatch.setattr(cold_start, "COVER_FIT_SAMPLE", 100)
    monkeypatch.setattr(cold_start, "MEMBER_SAMPLE", 20)
    Xb, blob = blobs(sizes=(400, 300, 300), seed=2)
    picked = typical_uncovered(Xb[10:], Xb[:10], 5, random_state=0)
    assert len(set(picked.tolist())) == 5 and picked.max() < 990


def test_still_covering_until_two_of_every_label_or_two_per_label():
    labels = ["a", "b", "c"]
    assert still_covering(labels, ["a", "a", "b", "b", "c"])  # c has one
    assert not still_covering(labels, ["a", "a", "b", "b", "c", "c"])
    # six labels (two per label) end it even with a label missing: nobody may ever use it
    assert not still_covering(labels, ["a", "a", "a", "b", "b", "b"])
    assert still_covering(labels, ["a", "a", "a", "b", "b"])
    assert not still_covering(None, ["a"]) and not still_covering([], ["a"])
    assert still_covering(["1", "2"], [1, 1, 2])  # labels compare as text, as a project stores them


def test_cover_first_puts_typiclust_batch_ahead_of_the_strategys_order_only_while_covering():
    X, blob = blobs()
    labels = ["common", "uncommon", "rare"]
    names = np.asarray(labels, dtype=object)[blob]
    labeled = np.flatnonzero(blob == 0)[:4]  # four common items: the other labels are unseen
    pool = np.setdiff1d(np.arange(len(X)), labeled)
    order = np.arange(len(pool))[::-1].copy()  # some strategy's serving order
    covered, batch = cold_start.cover_first(order, X[pool], X[labeled], names[labeled], labels, 5, random_state=0)
    assert np.array_equal(batch, typical_uncovered(X[pool], X[labeled], 5, random_state=0))
    assert np.array_equal(covered[:5], batch)
    assert sorted(covered.tolist()) == list(range(len(pool)))  # every row once
    rest = covered[5:]
    assert np.array_equal(rest, order[~np.isin(order, batch)])  # the rest keeps the strategy's order
    # two of each label: no cover, the order untouched
    two_each = np.concatenate([np.flatnonzero(blob == b)[:2] for b in range(3)])
    same, none = cold_start.cover_first(order, X[pool], X[two_each], names[two_each], labels, 5)
    assert none is None and same is order


def test_distances_to_centres_need_no_dense_block_of_a_wide_sparse_pool():
    """QA: a 600k-item TF-IDF pool (200,000 words) failed allocating 97.7 GiB for each row's own centre."""
    rng = np.random.default_rng(0)
    X = sp.random(400, 300, density=0.05, format="csr", random_state=0)
    centres, assigned = rng.normal(size=(7, 300)), rng.integers(0, 7, 400)
    direct = ((X.toarray() - centres[assigned]) ** 2).sum(axis=1)
    assert np.allclose(cold_start._distance_to_centre(X, centres, assigned), direct)
    dense = rng.normal(size=(400, 30))
    centres = rng.normal(size=(7, 30))
    assert np.allclose(cold_start._distance_to_centre(dense, centres, assigned),
                       ((dense - centres[assigned]) ** 2).sum(axis=1))
    # a pool this wide: one chunk's own-centre block alone would be 65,536 x 2M floats (1 TiB)
    n, words = 70_000, 2_000_000
    wide = sp.csr_matrix((np.ones(n * 10), (np.repeat(np.arange(n), 10), rng.integers(0, words, n * 10))),
                         shape=(n, words))
    assert len(coverage_order(wide, limit=50)) == 50
