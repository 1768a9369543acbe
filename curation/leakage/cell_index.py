"""A bounded-cell inverted file for k nearest neighbours by inner product, scanned by matrix products.

The vectors are split into spherical k-means cells of about CELL_SIZE vectors (N / CELL_SIZE
cells) and stored cell by cell in float32. A query scans its PROBES_PER_LOG2_CELLS * log2(cells)
nearest cells, so the work per query grows with log N, not with sqrt(N) as for an inverted file of
sqrt(N) cells (FAISS's usual advice: N^1.5 in all). The scan turns the lists around: the queries
of a block that probe one cell are scored against it in one matrix product (BLAS speed, exact
similarities, no rescoring). Before any sorting, each score is compared with the query's k-th best
similarity within its THRESHOLD_CELLS nearest cells: only the few at or above it can be among its
k best, and selecting the best is what a scan by matrix products otherwise spends its time on.

The centroids are searched exactly (FAISS IndexFlatIP) up to GRAPH_QUANTIZER_ABOVE_CELLS cells and
through an HNSW graph above, whose cost grows with log(cells) instead of cells. Measured against
FAISS's own inverted file and growth with N: bench/RESULTS.md (bench_search_scale.py).
"""

from __future__ import annotations

import math

import numpy as np

CELL_SIZE = 256  # vectors per cell, on average
PROBES_PER_LOG2_CELLS = 4  # cells scanned per query: 4 log2(cells), 34 at 100k vectors, 47 at 1M
TRAINING_PER_CELL = 40  # k-means trains on a sample of this many vectors per cell
KMEANS_ITERATIONS = 10
HNSW_LINKS = 32  # graph degree of the HNSW over the centroids
# Up to this many cells the centroids are searched exactly (one matrix product, fast in practice);
# above it through the HNSW graph, whose cost grows with log(cells) instead of cells.
GRAPH_QUANTIZER_ABOVE_CELLS = 16_384
CENTROID_CHUNK = 4096  # vectors per centroid search: bounds its result buffers
QUERY_BLOCK = 65_536  # queries scanned together: bounds the memory of a search
THRESHOLD_CELLS = 2  # a query's k-th best similarity in this many nearest cells filters the rest
THRESHOLD_SLACK = 1e-4  # far above float32 rounding of a product of unit vectors, far below a cosine that matters
SCORES_PER_PRODUCT = 1 << 23  # entries of one similarity matrix (32 MB): bounds the memory of a search


def cell_layout(n_vectors: int, cell_size: int = CELL_SIZE) -> tuple[int, int]:
    """(cells, cells scanned per query) of an index over n_vectors."""
    cells = max(1, n_vectors // cell_size)
    return cells, min(cells, max(1, round(PROBES_PER_LOG2_CELLS * math.log2(max(cells, 2)))))


class CellIndex:
    """k-NN by inner product over float32 vectors (unit vectors: cosine similarity)."""

    def __init__(self, vectors: np.ndarray, cell_size: int = CELL_SIZE):
        vectors = np.ascontiguousarray(vectors, dtype="float32")
        self.ntotal, self.dim = vectors.shape
        self.cells, self.probes = cell_layout(self.ntotal, cell_size)
        self.quantizer = _centroid_index(vectors, self.cells, self.probes)
        home = self.nearest_cells(vectors, 1)[:, 0]
        self.ids = np.argsort(home, kind="stable")  # position in cell order -> original row
        self.vectors = vectors[self.ids]
        self.offsets = np.concatenate([[0], np.cumsum(np.bincount(home, minlength=self.cells))])

    def nearest_cells(self, vectors: np.ndarray, count: int) -> np.ndarray:
        """(len(vectors), count) ids of the nearest cells, nearest first."""
        cells = np.empty((len(vectors), count), dtype="int64")
        for start in range(0, len(vectors), CENTROID_CHUNK):
            cells[start : start + CENTROID_CHUNK] = self.quantizer.search(vectors[start : start + CENTROID_CHUNK], count)[1]
        return cells

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, ids), each (len(queries), k), best first; -inf and -1 where fewer exist."""
        queries = np.ascontiguousarray(queries, dtype="float32")
        k = min(k, self.ntotal)
        sims = np.full((len(queries), k), -np.inf, dtype="float32")
        labels = np.full((len(queries), k), -1, dtype="int64")
        for start in range(0, len(queries), QUERY_BLOCK):
            block = queries[start : start + QUERY_BLOCK]
            probed = self.nearest_cells(block, self.probes)
            order = np.argsort(probed[:, 0], kind="stable")  # neighbouring queries share cells: cache hits
            found_sims, found = self._scan(block[order], probed[order], k)
            sims[start + order], labels[start + order] = found_sims, np.where(found >= 0, self.ids[np.maximum(found, 0)], -1)
        return sims, labels

    def _scan(self, block: np.ndarray, probed: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Each query's k best among the vectors of its probed cells (positions in cell order)."""
        threshold = self._threshold(block, probed[:, :THRESHOLD_CELLS], k)
        rows, values, positions = [], [], []
        for cell, queries, _ in _pairs_by_cell(probed):
            a, b = self.offsets[cell], self.offsets[cell + 1]
            if a == b:
                continue
            for chunk in np.array_split(queries, -(-len(queries) * (b - a) // SCORES_PER_PRODUCT)):
                candidates = _above(block[chunk] @ self.vectors[a:b].T, threshold[chunk], k)
                rows.append(chunk[candidates[0]])
                values.append(candidates[1])
                positions.append(candidates[2] + a)
        if not rows:
            return np.full((len(block), k), -np.inf, dtype="float32"), np.full((len(block), k), -1)
        return _best_per_row(len(block), k, np.concatenate(rows), np.concatenate(values), np.concatenate(positions))

    def _threshold(self, block: np.ndarray, nearest: np.ndarray, k: int) -> np.ndarray:
        """Each query's k-th best similarity within its nearest cells (-inf where they hold fewer):
        no vector below it can be among the query's k best."""
        import faiss

        best = np.full((len(block), nearest.shape[1] * k), -np.inf, dtype="float32")
        for cell, queries, slot in _pairs_by_cell(nearest):
            a, b = self.offsets[cell], self.offsets[cell + 1]
            if a == b:
                continue
            top, _ = faiss.knn(block[queries], self.vectors[a:b], int(min(k, b - a)), metric=faiss.METRIC_INNER_PRODUCT)
            best[queries[:, None], slot[:, None] * k + np.arange(top.shape[1])] = top
        # FAISS and numpy round a product differently in the last bits: the slack keeps a threshold
        # vector itself above its own threshold in the scan.
        return -np.partition(-best, k - 1, axis=1)[:, k - 1] - THRESHOLD_SLACK


def _above(scores: np.ndarray, threshold: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, value, column) of the scores at or above their row's threshold; at most k per row
    where ties make many (identical vectors), so that candidates stay within queries * probes * k."""
    hits = np.flatnonzero(scores >= threshold[:, None])
    row, column = np.divmod(hits, scores.shape[1])
    value = scores.ravel()[hits]
    if len(hits) > 4 * k * len(scores):
        best, found = _best_per_row(len(scores), k, row, value, column)
        row, column = np.nonzero(found >= 0)
        value, column = best[row, column], found[row, column]
    return row, value, column


def _pairs_by_cell(probed: np.ndarray):
    """(cell, query rows, probe slots) of all (query, probed cell) pairs, one cell at a time."""
    flat = probed.ravel()
    order = np.argsort(flat, kind="stable")
    cells = flat[order]
    bounds = np.flatnonzero(np.r_[True, cells[1:] != cells[:-1], True])
    query, slot = np.divmod(order, probed.shape[1])
    for a, b in zip(bounds[:-1], bounds[1:]):
        if cells[a] >= 0:
            yield int(cells[a]), query[a:b], slot[a:b]


def _best_per_row(n_rows: int, k: int, rows: np.ndarray, values: np.ndarray, positions: np.ndarray):
    """The k best (value, position) of each row among candidate triples, best first."""
    # One sort by row, then by descending value: values lie in [-1, 1] for unit vectors, and the
    # clip keeps the value's part of the key below one row step for any other input.
    order = np.argsort(rows + np.clip(1.0 - values.astype("float64"), 0.0, 2.0) / 4, kind="stable")
    rows, values, positions = rows[order], values[order], positions[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    keep = rank < k
    sims = np.full((n_rows, k), -np.inf, dtype="float32")
    found = np.full((n_rows, k), -1, dtype="int64")
    sims[rows[keep], rank[keep]] = values[keep]
    found[rows[keep], rank[keep]] = positions[keep]
    return sims, found


def _centroid_index(vectors: np.ndarray, cells: int, probes: int):
    """The cells' spherical k-means centroids in a FAISS index: exact, or an HNSW graph above
    GRAPH_QUANTIZER_ABOVE_CELLS cells (k-means then assigns its sample through a graph too, so
    that neither costs N x cells, quadratic once cells grow with N)."""
    import faiss

    dim = vectors.shape[1]
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(len(vectors), min(len(vectors), cells * TRAINING_PER_CELL), replace=False))
    settings = faiss.ClusteringParameters()
    settings.niter, settings.spherical, settings.seed = KMEANS_ITERATIONS, True, 0
    settings.max_points_per_centroid = TRAINING_PER_CELL
    kmeans = faiss.Clustering(dim, cells, settings)
    graph = cells > GRAPH_QUANTIZER_ABOVE_CELLS
    kmeans.train(np.ascontiguousarray(vectors[sample]), _hnsw(dim, search_breadth=32) if graph else faiss.IndexFlatIP(dim))
    quantizer = _hnsw(dim, search_breadth=max(64, 2 * probes)) if graph else faiss.IndexFlatIP(dim)
    quantizer.add(faiss.vector_float_to_array(kmeans.centroids).reshape(cells, dim))
    return quantizer


def _hnsw(dim: int, search_breadth: int):
    import faiss

    graph = faiss.IndexHNSWFlat(dim, HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = 40
    graph.hnsw.efSearch = search_breadth
    return graph
