"""Choosing a batch out of utilities: plain top-k, or diversity-aware modes.

Kept apart from scoring so every strategy can use every mode (DESIGN habit 6).
"""

import numpy as np

BATCH_MODES = ("top_k",)


def order_by_utility(utilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every index, largest utility first; ties broken at random so equal scores do not always
    favour the rows imported first."""
    utilities = np.asarray(utilities, dtype=float)
    return np.lexsort((rng.random(utilities.shape[0]), -utilities))


def top_k(utilities: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    return order_by_utility(utilities, rng)[:batch_size]


def select_batch(utilities: np.ndarray, batch_size: int, *, X_pool=None, mode: str = "top_k",
                 rng: np.random.Generator, **params) -> np.ndarray:
    """Indices of the batch, best first, chosen by `mode`."""
    if mode == "top_k":
        return top_k(utilities, batch_size, rng)
    raise ValueError(f"unknown batch mode {mode!r}; choose one of {', '.join(BATCH_MODES)}")
