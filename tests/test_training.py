"""Cross-validation metrics and training failures."""

import numpy as np
import pytest

from app.al import build_classifier
from app.training.service import cross_validated_metrics


def test_cross_validation_with_a_singleton_class_in_two_classes_gives_no_estimate_not_an_error():
    X = np.random.default_rng(0).normal(size=(12, 3))
    y = np.array(["a"] * 11 + ["b"], dtype=object)
    assert cross_validated_metrics(build_classifier("tabular"), X, y) == {}


def test_cross_validation_metrics_on_separable_data():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-3, 1, size=(20, 2)), rng.normal(3, 1, size=(20, 2))])
    y = np.array(["a"] * 20 + ["b"] * 20, dtype=object)
    metrics = cross_validated_metrics(build_classifier("tabular"), X, y)
    assert metrics["cv_folds"] == 5 and metrics["cv_accuracy"] == pytest.approx(1.0)
