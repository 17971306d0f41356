"""Query-by-committee: the formulas against modAL and scikit-activeml, then the strategies end to end."""

import numpy as np
import pytest
import scipy.sparse as sp
from modAL.disagreement import KL_max_disagreement, consensus_entropy, vote_entropy
from modAL.models import ActiveLearner, Committee
from scipy.stats import entropy
from skactiveml.pool._query_by_committee import average_kl_divergence
from skactiveml.pool._query_by_committee import vote_entropy as skal_vote_entropy
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.naive_bayes import GaussianNB, MultinomialNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from app.al.strategies.committee import (
    ConsensusEntropy,
    KLDisagreement,
    VoteEntropy,
    build_committee,
    consensus_entropy_from_proba,
    heterogeneous_members,
    kl_disagreement_from_proba,
    member_probabilities,
    vote_entropy_from_proba,
    vote_fractions_from_proba,
)

STRATEGY_CLASSES = (VoteEntropy, ConsensusEntropy, KLDisagreement)
TOL = 1e-9


# --- fixtures -----------------------------------------------------------------------------

@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """The fixtures' own small fits, like the strategies', are much faster with one BLAS thread."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _blobs(n=400, n_classes=4, d=4, spread=1.6, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(n_classes, d))
    y = rng.integers(0, n_classes, n)
    X = centers[y] + rng.normal(scale=spread, size=(n, d))
    return X, y


@pytest.fixture(scope="module")
def fitted_members():
    """Three logistic regressions on different subsets; the third never saw class 3."""
    X, y = _blobs()
    rng = np.random.default_rng(1)
    members = []
    for i in range(3):
        idx = rng.choice(200, size=40, replace=False)
        if i == 2:
            idx = idx[y[idx] != 3]
        members.append(LogisticRegression(C=0.5, max_iter=2000).fit(X[idx], y[idx]))
    assert list(members[2].classes_) == [0, 1, 2]
    return members, X[200:]


def _modal_committee(members):
    """A modAL Committee around already fitted estimators (no X_training: nothing is refitted)."""
    return Committee(learner_list=[ActiveLearner(estimator=m) for m in members])


class _FixedProba:
    """A 'fitted classifier' returning given probabilities for row i when X[i, 0] == i; predict is
    the first most probable class, like scikit-learn's argmax-based predict."""

    def __init__(self, proba, classes):
        self.proba = np.asarray(proba, dtype=float)
        self.classes_ = np.asarray(classes)

    def predict_proba(self, X):
        return self.proba[np.asarray(X)[:, 0].astype(int)]

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def _crafted():
    """Random probabilities with exact zeros and exact ties; member 1 never saw class 2."""
    rng = np.random.default_rng(5)
    n, k = 60, 4
    probas = []
    # exact ties, split so that breaking them at the first or the last maximum changes the votes
    ties = [[0.4, 0.4, 0.2, 0.0], [0.0, 0.5, 0.0, 0.5], [0.25, 0.25, 0.25, 0.25], [0.6, 0.1, 0.3, 0.0]]
    for m in range(4):
        p = rng.dirichlet(np.full(k, 0.7), size=n)
        p[rng.random((n, k)) < 0.2] = 0.0
        p[:5] = ties[m]
        p[5:8] = np.eye(k)[m % k]  # one-hot, 0 log 0 everywhere else
        p[p.sum(axis=1) == 0, 0] = 1.0
        p /= p.sum(axis=1, keepdims=True)
        probas.append(p)
    probas[1][:, 2] = 0.0
    probas[1] /= probas[1].sum(axis=1, keepdims=True)
    classes = np.arange(k)
    estimators = [_FixedProba(p, classes) for p in probas]
    estimators[1] = _FixedProba(np.delete(probas[1], 2, axis=1), np.array([0, 1, 3]))
    X = np.arange(n, dtype=float).reshape(-1, 1)
    return estimators, X, np.stack(probas)


# --- formulas against the peers --------------------------------------------------------------

def test_member_probabilities_align_like_modal(fitted_members):
    members, X = fitted_members
    P = member_probabilities(members, np.arange(4), X)
    assert P.shape == (3, X.shape[0], 4)
    np.testing.assert_array_equal(P[2][:, 3], 0.0)
    np.testing.assert_allclose(P.sum(axis=2), 1.0, atol=1e-12)
    expected = _modal_committee(members).vote_proba(X).transpose(1, 0, 2)
    np.testing.assert_allclose(P, expected, rtol=0, atol=1e-15)


def test_votes_are_the_members_predictions(fitted_members):
    members, X = fitted_members
    P = member_probabilities(members, np.arange(4), X)
    votes = P.argmax(axis=2)
    for m, member in enumerate(members):
        np.testing.assert_array_equal(votes[m], member.predict(X))


def test_vote_entropy_matches_modal_and_skactiveml(fitted_members):
    members, X = fitted_members
    P = member_probabilities(members, np.arange(4), X)
    ours = vote_entropy_from_proba(P)
    assert (ours > 0).sum() > 10, "the committee should disagree somewhere for this test to mean anything"
    np.testing.assert_allclose(ours, vote_entropy(_modal_committee(members), X), rtol=0, atol=TOL)
    votes = np.column_stack([m.predict(X) for m in members])
    np.testing.assert_allclose(ours, skal_vote_entropy(votes, classes=np.arange(4)), rtol=0, atol=TOL)


def test_consensus_entropy_matches_modal(fitted_members):
    members, X = fitted_members
    ours = consensus_entropy_from_proba(member_probabilities(members, np.arange(4), X))
    assert ours.std() > 0.05
    np.testing.assert_allclose(ours, consensus_entropy(_modal_committee(members), X), rtol=0, atol=TOL)


def test_kl_max_matches_modal(fitted_members):
    members, X = fitted_members
    ours = kl_disagreement_from_proba(member_probabilities(members, np.arange(4), X), aggregate="max")
    assert ours.max() > 0.05
    np.testing.assert_allclose(ours, KL_max_disagreement(_modal_committee(members), X), rtol=0, atol=TOL)


def test_kl_mean_matches_skactiveml_where_no_probability_is_clipped(fitted_members):
    # scikit-activeml clips probabilities to >= eps (1e-7) and renormalises before the KL;
    # with every probability above eps that is the identity and the two must coincide.
    members, X = fitted_members
    P = member_probabilities(members[:2], np.arange(4), X)
    rows = (P >= 1e-7).all(axis=(0, 2))
    assert rows.sum() > 100
    ours = kl_disagreement_from_proba(P, aggregate="mean")
    assert ours[rows].max() > 0.01
    np.testing.assert_allclose(ours[rows], average_kl_divergence(P.copy())[rows], rtol=0, atol=TOL)


def test_kl_mean_matches_skactiveml_after_its_clipping_when_a_member_lacks_a_class(fitted_members):
    members, X = fitted_members
    P = member_probabilities(members, np.arange(4), X)
    theirs = average_kl_divergence(P.copy())
    clipped = np.clip(P, 1e-7, 1.0)
    clipped /= clipped.sum(axis=2, keepdims=True)
    np.testing.assert_allclose(kl_disagreement_from_proba(clipped), theirs, rtol=0, atol=TOL)
    # without the clipping the exact zero of the member that never saw class 3 counts as 0 log 0:
    # a small difference, but far above the tolerance the comparisons use
    assert np.abs(kl_disagreement_from_proba(P) - theirs).min() > 100 * TOL


def test_kl_mean_is_the_mean_of_scipy_kl_to_the_consensus(fitted_members):
    members, X = fitted_members
    P = member_probabilities(members, np.arange(4), X)
    consensus = P.mean(axis=0)
    expected = np.mean([entropy(p, consensus, axis=1) for p in P], axis=0)
    np.testing.assert_allclose(kl_disagreement_from_proba(P, aggregate="mean"), expected, rtol=0, atol=TOL)


def test_crafted_probabilities_with_ties_zeros_and_a_missing_class_match_modal():
    estimators, X, P_full = _crafted()
    committee = _modal_committee(estimators)
    P = member_probabilities(estimators, np.arange(4), X)
    np.testing.assert_allclose(P, P_full, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(vote_fractions_from_proba(P)[0], [0.75, 0.25, 0.0, 0.0])
    np.testing.assert_allclose(vote_entropy_from_proba(P), vote_entropy(committee, X), rtol=0, atol=TOL)
    np.testing.assert_allclose(consensus_entropy_from_proba(P), consensus_entropy(committee, X), rtol=0, atol=TOL)
    np.testing.assert_allclose(kl_disagreement_from_proba(P, "max"), KL_max_disagreement(committee, X),
                               rtol=0, atol=TOL)
    assert np.isfinite(kl_disagreement_from_proba(P)).all()


def test_vote_entropy_by_hand_and_ties_go_to_the_first_class():
    P = np.array([
        [[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.2, 0.3, 0.5]],
        [[0.2, 0.8, 0.0], [1.0, 0.0, 0.0], [0.3, 0.3, 0.4]],
        [[0.1, 0.1, 0.8], [0.9, 0.1, 0.0], [0.1, 0.45, 0.45]],
    ])
    np.testing.assert_array_equal(vote_fractions_from_proba(P),
                                  [[1 / 3, 1 / 3, 1 / 3], [1, 0, 0], [0, 1 / 3, 2 / 3]])
    np.testing.assert_allclose(vote_entropy_from_proba(P),
                               [np.log(3), 0.0, -(1 / 3) * np.log(1 / 3) - (2 / 3) * np.log(2 / 3)], atol=1e-15)


def test_agreeing_members_have_zero_disagreement_and_the_consensus_keeps_its_entropy():
    p = np.random.default_rng(2).dirichlet(np.ones(3), size=20)
    p[0] = [1.0, 0.0, 0.0]
    P = np.stack([p, p, p])
    assert vote_entropy_from_proba(P).max() == 0.0
    np.testing.assert_allclose(kl_disagreement_from_proba(P), 0.0, atol=1e-15)
    np.testing.assert_allclose(kl_disagreement_from_proba(P, "max"), 0.0, atol=1e-15)
    assert (kl_disagreement_from_proba(P) >= 0).all()
    np.testing.assert_allclose(consensus_entropy_from_proba(P), entropy(p, axis=1), atol=1e-12)


def test_kl_of_two_opposite_one_hot_members_is_log_two():
    P = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    np.testing.assert_allclose(kl_disagreement_from_proba(P), [np.log(2)], atol=1e-15)
    np.testing.assert_allclose(kl_disagreement_from_proba(P, "max"), [np.log(2)], atol=1e-15)
    np.testing.assert_allclose(consensus_entropy_from_proba(P), [np.log(2)], atol=1e-15)
    np.testing.assert_allclose(vote_entropy_from_proba(P), [np.log(2)], atol=1e-15)


def test_max_is_at_least_mean():
    P = np.random.default_rng(3).dirichlet(np.ones(5), size=(4, 50))
    assert (kl_disagreement_from_proba(P, "max") >= kl_disagreement_from_proba(P, "mean") - 1e-15).all()


def test_formula_input_checks():
    with pytest.raises(ValueError, match="shape"):
        vote_entropy_from_proba(np.ones((3, 2)) / 2)
    with pytest.raises(ValueError, match="unknown KL aggregate 'median'"):
        kl_disagreement_from_proba(np.ones((2, 3, 2)) / 2, aggregate="median")


# --- strategies end to end -----------------------------------------------------------------

@pytest.fixture(scope="module")
def dense_problem():
    X, y = _blobs(n=330, n_classes=3, d=5, spread=2.0, seed=4)
    X = StandardScaler().fit_transform(X)
    X_lab, y_lab, X_pool = X[:30], y[:30], X[30:]
    model = LogisticRegression(max_iter=2000).fit(X_lab, y_lab)
    return model, X_pool, X_lab, y_lab


TEXTS = {
    "sport": ["the striker scored a late goal", "a tense match ended in a draw", "the coach praised the team",
              "fans cheered the winning goal", "the keeper saved a penalty", "the league title race tightens",
              "a hat trick for the young striker", "the team trained before the final", "match report goal"],
    "food": ["a slow cooked tomato sauce", "bake the bread until golden", "fresh basil and olive oil",
             "the soup needs more salt", "roast the garlic with butter", "a sweet lemon tart recipe",
             "simmer the sauce for an hour", "knead the bread dough", "olive oil on warm bread"],
    "tech": ["the new phone has a faster chip", "update the laptop software", "a bug crashed the server",
             "the app stores data in the cloud", "install the security patch", "a faster chip for the laptop",
             "the server software update", "the phone app crashed", "cloud data centre outage"],
}


@pytest.fixture(scope="module")
def text_problem():
    texts = [t for label in TEXTS for t in TEXTS[label]]
    labels = np.array([label for label in TEXTS for _ in TEXTS[label]], dtype=object)
    order = np.random.default_rng(0).permutation(len(texts))
    texts = [texts[i] for i in order]
    labels = labels[order]
    labelled = np.arange(15)
    return texts, labels, labelled


@pytest.mark.parametrize("cls", STRATEGY_CLASSES)
def test_bagging_on_dense_features(cls, dense_problem):
    model, X_pool, X_lab, y_lab = dense_problem
    strategy = cls(n_members=3, random_state=0)
    u = strategy.utilities(model, X_pool, X_lab, y_lab)
    assert u.shape == (X_pool.shape[0],) and u.dtype == float
    assert np.isfinite(u).all() and (u >= 0).all() and u.max() > 0
    if cls is VoteEntropy:
        assert u.max() <= np.log(3) + 1e-12
    if cls is ConsensusEntropy:
        assert u.max() <= np.log(3) + 1e-12
    np.testing.assert_array_equal(u, cls(n_members=3, random_state=0).utilities(model, X_pool, X_lab, y_lab))
    assert not np.array_equal(u, cls(n_members=3, random_state=1).utilities(model, X_pool, X_lab, y_lab))
    order = strategy.rank(u)
    assert sorted(order.tolist()) == list(range(X_pool.shape[0]))
    assert np.all(np.diff(u[order]) <= 0)
    np.testing.assert_array_equal(strategy.select(u, 7), order[:7])


@pytest.mark.parametrize("cls", STRATEGY_CLASSES)
def test_strategy_equals_formula_on_its_committee(cls, dense_problem):
    model, X_pool, X_lab, y_lab = dense_problem
    members, classes = build_committee(model, X_lab, y_lab, n_members=3, rng=np.random.default_rng(9))
    assert len(members) == 3 and all(m is not model for m in members)
    P = member_probabilities(members, classes, X_pool)
    formula = {VoteEntropy: vote_entropy_from_proba, ConsensusEntropy: consensus_entropy_from_proba,
               KLDisagreement: kl_disagreement_from_proba}[cls]
    u = cls(n_members=3, random_state=9).utilities(model, X_pool, X_lab, y_lab)
    np.testing.assert_allclose(u, formula(P), rtol=0, atol=1e-12)


def test_chunked_threaded_scoring_equals_one_block(dense_problem):
    model, X_pool, X_lab, y_lab = dense_problem
    whole = KLDisagreement(n_members=3, random_state=2)
    whole.chunk_rows, whole.n_threads = 10**6, 1
    chunked = KLDisagreement(n_members=3, random_state=2)
    chunked.chunk_rows, chunked.n_threads = 7, 2
    np.testing.assert_allclose(chunked.utilities(model, X_pool, X_lab, y_lab),
                               whole.utilities(model, X_pool, X_lab, y_lab), rtol=0, atol=1e-12)


@pytest.mark.parametrize("cls", STRATEGY_CLASSES)
def test_bagging_on_sparse_tfidf_with_string_labels(cls, text_problem):
    texts, labels, labelled = text_problem
    X = TfidfVectorizer().fit_transform(texts)
    assert sp.issparse(X)
    model = LogisticRegression(C=10.0, max_iter=2000).fit(X[labelled], labels[labelled])
    u = cls(n_members=3, random_state=3).utilities(model, X, X[labelled], labels[labelled])
    assert u.shape == (len(texts),) and np.isfinite(u).all() and (u >= 0).all() and u.max() > 0
    again = cls(n_members=3, random_state=3).utilities(model, X, X[labelled], labels[labelled])
    np.testing.assert_array_equal(u, again)
    _, classes = build_committee(model, X[labelled], labels[labelled], n_members=3,
                                       rng=np.random.default_rng(3))
    assert list(classes) == ["food", "sport", "tech"]


def test_pipeline_on_raw_texts(text_problem):
    texts, labels, labelled = text_problem
    model = make_pipeline(TfidfVectorizer(), LogisticRegression(C=10.0, max_iter=2000))
    X_lab = [texts[i] for i in labelled]
    model.fit(X_lab, labels[labelled])
    for committee in ("bagging", "heterogeneous"):
        u = ConsensusEntropy(committee=committee, random_state=0).utilities(model, texts, X_lab, labels[labelled])
        assert u.shape == (len(texts),) and np.isfinite(u).all()
    members = heterogeneous_members(model, X_lab)
    assert [type(m[-1]) for m in members] == [LogisticRegression, LogisticRegression, SGDClassifier, MultinomialNB]


def test_a_member_missing_a_class_gets_zero_for_it():
    X, y = _blobs(n=220, n_classes=3, d=3, spread=1.0, seed=6)
    y = y.astype(str).astype(object)
    lab = np.concatenate([np.flatnonzero(y != "2")[:19], np.flatnonzero(y == "2")[:1]])
    X_lab, y_lab = X[lab], y[lab]
    model = LogisticRegression(max_iter=2000).fit(X_lab, y_lab)
    members, classes = build_committee(model, X_lab, y_lab, n_members=8, rng=np.random.default_rng(0))
    lacking = [i for i, m in enumerate(members) if "2" not in m.classes_]
    assert lacking and len(lacking) < 8
    P = member_probabilities(members, classes, X)
    np.testing.assert_array_equal(P[lacking][:, :, 2], 0.0)
    np.testing.assert_allclose(P.sum(axis=2), 1.0, atol=1e-12)
    for formula in (vote_entropy_from_proba, consensus_entropy_from_proba, kl_disagreement_from_proba):
        assert np.isfinite(formula(P)).all() and (formula(P) >= 0).all()
    u = KLDisagreement(n_members=8, random_state=0).utilities(model, X, X_lab, y_lab)
    np.testing.assert_allclose(u, kl_disagreement_from_proba(P), rtol=0, atol=1e-12)


def test_bootstrap_redraws_until_two_classes():
    # two labelled items: half of all bootstrap draws hold one class only and must be redrawn
    X_lab, y_lab = np.array([[0.0], [1.0]]), np.array(["a", "b"], dtype=object)
    model = LogisticRegression().fit(X_lab, y_lab)
    members, _ = build_committee(model, X_lab, y_lab, n_members=10, rng=np.random.default_rng(0))
    assert all(len(m.classes_) == 2 for m in members)


def test_heterogeneous_committees_suit_the_features(dense_problem, text_problem):
    model, X_pool, X_lab, y_lab = dense_problem
    dense = heterogeneous_members(model, X_lab, X_pool)
    assert [type(m) for m in dense] == [LogisticRegression, LogisticRegression, SGDClassifier, GaussianNB]
    texts, labels, labelled = text_problem
    X = TfidfVectorizer().fit_transform(texts)
    sparse = heterogeneous_members(model, X[labelled], X)
    assert [type(m) for m in sparse] == [LogisticRegression, LogisticRegression, SGDClassifier, MultinomialNB]
    non_negative = heterogeneous_members(model, np.abs(X_lab), np.abs(X_pool))
    assert [type(m) for m in non_negative][-2:] == [MultinomialNB, GaussianNB]
    for cls in STRATEGY_CLASSES:
        u = cls(committee="heterogeneous", random_state=0).utilities(model, X_pool, X_lab, y_lab)
        assert np.isfinite(u).all() and (u >= 0).all() and u.max() > 0
        text_model = LogisticRegression(max_iter=2000).fit(X[labelled], labels[labelled])
        u = cls(committee="heterogeneous", random_state=0).utilities(text_model, X, X[labelled], labels[labelled])
        assert np.isfinite(u).all()


def test_names_descriptions_and_params():
    assert [c.name for c in STRATEGY_CLASSES] == ["vote_entropy", "consensus_entropy", "kl_disagreement"]
    for cls in STRATEGY_CLASSES:
        assert cls.description and "\n" not in cls.description
        params = cls(n_members=3, committee="heterogeneous", random_state=4).get_params()
        assert params["n_members"] == 3 and params["committee"] == "heterogeneous"
        assert params["random_state"] == 4 and params["batch_mode"] == "top_k"
        assert cls(**params).get_params() == params
    assert KLDisagreement(kl_aggregate="max").get_params()["kl_aggregate"] == "max"
    assert "kl_aggregate" not in VoteEntropy().get_params()


@pytest.mark.parametrize("cls", STRATEGY_CLASSES)
def test_parameter_validation(cls):
    for bad in (1, 0, -3, 51):
        with pytest.raises(ValueError, match="n_members must be between 2 and 50"):
            cls(n_members=bad)
    for bad in (2.5, True, "5", None):
        with pytest.raises(ValueError, match="n_members must be a whole number"):
            cls(n_members=bad)
    with pytest.raises(ValueError, match="unknown committee 'forest'; choose one of bagging, heterogeneous"):
        cls(committee="forest")
    with pytest.raises(ValueError, match="unknown batch mode"):
        cls(batch_mode="nope")
    with pytest.raises(TypeError):
        cls(members=5)
    with pytest.raises(ValueError, match="needs a model that predicts probabilities"):
        cls().utilities(LinearSVC().fit([[0.0], [1.0]], [0, 1]), np.zeros((3, 1)), [[0.0], [1.0]], [0, 1])
    assert cls(n_members=np.int64(3)).n_members == 3


def test_kl_aggregate_validation_and_only_kl_takes_it():
    with pytest.raises(ValueError, match="unknown kl_aggregate 'median'; choose one of mean, max"):
        KLDisagreement(kl_aggregate="median")
    with pytest.raises(TypeError):
        VoteEntropy(kl_aggregate="max")


@pytest.mark.parametrize("cls", STRATEGY_CLASSES)
def test_the_committee_needs_labelled_data(cls, dense_problem):
    model, X_pool, X_lab, y_lab = dense_problem
    strategy = cls(random_state=0)
    with pytest.raises(ValueError, match="needs the labelled items"):
        strategy.utilities(model, X_pool)
    with pytest.raises(ValueError, match="needs the labelled items"):
        strategy.utilities(model, X_pool, X_lab, None)
    with pytest.raises(ValueError, match="at least two different labels"):
        strategy.utilities(model, X_pool, X_lab, np.zeros(len(y_lab), dtype=int))
    with pytest.raises(ValueError, match="30 rows but y_labeled has 29 labels"):
        strategy.utilities(model, X_pool, X_lab, y_lab[:-1])


def test_empty_and_single_row_pools(dense_problem):
    model, X_pool, X_lab, y_lab = dense_problem
    assert KLDisagreement(random_state=0).utilities(model, X_pool[:0], X_lab, y_lab).shape == (0,)
    assert VoteEntropy(random_state=0).utilities(model, X_pool[:1], X_lab, y_lab).shape == (1,)
