"""Uncertainty sampling (Lewis & Gale 1994; Settles 2009, section 3.1).

With p the model's class probabilities for an item, sorted so p1 >= p2 >= ...:
  least confidence  1 - p1
  margin            1 - (p1 - p2)     (modAL's margin is p1 - p2, served smallest first)
  entropy           -sum_k p_k log p_k  (natural log, as scipy.stats.entropy)
"""

import numpy as np

from app.al.proba import predict_proba_chunked
from app.al.strategies.base import QueryStrategy


def least_confidence_from_proba(proba: np.ndarray) -> np.ndarray:
    return 1.0 - proba.max(axis=1)


def margin_from_proba(proba: np.ndarray) -> np.ndarray:
    if proba.shape[1] < 2:
        return np.zeros(proba.shape[0])
    top_two = -np.partition(-proba, 1, axis=1)[:, :2]
    return 1.0 - (top_two[:, 0] - top_two[:, 1])


def entropy_from_proba(proba: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(proba > 0, np.log(proba), 0.0)
    return -(proba * logs).sum(axis=1)


class _ProbabilityStrategy(QueryStrategy):
    def _from_proba(self, proba: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def utilities(self, model, X_pool, X_labeled=None, y_labeled=None) -> np.ndarray:
        return self._from_proba(predict_proba_chunked(model, X_pool))


class LeastConfidence(_ProbabilityStrategy):
    name = "least_confidence"
    description = "Items whose most likely label the model is least sure of."

    def _from_proba(self, proba):
        return least_confidence_from_proba(proba)


class MarginSampling(_ProbabilityStrategy):
    name = "margin"
    description = "Items where the two most likely labels are closest: good default for few classes."

    def _from_proba(self, proba):
        return margin_from_proba(proba)


class EntropySampling(_ProbabilityStrategy):
    name = "entropy"
    description = "Items whose predicted label distribution has the highest entropy."

    def _from_proba(self, proba):
        return entropy_from_proba(proba)
