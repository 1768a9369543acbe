"""Speed of the whole leakage audit on the shoes set against imagededup's pipeline, same run.

Ours: `python -m curation.leakage` in-process (scan, hashes with mirrors, lite0 embeddings, FAISS
search, keypoint verification, fusion, every report file) with a cold cache, then again warm.
imagededup: PHash encode + find_duplicates, and CNN(CustomModel(lite0)) encode + find_duplicates
(the same backbone and weights, its own loader and dense cosine matrix), on the same folder.
Both with the same torch thread count. Reports images/s and the ratio: the medians of --repeats
paired rounds (each round: imagededup, ours cold, ours warm), with every round's ratio beside them.

Run: python bench/bench_leakage_speed.py [--threads 1] [--repeats 3]; writes bench/out/leakage_speed.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from leakage_common import OUT, SHOES, imagededup_cnn

from curation.leakage.__main__ import main as audit_main


def count_images(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def run_ours(cache_dir: Path, reports: Path, threads: int) -> float:
    clock = time.perf_counter()
    code = audit_main([str(SHOES), "--name", "shoes", "--reports-dir", str(reports), "--cache-dir", str(cache_dir),
                       "--workers", str(threads)])
    assert code == 0
    return time.perf_counter() - clock


def run_imagededup() -> dict[str, float]:
    from imagededup.methods import PHash

    timings = {}
    clock = time.perf_counter()
    phash = PHash(verbose=False)
    phash.find_duplicates(encoding_map=phash.encode_images(str(SHOES), recursive=True, num_enc_workers=0))
    timings["phash"] = time.perf_counter() - clock
    clock = time.perf_counter()
    cnn = imagededup_cnn()
    cnn.find_duplicates(encoding_map=cnn.encode_images(SHOES, recursive=True))
    timings["cnn"] = time.perf_counter() - clock
    return timings


def one_round(threads: int) -> dict:
    """imagededup, then ours cold (new cache) and warm, on the same images: one paired measurement."""
    work = Path(tempfile.mkdtemp(prefix="leak_speed_"))
    try:
        theirs = run_imagededup()
        cold = run_ours(work / "cache", work / "reports", threads)
        cold_steps = json.loads((work / "reports" / "shoes" / "leakage" / "summary.json").read_text())["timings_s"]
        warm = run_ours(work / "cache", work / "reports", threads)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    total_theirs = theirs["phash"] + theirs["cnn"]
    return {"imagededup_phash_s": round(theirs["phash"], 1), "imagededup_cnn_s": round(theirs["cnn"], 1),
            "imagededup_s": round(total_theirs, 1), "ours_cold_s": round(cold, 1), "ours_warm_s": round(warm, 2),
            "ratio_cold": round(total_theirs / cold, 2), "ratio_warm": round(total_theirs / warm, 1),
            "ours_cold_step_timings_s": cold_steps}


def main() -> None:
    import statistics

    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both (the machine is shared)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="paired rounds; the figures are their medians (single runs move by 10-20%%)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n = count_images(SHOES)
    rounds = [one_round(args.threads) for _ in range(max(1, args.repeats))]

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    result = {
        "images": n, "threads": args.threads, "repeats": len(rounds),
        "ours_cold_s": median("ours_cold_s"), "ours_warm_s": median("ours_warm_s"),
        "ours_cold_images_per_s": round(n / median("ours_cold_s"), 1),
        "ours_warm_images_per_s": round(n / median("ours_warm_s"), 1),
        "imagededup_s": median("imagededup_s"), "imagededup_images_per_s": round(n / median("imagededup_s"), 1),
        "ratio_cold": round(median("imagededup_s") / median("ours_cold_s"), 2),
        "ratio_warm": round(median("imagededup_s") / median("ours_warm_s"), 1),
        "ratio_cold_per_round": [r["ratio_cold"] for r in rounds],
        "rounds": rounds,
    }
    (OUT / "leakage_speed.json").parent.mkdir(parents=True, exist_ok=True)
    (OUT / "leakage_speed.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=2))


if __name__ == "__main__":
    main()
