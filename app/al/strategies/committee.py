"""Query by committee (Seung, Opper & Sompolinsky 1992; Settles 2009, section 3.2).

A committee of M classifiers is trained on the labelled items; the items its members disagree
on most are asked for first. With P[m, i, k] the probability member m gives class k for pool
item i (every member's probabilities aligned to the union of labelled classes, zero for a class
a member never saw), and natural logarithms throughout, with 0 log 0 = 0:

  vote entropy       (Dagan & Engelson 1995; Settles 2009, eq. 3.4)
      votes      v[m, i] = argmax_k P[m, i, k]   (first maximum on ties, as numpy and modAL)
      fractions  V[i, k] = #{m : v[m, i] = k} / M
      utility    VE(i)   = -sum_k V[i, k] log V[i, k]
  consensus entropy  (entropy of the committee's mean prediction; modAL's consensus_entropy)
      consensus  Pc[i, k] = (1/M) sum_m P[m, i, k]
      utility    CE(i)    = -sum_k Pc[i, k] log Pc[i, k]
  KL disagreement    (McCallum & Nigam 1998, "KL divergence to the mean"; Settles 2009, eq. 3.5)
      KL_m(i)  = sum_k P[m, i, k] log(P[m, i, k] / Pc[i, k])
      utility  = (1/M) sum_m KL_m(i)      (kl_aggregate="mean", the published measure)
               = max_m KL_m(i)            (kl_aggregate="max", modAL's KL_max_disagreement)

Vote entropy is not divided by log min(M, K) as in Dagan & Engelson's normalised form; the
ranking is the same, and modAL and scikit-activeml do not divide either. KL_m is finite even for
a member that gives a class zero probability (that term is 0), and Pc > 0 wherever some P > 0.
scikit-activeml's `average_kl_divergence` first clips every probability to at least eps = 1e-7
and renormalises; the two agree wherever no probability is below eps.

The committee (`committee=`):
  "bagging" (default)  `n_members` copies of the project's own model (`sklearn.base.clone`),
      each fitted on a bootstrap resample of the labelled items (Abe & Mamitsuka 1998). A resample
      with a single class is redrawn; after `MAX_REDRAWS` failures that member gets the whole
      labelled set. Parameters named `random_state` (also inside a Pipeline) get a fresh seed per
      member, as `BaggingClassifier` does, so stochastic models vary too.
  "heterogeneous"  a fixed set of different linear/probabilistic models on the full labelled
      set, chosen from the features the final classifier sees (after a Pipeline's transformers):
        - LogisticRegression, weak and strong regularisation: C = 0.1 and 10 on dense features,
          C = 1 and 100 on sparse ones (unit-length TF-IDF rows need larger weights);
        - SGDClassifier(loss="log_loss"): a differently regularised, stochastic linear model;
        - MultinomialNB(alpha=0.1), only when every feature value is non-negative
          (TF-IDF, counts);
        - GaussianNB, only on dense features.
      That is 4 members for TF-IDF or standardised tabular data (5 for dense non-negative data);
      `n_members` applies to bagging only. If the model is a Pipeline, its last step is replaced.

Cost: fitting M members on the labelled set, then M predict_proba calls over the pool, done in
chunks of `chunk_rows` rows so the extra memory is one (M x chunk x K) block per thread: linear
in pool size, about M times the cost of the uncertainty strategies. Chunks are scored by
`n_threads` threads (numpy, scipy and BLAS release the GIL). BLAS is held to one thread for the
whole call (threadpoolctl, process-wide while it lasts): multi-threaded OpenBLAS on the skinny
(chunk x features) @ (features x K) products and on small labelled sets is slower than one
thread, ten times slower for small fits on a busy machine.
"""

import numbers
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from scipy.special import entr, rel_entr
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.naive_bayes import GaussianNB, MultinomialNB
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing
from threadpoolctl import threadpool_limits

from app.al.strategies.base import QueryStrategy

COMMITTEES = ("bagging", "heterogeneous")
KL_AGGREGATES = ("mean", "max")
MAX_MEMBERS = 50
MAX_REDRAWS = 100
_SEED_MAX = 2**31 - 1


def _default_threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


# --- formulas on member probabilities of shape (n_members, n_samples, n_classes) -------------

def _check_member_proba(member_proba) -> np.ndarray:
    proba = np.asarray(member_proba, dtype=float)
    if proba.ndim != 3:
        raise ValueError("member probabilities must have shape (n_members, n_samples, n_classes), "
                         f"got {proba.ndim} dimension(s)")
    if proba.shape[0] < 1 or proba.shape[2] < 1:
        raise ValueError("member probabilities need at least one member and one class")
    return proba


def _row_entropy(p: np.ndarray) -> np.ndarray:
    """-sum_k p log p per row, natural log, 0 log 0 = 0."""
    return entr(p).sum(axis=1)


def vote_fractions_from_proba(member_proba) -> np.ndarray:
    """(n_samples, n_classes): share of members whose most probable class (first max) is k."""
    proba = _check_member_proba(member_proba)
    n_members, n_samples, n_classes = proba.shape
    counts = np.zeros((n_samples, n_classes))
    rows = np.arange(n_samples)
    for member in proba:
        counts[rows, member.argmax(axis=1)] += 1.0  # each row index once per member: no clash
    return counts / n_members


def vote_entropy_from_proba(member_proba) -> np.ndarray:
    """Entropy of the members' hard-vote distribution (Dagan & Engelson 1995)."""
    return _row_entropy(vote_fractions_from_proba(member_proba))


def consensus_entropy_from_proba(member_proba) -> np.ndarray:
    """Entropy of the members' mean probability vector."""
    return _row_entropy(_check_member_proba(member_proba).mean(axis=0))


def kl_disagreement_from_proba(member_proba, aggregate: str = "mean") -> np.ndarray:
    """Mean (McCallum & Nigam 1998) or max (modAL) over members of KL(member || consensus)."""
    if aggregate not in KL_AGGREGATES:
        raise ValueError(f"unknown KL aggregate {aggregate!r}; choose one of {', '.join(KL_AGGREGATES)}")
    proba = _check_member_proba(member_proba)
    consensus = proba.mean(axis=0)
    out = None
    for member in proba:
        # rel_entr(p, q) = p log(p / q), 0 where p = 0; q > 0 wherever p > 0 (q >= p / M)
        kl = rel_entr(member, consensus).sum(axis=1)
        if out is None:
            out = kl
        elif aggregate == "mean":
            out += kl
        else:
            np.maximum(out, kl, out=out)
    if aggregate == "mean":
        out /= proba.shape[0]
    # KL >= 0; rounding can leave -1e-17 for members that agree with the consensus
    return np.maximum(out, 0.0, out=out)


# --- the committee --------------------------------------------------------------------------

def _n_rows(X) -> int:
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _reseed(estimator, rng: np.random.Generator):
    """A fresh integer seed for every `random_state` parameter, nested ones included."""
    keys = [key for key in estimator.get_params(deep=True)
            if key == "random_state" or key.endswith("__random_state")]
    if keys:
        estimator.set_params(**{key: int(rng.integers(_SEED_MAX)) for key in keys})
    return estimator


def _bootstrap_indices(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = y.shape[0]
    for _ in range(MAX_REDRAWS):
        idx = rng.integers(0, n, size=n)
        if np.unique(y[idx]).shape[0] >= 2:
            return idx
    return np.arange(n)


def _final_features(model, X):
    """X as the model's last step sees it (a fitted Pipeline's transformers applied)."""
    if isinstance(model, Pipeline) and len(model.steps) > 1:
        return model[:-1].transform(X)
    return X


def _non_negative(X) -> bool:
    if sp.issparse(X):
        data = X.data
        return data.size == 0 or bool(data.min() >= 0)
    X = np.asarray(X)
    if not np.issubdtype(X.dtype, np.number):
        return False
    return X.size == 0 or bool(X.min() >= 0)


def heterogeneous_members(model, X_labeled, X_pool=None) -> list:
    """Unfitted members of the heterogeneous committee (see the module docstring)."""
    features = _final_features(model, X_labeled)
    sparse = sp.issparse(features)
    non_negative = _non_negative(features)
    if non_negative and X_pool is not None and not isinstance(model, Pipeline):
        non_negative = _non_negative(X_pool)
    small_c, large_c = (1.0, 100.0) if sparse else (0.1, 10.0)
    members = [
        LogisticRegression(C=small_c, max_iter=2000),
        LogisticRegression(C=large_c, max_iter=2000),
        SGDClassifier(loss="log_loss", alpha=1e-4, max_iter=1000, tol=1e-3),
    ]
    if non_negative:
        members.append(MultinomialNB(alpha=0.1))
    if not sparse:
        members.append(GaussianNB())
    if isinstance(model, Pipeline):
        last = model.steps[-1][0]
        members = [clone(model).set_params(**{last: member}) for member in members]
    return members


def build_committee(model, X_labeled, y_labeled, *, committee: str = "bagging", n_members: int = 5,
                    rng: np.random.Generator | None = None, X_pool=None) -> tuple[list, np.ndarray]:
    """Fitted members and the classes (`np.unique(y_labeled)`) their probabilities align to."""
    if X_labeled is None or y_labeled is None:
        raise ValueError("a committee strategy needs the labelled items (X_labeled and y_labeled) "
                         "to train its members")
    if committee not in COMMITTEES:
        raise ValueError(f"unknown committee {committee!r}; choose one of {', '.join(COMMITTEES)}")
    if committee == "bagging" and not hasattr(model, "predict_proba"):
        raise ValueError("a bagging committee needs a model that predicts probabilities (predict_proba)")
    rng = np.random.default_rng(rng)
    y = np.asarray(y_labeled)
    if y.ndim != 1:
        raise ValueError("y_labeled must be one label per labelled item")
    if _n_rows(X_labeled) != y.shape[0]:
        raise ValueError(f"X_labeled has {_n_rows(X_labeled)} rows but y_labeled has {y.shape[0]} labels")
    classes = np.unique(y)
    if classes.shape[0] < 2:
        raise ValueError("a committee needs labelled items of at least two different labels")

    members = []
    if committee == "bagging":
        for _ in range(n_members):
            idx = _bootstrap_indices(y, rng)
            member = _reseed(clone(model), rng)
            members.append(member.fit(_safe_indexing(X_labeled, idx), y[idx]))
    else:
        for member in heterogeneous_members(model, X_labeled, X_pool):
            members.append(_reseed(member, rng).fit(X_labeled, y))
    return members, classes


def _class_positions(member, classes: np.ndarray) -> np.ndarray:
    member_classes = np.asarray(member.classes_)
    positions = np.searchsorted(classes, member_classes)
    if (positions >= classes.shape[0]).any() or not np.array_equal(classes[positions], member_classes):
        raise ValueError("a committee member predicts classes outside the labelled ones")
    return positions


def member_probabilities(members, classes: np.ndarray, X) -> np.ndarray:
    """(n_members, n_rows, n_classes) probabilities of X, zero for classes a member never saw."""
    n = _n_rows(X)
    out = np.zeros((len(members), n, classes.shape[0]))
    for m, member in enumerate(members):
        positions = _class_positions(member, classes)
        proba = np.asarray(member.predict_proba(X), dtype=float)
        if positions.shape[0] == classes.shape[0]:
            out[m] = proba
        else:
            out[m][:, positions] = proba
    return out


# --- strategies ------------------------------------------------------------------------------

def _check_n_members(n_members) -> int:
    if isinstance(n_members, bool) or not isinstance(n_members, numbers.Integral):
        # ValueError, not TypeError: parameter problems reach users as 422s
        raise ValueError(f"n_members must be a whole number, got {n_members!r}")  # noqa: TRY004
    if not 2 <= n_members <= MAX_MEMBERS:
        raise ValueError(f"n_members must be between 2 and {MAX_MEMBERS}, got {n_members}")
    return int(n_members)


class _CommitteeStrategy(QueryStrategy):
    chunk_rows: int = 16_384
    n_threads: int = _default_threads()

    def __init__(self, n_members: int = 5, committee: str = "bagging", random_state: int | None = None,
                 batch_mode: str = "top_k", batch_params: dict | None = None):
        super().__init__(random_state=random_state, batch_mode=batch_mode, batch_params=batch_params)
        self.n_members = _check_n_members(n_members)
        if committee not in COMMITTEES:
            raise ValueError(f"unknown committee {committee!r}; choose one of {', '.join(COMMITTEES)}")
        self.committee = committee

    def _from_member_proba(self, member_proba: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def utilities(self, model, X_pool, X_labeled=None, y_labeled=None) -> np.ndarray:
        # One BLAS thread: the labelled set is small and the pool is split across our own threads.
        with threadpool_limits(limits=1, user_api="blas"):
            members, classes = build_committee(model, X_labeled, y_labeled, committee=self.committee,
                                               n_members=self.n_members, rng=self._rng(), X_pool=X_pool)
            return self._score_pool(members, classes, X_pool)

    def _score_pool(self, members, classes, X_pool) -> np.ndarray:
        n = _n_rows(X_pool)
        out = np.empty(n)
        starts = range(0, n, self.chunk_rows)

        def score(start: int) -> None:
            stop = min(start + self.chunk_rows, n)
            chunk_proba = member_probabilities(members, classes, X_pool[start:stop])
            out[start:stop] = self._from_member_proba(chunk_proba)

        if self.n_threads <= 1 or len(starts) <= 1:
            for start in starts:
                score(start)
        else:
            with ThreadPoolExecutor(self.n_threads) as pool:
                for _ in pool.map(score, starts):  # re-raises a worker's exception here
                    pass
        return out

    def get_params(self) -> dict:
        return {**super().get_params(), "n_members": self.n_members, "committee": self.committee}


class VoteEntropy(_CommitteeStrategy):
    name = "vote_entropy"
    description = "Items on which a committee of several models splits its votes most evenly."

    def _from_member_proba(self, member_proba):
        return vote_entropy_from_proba(member_proba)


class ConsensusEntropy(_CommitteeStrategy):
    name = "consensus_entropy"
    description = "Items whose label is least certain when a committee of several models averages its predictions."

    def _from_member_proba(self, member_proba):
        return consensus_entropy_from_proba(member_proba)


class KLDisagreement(_CommitteeStrategy):
    name = "kl_disagreement"
    description = "Items on which the label probabilities of a committee of several models differ most."

    def __init__(self, n_members: int = 5, committee: str = "bagging", kl_aggregate: str = "mean",
                 random_state: int | None = None, batch_mode: str = "top_k", batch_params: dict | None = None):
        super().__init__(n_members=n_members, committee=committee, random_state=random_state,
                         batch_mode=batch_mode, batch_params=batch_params)
        if kl_aggregate not in KL_AGGREGATES:
            raise ValueError(f"unknown kl_aggregate {kl_aggregate!r}; choose one of {', '.join(KL_AGGREGATES)}")
        self.kl_aggregate = kl_aggregate

    def _from_member_proba(self, member_proba):
        return kl_disagreement_from_proba(member_proba, aggregate=self.kl_aggregate)

    def get_params(self) -> dict:
        return {**super().get_params(), "kl_aggregate": self.kl_aggregate}


__all__ = [
    "ConsensusEntropy",
    "KLDisagreement",
    "VoteEntropy",
    "build_committee",
    "consensus_entropy_from_proba",
    "heterogeneous_members",
    "kl_disagreement_from_proba",
    "member_probabilities",
    "vote_entropy_from_proba",
    "vote_fractions_from_proba",
]
