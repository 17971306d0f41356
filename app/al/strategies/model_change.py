"""Expected gradient length (Settles, Craven & Ray 2008; Settles 2009, section 3.4).

An item is wanted when learning its label would change the model most. The change is measured
by the length of the gradient of the log loss at the item, averaged over the labels the model
itself expects:

    EGL(x) = sum_y p(y|x) * || grad_theta loss(x, y) ||

The gradient is that of the per-item log loss with respect to the fitted parameters
theta = (coef_, intercept_) of the model. At the optimum of the training objective its gradient
is zero, so the gradient of the objective after adding (x, y) is this gradient (times the
constant C in scikit-learn's scaling, which does not change the ranking).

Closed forms, with x~ = [x, 1] (or x~ = x when the model has no intercept):

  binary LogisticRegression (scikit-learn keeps one weight vector, p1 = P(classes_[1] | x)):
      grad loss(x, y) = (p1 - [y = classes_[1]]) * x~
      EGL(x) = ||x~|| * (p0 * p1 + p1 * p0) = 2 * p1 * (1 - p1) * ||x~||
  multinomial LogisticRegression (one weight vector per class):
      grad loss(x, y) = (p - e_y) outer x~,  Frobenius norm ||p - e_y|| * ||x~||
      EGL(x) = ||x~|| * sum_y p_y * sqrt(||p||^2 - 2 p_y + 1)

Any other classifier with `predict_proba` (and a one-vs-rest LogisticRegression from an older
scikit-learn) is scored with the multinomial formula, ||p - e_y|| * ||[x, 1]||, as if its last
layer were a softmax with a bias over the features it receives: a surrogate, not the gradient of
that model's own parameters.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from app.al.proba import CHUNK_ROWS
from app.al.strategies.base import QueryStrategy


def split_pipeline(model):
    """(featurizer or None, final classifier): a Pipeline's steps before the last transform X."""
    if isinstance(model, Pipeline):
        return (model[:-1] if len(model.steps) > 1 else None), model[-1]
    return None, model


def n_rows(X) -> int:
    return X.shape[0] if hasattr(X, "shape") else len(X)


def take_rows(X, idx):
    """Rows `idx` of an array, sparse matrix, DataFrame or plain list of raw items."""
    idx = np.asarray(idx, dtype=np.int64)
    if hasattr(X, "iloc"):
        return X.iloc[idx]
    if isinstance(X, np.ndarray) or sp.issparse(X):
        return X[idx]
    return [X[i] for i in idx]


def transform(featurizer, X):
    """Model features of raw rows X (X itself when there is no featurizer); sparse kept as CSR."""
    F = X if featurizer is None else featurizer.transform(X)
    if sp.issparse(F):
        return F.tocsr()
    return np.asarray(F, dtype=float)


def augmented_row_norms(F, intercept: bool = True) -> np.ndarray:
    """||[x, 1]|| per row (||x|| when `intercept` is False), without densifying sparse rows."""
    if sp.issparse(F):
        squares = np.asarray(F.multiply(F).sum(axis=1), dtype=float).ravel()
    else:
        F = np.asarray(F, dtype=float)
        squares = np.einsum("ij,ij->i", F, F)
    if intercept:
        squares = squares + 1.0
    return np.sqrt(squares)


def expected_gradient_length_from_proba(proba: np.ndarray, feature_norms: np.ndarray, *,
                                        sigmoid: bool = False) -> np.ndarray:
    """E_{y ~ p} ||grad_theta log loss(x, y)|| from class probabilities and ||x~|| per row.

    `sigmoid=True` is scikit-learn's binary logistic regression (one weight vector, gradient
    (p1 - [y = 1]) x~): 2 p1 (1 - p1) ||x~||. Otherwise one weight vector per class (softmax):
    ||x~|| * sum_y p_y ||p - e_y||.
    """
    proba = np.asarray(proba, dtype=float)
    feature_norms = np.asarray(feature_norms, dtype=float)
    if sigmoid:
        if proba.shape[1] != 2:
            raise ValueError("the sigmoid form needs probabilities for exactly two classes")
        p1 = proba[:, 1]
        return 2.0 * p1 * (1.0 - p1) * feature_norms
    # ||p - e_y|| for each label y, from the differences themselves: the shortcut
    # ||p||^2 - 2 p_y + 1 cancels catastrophically when p is close to e_y
    total = np.zeros(proba.shape[0])
    for y in range(proba.shape[1]):
        diff = proba.copy()
        diff[:, y] -= 1.0
        total += proba[:, y] * np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return total * feature_norms


def _uses_sigmoid(classifier) -> bool:
    """True for a fitted binary LogisticRegression (one weight vector through a sigmoid)."""
    return (isinstance(classifier, LogisticRegression) and hasattr(classifier, "coef_")
            and classifier.coef_.shape[0] == 1 and len(classifier.classes_) == 2)


def _gradient_is_exact(classifier) -> bool:
    """True when the closed form is the true gradient of the model's own parameters."""
    if not isinstance(classifier, LogisticRegression):
        return False
    if _uses_sigmoid(classifier):
        return True
    # multiclass: exact for the multinomial (softmax) model, not for one-vs-rest
    return getattr(classifier, "multi_class", "auto") != "ovr" and classifier.solver != "liblinear"


class ExpectedGradientLength(QueryStrategy):
    """Expected gradient length of the log loss; exact for LogisticRegression, surrogate otherwise.

    The pool is scored in chunks of rows (a Pipeline's featurizer runs chunk by chunk too), so
    memory stays bounded and sparse rows are never densified. Cost: one predict_proba and one
    row norm per item, O(pool size x (features + classes)).
    """

    name = "expected_gradient_length"
    description = "Items whose label would change the model's weights the most (expected gradient length)."

    def __init__(self, random_state: int | None = None, batch_mode: str = "top_k",
                 batch_params: dict | None = None):
        super().__init__(random_state=random_state, batch_mode=batch_mode, batch_params=batch_params)

    def utilities(self, model, X_pool, X_labeled=None, y_labeled=None) -> np.ndarray:
        featurizer, classifier = split_pipeline(model)
        if not hasattr(classifier, "predict_proba"):
            raise ValueError("expected gradient length needs a classifier with predict_proba")
        sigmoid = _uses_sigmoid(classifier)
        # the surrogate treats the last layer as a softmax with a bias over the features
        intercept = bool(classifier.fit_intercept) if _gradient_is_exact(classifier) else True
        n = n_rows(X_pool)
        out = np.empty(n, dtype=float)
        for start in range(0, n, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, n)
            chunk = X_pool[start:stop] if n > CHUNK_ROWS else X_pool
            F = transform(featurizer, chunk)
            proba = np.asarray(classifier.predict_proba(F), dtype=float)
            out[start:stop] = expected_gradient_length_from_proba(
                proba, augmented_row_norms(F, intercept), sigmoid=sigmoid)
        return out
