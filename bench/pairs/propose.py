"""Propose every candidate pair of the shoes set down to loose thresholds, with all signals, and
draw them side by side for labelling by eye (bench/pairs/README.md says how the labels were made).

    .venv/bin/python bench/pairs/propose.py     # -> bench/out/pairs/candidates.csv, sheets/*.png
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from bench.leakage_common import OUT, SHOES
from curation.cache import ContentCache
from curation.layout import list_folder_samples
from curation.leakage.exact import exact_pairs
from curation.leakage.perceptual import compute_hashes, hash_candidate_pairs, hash_distances
from curation.leakage.similarity import neighbour_pairs
from curation.sample_table import build_sample_table

LOOSE_COSINE = 0.78
LOOSE_HASH = 12
LOOSE_INLIERS = 9  # different photos reach 11 (verify.py); any pair at 9 or more is looked at
NEIGHBOURS = 5
LOOSE_BACKDROP = 0.51  # pictures with a setting whose content patches match this much (curation.leakage.scene)


def candidates(table: pd.DataFrame, cache: ContentCache) -> pd.DataFrame:
    from curation.embeddings import compute_embeddings
    from curation.leakage.verify import compute_keypoints, verify_pairs

    exact = exact_pairs(table)
    hashes = compute_hashes(table, SHOES, cache=cache, methods=("phash",))
    hash_pairs = hash_candidate_pairs(hashes, LOOSE_HASH)
    embeddings = compute_embeddings(table, SHOES, cache=cache)
    vectors = embeddings.normalized()
    neighbours = neighbour_pairs(vectors, embeddings.valid, list(table["split"]), k=NEIGHBOURS,
                                 exact_limit=50_000, split_order=["train", "test"])
    pairs = np.unique(np.sort(np.concatenate([exact[["a", "b"]].to_numpy(dtype="int64").reshape(-1, 2), hash_pairs,
                                              neighbours.pairs]), axis=1), axis=0)
    a, b = pairs[:, 0], pairs[:, 1]
    cosine = np.einsum("ij,ij->i", vectors[a], vectors[b])
    distance, mirrored = hash_distances(hashes, a, b)
    keypoints = compute_keypoints(table, SHOES, pairs.ravel(), cache=cache, n_features=500)
    inliers = verify_pairs(pairs, keypoints, enough=10_000).inliers
    exact_set = {(x, y) for x, y in exact[["a", "b"]].itertuples(index=False)}
    keep = (cosine >= LOOSE_COSINE) | (distance <= 10) | (inliers >= LOOSE_INLIERS)
    keep |= np.array([(x, y) in exact_set for x, y in zip(a, b)])
    pairs, cosine, distance, inliers = pairs[keep], cosine[keep], distance[keep], inliers[keep]
    frame = pd.DataFrame({"path_a": table["path"].to_numpy()[pairs[:, 0]], "path_b": table["path"].to_numpy()[pairs[:, 1]],
                          "cosine": cosine.round(4), "hash_distance": distance, "inliers": inliers})
    frame = pd.concat([frame, same_backdrop(table, cache, known=set(zip(frame["path_a"], frame["path_b"])))])
    return frame.sort_values(["cosine"], ascending=False).reset_index(drop=True)


def same_backdrop(table: pd.DataFrame, cache: ContentCache, known: set) -> pd.DataFrame:
    """Every pair of pictures with a setting (not plain white studio shots) whose backdrops match
    (another frame of one shoot moves the shoe, so neither keypoints nor the embedding propose it)."""
    from curation.leakage.params import LeakageParams
    from curation.leakage.scene import compute_scene_descriptors, setting_figures

    descriptors = compute_scene_descriptors(table, SHOES, cache=cache)
    with_setting = np.flatnonzero(descriptors.setting_share() >= LeakageParams().setting_share)
    first, second = np.triu_indices(len(with_setting), k=1)
    pairs = np.stack([with_setting[first], with_setting[second]], axis=1)
    backdrop = setting_figures(descriptors, pairs, np.ones(len(pairs), dtype=bool)).backdrop
    pairs, backdrop = pairs[backdrop >= LOOSE_BACKDROP], backdrop[backdrop >= LOOSE_BACKDROP]
    paths = table["path"].to_numpy()
    frame = pd.DataFrame({"path_a": paths[pairs[:, 0]], "path_b": paths[pairs[:, 1]], "backdrop": backdrop.round(3)})
    return frame[[(a, b) not in known for a, b in zip(frame["path_a"], frame["path_b"])]]


def draw_sheets(frame: pd.DataFrame, out: Path, per_sheet: int = 4) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(frame), per_sheet):
        rows = frame.iloc[start:start + per_sheet]
        sheet = Image.new("RGB", (2 * 240 + 30, len(rows) * 262), "white")
        draw = ImageDraw.Draw(sheet)
        for i, (index, row) in enumerate(rows.iterrows()):
            y = i * 262
            for j, path in enumerate((row.path_a, row.path_b)):
                image = Image.open(SHOES / path).convert("RGB")
                image.thumbnail((240, 240))
                sheet.paste(image, (j * 270, y + 20))
            draw.text((2, y + 4), f"pair {index}: {row.path_a} | {row.path_b}", fill="black")
        sheet.save(out / f"sheet_{start // per_sheet:03d}.png")


def main() -> None:
    out = OUT / "pairs"
    with ContentCache(Path.home() / ".cache" / "curation") as cache:
        table, _ = build_sample_table(SHOES, list_folder_samples(SHOES), cache=cache)
        frame = candidates(table, cache)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "candidates.csv", index_label="pair")
    draw_sheets(frame, out / "sheets")
    print(f"{len(frame)} candidate pairs -> {out}")


if __name__ == "__main__":
    main()
