"""Scale of the leakage audit's search alone (curation.leakage.similarity.neighbour_pairs) on
synthetic unit vectors: 10k, 100k and 1M vectors, 85% train / 15% test, k=5, with 1% of the
test vectors planted as near-copies of train vectors (cosine about 0.95) to measure recall.

Each size runs in a fresh process so that peak memory (ru_maxrss) is its own. Below the exact
search limit (50k) the index is exact (IndexFlatIP), above it the bounded-cell inverted file
(IVF, about 256 vectors per cell, 4 log2(cells) cells scanned per query); `--exact-limit 0` uses the
inverted file at every size, to see its own growth. Dimension 128 by default:
1M x 1280 float32 vectors alone would take 5 GB on a shared 24 GB machine (--dim to change).

Run: python bench/bench_search_scale.py [--sizes 10000,100000,1000000] [--dim 128] [--exact-limit 0]
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


def one(n: int, dim: int, threads: int, exact_limit: int) -> dict:
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
    found = neighbour_pairs(vectors, np.ones(n, dtype=bool), list(splits), k=params.neighbours,
                            exact_limit=exact_limit, split_order=["train", "test"])
    seconds = time.perf_counter() - clock
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pairs = {tuple(p) for p in found.pairs}
    recall = np.mean([tuple(sorted((int(s), int(t)))) in pairs for s, t in zip(sources, planted)])
    planted_cos = np.einsum("ij,ij->i", vectors[planted], vectors[sources])
    sizes = {"train": int(n * 0.85), "test": n - int(n * 0.85)}
    probes = {split: cell_layout(size)[1] for split, size in sizes.items() if found.index_kind.get(split) == "ivf"}
    return {"n": n, "dim": dim, "threads": threads, "index": found.index_kind, "probes": probes,
            "seconds": round(seconds, 2),
            "peak_rss_mb": round(peak / 1024, 1), "rss_before_search_mb": round(before / 1024, 1),
            "vectors_mb": round(vectors.nbytes / 2**20, 1), "pairs": len(pairs),
            "planted_recall": round(float(recall), 4), "planted_cosine_median": round(float(np.median(planted_cos)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--exact-limit", type=int, default=None,
                        help="largest split searched exactly (default: the audit's, 50,000)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from curation.leakage.params import LeakageParams

    limit = LeakageParams().exact_search_limit if args.exact_limit is None else args.exact_limit
    if args.one:
        print(json.dumps(one(args.one, args.dim, args.threads, limit)))
        return
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        done = subprocess.run([sys.executable, __file__, "--one", str(n), "--dim", str(args.dim), "--threads",
                               str(args.threads), "--exact-limit", str(limit)], capture_output=True, text=True, cwd=PROJECT)
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
