"""`auto`: the adaptive default. A bandit chooses, batch by batch, which strategy asks next, by
the benefit each one's batches were measured to bring; a random share of every batch keeps that
measurement unbiased.

After Hsu & Lin (2015), "Active learning by learning" (AAAI): the strategies are the arms of an
adversarial bandit (EXP3, Auer et al. 2002, where ALBL uses its expert form EXP4.P), rewarded by an
importance-weighted accuracy measured on items queried uniformly at random.

One step (one call of `utilities` then `select` or `rank`):

1. Rewards for the previous batch, whose labels have arrived. The evaluation set E is every
   item ever drawn by the random share that has a label now; item e was drawn uniformly from a
   pool of N_e rows with k_e random slots, so its inclusion probability is q_e = k_e / N_e and its
   importance weight 1 / q_e. Two copies of the project's model are fitted, both without E
   (so E is held out from both): `before` without the previous batch's arm items A, `after` with
   them. With IWACC(h) = sum_e (1/q_e) s_h(e) / sum_e (1/q_e), the self-normalised
   importance-weighted accuracy of Hsu & Lin, the reward of the arm that chose A is

       r = IWACC(after) - IWACC(before),

   the accuracy its items bought (ALBL rewards the level IWACC(after), which favours whatever
   arm happens to be chosen late; the difference measures the arm's own contribution). The
   per-item score s_h(e) is, with `reward="proba"` (default), p_h(y_e | x_e), the expected
   accuracy of the model's probabilities (same expectation as the 0/1 hit of a prediction drawn
   from them, far less noisy on the handful of evaluation items of the first batches); with
   `reward="accuracy"`, ALBL's [h(x_e) = y_e]. A class the model never saw scores 0. No reward
   when E is empty, when no item of A got a label, or when `before` or `after` cannot be fitted
   (one class left): the step is logged with reward None.
2. EXP3 bookkeeping: each arm a keeps G_a, the sum of its importance-weighted reward estimates
   r / p_a (p_a the probability it had when chosen); the arms' probabilities are
       p_a = (1 - gamma) w_a / sum_b w_b + gamma / K,   w_a = prior_a exp(eta * G_a),
   EXP3 started from a prior instead of the uniform distribution. The default arms start from
   the prior the benchmark suite measured (`DEFAULT_PRIORS`: transferring what active learning
   learnt on other datasets, Chu & Lin 2016); a prior set by hand (`prior={arm: weight}`) wins,
   and arms chosen by hand start uniform.
3. An arm is drawn from p and scores the pool; `select` / `rank` fill the batch's
   `random_share` (expected share, see `hybrid.random_slots`) with items drawn uniformly from
   the rest of the pool, and the other slots with the arm's own choice (its batch mode).
   The random items are the evaluation set of later steps and also guard against sampling bias.
4. Cover first. Given the project's label set (`labels`, which the worker and the simulator
   pass), while some label has fewer than two examples and the labels number fewer than two per
   label (`cold_start.still_covering`), the arm's slots go to TypiClust's picks instead
   (`cold_start.typical_uncovered`: the typical item of each large k-means cluster that holds
   no labelled item): uncertainty from a model that has not seen a label says little about it.
   Such a batch is logged as arm "cover", counts as no arm's pull and earns no arm a reward;
   the random share is drawn as usual. On the suite's leaf table (32 labels, 20 first labels)
   auto gained +5.76 AULC points over random with it against +4.19 without (10 repeats, seeds
   0-9; +6.53 against +5.17 with seeds 100-109); the suite's other datasets never meet the rule.

Arms (default, registry names), by the kind of features:
- dense (tables): margin_diverse (uncertainty with k-means batches) and margin (plain
  uncertainty), margin_diverse favoured by the prior. On the suite's 15 tables (10 repeats,
  2026-12-02) margin_diverse alone gained +1.34 AULC points over random, margin +0.96, these two
  arms with the prior +1.27, and the former default arms (margin_diverse, badge, margin, no
  prior) +1.11: with a few hundred labels the bandit cannot tell arms apart by a point, so every
  batch a weaker arm asks costs. Euclidean density on standardised tables and a pure random arm
  lost to random sampling on several benchmark tables (the random share does the exploring);
- sparse (text): margin_diverse, margin_density (uncertainty x cosine density), least_confidence
  and entropy. On the Rotten Tomatoes pool (3 classes) least confidence and entropy gain about
  four points of AULC over random where margin gains less than one, and with these arms auto
  gained +4.06 against +2.91 with the dense arms plus margin_density (10 repeats of the suite's
  protocol, 2026-12-01; docs/strategies.md).
Any registered strategy may be an arm (`arms=[...]`, settings in `arm_params`). Defaults:
random_share 0.1, eta 10, gamma 0.2, prior: margin_diverse 9 on tables (probability 0.82 before
any reward), none on text.

Statelessness: the worker and the simulator create a fresh object per step. The bandit's state
goes in as `state=` (None on a cold start) and comes out as `self.state_` after `select` or
`rank`: a JSON-serialisable dict (see `new_state`). Items are identified by the caller's ids
(`ids_pool`, `ids_labeled`: item ids in the worker, row indices in the simulator, aligned with
X_pool / X_labeled); without ids, a hash of each feature row is used. `self.explanation_` is a
short JSON-serialisable dict for the item's `why` and the dashboard.
"""

import hashlib
import math
from numbers import Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone

from app.al.cold_start import COVER, COVER_REASON, still_covering, typical_uncovered
from app.al.strategies.base import QueryStrategy
from app.al.strategies.hybrid import check_share, mix_random, random_slots

DEFAULT_ARMS = ("margin_diverse", "margin")  # on dense features
# On sparse features (text): cosine density pays there, euclidean density hurt on tables; least
# confidence and entropy beat margin on the multi-class text pool of the suite.
SPARSE_ARMS = ("margin_diverse", "margin_density", "least_confidence", "entropy")
# Prior weights of the default arms (p_a proportional to prior_a exp(eta G_a) before the gamma share):
# what the benchmark suite learnt across datasets, passed on to a new pool (Chu & Lin 2016, "Can
# active learning experience be transferred?"). Rewards measured on a few random items per batch
# are too noisy to find the best arm within a few hundred labels, so a flat start spends most
# batches on the weaker arms (docs/strategies.md).
DEFAULT_PRIORS: dict[tuple[str, ...], dict[str, float]] = {
    DEFAULT_ARMS: {"margin_diverse": 9.0},
}
STATE_VERSION = 1
COVER_ARM = COVER  # what the history, `why` and the dashboard call a cold-start cover batch
HISTORY_LIMIT = 500  # steps kept in state["history"] (the bandit itself needs none of it)
EVALUATION_LIMIT = 5_000  # random-share items kept as the evaluation set
REWARDS = ("proba", "accuracy")


def _check_prior(prior, arms: list[str]) -> dict | None:
    """Prior weights: {arm: positive number}; arms left out weigh 1."""
    if prior is None:
        return None
    if not isinstance(prior, dict):
        raise ValueError(f"prior must map arms to positive weights, got {prior!r}")
    unknown = sorted(set(prior) - set(arms))
    if unknown:
        raise ValueError(f"prior for arms that are not used: {', '.join(unknown)}")
    for arm, weight in prior.items():
        if not isinstance(weight, Real) or isinstance(weight, bool) or not math.isfinite(weight) or weight <= 0:
            raise ValueError(f"the prior weight of {arm} must be a positive number, got {weight!r}")
    return {arm: float(weight) for arm, weight in prior.items()}


def new_state(arms) -> dict:
    """The cold-start state.

    {"version": 1, "arms": [...], "step": 0,
     "gains":   {arm: G_a, the sum of importance-weighted reward estimates r / p_a},
     "pulls":   {arm: batches it chose},  "rewarded": {arm: batches that got a reward},
     "reward_sum": {arm: sum of its raw rewards r},
     "evaluation": [[id, q], ...]  items drawn by the random share, q their inclusion probability,
     "pending": None or {"arm", "probability", "ids": arm items, "random_ids": random items,
                         "q": inclusion probability of each random item, "n_pool"},
     "history": [{"step", "arm", "probability", "n_random", "reward", "n_evaluation"}, ...]}
    """
    arms = list(arms)
    return {"version": STATE_VERSION, "arms": arms, "step": 0,
            "gains": dict.fromkeys(arms, 0.0), "pulls": dict.fromkeys(arms, 0),
            "rewarded": dict.fromkeys(arms, 0), "reward_sum": dict.fromkeys(arms, 0.0),
            "evaluation": [], "pending": None, "history": []}


def _json_id(value):
    """Ids as JSON scalars (numpy ints become ints) so they survive a round trip through JSON."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return str(value)


def row_ids(X) -> list[str]:
    """A content hash per row (16 hex digits): ids for callers that pass none."""
    n = X.shape[0] if hasattr(X, "shape") else len(X)
    if sp.issparse(X):
        X = X.tocsr()
        out = []
        for i in range(n):
            start, stop = X.indptr[i], X.indptr[i + 1]
            h = hashlib.blake2b(digest_size=8)
            h.update(np.ascontiguousarray(X.indices[start:stop]).tobytes())
            h.update(np.ascontiguousarray(X.data[start:stop], dtype=float).tobytes())
            out.append(h.hexdigest())
        return out
    if isinstance(X, np.ndarray) and X.ndim == 2:
        A = np.ascontiguousarray(X, dtype=float)
        return [hashlib.blake2b(A[i].tobytes(), digest_size=8).hexdigest() for i in range(n)]
    return [hashlib.blake2b(repr(x).encode(), digest_size=8).hexdigest() for x in X]


def exp3_probabilities(gains: dict, arms: list[str], eta: float, gamma: float, prior: dict | None = None) -> dict:
    """p_a = (1 - gamma) w_a / sum(w) + gamma / K with w_a = prior_a exp(eta G_a) (prior 1 when unset)."""
    g = np.asarray([gains.get(a, 0.0) for a in arms], dtype=float) * eta
    weights = np.asarray([(prior or {}).get(a, 1.0) for a in arms], dtype=float)
    w = weights * np.exp(g - g.max())
    p = (1 - gamma) * w / w.sum() + gamma / len(arms)
    return {a: float(p_a) for a, p_a in zip(arms, p, strict=True)}


def importance_weighted_accuracy(predicted, y_true, q) -> float:
    """sum (1/q) [pred = y] / sum (1/q): Hsu & Lin's IW-ACC, self-normalised."""
    w = 1.0 / np.asarray(q, dtype=float)
    correct = np.asarray(predicted, dtype=object) == np.asarray(y_true, dtype=object)
    return float((w * correct).sum() / w.sum())


def true_class_probability(model, X, y_true) -> np.ndarray:
    """p(y_true | x) under `model`; 0 for a class the model has never seen."""
    proba = np.asarray(model.predict_proba(X), dtype=float)
    column = {c: j for j, c in enumerate(model.classes_)}
    out = np.zeros(len(y_true))
    for i, label in enumerate(y_true):
        j = column.get(label)
        if j is not None:
            out[i] = proba[i, j]
    return out


def importance_weighted_score(model, X, y_true, q, reward: str = "accuracy") -> float:
    """IW-ACC of `model` on (X, y_true) with inclusion probabilities q: with reward="accuracy"
    the 0/1 accuracy of its predictions, with reward="proba" the expected accuracy of its
    probabilities (mean p(y_true | x)), a smoother estimate of the same quantity on few items."""
    if reward == "proba":
        w = 1.0 / np.asarray(q, dtype=float)
        return float((w * true_class_probability(model, X, y_true)).sum() / w.sum())
    return importance_weighted_accuracy(model.predict(X), y_true, q)


def _take(X, idx):
    idx = np.asarray(idx, dtype=np.intp)
    if sp.issparse(X) or isinstance(X, np.ndarray):
        return X[idx]
    if hasattr(X, "iloc"):
        return X.iloc[idx]
    return [X[i] for i in idx]


class Auto(QueryStrategy):
    name = "auto"
    description = ("Adaptive: a bandit picks, batch by batch, the strategy whose queries have paid off most "
                   "(active learning by learning), with a random share that keeps the estimates honest.")
    stateful = True  # takes `state=` and the ids; exposes state_ and explanation_

    def __init__(self, arms=None, random_share: float = 0.1, eta: float = 10.0, gamma: float = 0.2,
                 reward: str = "proba", arm_params: dict | None = None, prior: dict | None = None,
                 labels=None, state: dict | None = None,
                 random_state: int | None = None, batch_mode: str = "top_k", batch_params: dict | None = None):
        super().__init__(random_state=random_state, batch_mode=batch_mode, batch_params=batch_params)
        from app.al.strategies import STRATEGIES  # the registry imports this module

        self.arms_setting = None if arms is None else list(arms)
        arms = list(dict.fromkeys(DEFAULT_ARMS + SPARSE_ARMS)) if arms is None else list(arms)
        if not arms or len(set(arms)) != len(arms):
            raise ValueError(f"arms must be distinct strategy names, got {arms!r}")
        for arm in arms:
            if arm == self.name or arm not in STRATEGIES:
                choices = ", ".join(sorted(n for n in STRATEGIES if n != self.name))
                raise ValueError(f"unknown arm {arm!r}; choose among {choices}")
        self.arms = arms
        self.random_share = check_share(random_share)
        for label, value in (("eta", eta), ("gamma", gamma)):
            if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{label} must be a number >= 0, got {value!r}")
        if gamma > 1:
            raise ValueError(f"gamma must lie between 0 and 1, got {gamma!r}")
        self.eta, self.gamma = float(eta), float(gamma)
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {', '.join(REWARDS)}, got {reward!r}")
        self.reward = reward
        arm_params = dict(arm_params or {})
        unknown = sorted(set(arm_params) - set(arms))
        if unknown:
            raise ValueError(f"arm_params for arms that are not used: {', '.join(unknown)}")
        self.arm_params = arm_params
        self.prior_setting = _check_prior(prior, arms)
        if labels is not None and (isinstance(labels, str) or not all(isinstance(x, str) for x in labels)):
            raise ValueError(f"labels must be a list of label names, got {labels!r}")
        self.labels = None if labels is None else list(dict.fromkeys(labels))
        for arm in arms:  # bad arm settings fail now (HTTP 422), not at the first retrain
            STRATEGIES[arm](**arm_params.get(arm, {}))
        if state is not None and (not isinstance(state, dict) or state.get("version") != STATE_VERSION):
            state = None  # unknown or old format: start over rather than fail a retrain
        self.state = state
        self.state_: dict | None = None
        self.explanation_: dict | None = None
        self.random_mask_: np.ndarray | None = None
        self._arm = None
        self._arm_strategy = None
        self._ids_pool = None
        self._state_in = None
        self._rewarded = None
        self._cover = False

    # -- the bandit ------------------------------------------------------------------------

    def probabilities(self, state: dict | None = None) -> dict:
        state = state or self.state or new_state(self.arms)
        return exp3_probabilities(state["gains"], self.arms, self.eta, self.gamma, self.prior_for(self.arms))

    def prior_for(self, arms: list[str]) -> dict | None:
        """The prior weights of `arms`: the configured ones, else the suite's defaults for the
        default arms (none, i.e. uniform, for arms chosen by hand)."""
        if self.prior_setting is not None:
            return self.prior_setting
        if self.arms_setting is None:
            return DEFAULT_PRIORS.get(tuple(arms))
        return None

    def _reward(self, state: dict, model, X_labeled, y_labeled, ids_labeled) -> float | None:
        """IWACC(after) - IWACC(before) for the pending batch (module docstring, step 1)."""
        pending = state.get("pending")
        if not pending or X_labeled is None or y_labeled is None:
            return None
        position = {i: p for p, i in enumerate(ids_labeled)}
        evaluation = [(position[i], q) for i, q in state["evaluation"] if i in position]
        arm_rows = [position[i] for i in pending["ids"] if i in position]
        if not evaluation or not arm_rows:
            return None
        y = np.asarray(y_labeled, dtype=object)
        eval_rows = np.asarray([p for p, _ in evaluation], dtype=np.intp)
        q = np.asarray([q for _, q in evaluation], dtype=float)
        held_out = np.zeros(len(y), dtype=bool)
        held_out[eval_rows] = True
        after_rows = np.flatnonzero(~held_out)
        before_mask = ~held_out
        before_mask[np.asarray(arm_rows, dtype=np.intp)] = False
        before_rows = np.flatnonzero(before_mask)
        if len(np.unique(y[before_rows])) < 2 or len(np.unique(y[after_rows])) < 2:
            return None
        X_eval, y_eval = _take(X_labeled, eval_rows), y[eval_rows]
        scores = []
        for rows in (before_rows, after_rows):
            h = clone(model).fit(_take(X_labeled, rows), y[rows])
            scores.append(importance_weighted_score(h, X_eval, y_eval, q, self.reward))
        return scores[1] - scores[0]

    def _update(self, model, X_labeled, y_labeled, ids_labeled) -> dict:
        state = self.state if self.state is not None else new_state(self.arms)
        state = {**state, "gains": dict(state["gains"]), "pulls": dict(state["pulls"]),
                 "rewarded": dict(state["rewarded"]), "reward_sum": dict(state["reward_sum"]),
                 "evaluation": [list(e) for e in state["evaluation"]], "history": list(state["history"])}
        pending = state.get("pending")
        reward = None
        if pending:
            try:
                reward = self._reward(state, model, X_labeled, y_labeled, ids_labeled)
            except Exception:  # a model that cannot be refitted or scored on the subsets: no reward,
                reward = None  # never a failed retrain
            arm = pending["arm"]
            if reward is not None and arm in state["gains"]:
                state["gains"][arm] += reward / max(pending["probability"], 1e-12)
                state["rewarded"][arm] += 1
                state["reward_sum"][arm] += reward
            if state["history"]:
                state["history"][-1] = {**state["history"][-1], "reward": reward}
            state["pending"] = None
        self._rewarded = reward
        return state

    # -- QueryStrategy -----------------------------------------------------------------------

    def utilities(self, model, X_pool, X_labeled=None, y_labeled=None, *, ids_pool=None,
                  ids_labeled=None) -> np.ndarray:
        from app.al.strategies import get_strategy

        n_pool = X_pool.shape[0] if hasattr(X_pool, "shape") else len(X_pool)
        self._ids_pool = [_json_id(i) for i in ids_pool] if ids_pool is not None else row_ids(X_pool)
        if len(self._ids_pool) != n_pool:
            raise ValueError(f"ids_pool has {len(self._ids_pool)} ids for {n_pool} pool rows")
        if X_labeled is not None and y_labeled is not None:
            labeled = [_json_id(i) for i in ids_labeled] if ids_labeled is not None else row_ids(X_labeled)
            if len(labeled) != len(y_labeled):
                raise ValueError(f"ids_labeled has {len(labeled)} ids for {len(y_labeled)} labelled rows")
        else:
            labeled = []
        if self.arms_setting is None:  # the default arms depend on the kind of features
            self.arms = list(SPARSE_ARMS if sp.issparse(X_pool) else DEFAULT_ARMS)
        if self.state is not None and list(self.state.get("arms", [])) != self.arms:
            self.state = None  # other arms configured: the old estimates say nothing about them
        state = self._update(model, X_labeled, y_labeled, labeled)
        self._state_in = state
        probabilities = self.probabilities(state)
        rng = self._rng()
        arm = self.arms[int(rng.choice(len(self.arms), p=np.asarray([probabilities[a] for a in self.arms])))]
        self._arm, self._probabilities = arm, probabilities
        # a label with fewer than two examples: the batch covers the pool first (the arm's scores
        # still order the rest of the ranking)
        self._cover = still_covering(self.labels, y_labeled)
        self._arm_strategy = get_strategy(arm, random_state=self.random_state, **self.arm_params.get(arm, {}))
        return np.asarray(self._arm_strategy.utilities(model, X_pool, X_labeled, y_labeled), dtype=float)

    def select(self, utilities, batch_size, X_pool=None, X_labeled=None) -> np.ndarray:
        if self._arm_strategy is None:
            raise RuntimeError("call utilities() before select(): it draws the arm and reads the labels")
        utilities = np.asarray(utilities, dtype=float)
        n_pool = utilities.shape[0]
        rng = np.random.default_rng(None if self.random_state is None else [self.random_state, 11])
        k = min(batch_size, n_pool)
        n_random = random_slots(k, self.random_share, rng) if k else 0
        n_arm = k - n_random
        if not n_arm:
            # every slot went to the random share: no item is the cover's, and the rest of the
            # ranking is ordered by the drawn arm, so the batch is logged (and explained) as that arm's
            self._cover = False
            top = np.empty(0, dtype=np.intp)
        elif self._cover and X_pool is not None:
            top = typical_uncovered(X_pool, X_labeled, n_arm, random_state=self.random_state)
        else:
            self._cover = False
            top = self._arm_strategy.select(utilities, n_arm, X_pool, X_labeled)
        batch, flags = mix_random(top, n_random, n_pool, k, rng)
        self.random_mask_ = flags
        self._record(batch, flags, n_pool)
        return batch

    def rank(self, utilities, X_pool=None, batch_size=None, X_labeled=None) -> np.ndarray:
        """The batch (arm items and the random share, as `select`) first, then the rest by the
        arm's utilities. Without a batch size the batch is one item (the next one served)."""
        batch = self.select(utilities, batch_size or 1, X_pool, X_labeled)
        rest = super().rank(utilities, X_pool, None, X_labeled)
        return np.concatenate([batch, rest[~np.isin(rest, batch)]])

    # -- bookkeeping and explanation -----------------------------------------------------------

    def _record(self, batch: np.ndarray, flags: np.ndarray, n_pool: int) -> None:
        state = self._state_in
        arm = COVER_ARM if self._cover else self._arm
        probability = 1.0 if self._cover else self._probabilities[self._arm]
        ids = [self._ids_pool[i] for i in batch]
        arm_ids = [i for i, f in zip(ids, flags, strict=True) if not f]
        random_ids = [i for i, f in zip(ids, flags, strict=True) if f]
        n_random = len(random_ids)
        q = n_random / max(n_pool - len(arm_ids), 1) if n_random else None
        pulls = state["pulls"] if self._cover else {**state["pulls"], arm: state["pulls"][arm] + 1}
        state = {**state, "step": state["step"] + 1, "pulls": pulls}
        state["evaluation"] = (state["evaluation"] + [[i, q] for i in random_ids])[-EVALUATION_LIMIT:]
        # the cover batch is no arm's: its reward is measured (and logged) but credited to none
        state["pending"] = {"arm": arm, "probability": probability, "ids": arm_ids,
                            "random_ids": random_ids, "q": q, "n_pool": n_pool}
        state["history"] = (state["history"] + [{
            "step": state["step"], "arm": arm, "probability": round(probability, 4),
            "n_random": n_random, "reward": None, "n_evaluation": len(state["evaluation"])}])[-HISTORY_LIMIT:]
        self.state_ = state
        self.explanation_ = self._explain(state, random_ids, arm, probability,
                                          cover_ids=arm_ids if self._cover else None)

    def _explain(self, state: dict, random_ids: list, arm: str, p: float, cover_ids: list | None = None) -> dict:
        means = {a: (state["reward_sum"][a] / state["rewarded"][a] if state["rewarded"][a] else None)
                 for a in self.arms}
        rewarded = sum(state["rewarded"].values())
        if self._cover:
            reason = COVER_REASON
        elif rewarded == 0:
            if self.prior_setting is not None:
                start = "the configured prior decides"
            elif self.prior_for(self.arms):
                start = "the prior measured on the benchmark suite decides"
            else:
                start = "every strategy is equally likely"
            reason = f"No batch has been scored yet, so {start}; {arm} was drawn (probability {p:.0%})."
        else:
            best = max((a for a in self.arms if means[a] is not None), key=lambda a: means[a])
            mine = means[arm]
            # the reward: the change its batch made to the model's probability of the true label on
            # the random-share items (not the dashboard's holdout), in points of that probability
            mine_text = (f"its batches changed the model's probability of the right label on the randomly drawn "
                         f"items by {100 * mine:+.1f} points on average over {state['rewarded'][arm]} batches"
                         if mine is not None else "it has no measured batch yet")
            reason = (f"{arm} was drawn with probability {p:.0%}: {mine_text}; the highest average so far is "
                      f"{best}'s ({100 * means[best]:+.1f} points).")
        return {"strategy": self.name, "arm": arm, "probability": round(p, 4),
                "probabilities": {a: round(v, 4) for a, v in self._probabilities.items()},
                "mean_reward": {a: (round(v, 5) if v is not None else None) for a, v in means.items()},
                "last_reward": self._rewarded, "random_share": self.random_share,
                "random_ids": random_ids, "step": state["step"], "reason": reason,
                # past its batch the ranking follows the drawn arm's scores, also after a cover
                # batch (cover_ids: that batch's TypiClust items, None when no cover is due)
                "ranked_by": self._arm, "cover_ids": cover_ids,
                "random_reason": ("Drawn at random (the random share): an unbiased check of how much each "
                                  "strategy's picks improve the model.")}

    def get_params(self) -> dict:
        return {**super().get_params(), "arms": self.arms_setting, "random_share": self.random_share,
                "eta": self.eta, "gamma": self.gamma, "reward": self.reward, "arm_params": self.arm_params,
                "prior": self.prior_setting, "labels": self.labels}


__all__ = ["DEFAULT_ARMS", "SPARSE_ARMS", "Auto", "exp3_probabilities", "importance_weighted_accuracy", "new_state",
           "row_ids"]
