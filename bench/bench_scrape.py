"""Benchmark: our scrape pipeline versus plain icrawler (UrlListCrawler + ImageDownloader) on the same
URLs from a local server, side by side in one run.

Candidates: N new pictures (PIL-made), plus duplicates of them (same bytes under another URL, mirror
images, re-encoded larger copies) and copies of the shoes dataset's training images (exact and
resized) that must not leak into a test split. Reported: candidates per second, and how many
duplicates each let through (ground truth known by construction).

    python bench/bench_scrape.py [--new 150] [--threads 4]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import random
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("CURATION_PROGRESS", "0")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageOps  # noqa: E402

from tests.scrape_site import LocalSite, encode, make_picture  # noqa: E402

SHOES = Path(os.environ.get("CURATION_SHOES_DIR", ROOT.parent / "shared" / "datasets" / "shoes"))


def build_candidates(site: LocalSite, n_new: int, rng: random.Random) -> tuple[list[str], dict[str, str]]:
    """URLs and, for each served body's sha256, its group: 'new:<i>' or 'train:<path>'."""
    groups: dict[str, str] = {}
    urls: list[str] = []

    def serve(path: str, body: bytes, group: str) -> None:
        groups[hashlib.sha256(body).hexdigest()] = group
        urls.append(site.add(path, body))

    pictures = [make_picture(10_000 + i) for i in range(n_new)]
    for i, picture in enumerate(pictures):
        serve(f"/new/{i}.jpg", encode(picture), f"new:{i}")
    dup = rng.sample(range(n_new), n_new // 5)
    for i in dup:  # same bytes under another URL
        urls.append(site.url(f"/new/{i}.jpg") + "?copy")
    for i in rng.sample(range(n_new), n_new // 5):
        serve(f"/mirror/{i}.jpg", encode(ImageOps.mirror(pictures[i])), f"new:{i}")
    for i in rng.sample(range(n_new), n_new // 5):
        serve(f"/big/{i}.jpg", encode(pictures[i].resize((640, 480)), quality=70), f"new:{i}")
    train = sorted((SHOES / "train").glob("*/*.jpg"))
    for k, path in enumerate(rng.sample(train, n_new // 5)):
        serve(f"/leak/{k}.jpg", path.read_bytes(), f"train:{path.relative_to(SHOES)}")
    for k, path in enumerate(rng.sample(train, n_new // 5)):
        big = Image.open(path).convert("RGB").resize((480, 480))
        serve(f"/leakbig/{k}.jpg", encode(big, quality=85), f"train:{path.relative_to(SHOES)}")
    rng.shuffle(urls)
    return urls, groups


def let_through(kept_groups: list[str]) -> tuple[int, int]:
    """(duplicates among kept images, training images kept)."""
    new = [g for g in kept_groups if g.startswith("new:")]
    return len(new) - len(set(new)), sum(g.startswith("train:") for g in kept_groups)


def run_icrawler(urls: list[str], out: Path, threads: int) -> tuple[float, list[bytes]]:
    from icrawler.builtin import UrlListCrawler

    crawler = UrlListCrawler(downloader_threads=threads, storage={"root_dir": str(out)}, log_level=logging.ERROR)
    started = time.perf_counter()
    crawler.crawl(url_list=urls, max_num=len(urls))
    elapsed = time.perf_counter() - started
    return elapsed, [p.read_bytes() for p in sorted(out.iterdir())]


def run_ours(urls: list[str], out: Path, cache: Path, threads: int):
    from curation.scrape.config import ScrapeConfig
    from curation.scrape.run import scrape

    out.parent.mkdir(parents=True, exist_ok=True)
    url_file = out.parent / "bench.txt"
    url_file.write_text("\n".join(urls) + "\n")
    config = ScrapeConfig(data=str(SHOES), classes=("bench",), count=len(urls), engines=("urllist",),
                          url_file=str(out.parent / "{label}.txt"), output_dir=out, cache_dir=cache,
                          threads=threads)
    started = time.perf_counter()
    summary = scrape(config)
    return time.perf_counter() - started, summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--new", type=int, default=150)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    work = ROOT / "bench" / "out" / "scrape"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with LocalSite() as site:
        urls, groups = build_candidates(site, args.new, random.Random(0))
        print(f"{len(urls)} candidate URLs: {args.new} new pictures, {len(urls) - args.new} duplicates or leaks")

        # warm the cache with the dataset's hashes so that both timings measure downloading only
        warm_started = time.perf_counter()
        run_ours(urls[:1], work / "warm", work / "cache", args.threads)
        warm = time.perf_counter() - warm_started
        t_ic, bodies = run_icrawler(urls, work / "icrawler", args.threads)
        t_ours, summary = run_ours(urls, work / "ours" / "bench", work / "cache", args.threads)

    from curation.scrape.manifest import Manifest

    ic_groups = [groups.get(hashlib.sha256(b).hexdigest(), "?") for b in bodies]
    manifest = Manifest(work / "ours" / "bench" / "manifest.jsonl")
    ours_groups = [groups.get(r["sha256"], "?") for r in manifest.kept_rows()]
    manifest.close()
    for name, elapsed, kept in (("icrawler", t_ic, ic_groups), ("ours", t_ours, ours_groups)):
        dups, leaks = let_through(kept)
        print(f"{name:9s} {elapsed:6.2f} s  {len(urls) / elapsed:6.1f} candidates/s  kept {len(kept):4d}  "
              f"duplicates kept {dups:3d}  training images kept {leaks:3d}")
    print(f"ours/icrawler time ratio {t_ours / t_ic:.2f}; first run indexing the shoes set (825 images, "
          f"cold cache) {warm:.1f} s")
    print("ours rejected:", dict(summary.classes[0].rejected))
    calibrate_threshold(work / "cache")


def calibrate_threshold(cache_dir: Path) -> None:
    """How many pairs of the shoes set's own images fall within each pHash threshold (image and mirror):
    white-background product shots hash alike, so this bounds the false rejections a threshold costs."""
    import numpy as np

    from curation.image_io import load_rgb
    from curation.scrape.dedup import phash

    paths = sorted(SHOES.glob("*/*/*.jpg"))
    plain, mirrored = [], []
    for path in paths:
        image = load_rgb(path)
        plain.append(int(phash(image), 16))
        mirrored.append(int(phash(ImageOps.mirror(image)), 16))
    a, m = np.array(plain, dtype=np.uint64), np.array(mirrored, dtype=np.uint64)
    d = np.minimum(np.bitwise_count(a[:, None] ^ a[None, :]), np.bitwise_count(a[:, None] ^ m[None, :]))
    upper = d[np.triu_indices(len(paths), k=1)]
    counts = {t: int((upper <= t).sum()) for t in (0, 2, 4, 6, 8, 10)}
    print(f"shoes set pairs within pHash distance t (of {len(upper)} pairs, mirror included):", counts)


if __name__ == "__main__":
    main()
