"""Class probabilities over a pool, computed in chunks so memory stays bounded."""

import numpy as np

CHUNK_ROWS = 65_536


def predict_proba_chunked(model, X, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """`model.predict_proba(X)` one chunk of rows at a time (only the n x classes result is whole)."""
    n = X.shape[0] if hasattr(X, "shape") else len(X)
    if n <= chunk_rows:
        return np.asarray(model.predict_proba(X), dtype=float)
    parts = [np.asarray(model.predict_proba(X[start : start + chunk_rows]), dtype=float)
             for start in range(0, n, chunk_rows)]
    return np.vstack(parts)
