"""Metrics checked against values worked out by hand."""

import math

import pytest

from training.metrics import classification_metrics, wilson_interval


def test_wilson_interval_matches_the_textbook_values():
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(0.2775, abs=1e-4)  # z=1.96, n=10, no successes
    low, high = wilson_interval(106, 114)
    assert (low, high) == (pytest.approx(0.8676, abs=1e-3), pytest.approx(0.9640, abs=1e-3))
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_classification_metrics_per_class_and_confusion():
    labels = ["a", "a", "a", "b", "b", "c"]
    predicted = ["a", "a", "b", "b", "a", "c"]
    m = classification_metrics(labels, predicted, ["a", "b", "c"])
    assert m["n"] == 6 and m["correct"] == 4
    assert m["error"] == pytest.approx(2 / 6)
    assert m["confusion"] == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert m["per_class"]["a"] == {"precision": pytest.approx(2 / 3), "recall": pytest.approx(2 / 3), "support": 3}
    assert m["per_class"]["b"]["precision"] == pytest.approx(0.5)
    assert m["per_class"]["c"] == {"precision": 1.0, "recall": 1.0, "support": 1}
    low, high = m["error_ci95"]
    assert low < m["error"] < high


def test_a_class_never_predicted_has_no_precision():
    m = classification_metrics(["a", "b"], ["a", "a"], ["a", "b"])
    assert m["per_class"]["b"]["precision"] is None
    assert m["per_class"]["b"]["recall"] == 0.0
