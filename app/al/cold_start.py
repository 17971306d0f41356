"""Cold start by coverage: which items to label first, before a model can rank anything.

A uniform draw of the first labels over-samples the dense part of the pool and may miss a small
class entirely, so the first model sees one region twice and another never. Instead the pool is
clustered with k-means and served cluster by cluster: first the item nearest each centre (largest
cluster first), then the second nearest of each, and so on. The first k labels then cover the
k biggest modes of the data (Zhu et al. 2008, "Active learning with sampling by uncertainty and
density"; Hu et al. 2010, "Off to a good start": clustering-based initial sets beat random ones).

Cost: mini-batch k-means, linear in the pool: a few seconds for 1M rows x 20 features here.
Only the first `limit` positions are returned; after that the caller falls back to its random
order (by then a model ranks the pool).
"""

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import KMeans, MiniBatchKMeans

DEFAULT_CLUSTERS = 20
DEFAULT_LIMIT = 1_000
# Above this many rows the clustering runs on a uniform sample; every row is then assigned.
FIT_SAMPLE = 50_000


def coverage_order(X, *, n_clusters: int = DEFAULT_CLUSTERS, limit: int = DEFAULT_LIMIT,
                   random_state: int | None = 0) -> np.ndarray:
    """Row positions of `X` in coverage order (at most `limit` of them).

    Dense rows should be standardised (the project's featurizer does that); sparse TF-IDF rows
    are L2-normalised, so euclidean k-means on them is spherical k-means.
    """
    n = X.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.int64)
    k = int(min(n_clusters, n))
    rng = np.random.default_rng(random_state)
    fit_rows = np.sort(rng.choice(n, size=FIT_SAMPLE, replace=False)) if n > FIT_SAMPLE else None
    X_fit = X[fit_rows] if fit_rows is not None else X
    seed = None if random_state is None else int(random_state)
    if n <= 10_000:
        km = KMeans(n_clusters=k, n_init=3, random_state=seed)
    else:
        km = MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=2048, random_state=seed)
    km.fit(X_fit.astype(np.float64) if not sp.issparse(X_fit) else X_fit)
    assigned = km.predict(X)
    distance = _distance_to_centre(X, km.cluster_centers_, assigned)

    members = [np.flatnonzero(assigned == c) for c in range(k)]
    members = [m[np.argsort(distance[m], kind="stable")] for m in members if len(m)]
    members.sort(key=len, reverse=True)  # larger clusters first: the commoner kinds of item lead
    order = []
    depth = 0
    while len(order) < min(limit, n):
        took = False
        for m in members:
            if depth < len(m):
                order.append(m[depth])
                took = True
                if len(order) >= limit:
                    break
        if not took:
            break
        depth += 1
    return np.asarray(order, dtype=np.int64)


def _distance_to_centre(X, centres: np.ndarray, assigned: np.ndarray) -> np.ndarray:
    """Squared euclidean distance of each row to its own centre, chunked for bounded memory."""
    out = np.empty(X.shape[0])
    for start in range(0, X.shape[0], 65_536):
        rows = X[start:start + 65_536]
        c = centres[assigned[start:start + 65_536]]
        if sp.issparse(rows):
            rows_sq = np.asarray(rows.multiply(rows).sum(axis=1)).ravel()
            cross = np.asarray(rows.multiply(c).sum(axis=1)).ravel()
        else:
            rows = np.asarray(rows, dtype=np.float64)
            rows_sq = np.einsum("ij,ij->i", rows, rows)
            cross = np.einsum("ij,ij->i", rows, c)
        out[start:start + len(rows_sq)] = rows_sq - 2 * cross + np.einsum("ij,ij->i", c, c)
    return out


__all__ = ["DEFAULT_CLUSTERS", "DEFAULT_LIMIT", "coverage_order"]
