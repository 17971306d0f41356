import numpy as np

from app.al.strategies.base import QueryStrategy


class RandomSampling(QueryStrategy):
    """Uniform random order: the baseline every other strategy must beat."""

    name = "random"
    description = "Items in random order: the unbiased baseline."
    needs_model = False

    def utilities(self, model, X_pool, X_labeled=None, y_labeled=None) -> np.ndarray:
        n = X_pool.shape[0] if hasattr(X_pool, "shape") else len(X_pool)
        return np.random.default_rng(self.random_state).random(n)
