"""A bounded-cell inverted file for k nearest neighbours by inner product, scanned by matrix products.

The vectors are split into spherical k-means cells of about CELL_SIZE vectors (N / CELL_SIZE
cells) and stored cell by cell in float32. A query scans its PROBES_PER_LOG2_N * log2(N) nearest
cells, so the work per query grows with log N, not with sqrt(N) as for an inverted file of sqrt(N)
cells (FAISS's usual advice: N^1.5 in all). The scan turns the lists around: the queries of a block
that probe one cell are scored against it in one matrix product (BLAS speed, exact similarities,
no rescoring). Each score matrix is folded into the queries' running k best by a small compiled
loop (numba): selecting the best, not the products, is what such a scan otherwise spends its time
on (sorting or partitioning every score in numpy costs several times the product).

What still costs N x cells (quadratic, as cells grow with N) is finding each vector's nearest
centroids: exactly (FAISS IndexFlatIP, one matrix product) up to GRAPH_QUANTIZER_ABOVE_CELLS
cells, through an HNSW graph above (on this machine's FAISS build the graph is slower than the
exact search below that size). k-means trains in two levels, sample x 2 sqrt(cells) instead of
sample x cells. Measured growth and the FAISS inverted file it replaced: bench/RESULTS.md.
"""

from __future__ import annotations

import math

import numpy as np

CELL_SIZE = 256  # vectors per cell, on average
PROBES_PER_LOG2_N = 2  # cells scanned per query: 2 log2(N), 33 at 100k vectors, 40 at 1M
TRAINING_PER_CELL = 40  # k-means trains on a sample of this many vectors per cell
KMEANS_ITERATIONS = 10
HNSW_LINKS = 32  # graph degree of the HNSW over the centroids
# Up to this many cells the centroids are searched exactly (one matrix product, fast in practice);
# above it through the HNSW graph, whose cost grows with log(cells) instead of cells.
GRAPH_QUANTIZER_ABOVE_CELLS = 16_384
ONE_LEVEL_KMEANS_UP_TO_CELLS = 256  # more cells: trained in two levels (_two_level_kmeans)
CENTROID_CHUNK = 4096  # vectors per centroid search: bounds its result buffers
QUERY_BLOCK = 65_536  # queries scanned together: bounds the memory of a search
SCORES_PER_PRODUCT = 1 << 23  # entries of one similarity matrix (32 MB): bounds the memory of a search


def cell_layout(n_vectors: int, cell_size: int = CELL_SIZE) -> tuple[int, int]:
    """(cells, cells scanned per query) of an index over n_vectors."""
    cells = max(1, n_vectors // cell_size)
    return cells, min(cells, max(1, round(PROBES_PER_LOG2_N * math.log2(max(n_vectors, 2)))))


class CellIndex:
    """k-NN by inner product over float32 vectors (unit vectors: cosine similarity)."""

    def __init__(self, vectors: np.ndarray, cell_size: int = CELL_SIZE):
        vectors = np.ascontiguousarray(vectors, dtype="float32")
        self.ntotal, self.dim = vectors.shape
        cells, probes = cell_layout(self.ntotal, cell_size)
        self.quantizer = _centroid_index(vectors, cells, probes)
        self.cells = self.quantizer.ntotal  # about `cells`: the two levels round each group's share
        self.probes = min(probes, self.cells)
        # The indexed vectors are usually queried too (a split against itself): their probed cells
        # are found once, here, where their own cell is needed anyway.
        self.own_probes = self.nearest_cells(vectors, self.probes).astype("int16" if self.cells < 2**15 else "int32")
        home = self.own_probes[:, 0].astype("int64")
        self.ids = np.argsort(home, kind="stable")  # position in cell order -> original row
        self.vectors = vectors[self.ids]
        self.offsets = np.concatenate([[0], np.cumsum(np.bincount(home, minlength=self.cells))])

    def nearest_cells(self, vectors: np.ndarray, count: int) -> np.ndarray:
        """(len(vectors), count) ids of the nearest cells, nearest first."""
        cells = np.empty((len(vectors), count), dtype="int64")
        for start in range(0, len(vectors), CENTROID_CHUNK):
            cells[start : start + CENTROID_CHUNK] = self.quantizer.search(vectors[start : start + CENTROID_CHUNK], count)[1]
        return cells

    def search(self, queries: np.ndarray, k: int, own: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, ids), each (len(queries), k), best first; -inf and -1 where fewer exist.
        own: the queries are the indexed vectors, in their order (their cells are known)."""
        queries = np.ascontiguousarray(queries, dtype="float32")
        if own and len(queries) != self.ntotal:
            raise ValueError(f"own=True needs the {self.ntotal} indexed vectors as queries, not {len(queries)}")
        k = min(k, self.ntotal)
        sims = np.full((len(queries), k), -np.inf, dtype="float32")
        labels = np.full((len(queries), k), -1, dtype="int64")
        for start in range(0, len(queries), QUERY_BLOCK):
            block = queries[start : start + QUERY_BLOCK]
            probed = self.own_probes[start : start + QUERY_BLOCK].astype("int64") if own else \
                self.nearest_cells(block, self.probes)
            order = np.argsort(probed[:, 0], kind="stable")  # neighbouring queries share cells: cache hits
            found_sims, found = self._scan(block[order], probed[order], k)
            sims[start + order], labels[start + order] = found_sims, np.where(found >= 0, self.ids[np.maximum(found, 0)], -1)
        return sims, labels

    def _scan(self, block: np.ndarray, probed: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Each query's k best among the vectors of its probed cells (positions in cell order)."""
        best = np.full((len(block), k), -np.inf, dtype="float32")
        found = np.full((len(block), k), -1, dtype="int64")
        from curation.leakage.merge_kernel import merge_best  # numba: imported and compiled on first use
        for cell, queries in _queries_by_cell(probed):
            a, b = self.offsets[cell], self.offsets[cell + 1]
            if a == b:
                continue
            for chunk in np.array_split(queries, -(-len(queries) * (b - a) // SCORES_PER_PRODUCT)):
                merge_best(block[chunk] @ self.vectors[a:b].T, chunk, a, best, found)
        return best, found


def _queries_by_cell(probed: np.ndarray):
    """(cell, query rows) of all (query, probed cell) pairs, one cell at a time; a query appears
    at most once per cell (its probed cells are distinct), so one cell's rows never collide."""
    flat = probed.ravel()
    # A stable sort of 16-bit keys is a radix sort in numpy: linear, where a comparison sort is not.
    order = np.argsort(flat.astype("uint16") if probed.max(initial=0) < 2**16 - 1 else flat, kind="stable")
    cells = flat[order]
    bounds = np.flatnonzero(np.r_[True, cells[1:] != cells[:-1], True])
    query = order // probed.shape[1]
    for a, b in zip(bounds[:-1], bounds[1:]):
        if cells[a] >= 0:
            yield int(cells[a]), query[a:b]


def _centroid_index(vectors: np.ndarray, cells: int, probes: int):
    """The cells' centroids in a FAISS index: searched exactly, or through an HNSW graph above
    GRAPH_QUANTIZER_ABOVE_CELLS cells."""
    import faiss

    rng = np.random.default_rng(0)
    sample = vectors[np.sort(rng.choice(len(vectors), min(len(vectors), cells * TRAINING_PER_CELL), replace=False))]
    centroids = _two_level_kmeans(sample, cells)
    graph = len(centroids) > GRAPH_QUANTIZER_ABOVE_CELLS
    quantizer = _hnsw(vectors.shape[1], search_breadth=max(64, 2 * probes)) if graph else faiss.IndexFlatIP(vectors.shape[1])
    quantizer.add(centroids)
    return quantizer


def _two_level_kmeans(sample: np.ndarray, cells: int) -> np.ndarray:
    """About `cells` spherical k-means centroids: sqrt(cells) coarse ones first, then each coarse
    group split in proportion to its share of the sample. k-means over all cells at once costs
    sample x cells per iteration, quadratic in N (16 s of 29 for the index at 1M); this costs
    sample x 2 sqrt(cells)."""
    if cells <= ONE_LEVEL_KMEANS_UP_TO_CELLS:
        return _spherical_kmeans(sample, cells)
    coarse = _spherical_kmeans(sample, round(math.sqrt(cells)))
    group = np.argmax(sample @ coarse.T, axis=1)
    sizes = np.bincount(group, minlength=len(coarse))
    shares = np.minimum(sizes, np.maximum(1, np.round(cells * sizes / len(sample)).astype(int))) * (sizes > 0)
    return np.concatenate([_spherical_kmeans(sample[group == g], int(shares[g])) for g in np.flatnonzero(shares)])


def _spherical_kmeans(vectors: np.ndarray, centroids: int) -> np.ndarray:
    """(centroids, dim) unit-norm k-means centroids (FAISS), seeded for reproducible cells."""
    import faiss

    settings = faiss.ClusteringParameters()
    settings.niter, settings.spherical, settings.seed = KMEANS_ITERATIONS, True, 0
    settings.max_points_per_centroid = TRAINING_PER_CELL
    settings.min_points_per_centroid = 1  # a group of the two levels may hold few: no warning
    kmeans = faiss.Clustering(vectors.shape[1], centroids, settings)
    kmeans.train(np.ascontiguousarray(vectors, dtype="float32"), faiss.IndexFlatIP(vectors.shape[1]))
    return faiss.vector_float_to_array(kmeans.centroids).reshape(centroids, vectors.shape[1])


def _hnsw(dim: int, search_breadth: int):
    import faiss

    graph = faiss.IndexHNSWFlat(dim, HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = 40
    graph.hnsw.efSearch = search_breadth
    return graph
