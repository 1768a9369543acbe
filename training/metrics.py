"""Classification metrics with their uncertainty: a test set of 114 images cannot tell 3% from 5%.

Plain numpy so they can be checked by hand: error and accuracy with a Wilson score interval,
per-class precision and recall, and the confusion matrix (rows: true class, columns: predicted).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z_95 = 1.959963984540054


def wilson_interval(successes: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (sensible at 0 and at small n)."""
    if total <= 0:
        return (float("nan"), float("nan"))
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def confusion_matrix(labels: Sequence[str], predicted: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=int)
    for true, guess in zip(labels, predicted):
        matrix[index[true], index[guess]] += 1
    return matrix


def classification_metrics(labels: Sequence[str], predicted: Sequence[str], classes: Sequence[str]) -> dict:
    """Error, accuracy (with 95% Wilson intervals), per-class precision/recall and the confusion matrix.

    `labels` must all be in `classes`; callers leave out samples of classes the model never saw.
    """
    labels, predicted = list(labels), list(predicted)
    n = len(labels)
    correct = sum(t == p for t, p in zip(labels, predicted))
    low, high = wilson_interval(correct, n)
    matrix = confusion_matrix(labels, predicted, classes)
    per_class = {}
    for i, name in enumerate(classes):
        tp, predicted_as, actual = matrix[i, i], matrix[:, i].sum(), matrix[i, :].sum()
        per_class[name] = {
            "precision": float(tp / predicted_as) if predicted_as else None,
            "recall": float(tp / actual) if actual else None,
            "support": int(actual),
        }
    return {
        "n": n,
        "correct": int(correct),
        "accuracy": correct / n if n else None,
        "accuracy_ci95": [low, high] if n else None,
        "error": 1 - correct / n if n else None,
        "error_ci95": [1 - high, 1 - low] if n else None,
        "per_class": per_class,
        "confusion": matrix.tolist(),
    }
