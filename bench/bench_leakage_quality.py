"""Quality of the leakage audit: planted copies of train images in the test split, under edits.

Builds bench/out/leakage_quality/data: the shoes set plus, for each of N source train images per
class, one copy under every edit of curation.leakage.planting.EDITS planted in test/<class>/. The
original test images are the hard negatives (clean, same classes, same white-background look).
Source images are chosen among train images with no near neighbour in the original set, so that
every flagged pair other than (source, its copy) is a false positive.

For each signal alone (exact hashes, mirror-aware pHash, embedding cosine), the fused decision,
the end-to-end audit_leakage, and imagededup's PHash().find_duplicates and
CNN(CustomModel(lite0)).find_duplicates at their default thresholds on the same folder, it
reports recall per edit and false-positive pairs (train/test pairs flagged that are not a source
and its copy). It also sweeps the fusion thresholds (the calibration behind LeakageParams).

Run: python bench/bench_leakage_quality.py [--per-class 15]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from leakage_common import OUT, SHOES, copy_dataset, imagededup_cnn, imagededup_pairs, numeric_sorted

from curation.cache import ContentCache
from curation.scan import scan_dataset
from curation.embeddings import compute_embeddings
from curation.leakage import LeakageParams, audit_leakage
from curation.leakage.perceptual import compute_hashes
from curation.leakage.planting import EDITS, plant_copy
from curation.leakage.faded import find_faded_pairs
from curation.leakage.verify import compute_keypoints, verify_pairs

# Pairs of the original shoes set that the audit flags and a person judged to be the same scene
# shot twice (same shoes, same car seat, moments apart): a real leak in the data, not a false positive.
KNOWN_ORIGINAL_COPIES = {("train/adidas/233.jpg", "test/adidas/37.jpg")}


def choose_sources(cache: ContentCache, per_class: int) -> list[Path]:
    """Train images with no similar image anywhere in the original set (cosine < 0.85, pHash > 6)."""
    scanned = scan_dataset(SHOES, reports_dir=OUT / "leakage_quality" / "reports", cache=cache)
    loose = LeakageParams(cosine_similar=0.85, cosine_support=0.85, cosine_near=0.85, hash_strict=6, neighbours=10,
                          verify=False, embedding_size=None)  # independent of the settings being measured
    pairs = audit_leakage(scanned.table, SHOES, cache=cache, params=loose).pairs
    crowded = set(pairs["path_a"]) | set(pairs["path_b"])
    sources = []
    for class_dir in sorted((SHOES / "train").iterdir()):
        free = [p for p in numeric_sorted(class_dir) if f"train/{class_dir.name}/{p.name}" not in crowded]
        step = max(1, len(free) // per_class)
        sources += free[::step][:per_class]
    return sources


def build_dataset(sources: list[Path], data: Path) -> pd.DataFrame:
    copy_dataset(SHOES, data)
    rows = []
    for source in sources:
        label = source.parent.name
        for edit, (_, expected, _) in EDITS.items():
            planted = plant_copy(source, data / "test" / label, edit, stem=f"planted_{source.stem}")
            rows.append({"copy": planted.relative_to(data).as_posix(), "source": f"train/{label}/{source.name}",
                         "edit": edit, "expected": expected})
    return pd.DataFrame(rows)


def hamming_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    bits_a = np.unpackbits(a, axis=1).astype(np.int16)
    bits_b = np.unpackbits(b, axis=1).astype(np.int16)
    return (bits_a[:, None, :] != bits_b[None, :, :]).sum(axis=2)  # benchmark-sized only


def signal_matrices(table: pd.DataFrame, data: Path, cache: ContentCache):
    """Dense test x train matrices of every signal (fine at benchmark size; the audit never does this)."""
    test = np.flatnonzero(table["split"] == "test")
    train = np.flatnonzero(table["split"] == "train")
    vectors = compute_embeddings(table, data, cache=cache, image_size=LeakageParams().embedding_size).normalized()
    cosine = vectors[test] @ vectors[train].T
    hashes = compute_hashes(table, data, cache=cache, methods=("phash", "dhash", "whash"))
    distance = {}
    for method in hashes.codes:
        direct = hamming_matrix(hashes.codes[method][test], hashes.codes[method][train])
        mirror = hamming_matrix(hashes.codes[method][test], hashes.mirrors[method][train])
        distance[method] = np.minimum(direct, mirror)
        distance[method + "_plain"] = direct
    inliers = keypoint_matrix(table, data, cache, test, train, cosine, distance["phash"])
    exact = ((table["sha256"].to_numpy()[test][:, None] == table["sha256"].to_numpy()[train][None, :])
             | (table["pixel_hash"].to_numpy()[test][:, None] == table["pixel_hash"].to_numpy()[train][None, :]))
    return test, train, cosine, distance, exact, inliers, fade_matrix(table, data, cache, test, train)


def fade_matrix(table, data, cache, test, train):
    """Fade scores (curation.leakage.faded) of the test/train pairs the audit proposes; -1 elsewhere."""
    defaults = LeakageParams()
    found = find_faded_pairs(table, data, cache=cache, faded_fraction=defaults.faded_fraction,
                             candidates=defaults.faded_candidates)
    row_of = {int(p): i for i, p in enumerate(test)}
    col_of = {int(p): i for i, p in enumerate(train)}
    fade = np.full((len(test), len(train)), -1.0, dtype="float32")
    for (a, b), score in zip(found.pairs, found.scores):
        for t, r in ((a, b), (b, a)):
            if t in row_of and r in col_of:
                fade[row_of[t], col_of[r]] = score
    return fade


def keypoint_matrix(table, data, cache, test, train, cosine, phash):
    """Inliers for the pairs the audit verifies: each test image's nearest train images, pairs with
    cosine >= cosine_similar, and pHash matches within hash_max_distance; -1 elsewhere."""
    defaults = LeakageParams()
    rows, cols = np.nonzero((phash <= defaults.hash_max_distance) | (cosine >= defaults.cosine_similar))
    top = np.argsort(-cosine, axis=1)[:, :defaults.verify_neighbours]
    rows = np.concatenate([rows, np.repeat(np.arange(len(test)), top.shape[1])])
    cols = np.concatenate([cols, top.ravel()])
    cells = np.unique(np.stack([rows, cols], axis=1), axis=0)
    pairs = np.stack([test[cells[:, 0]], train[cells[:, 1]]], axis=1)
    keypoints = compute_keypoints(table, data, pairs.ravel(), cache=cache, n_features=LeakageParams().keypoint_features)
    counts = verify_pairs(pairs, keypoints, enough=10**6).inliers
    inliers = np.full(cosine.shape, -1, dtype="int64")
    inliers[cells[:, 0], cells[:, 1]] = counts
    return inliers


def fused(cosine, phash, exact, inliers, fade, p: LeakageParams):
    """fuse.decide's near-duplicate rules, on dense matrices."""
    return (exact | (inliers >= p.inliers_near) | (cosine >= p.cosine_near) | (fade >= p.faded_near)
            | (((phash <= p.hash_strict) | (inliers >= p.inliers_support)) & (cosine >= p.cosine_support))
            | ((inliers >= p.inliers_support) & (phash <= p.hash_max_distance)))


def evaluate(flagged_pairs: set[tuple[str, str]], planted: pd.DataFrame, test_paths: list[str]) -> dict:
    """Recall per edit and false positives from a set of (train path, test path) pairs."""
    truth = set(zip(planted["source"], planted["copy"]))
    found = planted.apply(lambda r: (r["source"], r["copy"]) in flagged_pairs, axis=1)
    recall = found.groupby(planted["edit"]).mean().reindex(list(EDITS)).round(3).to_dict()
    planted_paths = set(planted["copy"])
    false = [p for p in flagged_pairs if p not in truth and p not in KNOWN_ORIGINAL_COPIES]
    return {"recall": recall, "min_recall": float(min(recall.values())),
            "false_positives": len(false),
            "fp_on_originals": sum(1 for _, t in false if t not in planted_paths),
            "fp_examples": sorted(false)[:8]}


def matrix_pairs(mask: np.ndarray, table: pd.DataFrame, test: np.ndarray, train: np.ndarray) -> set[tuple[str, str]]:
    rows, cols = np.nonzero(mask)
    paths = table["path"].to_numpy()
    return set(zip(paths[train[cols]], paths[test[rows]]))


def cross_pairs(pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """imagededup's pairs between a train and a test image, as (train, test)."""
    out = set()
    for a, b in pairs:
        if a.startswith("train/") and b.startswith("test/"):
            out.add((a, b))
        elif b.startswith("train/") and a.startswith("test/"):
            out.add((b, a))
    return out


def calibrate(cosine, distance, exact, inliers, fade, planted_index, edits, non_truth_mask):
    """Grid over the fusion thresholds: recall on the worst edit and false positives of each setting."""
    rows = []
    phash = distance["phash"]
    for near in (0.90, 0.92, 0.94, 0.96, 0.98, 1.01):
        for strict in (0, 2, 4, 6, 8):
            for support in np.arange(0.50, min(near, 0.96), 0.05):
                for inliers_near in (10, 12, 14, 16, 18, 20, 25, 30):
                    for inliers_support in (4, 6, 8, 10, 12, 15):
                        if inliers_support > inliers_near:
                            continue
                        p = LeakageParams(cosine_near=near, cosine_support=round(support, 2), hash_strict=strict,
                                          inliers_near=inliers_near, inliers_support=inliers_support)
                        mask = fused(cosine, phash, exact, inliers, fade, p)
                        recall = pd.Series(mask[planted_index[:, 0], planted_index[:, 1]]).groupby(edits).mean()
                        rows.append({"cosine_near": near, "hash_strict": strict, "cosine_support": p.cosine_support,
                                     "inliers_near": inliers_near, "inliers_support": inliers_support,
                                     "min_recall": round(float(recall.min()), 3), "worst_edit": recall.idxmin(),
                                     "mean_recall": round(float(recall.mean()), 4),
                                     "false_positives": int((mask & non_truth_mask).sum())})
    return pd.DataFrame(rows)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=15, help="source train images per class")
    parser.add_argument("--skip-imagededup", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = OUT / "leakage_quality"
    cache = ContentCache(OUT / "leakage_cache")
    sources = choose_sources(cache, args.per_class)
    data = out / "data"
    planted = build_dataset(sources, data)
    scanned = scan_dataset(data, reports_dir=out / "reports", cache=cache)
    table = scanned.table
    test, train, cosine, distance, exact, inliers, fade = signal_matrices(table, data, cache)
    paths = table["path"].to_numpy()
    test_pos = {p: i for i, p in enumerate(paths[test])}
    train_pos = {p: i for i, p in enumerate(paths[train])}
    planted_index = np.array([[test_pos[c], train_pos[s]] for c, s in zip(planted["copy"], planted["source"])])
    non_truth = np.ones_like(exact)
    non_truth[planted_index[:, 0], planted_index[:, 1]] = False
    for a, b in KNOWN_ORIGINAL_COPIES:
        non_truth[test_pos[b], train_pos[a]] = False

    params = LeakageParams()
    results = {}
    signals = {
        "exact (file or pixels)": exact,
        f"pHash+mirror <= {params.hash_strict}": distance["phash"] <= params.hash_strict,
        f"pHash+mirror <= {params.hash_max_distance}": distance["phash"] <= params.hash_max_distance,
        f"dHash+mirror <= {params.hash_strict}": distance["dhash"] <= params.hash_strict,
        f"wHash+mirror <= {params.hash_strict}": distance["whash"] <= params.hash_strict,
        f"embedding cosine >= {params.cosine_near}": cosine >= params.cosine_near,
        f"keypoint inliers >= {params.inliers_near}": inliers >= params.inliers_near,
        f"fade score >= {params.faded_near}": fade >= params.faded_near,
        "fused rule (defaults)": fused(cosine, distance["phash"], exact, inliers, fade, params),
    }
    for name, mask in signals.items():
        results[name] = evaluate(matrix_pairs(mask, table, test, train), planted, list(paths[test]))

    clock = time.perf_counter()
    audit = audit_leakage(table, data, cache=cache, params=params)
    leaks = audit.leaks
    results["audit_leakage end-to-end (defaults)"] = evaluate(
        set(zip(leaks["path_a"], leaks["path_b"])), planted, list(paths[test]))
    results["audit_leakage end-to-end (defaults)"]["kinds_right"] = float(np.mean([
        ((leaks["path_a"] == s) & (leaks["path_b"] == c) & (leaks["kind"] == k)).any()
        for s, c, k in zip(planted["source"], planted["copy"], planted["expected"])]))
    print(f"audit (cached features) {time.perf_counter() - clock:.1f}s")

    if not args.skip_imagededup:
        from imagededup.methods import PHash

        phash = PHash(verbose=False)
        found = phash.find_duplicates(encoding_map=phash.encode_images(str(data), recursive=True, num_enc_workers=0))
        results["imagededup PHash (threshold 10)"] = evaluate(cross_pairs(imagededup_pairs(found)), planted, [])
        cnn = imagededup_cnn()
        encodings = cnn.encode_images(data, recursive=True)
        found = cnn.find_duplicates(encoding_map=encodings)
        results["imagededup CNN lite0 (threshold 0.9)"] = evaluate(cross_pairs(imagededup_pairs(found)), planted, [])

    sweep = calibrate(cosine, distance, exact, inliers, fade, planted_index, planted["edit"].to_numpy(), non_truth)
    sweep.to_csv(out / "calibration.csv", index=False)
    good = sweep[sweep["min_recall"] >= 0.98].sort_values(["false_positives", "mean_recall"], ascending=[True, False])
    best_recall = sweep[sweep["false_positives"] == 0].sort_values(["min_recall", "mean_recall"], ascending=[False, False])
    write_results(out, planted, sources, results, good, best_recall, cosine, inliers, fade, non_truth, planted_index)


def write_results(out, planted, sources, results, good, best_recall, cosine, inliers, fade, non_truth, planted_index) -> None:
    recall = pd.DataFrame({name: r["recall"] for name, r in results.items()})
    totals = pd.DataFrame({name: {"min recall": r["min_recall"], "false positives": r["false_positives"],
                                  "FP on original test images": r["fp_on_originals"]} for name, r in results.items()})
    copy_cos = cosine[planted_index[:, 0], planted_index[:, 1]]
    negative_cos = np.where(non_truth, cosine, -1).max(axis=1)
    text = [f"sources: {len(sources)} train images, {len(planted)} planted copies, {len(EDITS)} edits",
            "", "recall per edit", recall.to_string(), "", totals.to_string(), "",
            "copy-to-source cosine per edit (min / median):",
            pd.Series(copy_cos).groupby(planted["edit"].to_numpy()).agg(["min", "median"]).round(3).to_string(),
            "", f"highest cosine of a test image to a train image that is not its source: {negative_cos.max():.3f}",
            "", "calibration: settings with min recall >= 0.98, fewest false positives first",
            good.head(10).to_string(), "", "best recall with no false positive", best_recall.head(10).to_string()]
    copy_inliers = inliers[planted_index[:, 0], planted_index[:, 1]]
    negative_inliers = np.where(non_truth, inliers, -1).max(axis=1)
    text += ["", "copy-to-source keypoint inliers per edit (min / median; -1: source not among the verified candidates):",
             pd.Series(copy_inliers).groupby(planted["edit"].to_numpy()).agg(["min", "median"]).to_string(),
             f"most inliers of a test image with a train image that is not its source: {negative_inliers.max()}"]
    copy_fade = fade[planted_index[:, 0], planted_index[:, 1]]
    text += ["", "copy-to-source fade score per edit (min / max; -1: neither image washed out, or not proposed):",
             pd.Series(copy_fade).groupby(planted["edit"].to_numpy()).agg(["min", "max"]).round(3).to_string(),
             f"highest fade score of a test image with a train image that is not its source: "
             f"{np.where(non_truth, fade, -1).max():.3f}"]
    for name, r in results.items():
        if r["fp_examples"]:
            text += ["", f"false positives of {name} (first 8):"] + [f"  {a}  ~  {b}" for a, b in r["fp_examples"]]
    (out / "results.txt").write_text("\n".join(text) + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print("\n".join(text))


if __name__ == "__main__":
    main()
