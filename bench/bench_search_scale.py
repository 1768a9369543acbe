"""Scale of the leakage audit's search alone (curation.leakage.similarity.neighbour_pairs) on
synthetic unit vectors: 10k, 100k and 1M vectors, 85% train / 15% test, k=5, with 1% of the
test vectors planted as near-copies of train vectors (cosine about 0.95) to measure recall.

Each size runs in a fresh process so that peak memory (ru_maxrss) is its own. Below the exact
search limit (50k) the index is exact (IndexFlatIP), above it the bounded-cell inverted file
(curation.leakage.cell_index: about 256 vectors per cell, 2 log2(N) cells scanned per query);
`--exact-limit 0` uses the inverted file at every size, to see its own growth. Dimension 128 by default:
1M x 1280 float32 vectors alone would take 5 GB on a shared 24 GB machine (--dim to change).

Beside it, in the same run on the same vectors, what a FAISS user would write for the same jobs:
IndexIVFFlat (FAISS's k-means and scan) with the same cells and probes, exact below the limit.

`--methods ours,ray` puts the ray engine's sharded search (a Ray on this machine, one shard per
thread: run it through scripts/loopback_only.sh) beside the one-process search; its memory is the
driver's peak plus the peak of the Ray actors' summed resident memory.

Run: python bench/bench_search_scale.py [--sizes 10000,100000,1000000] [--methods ours,faiss,ray] [--dim 128]
     [--exact-limit 0]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time

from leakage_common import OUT, PROJECT


def one(n: int, dim: int, threads: int, exact_limit: int, method: str) -> dict:
    import faiss
    import numpy as np

    from curation.leakage.params import LeakageParams
    from curation.leakage.cell_index import cell_layout
    from curation.leakage.similarity import neighbour_pairs

    faiss.omp_set_num_threads(threads)
    rng = np.random.default_rng(n)
    vectors = rng.normal(size=(n, dim)).astype("float32")
    splits = np.where(np.arange(n) < int(n * 0.85), "train", "test")
    test = np.flatnonzero(splits == "test")
    planted = test[: max(1, len(test) // 100)]
    sources = rng.integers(0, int(n * 0.85), size=len(planted))
    vectors[planted] = vectors[sources] + rng.normal(scale=0.33, size=(len(planted), dim)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    params = LeakageParams()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    clock = time.perf_counter()
    workers = RayMemory() if method == "ray" else None
    if method == "ours":
        found = neighbour_pairs(vectors, np.ones(n, dtype=bool), list(splits), k=params.neighbours,
                                exact_limit=exact_limit, split_order=["train", "test"])
        pairs, kinds = found.pairs, found.index_kind
    elif method == "ray":
        found = ray_pairs(vectors, splits, params.neighbours, exact_limit, threads)
        pairs, kinds = found.pairs, found.index_kind
    else:
        pairs, kinds = faiss_ivf_pairs(vectors, splits, params.neighbours, exact_limit)
    seconds = time.perf_counter() - clock
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pairs = set(map(tuple, pairs.tolist()))
    recall = np.mean([tuple(sorted((int(s), int(t)))) in pairs for s, t in zip(sources, planted)])
    planted_cos = np.einsum("ij,ij->i", vectors[planted], vectors[sources])
    sizes = {"train": int(n * 0.85), "test": n - int(n * 0.85)}
    probes = {split: cell_layout(size)[1] for split, size in sizes.items() if kinds.get(split) == "ivf"}
    if workers is not None:  # the shards live in Ray's worker processes: their peak memory counts too
        peak += workers.stop() * 1024
    return {"method": method, "n": n, "dim": dim, "threads": threads, "index": kinds, "probes": probes,
            "seconds": round(seconds, 2),
            "peak_rss_mb": round(peak / 1024, 1), "rss_before_search_mb": round(before / 1024, 1),
            "vectors_mb": round(vectors.nbytes / 2**20, 1), "pairs": len(pairs),
            "planted_recall": round(float(recall), 4), "planted_cosine_median": round(float(np.median(planted_cos)), 3)}


def ray_pairs(vectors, splits, k: int, exact_limit: int, workers: int):
    """The audit's search on the ray engine: a Ray on this machine with `workers` CPUs, each split of
    at least curation.engine.ray_engine.SHARD_MIN_VECTORS indexed in one shard per CPU."""
    import numpy as np
    import ray

    from curation.engine import use_engine
    from curation.engine.ray_engine import RayEngine
    from curation.leakage.similarity import neighbour_pairs

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    with use_engine(RayEngine()):
        return neighbour_pairs(vectors, np.ones(len(vectors), dtype=bool), list(splits), k=k,
                               exact_limit=exact_limit, split_order=["train", "test"])


class RayMemory:
    """Peak of the summed resident memory (MB) of Ray's actor processes, sampled every 0.2 s."""

    def __init__(self):
        import threading

        self.peak_mb, self._done = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        import psutil

        while not self._done.wait(0.2):
            total = 0
            for proc in psutil.process_iter(["cmdline", "memory_info"]):
                cmd = " ".join(proc.info["cmdline"] or [])
                if cmd.startswith("ray::") and proc.info["memory_info"]:
                    total += proc.info["memory_info"].rss
            self.peak_mb = max(self.peak_mb, total / 2**20)

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return self.peak_mb


def faiss_ivf_pairs(vectors, splits, k: int, exact_limit: int):
    """What a user of FAISS would run for the same jobs: IndexIVFFlat (FAISS's own k-means and
    scan) with the same number of cells and probes, each split against itself, test against train."""
    import faiss
    import numpy as np

    from curation.leakage.cell_index import TRAINING_PER_CELL, cell_layout

    members = {s: np.flatnonzero(splits == s) for s in ("train", "test")}
    pairs, kinds = [], {}
    for target, queries in (("train", ("train", "test")), ("test", ("test",))):
        indexed = np.ascontiguousarray(vectors[members[target]])
        cells, probes = cell_layout(len(indexed))
        if len(indexed) <= exact_limit:
            index, kinds[target] = faiss.IndexFlatIP(indexed.shape[1]), "flat"
        else:
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(indexed.shape[1]), indexed.shape[1], cells,
                                       faiss.METRIC_INNER_PRODUCT)
            index.cp.max_points_per_centroid, index.cp.niter, index.cp.spherical = TRAINING_PER_CELL, 10, True
            index.train(indexed)
            index.nprobe, kinds[target] = probes, "ivf"
        index.add(indexed)
        for query in queries:
            labels = index.search(np.ascontiguousarray(vectors[members[query]]), k + (query == target))[1]
            rows = np.repeat(members[query], labels.shape[1])
            found = np.where(labels.ravel() >= 0, members[target][np.maximum(labels.ravel(), 0)], -1)
            keep = (found >= 0) & (found != rows)
            pairs.append(np.sort(np.stack([rows[keep], found[keep]], axis=1), axis=1))
    return np.concatenate(pairs), kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--exact-limit", type=int, default=None,
                        help="largest split searched exactly (default: the audit's, 50,000)")
    parser.add_argument("--methods", default="ours,faiss",
                        help="ours (the audit's search), ray (the same, sharded over Ray actors, one per thread), "
                             "faiss (IndexIVFFlat, same cells and probes)")
    parser.add_argument("--method", default="ours", help=argparse.SUPPRESS)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from curation.leakage.params import LeakageParams

    limit = LeakageParams().exact_search_limit if args.exact_limit is None else args.exact_limit
    if args.one:
        print(json.dumps(one(args.one, args.dim, args.threads, limit, args.method)))
        return
    rows = []
    for n, method in ((int(s), m) for s in args.sizes.split(",") for m in args.methods.split(",")):
        done = subprocess.run([sys.executable, __file__, "--one", str(n), "--dim", str(args.dim), "--threads",
                               str(args.threads), "--exact-limit", str(limit), "--method", method],
                              capture_output=True, text=True, cwd=PROJECT)
        if done.returncode:
            print(done.stderr[-2000:])
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["seconds_per_n_log_n_us"] = round(row["seconds"] / (n * math.log2(n)) * 1e6, 4)
        row["search_mb_per_1k_vectors"] = round((row["peak_rss_mb"] - row["rss_before_search_mb"] + row["vectors_mb"]) / n * 1000, 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"search_scale_limit{limit}.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
