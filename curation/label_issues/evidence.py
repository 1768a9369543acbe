"""The evidence beside a flag: the train images nearest to it in embedding space, with their labels."""

from __future__ import annotations

import numpy as np


def nearest_references(unit_vectors: np.ndarray, wanted: np.ndarray, reference: np.ndarray, groups: np.ndarray, *,
                       k: int = 3) -> list[list[tuple[int, float]]]:
    """For each row in `wanted`, the k rows of `reference` (row indices) most similar to it, never its copies:
    a list of (row, cosine) per wanted row."""
    if not len(wanted) or not len(reference):
        return [[] for _ in wanted]
    similarity = unit_vectors[wanted] @ unit_vectors[reference].T
    similarity[groups[wanted, None] == groups[None, reference]] = -np.inf
    order = np.argsort(-similarity, axis=1)[:, :k]
    return [[(int(reference[j]), float(similarity[i, j])) for j in row if np.isfinite(similarity[i, j])]
            for i, row in enumerate(order)]
