"""Nearest neighbours of normalised embeddings in FAISS (inner product = cosine similarity).

Each split is queried against itself and against every split ranked before it (train first), k
neighbours per image: memory stays proportional to N * k, never N * N. Up to
`exact_search_limit` vectors the index is exact (IndexFlatIP). Above it, an inverted file whose
cells keep a bounded size (about IVF_CELL_SIZE vectors, so N / IVF_CELL_SIZE k-means cells), of
which each query scans 4 log2(cells): the work per query grows with log N, not with sqrt(N) as for
an inverted file of sqrt(N) cells (FAISS's usual advice: N^1.5 in all). The centroids are searched
exactly up to GRAPH_QUANTIZER_ABOVE_CELLS cells (about 4M vectors) and through an HNSW graph
above. The cells hold float16 copies of the vectors (half the memory traffic of a scan, which is
what a search of 1M vectors waits on); the k similarities found are then recomputed from the
float32 vectors. Queries run in the order of their nearest cell, so that consecutive queries scan
the same cells while those are in the processor's cache. Measured growth: bench/RESULTS.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curation.progress import progress

QUERY_CHUNK = 4096  # queries per FAISS call: bounds the result buffers
IVF_CELL_SIZE = 256  # vectors per inverted-file cell, on average
IVF_PROBES_PER_LOG2_CELLS = 4  # cells scanned per query: 4 log2(cells), 34 at 100k vectors, 47 at 1M
IVF_TRAINING_PER_CELL = 40  # k-means trains on a sample of this many vectors per cell
KMEANS_ITERATIONS = 10
HNSW_LINKS = 32  # graph degree of the HNSW over the centroids
# Up to this many cells the centroids are searched exactly (one matrix product, fast in practice);
# above it through the HNSW graph, whose cost grows with log(cells) instead of cells.
GRAPH_QUANTIZER_ABOVE_CELLS = 16_384


@dataclass
class NeighbourPairs:
    """Candidate pairs (a < b table positions) with their cosine similarity, and each sample's
    nearest-neighbour similarity within its split and to the splits ranked before it (NaN: none;
    train samples have no 'across' value: the question is whether an evaluation image was seen)."""

    pairs: np.ndarray  # int64 (m, 2)
    cosine: np.ndarray  # float32 (m,)
    rank: np.ndarray  # int64 (m,): 0 when one side is the other's nearest neighbour in that split
    nearest_within: np.ndarray  # float32 (n,)
    nearest_across: np.ndarray  # float32 (n,)
    index_kind: dict[str, str]  # split -> "flat" or "ivf"


def build_index(vectors: np.ndarray, exact_limit: int, cell_size: int = IVF_CELL_SIZE):
    """An inner-product index over float32 unit vectors: exact up to the limit, a bounded-cell
    inverted file above it."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype="float32")
    if len(vectors) <= exact_limit:
        index = faiss.IndexFlatIP(vectors.shape[1])
    else:
        index = _bounded_cell_ivf(vectors, cell_size)
    index.add(vectors)
    return index


def ivf_layout(n_vectors: int, cell_size: int = IVF_CELL_SIZE) -> tuple[int, int]:
    """(cells, cells scanned per query) of the inverted file over n_vectors."""
    cells = max(1, n_vectors // cell_size)
    return cells, min(cells, max(1, round(IVF_PROBES_PER_LOG2_CELLS * np.log2(max(cells, 2)))))


def _bounded_cell_ivf(vectors: np.ndarray, cell_size: int):
    """An inverted file (float16 codes) of N / cell_size spherical k-means cells. Above
    GRAPH_QUANTIZER_ABOVE_CELLS cells, k-means assigns its sample through an HNSW graph and the
    index finds a query's cells through another, so that neither costs N x cells (quadratic once
    cells grow with N); below it one matrix product over the centroids is faster."""
    import faiss

    dim = vectors.shape[1]
    cells, probes = ivf_layout(len(vectors), cell_size)
    sample = np.random.default_rng(0).choice(len(vectors), min(len(vectors), cells * IVF_TRAINING_PER_CELL),
                                             replace=False)
    settings = faiss.ClusteringParameters()
    settings.niter, settings.spherical, settings.seed = KMEANS_ITERATIONS, True, 0
    settings.max_points_per_centroid = IVF_TRAINING_PER_CELL
    kmeans = faiss.Clustering(dim, cells, settings)
    graph = cells > GRAPH_QUANTIZER_ABOVE_CELLS
    kmeans.train(np.ascontiguousarray(vectors[np.sort(sample)]),
                 _hnsw(dim, search_breadth=32) if graph else faiss.IndexFlatIP(dim))
    quantizer = _hnsw(dim, search_breadth=max(64, 2 * probes)) if graph else faiss.IndexFlatIP(dim)
    quantizer.add(faiss.vector_float_to_array(kmeans.centroids).reshape(cells, dim))
    index = faiss.IndexIVFScalarQuantizer(quantizer, dim, cells, faiss.ScalarQuantizer.QT_fp16,
                                          faiss.METRIC_INNER_PRODUCT, False)
    index.is_trained = True  # the quantizer holds the centroids already, float16 codes need no training
    index.nprobe = probes
    return index


def _hnsw(dim: int, search_breadth: int):
    import faiss

    graph = faiss.IndexHNSWFlat(dim, HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = 40
    graph.hnsw.efSearch = search_breadth
    return graph


def search(index, queries: np.ndarray, k: int, indexed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """k nearest neighbours of each query, in chunks; labels are -1 where fewer than k exist.

    For an inverted file, `indexed` (the float32 vectors it holds) gives the exact similarities."""
    k = min(k, index.ntotal)
    if not hasattr(index, "nprobe"):
        return _in_chunks(lambda chunk: index.search(chunk, k), queries, k)
    cell_sims, cells = _in_chunks(lambda chunk: index.quantizer.search(chunk, index.nprobe), queries, index.nprobe)
    sims = np.empty((len(queries), k), dtype="float32")
    labels = np.empty((len(queries), k), dtype="int64")
    order = np.argsort(cells[:, 0], kind="stable")  # consecutive queries scan mostly the same cells
    for start in range(0, len(queries), QUERY_CHUNK):
        chunk = order[start : start + QUERY_CHUNK]
        sims[chunk], labels[chunk] = index.search_preassigned(
            np.ascontiguousarray(queries[chunk], dtype="float32"), k, cells[chunk], cell_sims[chunk])
        if indexed is not None:
            sims[chunk], labels[chunk] = _exact_order(queries[chunk], indexed, labels[chunk])
    return sims, labels


def _in_chunks(call, queries: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """call(chunk) -> (similarities, ids), each (len(chunk), width), over the queries QUERY_CHUNK at a time."""
    sims = np.empty((len(queries), width), dtype="float32")
    ids = np.empty((len(queries), width), dtype="int64")
    for start in range(0, len(queries), QUERY_CHUNK):
        chunk = np.ascontiguousarray(queries[start : start + QUERY_CHUNK], dtype="float32")
        sims[start : start + len(chunk)], ids[start : start + len(chunk)] = call(chunk)
    return sims, ids


def _exact_order(queries: np.ndarray, indexed: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The float32 similarities of the found neighbours, each row sorted by them (-1 labels last)."""
    sims = np.einsum("ij,ikj->ik", queries, indexed[np.maximum(labels, 0)])
    sims = np.where(labels >= 0, sims, -np.inf).astype("float32")
    order = np.argsort(-sims, axis=1, kind="stable")
    return np.take_along_axis(sims, order, axis=1), np.take_along_axis(labels, order, axis=1)


def neighbour_pairs(vectors: np.ndarray, valid: np.ndarray, splits: list[str], *, k: int,
                    exact_limit: int, split_order: list[str]) -> NeighbourPairs:
    """k-NN pairs of each split with itself and with every split before it in `split_order`."""
    n = len(vectors)
    nearest_within = np.full(n, np.nan, dtype="float32")
    nearest_across = np.full(n, np.nan, dtype="float32")
    members = {s: np.flatnonzero(valid & (np.asarray(splits) == s)) for s in split_order}
    members = {s: m for s, m in members.items() if len(m)}
    found_pairs, found_sims, found_ranks, kinds = [], [], [], {}
    jobs = [(target, query) for i, target in enumerate(members) for query in list(members)[i:]]
    index, indexed, target_vectors = None, None, None
    for target, query in progress(jobs, desc="similarity search"):
        if target != indexed:  # jobs come grouped by target: each split's index is built once
            target_vectors = np.ascontiguousarray(vectors[members[target]], dtype="float32")
            index, indexed = build_index(target_vectors, exact_limit), target
            kinds[target] = "flat" if len(members[target]) <= exact_limit else "ivf"
        same = target == query
        sims, labels = search(index, vectors[members[query]], k + 1 if same else k, indexed=target_vectors)
        query_pos = np.repeat(members[query], labels.shape[1])
        ranks = np.tile(np.arange(labels.shape[1]), len(labels))
        if same:  # the query itself usually comes first: count ranks among the others
            ranks = ranks - (labels == np.arange(len(labels))[:, None]).cumsum(axis=1).ravel()
        target_pos = np.where(labels.ravel() >= 0, members[target][np.maximum(labels.ravel(), 0)], -1)
        keep = (target_pos >= 0) & (target_pos != query_pos)
        pair_sims = sims.ravel()[keep]
        found_pairs.append(np.stack([query_pos[keep], target_pos[keep]], axis=1))
        found_sims.append(pair_sims)
        found_ranks.append(ranks[keep])
        _record_nearest(nearest_within if same else nearest_across, query_pos[keep], pair_sims)
    pairs, cosine, rank = _unique_pairs(found_pairs, found_sims, found_ranks)
    return NeighbourPairs(pairs, cosine, rank, nearest_within, nearest_across, kinds)


def _record_nearest(nearest: np.ndarray, positions: np.ndarray, sims: np.ndarray) -> None:
    current = np.where(np.isnan(nearest), -np.inf, nearest)
    np.maximum.at(current, positions, sims)
    nearest[:] = np.where(np.isinf(current), np.nan, current)


def _unique_pairs(found_pairs, found_sims, found_ranks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each pair once, with its similarity and its best rank over both directions."""
    if not found_pairs:
        return np.zeros((0, 2), dtype="int64"), np.zeros(0, dtype="float32"), np.zeros(0, dtype="int64")
    pairs = np.sort(np.concatenate(found_pairs), axis=1)
    sims = np.concatenate(found_sims)
    ranks = np.concatenate(found_ranks)
    order = np.lexsort((ranks, pairs[:, 1], pairs[:, 0]))
    pairs, sims, ranks = pairs[order], sims[order], ranks[order]
    first = np.ones(len(pairs), dtype=bool)
    first[1:] = np.any(pairs[1:] != pairs[:-1], axis=1)
    return pairs[first], sims[first], ranks[first]
