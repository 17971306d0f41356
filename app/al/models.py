"""Default featurizers and classifiers for each kind of pool.

The featurizer is fitted once on the whole pool (it needs no labels), so every retrain reuses
the same feature matrix and only the classifier is refitted on the labels.
"""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

TEXT = "text"
TABULAR = "tabular"
IMAGE = "image"  # a thumbnail's pixels (app/pool/images.py)
EMBEDDING = "embedding"  # vectors the user made with a model of their choice
SCALED_KINDS = (TABULAR, IMAGE, EMBEDDING)


def build_featurizer(kind: str, n_items: int | None = None) -> BaseEstimator | TransformerMixin:
    """Unfitted transformer from raw items (texts, or rows of numbers) to model features."""
    if kind == TEXT:
        # Words seen in a single document add noise on large pools but are all there is on tiny ones.
        min_df = 2 if n_items is not None and n_items >= 1000 else 1
        return TfidfVectorizer(
            sublinear_tf=True,
            ngram_range=(1, 2),
            min_df=min_df,
            max_features=200_000,
            dtype=np.float64,
        )
    if kind in SCALED_KINDS:
        return StandardScaler()
    raise ValueError(f"unknown data kind {kind!r}")


def fit_featurizer(kind: str, raw, n_items: int | None = None):
    """The featurizer fitted on a pool, and the pool's features. A text pool without a single word of
    two or more letters (emoji, punctuation, one-letter codes) leaves TF-IDF with no vocabulary; it
    gets character n-grams instead, which every non-empty text has."""
    featurizer = build_featurizer(kind, n_items)
    try:
        return featurizer, featurizer.fit_transform(raw)
    except ValueError as exc:
        if kind != TEXT or "empty vocabulary" not in str(exc):
            raise
    featurizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, dtype=np.float64)
    return featurizer, featurizer.fit_transform(raw)


def build_classifier(kind: str, random_state: int | None = 0) -> LogisticRegression:
    """Unfitted classifier for the features of `kind`: L2 logistic regression for every kind."""
    if kind != TEXT and kind not in SCALED_KINDS:
        raise ValueError(f"unknown data kind {kind!r}")
    if kind == TEXT:
        # Few labelled rows and tens of thousands of TF-IDF columns: newton-cg converges in a handful
        # of iterations where lbfgs takes 10-40 times longer on the same problem (measured on the demo pool).
        return LogisticRegression(C=10.0, solver="newton-cg", max_iter=2000, random_state=random_state)
    return LogisticRegression(C=1.0, max_iter=2000, random_state=random_state)
