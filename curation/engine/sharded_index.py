"""The embedding search's index split over Ray actors: each holds a contiguous shard of the
indexed vectors in the index the local engine would build for that many (exact FAISS
IndexFlatIP up to the exact-search limit, the project's bounded-cell index above; the benchmark
that chose them is in bench/RESULTS.md), every query block is searched in all shards at once, and
each query's k best of the shards' k best are kept. Exact shards give exactly the unsharded
result; no pairs of all against all are ever formed."""

from __future__ import annotations

import numpy as np


class _Shard:
    def __init__(self, vectors: np.ndarray, exact_limit: int):
        from curation.leakage.similarity import build_index, index_kind

        self.index = build_index(vectors, exact_limit)
        self.kind = index_kind(self.index)

    def describe(self) -> str:
        return self.kind

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        from curation.leakage.similarity import search

        return search(self.index, queries, k)


class ShardedIndex:
    sharded = True

    def __init__(self, vectors: np.ndarray, shards: int, exact_limit: int):
        import ray

        parts = np.array_split(np.arange(len(vectors)), shards)
        self.offsets = [int(part[0]) for part in parts]
        self.sizes = [len(part) for part in parts]
        self.ntotal = len(vectors)
        remote = ray.remote(num_cpus=1, max_restarts=1, max_task_retries=1)(_Shard)
        self.actors = [remote.remote(np.ascontiguousarray(vectors[part], dtype="float32"), exact_limit) for part in parts]
        kinds = set(ray.get([actor.describe.remote() for actor in self.actors]))
        self.kind = f"{'/'.join(sorted(kinds))}, {shards} shards on ray"

    def search(self, queries: np.ndarray, k: int, own: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """k best of every query over all shards, best first (labels -1 where fewer exist)."""
        import ray

        block = ray.put(np.ascontiguousarray(queries, dtype="float32"))
        found = ray.get([actor.search.remote(block, min(k, size)) for actor, size in zip(self.actors, self.sizes)])
        sims = np.hstack([s for s, _ in found])
        labels = np.hstack([np.where(l >= 0, l + offset, -1) for (_, l), offset in zip(found, self.offsets)])
        sims = np.where(labels >= 0, sims, -np.inf).astype("float32")
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(sims, order, axis=1), np.take_along_axis(labels, order, axis=1)

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
