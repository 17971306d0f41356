"""Inter-annotator agreement: Cohen's kappa per pair and Krippendorff's alpha overall."""

from collections import Counter, defaultdict
from itertools import combinations

import numpy as np
from sklearn.metrics import cohen_kappa_score


def pairwise_kappa(labels_by_item: dict[int, dict[int, str]], min_shared: int = 2) -> list[dict]:
    """Cohen's kappa for every pair of annotators on the items both labelled (at least `min_shared`).

    `labels_by_item` maps item -> {annotator: label}. Kappa is 1.0 when both gave one identical label
    throughout (sklearn would return nan: no chance agreement to correct for)."""
    shared: dict[tuple[int, int], list[tuple[str, str]]] = defaultdict(list)
    for answers in labels_by_item.values():
        for a, b in combinations(sorted(answers), 2):
            shared[(a, b)].append((answers[a], answers[b]))
    pairs = []
    for (a, b), rows in sorted(shared.items()):
        if len(rows) < min_shared:
            continue
        left, right = [r[0] for r in rows], [r[1] for r in rows]
        if len(set(left) | set(right)) == 1:
            kappa = 1.0
        else:
            kappa = float(cohen_kappa_score(left, right))
        agreement = float(np.mean([x == y for x, y in rows]))
        pairs.append({"a": a, "b": b, "n_items": len(rows), "kappa": kappa, "observed_agreement": agreement})
    return pairs


def krippendorff_alpha_nominal(labels_by_item: dict[int, dict[int, str]]) -> float | None:
    """Krippendorff's alpha for nominal labels (Krippendorff 2011, "Computing Krippendorff's alpha-
    reliability"): 1 - D_o / D_e from the coincidence matrix; any number of annotators per item.
    None when fewer than two items carry two or more labels, or every value is the same."""
    coincidences: Counter = Counter()
    units = 0
    for answers in labels_by_item.values():
        values = list(answers.values())
        m = len(values)
        if m < 2:
            continue
        units += 1
        for i, c in enumerate(values):
            for j, k in enumerate(values):
                if i != j:
                    coincidences[(c, k)] += 1.0 / (m - 1)
    if units < 2:
        return None
    totals: Counter = Counter()
    for (c, _), value in coincidences.items():
        totals[c] += value
    n = sum(totals.values())
    disagreement_observed = sum(v for (c, k), v in coincidences.items() if c != k)
    disagreement_expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k)
    if disagreement_expected == 0:
        return None
    return float(1.0 - (n - 1) * disagreement_observed / disagreement_expected)
