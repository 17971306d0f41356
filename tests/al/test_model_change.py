"""Expected gradient length against gradients built another way: explicitly from the definition
of scikit-learn's log loss, and by central finite differences of sklearn.metrics.log_loss with
respect to (coef_, intercept_)."""

import copy
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from app.al.strategies import model_change
from app.al.strategies.model_change import ExpectedGradientLength, expected_gradient_length_from_proba


def _data(n_classes, n=120, d=6, seed=0, sparse=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    X = rng.normal(size=(n_classes, d))[y] + rng.normal(size=(n, d))
    if sparse:
        X = sp.csr_matrix(np.where(rng.random(X.shape) < 0.4, X, 0.0))
    return X, y


def _explicit_egl(model, X):
    """sum_y p_y ||grad_(coef_, intercept_) of -log p(y | x)||, gradient built from its definition
    for each row and label: binary (p1 - [y = 1]) [x, 1], multinomial (p - e_y) outer [x, 1]."""
    X = X.toarray() if sp.issparse(X) else X
    proba = model.predict_proba(X)
    out = []
    for x, p in zip(X, proba, strict=True):
        xt = np.append(x, 1.0) if model.fit_intercept else x
        total = 0.0
        for k in range(len(model.classes_)):
            if model.coef_.shape[0] == 1:
                gradient = (p[1] - (k == 1)) * xt
            else:
                gradient = np.outer(p - np.eye(len(p))[k], xt)
            total += p[k] * np.linalg.norm(gradient)
        out.append(total)
    return np.array(out)


def _finite_difference_egl(model, X, h=1e-6):
    """The same expectation with each gradient from central differences of
    sklearn.metrics.log_loss (over one row and one label: that row's loss)."""
    X = X.toarray() if sp.issparse(X) else X
    classes = model.classes_
    params = [("coef_", idx) for idx in np.ndindex(model.coef_.shape)]
    if model.fit_intercept:
        params += [("intercept_", idx) for idx in np.ndindex(model.intercept_.shape)]
    gradients = np.empty((len(X), len(classes), len(params)))  # row, label, parameter
    for j, (attribute, idx) in enumerate(params):
        losses = []
        for sign in (1.0, -1.0):
            moved = copy.deepcopy(model)
            getattr(moved, attribute)[idx] += sign * h
            proba = moved.predict_proba(X)
            losses.append([[log_loss([label], proba[i : i + 1], labels=classes) for label in classes]
                           for i in range(len(X))])
        gradients[:, :, j] = (np.array(losses[0]) - np.array(losses[1])) / (2 * h)
    proba = model.predict_proba(X)
    return (proba * np.linalg.norm(gradients, axis=2)).sum(axis=1)


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("sparse", [False, True])
def test_egl_equals_explicit_per_label_gradients(n_classes, sparse):
    X, y = _data(n_classes, sparse=sparse)
    model = LogisticRegression(C=2.0, max_iter=2000).fit(X, y)
    got = ExpectedGradientLength().utilities(model, X)
    np.testing.assert_allclose(got, _explicit_egl(model, X), rtol=1e-9)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_egl_equals_finite_differences_of_sklearn_log_loss(n_classes, fit_intercept):
    X, y = _data(n_classes, n=60, d=4, seed=1)
    model = LogisticRegression(max_iter=2000, fit_intercept=fit_intercept).fit(X, y)
    rows = X[:8]
    got = ExpectedGradientLength().utilities(model, rows)
    np.testing.assert_allclose(got, _finite_difference_egl(model, rows), rtol=1e-5)


def test_closed_forms_on_hand_made_probabilities():
    proba = np.array([[0.5, 0.5], [0.9, 0.1], [1.0, 0.0]])
    norms = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(expected_gradient_length_from_proba(proba, norms, sigmoid=True),
                               [0.5, 2 * 0.09 * 2, 0.0])
    # softmax with two classes: ||p - e_y|| = sqrt(2) |p1 - [y = 1]|, so sqrt(2) times the above
    np.testing.assert_allclose(expected_gradient_length_from_proba(proba, norms),
                               np.sqrt(2) * np.array([0.5, 0.36, 0.0]), atol=1e-15)
    three = np.array([[1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(expected_gradient_length_from_proba(three, [1.0]), [np.sqrt(2 / 3)])
    with pytest.raises(ValueError, match="two classes"):
        expected_gradient_length_from_proba(np.ones((1, 3)) / 3, [1.0], sigmoid=True)


def test_sparse_equals_dense_and_is_not_densified():
    X, y = _data(3, sparse=True)
    model = LogisticRegression(max_iter=2000).fit(X, y)
    np.testing.assert_allclose(ExpectedGradientLength().utilities(model, X),
                               ExpectedGradientLength().utilities(model, X.toarray()), rtol=1e-12)
    # 300 x 200,000 would take 480 MB dense; the scoring must stay far below that
    rng = np.random.default_rng(2)
    rows, columns = np.repeat(np.arange(300), 40), rng.integers(0, 200_000, 300 * 40)
    wide = sp.csr_matrix((rng.random(300 * 40), (rows, columns)), shape=(300, 200_000))
    wide_model = LogisticRegression().fit(wide[:, :5], rng.integers(0, 3, 300))  # then widen it by hand
    wide_model.coef_ = rng.normal(size=(3, 200_000))
    wide_model.n_features_in_ = 200_000
    tracemalloc.start()
    utilities = ExpectedGradientLength().utilities(wide_model, wide)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert utilities.shape == (300,) and np.all(np.isfinite(utilities))
    assert peak < 50e6


def test_chunked_scoring_equals_whole(monkeypatch):
    X, y = _data(3, n=500)
    model = LogisticRegression(max_iter=2000).fit(X, y)
    whole = ExpectedGradientLength().utilities(model, X)
    monkeypatch.setattr(model_change, "CHUNK_ROWS", 64)
    np.testing.assert_allclose(ExpectedGradientLength().utilities(model, X), whole, rtol=1e-12)


def test_pipeline_transforms_before_the_gradient():
    X, y = _data(3, seed=4)
    X = X * 10 + 5
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    direct = LogisticRegression(max_iter=2000).fit(pipeline[0].transform(X), y)
    np.testing.assert_allclose(ExpectedGradientLength().utilities(pipeline, X),
                               _explicit_egl(direct, pipeline[0].transform(X)), rtol=1e-7)


def test_text_pipeline_on_raw_strings():
    texts = ["good film", "bad film", "great story", "awful story", "good story", "bad plot"] * 5
    labels = ["pos", "neg", "pos", "neg", "pos", "neg"] * 5
    pipeline = Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())]).fit(texts, labels)
    utilities = ExpectedGradientLength().utilities(pipeline, ["good plot", "film", "awful great"])
    features = pipeline[0].transform(["good plot", "film", "awful great"])
    np.testing.assert_allclose(utilities, _explicit_egl(pipeline[-1], features), rtol=1e-9)


def test_surrogate_for_other_models():
    X, y = _data(3, seed=5)
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    utilities = ExpectedGradientLength().utilities(forest, X)
    proba = forest.predict_proba(X)
    norms = np.sqrt((X**2).sum(axis=1) + 1.0)
    by_hand = [sum(p[k] * np.linalg.norm(p - np.eye(3)[k]) for k in range(3)) * n
               for p, n in zip(proba, norms, strict=True)]
    np.testing.assert_allclose(utilities, by_hand, rtol=1e-12)
    assert np.all(utilities >= 0)


def test_needs_predict_proba_and_takes_only_known_keywords():
    class NoProba:
        pass

    with pytest.raises(ValueError, match="predict_proba"):
        ExpectedGradientLength().utilities(NoProba(), np.zeros((2, 2)))
    with pytest.raises(TypeError):
        ExpectedGradientLength(sample_size=3)
    strategy = ExpectedGradientLength(random_state=1)
    assert strategy.name == "expected_gradient_length" and strategy.description
    assert strategy.get_params() == {"random_state": 1, "batch_mode": "top_k", "batch_params": {}}
