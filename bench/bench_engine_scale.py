"""Throughput of the per-image stages (scan: file hashes and the image probe; embeddings: lite0) on
the local engine against the ray engine with 1 and 2 worker processes, on the same images, each
configuration in a fresh process with an empty content cache (cold: every image decoded and
embedded once).

The images: the shoes set made into N distinct files (default 20,000). Each is a real shoes image,
cropped a little at random, resized to 200-260 px and re-encoded: distinct bytes and pixels, so the
content cache cannot merge them, and about the size of the shoes images (240 px). They are made once
under bench/out/engine_scale/ and reused.

The ray configurations start a Ray of their own on this machine with that many CPUs (one actor per
CPU). Ray takes the machine's outside address as its node address, so run this through
scripts/loopback_only.sh, as the tests do:

    bash scripts/loopback_only.sh .venv/bin/python bench/bench_engine_scale.py [--images 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from leakage_common import OUT, PROJECT, SHOES

DATA = OUT / "engine_scale"
CONFIGS = {"local": None, "ray-1": 1, "ray-2": 2}


def make_images(count: int, target: Path = DATA) -> Path:
    """`count` distinct images in train/<class>/, made from the shoes set (kept between runs)."""
    import numpy as np
    from PIL import Image

    from curation.layout import list_folder_samples

    done = target / f".made-{count}"
    if done.exists():
        return target
    sources = [(SHOES / e.path, e.label) for e in list_folder_samples(SHOES) if e.label]
    rng = np.random.default_rng(0)
    for i in range(count):
        path, label = sources[i % len(sources)]
        out = target / "train" / label / f"{i:06d}.jpg"
        if out.exists():
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as image:
            image = image.convert("RGB")
            w, h = image.size
            cut = rng.uniform(0, 0.08, size=4)
            box = (cut[0] * w, cut[1] * h, w - cut[2] * w, h - cut[3] * h)
            side = int(rng.integers(200, 261))
            image.crop(box).resize((side, side)).save(out, quality=int(rng.integers(85, 96)))
        if i % 2000 == 0:
            print(f"made {i}/{count} images", file=sys.stderr, flush=True)
    done.touch()
    return target


def one(config: str, root: Path) -> dict:
    """Scan and embed `root` cold on one configuration; seconds per step."""
    from curation.cache import ContentCache
    from curation.embeddings import compute_embeddings
    from curation.engine import LocalEngine, use_engine
    from curation.sample_table import build_sample_table
    from curation.layout import list_folder_samples

    workers = CONFIGS[config]
    if workers is None:
        engine = LocalEngine()
    else:
        import ray

        from curation.engine.ray_engine import RayEngine

        started = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - started
        engine = RayEngine(actors=workers)
    entries = list_folder_samples(root)
    with tempfile.TemporaryDirectory() as scratch, use_engine(engine), ContentCache(Path(scratch) / "cache") as cache:
        clock = time.perf_counter()
        table, _stats = build_sample_table(root, entries, cache=cache, workers=2)
        scan_s = time.perf_counter() - clock
        clock = time.perf_counter()
        embeddings = compute_embeddings(table, root, cache=cache)
        embed_s = time.perf_counter() - clock
    row = {"config": config, "images": len(table), "scan_s": round(scan_s, 1), "embed_s": round(embed_s, 1),
           "total_s": round(scan_s + embed_s, 1), "embedded": int(embeddings.valid.sum()),
           "rows_unique": bool(table["path"].is_unique and len(table) == len(entries))}
    row["images_per_s"] = round(row["images"] / row["total_s"], 1)
    if workers is not None:
        row["ray_start_s"] = round(ray_start, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, DATA)))
        return
    make_images(args.images)
    env = {**os.environ, "CURATION_PROGRESS": "0", "RAY_ADDRESS": ""}
    env.pop("RAY_ADDRESS")
    rows = []
    for config in args.configs.split(","):
        done = subprocess.run([sys.executable, __file__, "--one", config], capture_output=True, text=True,
                              cwd=PROJECT, env=env)
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    local = next((r for r in rows if r["config"] == "local"), None)
    print("\n| engine | images | scan s | embed s | total s | images/s | time vs local |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['total_s'] / local['total_s']:.2f}x" if local else "-"
        print(f"| {r['config']} | {r['images']:,} | {r['scan_s']} | {r['embed_s']} | {r['total_s']} | "
              f"{r['images_per_s']} | {ratio} |")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "engine_scale.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
