"""What every query strategy offers: utilities for the pool, then a batch out of them."""

import numpy as np

from app.al.batch import BATCH_MODES, order_by_utility, select_batch, validate_batch_params


class QueryStrategy:
    """Scores a pool (larger utility = more wanted) and picks batches from the scores.

    Scoring (`utilities`) and choosing (`select`, `rank`) are kept apart so any selection mode
    (`batch_mode`: plain top-k, or a diversity-aware mode) works with any scoring rule.
    Subclasses implement `utilities` and take their own settings as keyword arguments.
    """

    name: str = ""
    description: str = ""
    needs_model: bool = True

    def __init__(self, random_state: int | None = None, batch_mode: str = "top_k",
                 batch_params: dict | None = None):
        if batch_mode not in BATCH_MODES:
            raise ValueError(f"unknown batch mode {batch_mode!r}; choose one of {', '.join(BATCH_MODES)}")
        validate_batch_params(batch_mode, dict(batch_params or {}))  # a 422 when configured, not a failed retrain
        self.random_state = random_state
        self.batch_mode = batch_mode
        self.batch_params = dict(batch_params or {})

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self.random_state)

    def utilities(self, model, X_pool, X_labeled=None, y_labeled=None) -> np.ndarray:
        """One float per pool row, larger = more wanted."""
        raise NotImplementedError

    def select(self, utilities: np.ndarray, batch_size: int, X_pool=None, X_labeled=None) -> np.ndarray:
        """Indices of the `batch_size` rows to label next, best first. `X_labeled` lets the
        diversity modes keep away from what is already labelled."""
        params = dict(self.batch_params)
        if X_labeled is not None:
            params["X_labeled"] = X_labeled
        return select_batch(utilities, batch_size, X_pool=X_pool, mode=self.batch_mode, rng=self._rng(), **params)

    def rank(self, utilities: np.ndarray, X_pool=None, batch_size: int | None = None,
             X_labeled=None) -> np.ndarray:
        """Every row index in serving order: the selected batch first, then the rest by utility."""
        order = order_by_utility(utilities, self._rng())
        if not batch_size or self.batch_mode == "top_k":
            return order
        batch = self.select(utilities, batch_size, X_pool, X_labeled)
        rest = order[~np.isin(order, batch)]
        return np.concatenate([batch, rest])

    def get_params(self) -> dict:
        return {"random_state": self.random_state, "batch_mode": self.batch_mode,
                "batch_params": self.batch_params}
