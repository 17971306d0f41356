"""auto: the bandit's bookkeeping (rewards, importance weights, the random share, state through
JSON), cold starts and missing classes, and the simulator running it end to end."""

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris
from sklearn.linear_model import LogisticRegression

from app.al.cold_start import typical_uncovered
from app.al.simulate import Dataset, SimulationConfig, simulate
from app.al.strategies import STRATEGIES, get_strategy
from app.al.strategies.auto import (
    Auto,
    exp3_probabilities,
    importance_weighted_accuracy,
    new_state,
    row_ids,
)
from app.al.strategies.hybrid import MarginRandom, random_slots


@pytest.fixture(scope="module")
def iris():
    data = load_iris()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data.target))
    X = (data.data[order] - data.data.mean(0)) / data.data.std(0)
    return X, data.target_names[data.target[order]].astype(object)


def _fit(X, y):
    return LogisticRegression(C=1.0, max_iter=2000).fit(X, y)


def _step(X, y, labeled, state, *, seed, batch=10, **params):
    """One worker-like step: fit, score, select; returns (chosen rows, strategy)."""
    labeled = list(labeled)
    pool = np.setdiff1d(np.arange(len(y)), labeled)
    model = _fit(X[labeled], y[labeled])
    strategy = get_strategy("auto", random_state=seed, state=state, **params)
    u = strategy.utilities(model, X[pool], X[labeled], y[labeled], ids_pool=pool, ids_labeled=labeled)
    picked = strategy.select(u, batch, X[pool], X[labeled])
    return pool[picked], strategy


def test_registered_and_validated():
    assert STRATEGIES["auto"] is Auto
    assert {"margin_random", "margin_density", "margin_diverse"} <= set(STRATEGIES)
    with pytest.raises(ValueError, match="unknown arm"):
        get_strategy("auto", arms=["margin", "nope"])
    with pytest.raises(ValueError, match="random_share"):
        get_strategy("auto", random_share=1.5)
    with pytest.raises(ValueError, match="arm_params"):
        get_strategy("auto", arm_params={"vote_entropy": {}})
    with pytest.raises(ValueError):
        get_strategy("auto", arm_params={"margin_random": {"random_share": 2}}, arms=["margin_random"])
    # a state of another version or for other arms is dropped, not trusted
    assert get_strategy("auto", state={"version": 0}).state is None
    with pytest.raises(ValueError, match="reward"):
        get_strategy("auto", reward="f1")
    with pytest.raises(ValueError, match="labels"):
        get_strategy("auto", labels="abc")


def test_default_arms_follow_the_features_and_other_states_are_dropped(iris):
    import scipy.sparse as sp

    from app.al.strategies.auto import DEFAULT_ARMS, SPARSE_ARMS

    X, y = iris
    labeled, pool = list(range(30)), np.arange(30, 150)
    model = _fit(X[labeled], y[labeled])
    s = get_strategy("auto", state=new_state(["margin", "random"]), random_state=0)
    s.select(s.utilities(model, X[pool], X[labeled], y[labeled], ids_pool=pool, ids_labeled=labeled), 5, X[pool])
    assert s.state_["arms"] == list(DEFAULT_ARMS) and s.state_["step"] == 1
    Xs = sp.csr_matrix(np.abs(X))
    model = _fit(Xs[labeled], y[labeled])
    s = get_strategy("auto", random_state=0)
    s.select(s.utilities(model, Xs[pool], Xs[labeled], y[labeled], ids_pool=pool, ids_labeled=labeled), 5, Xs[pool])
    assert s.state_["arms"] == list(SPARSE_ARMS)


def test_importance_weighted_accuracy():
    # weights 1/q = 10 and 2: (10 * 1 + 2 * 0) / 12
    assert importance_weighted_accuracy(["a", "b"], ["a", "a"], [0.1, 0.5]) == pytest.approx(10 / 12)
    assert importance_weighted_accuracy(["a", "b", "c"], ["a", "b", "x"], [0.2, 0.2, 0.2]) == pytest.approx(2 / 3)


def test_exp3_probabilities():
    arms = ["a", "b", "c"]
    p = exp3_probabilities({"a": 0.0, "b": 0.0, "c": 0.0}, arms, eta=5, gamma=0.3)
    assert p == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    p = exp3_probabilities({"a": 10.0, "b": 0.0, "c": 0.0}, arms, eta=5, gamma=0.3)
    assert sum(p.values()) == pytest.approx(1)
    assert p["b"] == pytest.approx(0.1, abs=1e-9) and p["a"] == pytest.approx(0.8, abs=1e-9)  # gamma / K floor


def test_prior_weights_the_arms_until_rewards_move_them():
    arms = ["a", "b", "c"]
    p = exp3_probabilities({"a": 0.0, "b": 0.0, "c": 0.0}, arms, eta=5, gamma=0.3, prior={"a": 4.0})
    assert p["a"] == pytest.approx(0.7 * 4 / 6 + 0.1) and p["b"] == pytest.approx(0.7 / 6 + 0.1)
    # rewards still decide: a gain of b worth more than log(4) / eta overtakes a's prior
    p = exp3_probabilities({"a": 0.0, "b": 0.5, "c": 0.0}, arms, eta=5, gamma=0.3, prior={"a": 4.0})
    assert p["b"] > p["a"]
    for bad, match in (({"nope": 2}, "arms that are not used"), ({"margin": 0}, "positive number"),
                       ({"margin": True}, "positive number"), ([1, 2], "map arms")):
        with pytest.raises(ValueError, match=match):
            get_strategy("auto", arms=["margin", "badge"], prior=bad)
    assert get_strategy("auto", arms=["margin", "badge"], prior={"badge": 3}).get_params()["prior"] == {"badge": 3.0}


def test_default_arms_start_from_the_suites_prior_and_hand_picked_arms_from_none(iris):
    from app.al.strategies.auto import DEFAULT_ARMS, DEFAULT_PRIORS

    X, y = iris
    _, s = _step(X, y, range(30), None, seed=0)
    assert s.arms == list(DEFAULT_ARMS)
    prior = DEFAULT_PRIORS[DEFAULT_ARMS]
    expected = exp3_probabilities(dict.fromkeys(DEFAULT_ARMS, 0.0), list(DEFAULT_ARMS), 10.0, 0.2, prior)
    assert s.explanation_["probabilities"] == pytest.approx(expected, abs=1e-4)
    assert expected["margin_diverse"] > expected["margin"]
    _, s = _step(X, y, range(30), None, seed=0, arms=list(DEFAULT_ARMS))  # chosen by hand: uniform
    uniform = dict.fromkeys(DEFAULT_ARMS, 1 / len(DEFAULT_ARMS))
    assert s.explanation_["probabilities"] == pytest.approx(uniform, abs=1e-4)


def test_reward_is_iw_accuracy_gain_of_the_arms_items(iris):
    """reward = IWACC(model with the arm's batch) - IWACC(model without it), both fitted without
    the random-share evaluation items, importance weights 1/q; G_arm += reward / p_arm."""
    X, y = iris
    labeled = list(range(30))
    arm_ids, eval_items = [30, 31, 32, 33, 34, 35, 36, 37], [[38, 0.05], [39, 0.5], [40, 0.1], [41, 0.2]]
    state = new_state(["margin", "random"])
    state["evaluation"] = eval_items
    state["pending"] = {"arm": "margin", "probability": 0.25, "ids": arm_ids, "random_ids": [38, 39],
                        "q": 0.05, "n_pool": 100}
    state["history"] = [{"step": 1, "arm": "margin", "probability": 0.25, "n_random": 2, "reward": None,
                         "n_evaluation": 4}]
    now_labeled = labeled + arm_ids + [38, 39, 40, 41]
    pool = np.setdiff1d(np.arange(len(y)), now_labeled)
    model = _fit(X[now_labeled], y[now_labeled])
    strategy = get_strategy("auto", arms=["margin", "random"], reward="accuracy", state=json.loads(json.dumps(state)),
                            random_state=3)
    u = strategy.utilities(model, X[pool], X[now_labeled], y[now_labeled], ids_pool=pool, ids_labeled=now_labeled)
    strategy.select(u, 10, X[pool], X[now_labeled])

    eval_rows = [38, 39, 40, 41]
    q = [0.05, 0.5, 0.1, 0.2]
    before = clone(model).fit(X[labeled], y[labeled])
    after = clone(model).fit(X[labeled + arm_ids], y[labeled + arm_ids])
    expected = (importance_weighted_accuracy(after.predict(X[eval_rows]), y[eval_rows], q)
                - importance_weighted_accuracy(before.predict(X[eval_rows]), y[eval_rows], q))
    out = strategy.state_
    assert out["reward_sum"]["margin"] == pytest.approx(expected)
    assert out["gains"]["margin"] == pytest.approx(expected / 0.25)
    assert out["rewarded"] == {"margin": 1, "random": 0}
    assert out["history"][0]["reward"] == pytest.approx(expected)
    assert strategy.explanation_["last_reward"] == pytest.approx(expected)


def test_random_share_rate_and_inclusion_probability(iris):
    X, y = iris
    labeled = list(range(0, 150, 5))
    pool = np.setdiff1d(np.arange(150), labeled)
    model = _fit(X[labeled], y[labeled])
    shares = []
    for seed in range(300):
        s = get_strategy("auto", arms=["margin"], random_share=0.25, random_state=seed)
        u = s.utilities(model, X[pool], X[labeled], y[labeled], ids_pool=pool, ids_labeled=labeled)
        batch = s.select(u, 10, X[pool], X[labeled])
        mask = s.random_mask_
        n_random = int(mask.sum())
        assert n_random in (2, 3)  # floor(2.5), plus one half of the time
        shares.append(n_random / 10)
        pending = s.state_["pending"]
        assert pending["q"] == pytest.approx(n_random / (len(pool) - (10 - n_random)))
        assert sorted(pending["random_ids"]) == sorted(int(i) for i in pool[batch[mask]])
        assert [e[0] for e in s.state_["evaluation"]] == pending["random_ids"]
        # the arm's items are its own top choices
        top = np.argsort(-u, kind="stable")[: 10 - n_random]
        assert set(batch[~mask]) == set(top) or np.allclose(np.sort(u[batch[~mask]]), np.sort(u[top]))
    assert np.mean(shares) == pytest.approx(0.25, abs=0.02)
    assert random_slots(1, 0.1, np.random.default_rng(0)) in (0, 1)


def test_random_arm_items_are_uniform_not_top(iris):
    X, y = iris
    labeled = list(range(0, 150, 5))
    pool = np.setdiff1d(np.arange(150), labeled)
    model = _fit(X[labeled], y[labeled])
    ranks = []
    for seed in range(200):
        s = get_strategy("auto", arms=["margin"], random_share=0.5, random_state=seed)
        u = s.utilities(model, X[pool], X[labeled], y[labeled], ids_pool=pool, ids_labeled=labeled)
        batch = s.select(u, 4, X[pool], X[labeled])
        order = np.argsort(-u, kind="stable")
        position = np.empty(len(u), dtype=int)
        position[order] = np.arange(len(u))
        ranks.extend(position[batch[s.random_mask_]])
    # uniform over the 118 rows left after the arm's 2: mean rank near the middle
    assert 45 < np.mean(ranks) < 75


def test_state_round_trips_through_json_and_drives_the_next_step(iris):
    X, y = iris
    labeled = list(range(20))
    state = None
    rewards = []
    for step in range(6):
        chosen, strategy = _step(X, y, labeled, state, seed=step)
        text = json.dumps(strategy.state_)
        assert json.loads(text) == strategy.state_
        json.dumps(strategy.explanation_)
        state = json.loads(text)
        labeled += [int(i) for i in chosen]
        rewards.append(strategy.explanation_["last_reward"])
    assert state["step"] == 6 and sum(state["pulls"].values()) == 6
    assert len(state["history"]) == 6
    assert any(r is not None for r in rewards[1:])  # rewards flow once evaluation items have labels
    # the same state, given as dict or as its JSON copy, gives the same choice
    a = _step(X, y, labeled, state, seed=99)[0]
    b = _step(X, y, labeled, json.loads(json.dumps(state)), seed=99)[0]
    assert list(a) == list(b)


def test_cold_start_with_two_labels(iris):
    X, y = iris
    first = [int(np.flatnonzero(y == "setosa")[0]), int(np.flatnonzero(y == "versicolor")[0])]
    chosen, strategy = _step(X, y, first, None, seed=0, batch=5)
    assert len(set(chosen)) == 5 and not set(chosen) & set(first)
    explanation = strategy.explanation_
    assert explanation["arm"] in strategy.arms and "reason" in explanation and explanation["last_reward"] is None
    assert 0 < explanation["probability"] <= 1
    # next step: the batch without the evaluation items may leave one class only: no reward, no failure
    chosen2, strategy2 = _step(X, y, first + list(chosen), strategy.state_, seed=1, batch=5)
    assert len(chosen2) == 5
    assert strategy2.state_["step"] == 2


def test_one_class_missing_early(iris):
    """Only two of the three classes labelled at first: the model knows two, the bandit goes on,
    evaluation items of the unseen class count as errors for both fits."""
    X, y = iris
    two = list(np.flatnonzero(y != "virginica")[:10])
    labeled = list(two)
    state = None
    seen = []
    for step in range(8):
        chosen, strategy = _step(X, y, labeled, state, seed=step, batch=6, random_share=0.34)
        state = json.loads(json.dumps(strategy.state_))
        labeled += [int(i) for i in chosen]
        seen.append(len(set(y[labeled])))
    assert seen[-1] == 3
    assert state["step"] == 8


def test_without_ids_rows_are_hashed(iris):
    X, y = iris
    labeled = list(range(20))
    state = None
    for step in range(4):
        pool = np.setdiff1d(np.arange(150), labeled)
        model = _fit(X[labeled], y[labeled])
        s = get_strategy("auto", random_state=step, state=state, random_share=0.3)
        u = s.utilities(model, X[pool], X[labeled], y[labeled])
        batch = s.select(u, 10, X[pool], X[labeled])
        state = json.loads(json.dumps(s.state_))
        labeled += [int(i) for i in pool[batch]]
    assert all(isinstance(e[0], str) for e in state["evaluation"])
    assert any(h["reward"] is not None for h in state["history"])
    assert row_ids(X[:3]) == row_ids(X[:3].copy()) and len(set(row_ids(X[:3]))) == 3


def test_rank_serves_the_batch_first(iris):
    X, y = iris
    labeled = list(range(20))
    pool = np.setdiff1d(np.arange(150), labeled)
    model = _fit(X[labeled], y[labeled])
    s = get_strategy("auto", random_state=5, random_share=0.3)
    u = s.utilities(model, X[pool], X[labeled], y[labeled], ids_pool=pool, ids_labeled=labeled)
    order = s.rank(u, X[pool], batch_size=10, X_labeled=X[labeled])
    assert sorted(order) == list(range(len(pool)))
    pending = s.state_["pending"]
    assert set(pool[order[:10]].tolist()) == set(pending["ids"]) | set(pending["random_ids"])
    assert s.explanation_["random_ids"] == pending["random_ids"]


def test_margin_random_hybrid(iris):
    X, y = iris
    labeled = list(range(20))
    pool = np.setdiff1d(np.arange(150), labeled)
    model = _fit(X[labeled], y[labeled])
    s = MarginRandom(random_share=0.3, random_state=0)
    u = s.utilities(model, X[pool])
    batch = s.select(u, 10, X[pool])
    assert len(set(batch)) == 10 and s.random_mask_.sum() in (3,)


def test_simulator_runs_auto_end_to_end():
    data = load_digits()
    dataset = Dataset("digits", "tabular", data.data[:400].astype(float), data.target[:400].astype(str).astype(object))
    config = SimulationConfig(initial=20, batch_size=10, budget=60, repeats=1, seed=0)
    result = simulate(dataset, ["random", "auto"], config=config)
    curves = {r["strategy"]: r["curve"] for r in result["runs"]}
    assert [p[0] for p in curves["auto"]] == [20, 30, 40, 50, 60]
    assert curves["auto"][0] == curves["random"][0]
    again = simulate(dataset, ["auto"], config=config)
    assert again["runs"][0]["curve"] == curves["auto"]  # deterministic for a seed, state included
    # 12 first labels for 10 classes: the simulator passes the label set, auto covers first
    few = SimulationConfig(initial=12, batch_size=10, budget=42, repeats=1, seed=0)
    runs = [simulate(dataset, ["auto"], config=few)["runs"][0]["curve"] for _ in range(2)]
    assert [p[0] for p in runs[0]] == [12, 22, 32, 42] and runs[0] == runs[1]
    # settings naming no label set turn the cover off (al_suite --variant 'x=auto:{"labels": null}')
    off = simulate(dataset, ["auto"], config=few, strategy_params={"auto": {"labels": None}})["runs"][0]["curve"]
    assert off != runs[0]


def test_covers_the_pool_while_a_label_has_fewer_than_two_examples(iris):
    """With the label set known, a label seen once: the batch goes to TypiClust's typical items of
    uncovered clusters (plus the random share), credited to no arm; then the bandit takes over."""
    X, y = iris
    labels = ["setosa", "versicolor", "virginica"]
    labeled = list(np.flatnonzero(y == "setosa")[:2]) + list(np.flatnonzero(y == "versicolor")[:2]) \
        + [int(np.flatnonzero(y == "virginica")[0])]
    chosen, strategy = _step(X, y, labeled, None, seed=0, batch=5, labels=labels, random_share=0.2)
    state, why = strategy.state_, strategy.explanation_
    assert why["arm"] == "cover" and why["probability"] == 1.0 and "Cold start" in why["reason"]
    assert state["history"][-1]["arm"] == "cover" and state["pending"]["arm"] == "cover"
    assert sum(state["pulls"].values()) == 0  # no arm was pulled
    assert len(set(chosen)) == 5 and not set(chosen) & set(labeled)
    cover_rows = [int(i) for i in chosen if int(i) not in why["random_ids"]]
    pool = np.setdiff1d(np.arange(len(y)), labeled)
    expected = pool[typical_uncovered(X[pool], X[labeled], len(cover_rows), random_state=0)]
    assert sorted(cover_rows) == sorted(int(i) for i in expected)
    # the next step scores the cover batch (logged) but credits no arm; two of each label: the bandit picks
    state = json.loads(json.dumps(state))
    labeled2 = labeled + [int(i) for i in chosen]
    assert min((y[labeled2] == c).sum() for c in labels) >= 2
    _, strategy2 = _step(X, y, labeled2, state, seed=1, batch=5, labels=labels)
    assert strategy2.explanation_["arm"] in strategy2.arms
    assert strategy2.state_["rewarded"] == state["rewarded"] and sum(strategy2.state_["pulls"].values()) == 1
    # without the label set (or with every label seen twice) there is no cover batch
    _, plain = _step(X, y, labeled, None, seed=0, batch=5)
    assert plain.explanation_["arm"] in plain.arms
    # a batch that is all random share holds no cover item: it is the drawn arm's, as the rest of the ranking
    chosen, only_random = _step(X, y, labeled, None, seed=0, batch=3, labels=labels, random_share=1.0)
    why = only_random.explanation_
    assert why["arm"] in only_random.arms and "Cold start" not in why["reason"]
    assert sorted(why["random_ids"]) == sorted(int(i) for i in chosen)


def test_reward_proba_is_the_expected_accuracy_gain(iris):
    X, y = iris
    labeled, arm_ids, eval_items = list(range(30)), [30, 31, 32, 33], [[40, 0.1], [41, 0.4], [42, 0.2]]
    state = new_state(["margin", "random"])
    state["evaluation"] = eval_items
    state["pending"] = {"arm": "random", "probability": 0.5, "ids": arm_ids, "random_ids": [], "q": None,
                        "n_pool": 100}
    now = labeled + arm_ids + [40, 41, 42]
    pool = np.setdiff1d(np.arange(len(y)), now)
    model = _fit(X[now], y[now])
    s = get_strategy("auto", arms=["margin", "random"], reward="proba", state=state, random_state=0)
    s.select(s.utilities(model, X[pool], X[now], y[now], ids_pool=pool, ids_labeled=now), 5, X[pool], X[now])
    rows, w = [40, 41, 42], np.array([10, 2.5, 5])

    def expected_accuracy(h):
        proba = h.predict_proba(X[rows])
        p_true = proba[np.arange(3), [list(h.classes_).index(c) for c in y[rows]]]
        return (w * p_true).sum() / w.sum()

    before = clone(model).fit(X[labeled], y[labeled])
    after = clone(model).fit(X[labeled + arm_ids], y[labeled + arm_ids])
    expected = expected_accuracy(after) - expected_accuracy(before)
    assert s.state_["reward_sum"]["random"] == pytest.approx(expected)
    assert s.state_["gains"]["random"] == pytest.approx(expected / 0.5)


def test_badge_is_kmeans_pp_in_gradient_space():
    import scipy.sparse as sp

    from app.al.strategies.hybrid import badge_pick, gradient_factors

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    a = gradient_factors(rng.dirichlet([1, 1, 1], size=60))
    G = (a[:, :, None] * np.hstack([X, np.ones((60, 1))])[:, None, :]).reshape(60, -1)
    picked = badge_pick(a, X, 8, np.random.default_rng(1))
    assert picked[0] == np.argmax((G**2).sum(1)) and len(set(picked)) == 8
    assert list(picked) == list(badge_pick(a, sp.csr_matrix(X), 8, np.random.default_rng(1)))
    c = 5
    d2 = (G**2).sum(1) + (G[c] ** 2).sum() - 2 * (a @ a[c]) * (X @ X[c] + 1)
    assert np.allclose(d2, ((G - G[c]) ** 2).sum(1))
