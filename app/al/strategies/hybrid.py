"""Hybrids of uncertainty sampling with what it lacks: exploration, representativeness, diversity.

Margin uncertainty (1 - (p1 - p2)) is the scoring rule of all three; each adds one remedy for a
known failure of pure uncertainty sampling (Settles 2009, sections 5 and 6):

* ``margin_random`` (uncertainty with a random share, a.k.a. epsilon-greedy uncertainty
  sampling; also the exploration arm of Hsu & Lin 2015): a share `random_share` of every batch is
  drawn uniformly at random from the pool, the rest are the most uncertain items. The random
  items correct the sampling bias of a model that is confidently wrong in regions it never saw.
  With a batch of b items, floor(b * share) random slots are certain and one more is added with
  probability frac(b * share), so the expected share is exact at any batch size (b = 1 too).
* ``margin_density`` (uncertainty x density, Settles & Craven 2008): margin times the item's
  mean similarity to the pool, so typical uncertain items beat uncertain outliers. The
  similarity is chosen by the features when `metric="auto"`: cosine on sparse features (TF-IDF),
  euclidean on dense ones (cosine says little about standardised columns, see
  `app.al.strategies.density`).
* ``margin_diverse`` (uncertainty with diversity-aware batches, Zhdanov 2019): the margin scores
  with k-means batches: the most uncertain `candidates` are clustered into as many clusters as
  the batch has items and each cluster gives its most uncertain member.
"""

from numbers import Real

import numpy as np
import scipy.sparse as sp

from app.al.proba import predict_proba_chunked
from app.al.strategies.base import QueryStrategy
from app.al.strategies.density import DEFAULT_EXACT_THRESHOLD, DEFAULT_N_REFERENCE, METRICS, DensityWeighted
from app.al.strategies.uncertainty import margin_from_proba


def random_slots(batch_size: int, share: float, rng: np.random.Generator) -> int:
    """How many of `batch_size` slots are drawn at random: floor(b * share), plus one with
    probability frac(b * share) (so the expected number is exactly b * share)."""
    expected = batch_size * share
    whole = int(np.floor(expected))
    extra = int(rng.random() < expected - whole)
    return min(batch_size, whole + extra)


def check_share(value, name: str = "random_share") -> float:
    if not isinstance(value, Real) or isinstance(value, bool) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")
    return float(value)


def mix_random(top: np.ndarray, n_random: int, n_pool: int, batch_size: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A batch of `batch_size` from the ranked `top` indices with `n_random` uniform draws among
    the pool rows not already taken: (batch, is_random flags). The random draws are uniform over
    the rows left once the non-random picks are set aside."""
    k = min(batch_size, n_pool)
    n_random = min(n_random, k)
    chosen = [int(i) for i in top[: k - n_random]]
    if n_random:
        left = np.setdiff1d(np.arange(n_pool), np.asarray(chosen, dtype=np.intp), assume_unique=False)
        drawn = rng.choice(left, size=min(n_random, left.shape[0]), replace=False)
    else:
        drawn = np.empty(0, dtype=np.intp)
    batch = np.concatenate([np.asarray(chosen, dtype=np.intp), drawn.astype(np.intp)])
    flags = np.concatenate([np.zeros(len(chosen), dtype=bool), np.ones(drawn.shape[0], dtype=bool)])
    return batch, flags


class MarginRandom(QueryStrategy):
    name = "margin_random"
    description = "Mostly the items the model is least sure of, plus a random share that keeps it honest."

    def __init__(self, random_share: float = 0.2, random_state: int | None = None, batch_mode: str = "top_k",
                 batch_params: dict | None = None):
        super().__init__(random_state=random_state, batch_mode=batch_mode, batch_params=batch_params)
        self.random_share = check_share(random_share)
        self.random_mask_: np.ndarray | None = None

    def utilities(self, model, X_pool, X_labeled=None, y_labeled=None) -> np.ndarray:
        return margin_from_proba(predict_proba_chunked(model, X_pool))

    def select(self, utilities, batch_size, X_pool=None, X_labeled=None) -> np.ndarray:
        rng = np.random.default_rng(None if self.random_state is None else [self.random_state, 7])
        n_random = random_slots(batch_size, self.random_share, rng)
        top = super().select(utilities, batch_size, X_pool, X_labeled)
        batch, self.random_mask_ = mix_random(top, n_random, len(utilities), batch_size, rng)
        return batch

    def rank(self, utilities, X_pool=None, batch_size=None, X_labeled=None) -> np.ndarray:
        if not batch_size:
            return super().rank(utilities, X_pool, batch_size, X_labeled)
        batch = self.select(utilities, batch_size, X_pool, X_labeled)
        order = super().rank(utilities, X_pool, None, X_labeled)
        return np.concatenate([batch, order[~np.isin(order, batch)]])

    def get_params(self) -> dict:
        return {**super().get_params(), "random_share": self.random_share}


def resolve_metric(metric: str, X) -> str:
    if metric == "auto":
        return "cosine" if sp.issparse(X) else "euclidean"
    return metric


class MarginDensity(DensityWeighted):
    name = "margin_density"
    description = "Uncertain items that are also typical of the pool (margin x density)."

    def __init__(self, beta: float = 1.0, metric: str = "auto", exact_threshold: int = DEFAULT_EXACT_THRESHOLD,
                 n_reference: int = DEFAULT_N_REFERENCE, random_state: int | None = None,
                 batch_mode: str = "top_k", batch_params: dict | None = None):
        if metric not in (*METRICS, "auto"):
            raise ValueError(f"metric must be auto or one of {', '.join(METRICS)}, got {metric!r}")
        super().__init__(base="margin", beta=beta, metric="cosine", exact_threshold=exact_threshold,
                         n_reference=n_reference, random_state=random_state, batch_mode=batch_mode,
                         batch_params=batch_params)
        self.metric_setting = metric

    def density(self, X_pool) -> np.ndarray:
        self.metric = resolve_metric(self.metric_setting, X_pool)
        return super().density(X_pool)

    def get_params(self) -> dict:
        params = super().get_params()
        params.pop("base", None)
        params.pop("base_params", None)
        return {**params, "metric": self.metric_setting}


def gradient_factors(proba: np.ndarray) -> np.ndarray:
    """a = p - e_yhat per row: the log-loss gradient of a softmax layer at the predicted label is
    a (outer) [x, 1] (Ash et al. 2020's gradient embedding, BADGE)."""
    a = np.array(proba, dtype=float)
    a[np.arange(a.shape[0]), a.argmax(axis=1)] -= 1.0
    return a


def _augmented_sq_norms(X) -> np.ndarray:
    if sp.issparse(X):
        return np.asarray(X.multiply(X).sum(axis=1), dtype=float).ravel() + 1.0
    X = np.asarray(X, dtype=float)
    return np.einsum("ij,ij->i", X, X) + 1.0


def badge_pick(a: np.ndarray, X, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007) in gradient-embedding space g = a (x) [x, 1],
    without forming g: <g_i, g_j> = <a_i, a_j> (<x_i, x_j> + 1), so every new centre costs one
    product of the pool with its row. The first centre is the longest gradient, the next ones are
    drawn with probability proportional to the squared distance to the nearest chosen centre."""
    n = a.shape[0]
    k = min(k, n)
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    if sp.issparse(X):
        X = X.tocsr()
    sq_a = np.einsum("ij,ij->i", a, a)
    sq_g = sq_a * _augmented_sq_norms(X)
    chosen = [int(np.argmax(sq_g))]
    nearest = np.full(n, np.inf)
    while len(chosen) < k:
        c = chosen[-1]
        x_c = X[c]
        dots = (np.asarray(X @ x_c.T.toarray()).ravel() if sp.issparse(X)
                else np.asarray(X, dtype=float) @ np.asarray(x_c, dtype=float).ravel()) + 1.0
        d2 = np.maximum(sq_g + sq_g[c] - 2.0 * (a @ a[c]) * dots, 0.0)
        nearest = np.minimum(nearest, d2)
        nearest[chosen] = 0.0
        total = nearest.sum()
        if not np.isfinite(total) or total <= 0:  # every row is a chosen one's duplicate
            rest = np.setdiff1d(np.argsort(-sq_g, kind="stable"), chosen, assume_unique=True)
            chosen.extend(int(i) for i in rest[: k - len(chosen)])
            break
        chosen.append(int(rng.choice(n, p=nearest / total)))
    return np.asarray(chosen, dtype=np.intp)


class Badge(QueryStrategy):
    """Batch active learning by diverse gradient embeddings (Ash et al. 2020, ICLR, "Deep batch
    active learning by diverse, uncertain gradient lower bounds") for a linear softmax model:
    each pool item is embedded as the gradient of the log loss at its predicted label with
    respect to the last layer, g = (p - e_yhat) (x) [x, 1]; the batch is the k-means++ seeding of
    those embeddings. Long gradients are uncertain items, spread-out ones are diverse, so one
    rule trades the two off without a parameter. Utilities (used to order the rest of the pool)
    are the gradient lengths ||g||. Works on sparse features without forming g."""

    name = "badge"
    description = "Uncertain and mutually different items: k-means++ over the items' loss gradients (BADGE)."

    def __init__(self, random_state: int | None = None, batch_mode: str = "top_k", batch_params: dict | None = None):
        super().__init__(random_state=random_state, batch_mode=batch_mode, batch_params=batch_params)
        self._factors = None

    def utilities(self, model, X_pool, X_labeled=None, y_labeled=None) -> np.ndarray:
        proba = predict_proba_chunked(model, X_pool)
        self._factors = gradient_factors(proba)
        return np.sqrt(np.einsum("ij,ij->i", self._factors, self._factors) * _augmented_sq_norms(X_pool))

    def select(self, utilities, batch_size, X_pool=None, X_labeled=None) -> np.ndarray:
        if self._factors is None or X_pool is None or self._factors.shape[0] != len(utilities):
            return super().select(utilities, batch_size, X_pool, X_labeled)  # no gradients: top-k
        return badge_pick(self._factors, X_pool, batch_size, self._rng())

    def rank(self, utilities, X_pool=None, batch_size=None, X_labeled=None) -> np.ndarray:
        order = super().rank(utilities, X_pool, None, X_labeled)
        if not batch_size:
            return order
        batch = self.select(utilities, batch_size, X_pool, X_labeled)
        return np.concatenate([batch, order[~np.isin(order, batch)]])


class MarginDiverse(QueryStrategy):
    name = "margin_diverse"
    description = "Uncertain items spread over the pool: one per k-means cluster of the most uncertain."

    def __init__(self, random_state: int | None = None, batch_mode: str = "kmeans", batch_params: dict | None = None):
        super().__init__(random_state=random_state, batch_mode=batch_mode, batch_params=batch_params)

    def utilities(self, model, X_pool, X_labeled=None, y_labeled=None) -> np.ndarray:
        return margin_from_proba(predict_proba_chunked(model, X_pool))


__all__ = ["Badge", "MarginDensity", "MarginDiverse", "MarginRandom", "check_share", "mix_random", "random_slots"]
