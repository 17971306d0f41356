"""What every query strategy offers: utilities for the pool, then a batch out of them."""

import numpy as np


class QueryStrategy:
    """Scores a pool (larger utility = more wanted) and picks batches from the scores.

    Scoring and choosing are kept apart so any selection mode (plain top-k here, diversity-aware
    batches elsewhere) works with any scoring rule.
    """

    name: str = ""
    description: str = ""
    needs_model: bool = True

    def __init__(self, random_state: int | None = None):
        self.random_state = random_state

    def utilities(self, model, X_pool, X_labeled=None, y_labeled=None) -> np.ndarray:
        raise NotImplementedError

    def select(self, utilities: np.ndarray, batch_size: int, X_pool=None) -> np.ndarray:
        """Indices of the `batch_size` most wanted rows, best first."""
        order = self.rank(utilities, X_pool)
        return order[:batch_size]

    def rank(self, utilities: np.ndarray, X_pool=None) -> np.ndarray:
        """Every row index, most wanted first. Ties break at random so equal scores do not
        always favour the rows imported first."""
        utilities = np.asarray(utilities, dtype=float)
        rng = np.random.default_rng(self.random_state)
        tie_breaker = rng.random(utilities.shape[0])
        return np.lexsort((tie_breaker, -utilities))

    def get_params(self) -> dict:
        return {"random_state": self.random_state}
