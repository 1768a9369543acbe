"""Precision and recall per kind on real pairs labelled by eye (bench/pairs/shoes_pairs.csv), and on
copies made from real shoes images (heavy crops, colour-mapped and mirrored copies), for the
duplicate engine with and without its pixel alignment (the earlier rules alone), in one run.

    .venv/bin/python bench/bench_real_pairs.py     # -> bench/out/real_pairs/results.txt
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance, ImageOps

from bench.leakage_common import OUT, SHOES, copy_dataset, numeric_sorted
from curation.cache import ContentCache
from curation.layout import list_folder_samples
from curation.leakage import LeakageParams, audit_leakage
from curation.sample_table import build_sample_table

LABELS = Path(__file__).resolve().parent / "pairs" / "shoes_pairs.csv"
COPY = {"exact", "near_duplicate"}


def made_copies(root: Path, per_class: int = 10) -> pd.DataFrame:
    """Copies of real test images put into a new split 'made': heavy crops (40-55 % of the area, some
    squashed back to square), colour-mapped and mirrored copies. Returns (path_a, path_b, kind, edit)."""
    rows, rng = [], np.random.default_rng(7)
    for label in ("adidas", "converse", "nike"):
        (root / "made" / label).mkdir(parents=True, exist_ok=True)
        for source in numeric_sorted(SHOES / "test" / label)[:per_class]:
            image = Image.open(source).convert("RGB")
            for edit, made in _edits(image, rng).items():
                target = root / "made" / label / f"{source.stem}_{edit}.jpg"
                made.save(target, quality=88)
                rows.append((f"test/{label}/{source.name}", target.relative_to(root).as_posix(), "near_duplicate", edit))
    return pd.DataFrame(rows, columns=["path_a", "path_b", "kind", "edit"])


def _edits(image: Image.Image, rng) -> dict[str, Image.Image]:
    w, h = image.size
    side = float(rng.uniform(0.63, 0.74))  # 40-55 % of the area
    left, top = int(rng.uniform(0, 1 - side) * w), int(rng.uniform(0, 1 - side) * h)
    crop = image.crop((left, top, left + int(side * w), top + int(side * h)))
    wide = image.crop((0, int(0.2 * h), w, int(0.9 * h)))  # a letterbox-shaped cut, squashed back to square
    return {"heavy_crop": crop.resize((w, h)), "squashed_crop": wide.resize((w, h)),
            "colour_mapped": ImageEnhance.Color(ImageEnhance.Contrast(image).enhance(1.3)).enhance(1.5),
            "mirror_recoloured": ImageOps.mirror(ImageEnhance.Brightness(image).enhance(0.8))}


def judged(pairs: pd.DataFrame, found: pd.DataFrame) -> pd.Series:
    """The engine's kind for each labelled pair ('' when it reported nothing)."""
    key = lambda a, b: tuple(sorted((a, b)))  # noqa: E731
    kinds = {key(a, b): k for a, b, k in zip(found["path_a"], found["path_b"], found["kind"])}
    return pd.Series([kinds.get(key(a, b), "") for a, b in zip(pairs["path_a"], pairs["path_b"])], index=pairs.index)


def scores(truth: pd.Series, got: pd.Series) -> dict:
    truth_copy, got_copy = truth.isin(COPY), got.isin(COPY)
    hits = int((truth_copy & got_copy).sum())
    row = {"copies": int(truth_copy.sum()), "copies found": hits,
           "copy recall": hits / max(1, truth_copy.sum()), "copy precision": hits / max(1, got_copy.sum()),
           "similar/unrelated called copy": int((truth.isin({"similar", "unrelated"}) & got_copy).sum()),
           "same_scene labelled": int((truth == "same_scene").sum()),
           "same_scene found": int(((truth == "same_scene") & (got == "same_scene")).sum()),
           "called same_scene wrongly": int(((truth != "same_scene") & (got == "same_scene")).sum())}
    return row


def main() -> None:
    out = OUT / "real_pairs"
    out.mkdir(parents=True, exist_ok=True)
    root = copy_dataset(SHOES, out / "data")
    made = made_copies(root)
    labels = pd.read_csv(LABELS)
    lines, table = [], []
    with ContentCache(out / "cache") as cache:
        sample_table, _ = build_sample_table(root, list_folder_samples(root), cache=cache)
        for name, params in (("engine (aligned, settings)", LeakageParams()),
                             ("engine without the setting rule", LeakageParams(setting=False)),
                             ("earlier rules (no alignment)", LeakageParams(align=False, setting=False))):
            audit_leakage(sample_table, root, cache=cache, params=params)  # warm the caches: time the decision
            clock = time.perf_counter()
            result = audit_leakage(sample_table, root, cache=cache, params=params)
            seconds = time.perf_counter() - clock
            real, made_got = judged(labels, result.pairs), judged(made, result.pairs)
            table.append({"method": name, "set": "real pairs (by eye)", **scores(labels["kind"], real), "warm s": round(seconds, 2)})
            table.append({"method": name, "set": "made copies", **scores(made["kind"], made_got), "warm s": ""})
            for edit, rows in made.groupby("edit"):
                lines.append(f"{name}: {edit} recall {made_got[rows.index].isin(COPY).mean():.3f}")
            extra = result.pairs[result.pairs["kind"].isin(COPY | {"same_scene"})]
            unlabelled = extra[~extra.apply(lambda r: (r.path_a, r.path_b) in set(zip(labels.path_a, labels.path_b))
                                            or (r.path_b, r.path_a) in set(zip(labels.path_a, labels.path_b))
                                            or "made/" in r.path_a + r.path_b, axis=1)]
            lines.append(f"{name}: copies or same-scene pairs outside the labelled and made sets: {len(unlabelled)}")
            missed = labels[labels["kind"].isin(COPY) & ~real.isin(COPY)]
            lines += [f"{name}: missed real copy {r.path_a} ~ {r.path_b} ({r.note})" for r in missed.itertuples()]
            wrong = labels[~labels["kind"].isin(COPY) & real.isin(COPY)]
            lines += [f"{name}: called a copy: {r.path_a} ~ {r.path_b} [{r.kind}: {r.note}]" for r in wrong.itertuples()]
            scene = labels[(labels["kind"] == "same_scene") | (real == "same_scene")]
            lines += [f"{name}: same_scene {'found' if k == 'same_scene' and g == k else 'missed' if k == 'same_scene' else 'wrongly'}"
                      f" {r.path_a} ~ {r.path_b} (engine: {g or 'nothing'}) [{k}: {r.note}]"
                      for r, k, g in zip(scene.itertuples(), scene["kind"], real[scene.index])]
            lines.append(f"{name}: stage seconds (warm) " + ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items()))
    frame = pd.DataFrame(table)
    text = frame.to_markdown(index=False, floatfmt=".3f") + "\n\n" + "\n".join(lines) + "\n"
    (out / "results.txt").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
