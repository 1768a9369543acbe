"""The compiled inner loop of the cell index's scan (numba, cached on disk after the first run).

Its own module so that importing the index stays cheap: numba is imported, and the loop compiled
or loaded from its cache, only when a large split is searched.
"""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def merge_best(scores, rows, first_position, best, found):
    """Fold a (rows, cell) score matrix into each row's running k best, kept sorted in `best`
    (similarities) and `found` (positions: first_position + column). A score is compared with
    the row's current k-th best only: after a query's first cells almost every score is below
    it, so the cost is one comparison per score, with no candidate list and no sort."""
    k = best.shape[1]
    for i in range(scores.shape[0]):
        r = rows[i]
        worst = best[r, k - 1]
        for j in range(scores.shape[1]):
            s = scores[i, j]
            if s > worst:  # ties keep the vector found first; NaN is never kept
                p = k - 1
                while p > 0 and best[r, p - 1] < s:
                    best[r, p] = best[r, p - 1]
                    found[r, p] = found[r, p - 1]
                    p -= 1
                best[r, p] = s
                found[r, p] = first_position + j
                worst = best[r, k - 1]
