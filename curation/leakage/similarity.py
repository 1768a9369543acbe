"""Nearest neighbours of normalised embeddings (inner product = cosine similarity).

Each split is queried against itself and against every split ranked before it (train first), k
neighbours per image: memory stays proportional to N * k, never N * N. Up to
`exact_search_limit` vectors the index is exact (FAISS IndexFlatIP); above it, a bounded-cell
inverted file whose work per query grows with log N (curation.leakage.cell_index). Both give
float32 similarities. Measured growth: bench/RESULTS.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curation.engine import current_engine
from curation.leakage.cell_index import CellIndex
from curation.progress import progress

QUERY_CHUNK = 4096  # queries per FAISS call: bounds the result buffers


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


def build_index(vectors: np.ndarray, exact_limit: int, **cell_options):
    """An inner-product index over float32 unit vectors: exact up to the limit, a bounded-cell
    inverted file above it."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype="float32")
    if len(vectors) > exact_limit:
        return CellIndex(vectors, **cell_options)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def index_kind(index) -> str:
    """"flat" (exact), "ivf" (bounded cells) or what a sharded index says of its shards."""
    return getattr(index, "kind", None) or ("ivf" if isinstance(index, CellIndex) else "flat")


def search(index, queries: np.ndarray, k: int, own: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """k nearest neighbours of each query, best first; labels are -1 where fewer than k exist.
    own: the queries are the indexed vectors themselves, in their order."""
    k = min(k, index.ntotal)
    if isinstance(index, CellIndex) or getattr(index, "sharded", False):
        return index.search(queries, k, own=own)
    sims = np.empty((len(queries), k), dtype="float32")
    labels = np.empty((len(queries), k), dtype="int64")
    for start in range(0, len(queries), QUERY_CHUNK):
        chunk = np.ascontiguousarray(queries[start : start + QUERY_CHUNK], dtype="float32")
        sims[start : start + len(chunk)], labels[start : start + len(chunk)] = index.search(chunk, k)
    return sims, labels


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
    index, indexed = None, None
    for target, query in progress(jobs, desc="similarity search"):
        if target != indexed:  # jobs come grouped by target: each split's index is built once
            _close(index)
            index, indexed = current_engine().build_index(vectors[members[target]], exact_limit), target
            kinds[target] = index_kind(index)
        same = target == query
        sims, labels = search(index, vectors[members[query]], k + 1 if same else k, own=same)
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
    _close(index)
    pairs, cosine, rank = _unique_pairs(found_pairs, found_sims, found_ranks)
    return NeighbourPairs(pairs, cosine, rank, nearest_within, nearest_across, kinds)


def _close(index) -> None:
    if hasattr(index, "close"):  # a sharded index frees its actors
        index.close()


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
