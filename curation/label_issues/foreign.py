"""Images of no class: another brand's product shot from afar, a store, a logo, a graphic, a photo of something else.

Such an image has no right label among the classes, so "suggested: nike" would be a wrong fix. It is
told apart by its distance to every class: its affinity to a class is the mean cosine similarity of
its embedding to the `neighbours` nearest images filed under that class (never itself or its
copies), and its affinity to the dataset is the best over classes. An image is `not_in_any_class`
when that affinity lies `max_deviations` robust deviations (median absolute deviation, MAD) below
the dataset's median: on the shoes set every real photo lies within 3.9 MADs, the photos of other
things and an "image not available" graphic 5.6 or more (bench/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEIGHBOURS = 5
MAX_DEVIATIONS = 4.5
CHUNK = 2048  # rows of the similarity matrix held at once


@dataclass
class ClassAffinity:
    per_class: np.ndarray  # (n, K) mean similarity to the nearest members of each class
    best: np.ndarray  # (n,) the best class affinity
    deviations: np.ndarray  # (n,) how many MADs below the median the best affinity lies
    median: float
    mad: float


def class_affinity(unit_vectors: np.ndarray, labels: np.ndarray, groups: np.ndarray, n_classes: int, *,
                   neighbours: int = NEIGHBOURS) -> ClassAffinity:
    """unit_vectors (n, d) L2-normalised; labels (n,) int; groups (n,) copy-group ids (copies never count)."""
    n = len(labels)
    per_class = np.full((n, n_classes), np.nan)
    for start in range(0, n, CHUNK):
        rows = slice(start, min(start + CHUNK, n))
        similarity = unit_vectors[rows] @ unit_vectors.T
        similarity[groups[rows, None] == groups[None, :]] = -np.inf  # itself and its copies
        for k in range(n_classes):
            members = similarity[:, labels == k]
            take = min(neighbours, members.shape[1])
            if take:
                nearest = np.partition(members, members.shape[1] - take, axis=1)[:, -take:]
                per_class[rows, k] = np.where(np.isfinite(nearest), nearest, np.nan).mean(axis=1)
    best = np.nanmax(np.where(np.isnan(per_class), -np.inf, per_class), axis=1)
    median = float(np.median(best))
    mad = float(np.median(np.abs(best - median))) or 1e-6
    return ClassAffinity(per_class, best, (median - best) / mad, median, mad)
