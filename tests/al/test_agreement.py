"""Inter-annotator agreement: Krippendorff's alpha against the paper's worked example and the
`krippendorff` package, Cohen's kappa per pair against scikit-learn."""

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from app.al.agreement import krippendorff_alpha_nominal, pairwise_kappa

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: four observers,
# twelve units, values 1..5, "." where an observer gave none.
PAPER = {
    "A": "1 2 3 3 2 1 4 1 2 . . .",
    "B": "1 2 3 3 2 2 4 1 2 5 . 3",
    "C": ". 3 3 3 2 3 4 2 2 5 1 .",
    "D": "1 2 3 3 2 4 4 1 2 5 1 .",
}


def by_item(matrix: dict[str, list]) -> dict[int, dict[str, object]]:
    """Observer -> values per unit (None: missing) as the app's item -> {annotator: label}."""
    n_units = len(next(iter(matrix.values())))
    return {unit: {coder: values[unit] for coder, values in matrix.items() if values[unit] is not None}
            for unit in range(n_units)}


def paper_matrix() -> dict[str, list]:
    return {coder: [None if v == "." else v for v in row.split()] for coder, row in PAPER.items()}


def test_alpha_reproduces_the_papers_nominal_example():
    data = by_item(paper_matrix())
    assert sum(len(answers) >= 2 for answers in data.values()) == 11  # unit 12 has one value: not pairable
    assert krippendorff_alpha_nominal(data) == pytest.approx(0.743, abs=5e-4)  # as the paper reports it
    # The paper's figures: n = 40 pairable values, marginals n_c = 9, 13, 10, 5, 3 for the values 1..5,
    # and 32 of the 40 in matching pairs (sum of o_cc), so
    # alpha = ((n - 1) sum o_cc - sum n_c (n_c - 1)) / (n (n - 1) - sum n_c (n_c - 1)) = 904 / 1216.
    n, matching, marginals = 40, 32, [9, 13, 10, 5, 3]
    same = sum(m * (m - 1) for m in marginals)
    assert krippendorff_alpha_nominal(data) == pytest.approx(((n - 1) * matching - same) / (n * (n - 1) - same),
                                                             abs=1e-12)


def test_alpha_equals_the_krippendorff_package_on_the_paper_example():
    matrix = paper_matrix()
    reliability = np.array([[np.nan if v is None else float(v) for v in row] for row in matrix.values()])
    expected = krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal")
    assert krippendorff_alpha_nominal(by_item(matrix)) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_alpha_equals_the_krippendorff_package_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n_coders, n_units, n_values = rng.integers(2, 7), rng.integers(5, 60), rng.integers(2, 6)
    truth = rng.integers(0, n_values, size=n_units)
    # coders mostly agree with a hidden truth, sometimes guess; some values are missing
    values = np.where(rng.random((n_coders, n_units)) < 0.6, truth, rng.integers(0, n_values, (n_coders, n_units)))
    reliability = np.where(rng.random((n_coders, n_units)) < 0.25, np.nan, values.astype(float))
    matrix = {f"coder{c}": [None if np.isnan(v) else f"label{int(v)}" for v in reliability[c]]
              for c in range(n_coders)}
    expected = krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal")
    assert krippendorff_alpha_nominal(by_item(matrix)) == pytest.approx(expected, abs=1e-9)


def test_alpha_is_one_for_perfect_agreement_and_none_without_anything_to_compare():
    assert krippendorff_alpha_nominal({1: {"a": "x", "b": "x"}, 2: {"a": "y", "b": "y", "c": "y"}}) == 1.0
    assert krippendorff_alpha_nominal({}) is None
    assert krippendorff_alpha_nominal({1: {"a": "x", "b": "y"}}) is None  # a single pairable unit
    assert krippendorff_alpha_nominal({1: {"a": "x"}, 2: {"b": "y"}}) is None  # no unit with two values
    assert krippendorff_alpha_nominal({1: {"a": "x", "b": "x"}, 2: {"a": "x", "b": "x"}}) is None  # one value


def test_pairwise_kappa_equals_scikit_learn_on_the_items_each_pair_shares():
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c"]
    data: dict[int, dict[int, str]] = {}
    for item in range(80):
        truth = labels[rng.integers(3)]
        coders = rng.choice([1, 2, 3], size=rng.integers(1, 4), replace=False)
        data[item] = {int(c): truth if rng.random() < 0.7 else labels[rng.integers(3)] for c in coders}
    pairs = pairwise_kappa(data)
    assert [(p["a"], p["b"]) for p in pairs] == [(1, 2), (1, 3), (2, 3)]
    for pair in pairs:
        shared = [answers for answers in data.values() if pair["a"] in answers and pair["b"] in answers]
        left, right = [s[pair["a"]] for s in shared], [s[pair["b"]] for s in shared]
        assert pair["n_items"] == len(shared)
        assert pair["kappa"] == pytest.approx(cohen_kappa_score(left, right), abs=1e-12)
        assert pair["observed_agreement"] == pytest.approx(np.mean(np.array(left) == np.array(right)), abs=1e-12)


def test_pairwise_kappa_needs_shared_items_and_is_one_for_a_single_identical_label():
    data = {1: {7: "a", 9: "a"}, 2: {7: "a", 9: "a"}, 3: {7: "b", 8: "a"}}
    pairs = pairwise_kappa(data)
    # 7 and 8 share one item only (below min_shared=2); 7 and 9 always say "a": kappa 1, not nan
    assert pairs == [{"a": 7, "b": 9, "n_items": 2, "kappa": 1.0, "observed_agreement": 1.0}]
    assert [(p["a"], p["b"]) for p in pairwise_kappa(data, min_shared=1)] == [(7, 8), (7, 9)]
    opposite = {i: {1: "a" if i % 2 else "b", 2: "b" if i % 2 else "a"} for i in range(6)}
    assert pairwise_kappa(opposite)[0]["kappa"] == pytest.approx(-1.0)
