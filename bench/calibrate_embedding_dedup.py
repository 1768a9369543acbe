"""Calibrate the scraper's embedding de-duplication threshold on the real shoes set.

Two measurements, on the same lite0 vectors the scraper uses (`curation.scrape.embedding_dedup`):
- copies that must be caught: train images cropped, re-lit or colour-shifted, passed through the
  scraper's own normalisation (fit to 240x240, JPEG), compared with their original;
- different photos that must be kept: every pair of distinct images of the set (825 images,
  339,900 pairs), and each image's nearest other image (what a scraped photo of a different shoe,
  as alike as the set's own photos are, would be compared with).
pHash (the scraper's second step, threshold 6) is measured on the same copies, to show what the
embedding adds.

    python bench/calibrate_embedding_dedup.py [--copies 120]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("CURATION_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image, ImageEnhance, ImageOps  # noqa: E402

SHOES = Path(os.environ.get("CURATION_SHOES_DIR", ROOT.parent / "shared" / "datasets" / "shoes"))
THRESHOLDS = (0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.96)
PHASH_THRESHOLD = 6


def crop(image: Image.Image, keep: float, rng: random.Random) -> Image.Image:
    """Keep `keep` of the width and height at a random offset (a 15 % crop keeps 0.85)."""
    w, h = image.size
    cw, ch = round(w * keep), round(h * keep)
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return image.crop((x, y, x + cw, y + ch))


def colour_shift(image: Image.Image) -> Image.Image:
    r, g, b = image.split()
    warmer = Image.merge("RGB", (r.point(lambda v: min(255, int(v * 1.15))), g, b.point(lambda v: int(v * 0.85))))
    return ImageEnhance.Color(warmer).enhance(1.5)


TRANSFORMS = {
    "brightness x1.3": lambda im, rng: ImageEnhance.Brightness(im).enhance(1.3),
    "brightness x0.7": lambda im, rng: ImageEnhance.Brightness(im).enhance(0.7),
    "colour shift": lambda im, rng: colour_shift(im),
    "crop 15%": lambda im, rng: crop(im, 0.85, rng),
    "crop 15% + brightness x1.25": lambda im, rng: ImageEnhance.Brightness(crop(im, 0.85, rng)).enhance(1.25),
    "crop 15% + colour shift": lambda im, rng: colour_shift(crop(im, 0.85, rng)),
    "crop 25%": lambda im, rng: crop(im, 0.75, rng),
    "rotate 8 deg": lambda im, rng: im.rotate(8, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255)),
    "mirror + crop 10%": lambda im, rng: ImageOps.mirror(crop(im, 0.9, rng)),
}


def main() -> None:
    import torch

    from curation.cache import ContentCache
    from curation.embeddings import compute_embeddings
    from curation.layout import list_folder_samples
    from curation.sample_table import build_sample_table
    from curation.scrape.config import ImageRules
    from curation.scrape.dedup import DedupIndex, phash
    from curation.scrape.embedding_dedup import EmbeddingIndex
    from curation.scrape.process import process_image
    from tests.scrape_site import encode

    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=120, help="train images to copy and alter")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = random.Random(0)

    with ContentCache() as cache:
        table = build_sample_table(SHOES, list_folder_samples(SHOES), cache=cache, workers=2)[0]
        table = table[table["load_error"] == ""].reset_index(drop=True)
        started = time.perf_counter()
        vectors = compute_embeddings(table, SHOES, cache=cache).normalized()
        print(f"{len(table)} shoes images embedded in {time.perf_counter() - started:.1f} s (cache warm or cold)")
        hashes = [int(phash(Image.open(SHOES / p).convert("RGB")), 16) for p in table["path"]]

        # ---- different photos: all distinct pairs of the set ----
        sims = vectors @ vectors.T
        upper = sims[np.triu_indices(len(table), k=1)]
        np.fill_diagonal(sims, -1)
        nearest = sims.max(axis=1)
        bits = np.array([[bin(a ^ b).count("1") for b in hashes] for a in hashes])
        np.fill_diagonal(bits, 99)
        phash_twin = bits.min(axis=1) <= PHASH_THRESHOLD  # images pHash already calls duplicates
        print(f"\ndistinct pairs: {len(upper)}; similarity quantiles 50/99/99.9/99.99 %: "
              + " / ".join(f"{np.quantile(upper, q):.3f}" for q in (0.5, 0.99, 0.999, 0.9999))
              + f"; max {upper.max():.3f}")
        print("nearest-other-image similarity quantiles 50/90/99 %: "
              + " / ".join(f"{np.quantile(nearest, q):.3f}" for q in (0.5, 0.9, 0.99)))
        print("| threshold | pairs at or above | images with a neighbour at or above | of them not pHash twins |")
        print("|---|---|---|---|")
        for t in THRESHOLDS:
            flagged = nearest >= t
            print(f"| {t:.2f} | {int((upper >= t).sum())} | {int(flagged.sum())} ({flagged.mean():.1%}) | "
                  f"{int((flagged & ~phash_twin).sum())} |")

        # ---- altered copies of train images: must be caught ----
        train = table[table["split"] == "train"]
        picks = rng.sample(list(train.index), min(args.copies, len(train)))
        index = EmbeddingIndex(0.0, cache)
        dedup = DedupIndex(PHASH_THRESHOLD, mirror=True)
        rules, results = ImageRules(), {}
        started = time.perf_counter()
        for name, transform in TRANSFORMS.items():
            altered = []
            for i in picks:
                original = Image.open(SHOES / table.at[i, "path"]).convert("RGB")
                processed = process_image(encode(transform(original, rng), quality=90), rules, (240, 240))
                candidate = dedup.candidate_phashes(processed.source_rgb, processed.image)
                distance = min(bin(int(h, 16) ^ hashes[i]).count("1") for h in candidate.values())
                altered.append((processed, distance))
            images = [Image.open(__import__("io").BytesIO(p.jpeg)).convert("RGB") for p, _ in altered]
            embedded = np.concatenate([index._run(images[k:k + 32]) for k in range(0, len(images), 32)])
            embedded /= np.linalg.norm(embedded, axis=1, keepdims=True)
            similarity = (embedded * vectors[picks]).sum(axis=1)
            results[name] = (similarity, np.array([d for _, d in altered]))
        print(f"\n{len(picks)} train images x {len(TRANSFORMS)} alterations embedded in "
              f"{time.perf_counter() - started:.1f} s")
        print("| alteration | similarity min / 5 % / median | pHash <= 6 catches | "
              + " | ".join(f"emb >= {t:.2f}" for t in THRESHOLDS) + " |")
        print("|---|---|---|" + "---|" * len(THRESHOLDS))
        for name, (similarity, distance) in results.items():
            caught = " | ".join(f"{(similarity >= t).mean():.0%}" for t in THRESHOLDS)
            print(f"| {name} | {similarity.min():.3f} / {np.quantile(similarity, 0.05):.3f} / "
                  f"{np.median(similarity):.3f} | {(distance <= PHASH_THRESHOLD).mean():.0%} | {caught} |")


if __name__ == "__main__":
    main()
