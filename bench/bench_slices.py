"""Planted error slices on the real shoes set: does the top slice recover them, and name them?

For each planting and seed, a copy of the shoes set (825 real images) gets a spurious cue that one
class A carries far more often than the others, so that a model learns the cue and fails on the
other classes' images that carry it (Domino's "correlation slices"):
- grey: 80% of A's images and 15% of the others' turned grey;
- dark: 80% of A's plain-background images and 15% of the others' cut out and put on a near-black
  backdrop (the proxy's cut-out, training.shift.foreground_mask).
The planted slice is the cue's images outside A. And one of Domino's "noisy label" slices:
- grey_mislabelled: 15% of all images turned grey, 70% of those filed under another class (an
  annotator who cannot tell grey photos apart); the planted slice is every grey image. The model is the label-issue stage's embedding
probe (out-of-fold logistic regression on the three packaged backbones): a fine-tune per planting
would take 10 minutes each on 2 cores. Every method gets the same predictions and embeddings:
- ours, with candidate groups from embedding clusters, from attribute predicates, or both;
- cleanlab Datalab's `underperforming_group` (its one worst cluster).
Reported per run, for the slice that matches the planted images best (Domino's measure: the max over
the slices returned) and its rank: precision at 10 and at 25 of its members (errors first, as the
page shows them), its recall of the planted images, whether its description names the planted
attribute, and how many slices were found. A null run (errors shuffled over the samples, 20 times)
counts slices found where none exists.

Run: python bench/bench_slices.py [--seeds 0,1,2] [--plantings grey,dark]; writes bench/out/slices.csv.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CURATION_PROGRESS", "0")

SHOES = Path(os.environ.get("CURATION_SHOES_DIR", ROOT.parent / "shared" / "datasets" / "shoes"))
FAVOURED_SHARE, OTHER_SHARE = 0.95, 0.1
MISLABELLED_SHARE, MISLABELLED_WRONG = 0.15, 0.7
PROBE_C = 1.0  # a probe that fits its training data closely, as a fine-tune does, and so learns the cue
NAMES = {"grey": "grey-scale", "dark": "dark", "grey_mislabelled": "grey-scale"}  # the word the description must hold
VARIANTS = {"ours (clusters + predicates)": {"families": ("clusters", "predicates")},
            "ours (clusters + predicates, ranked by rate)": {"families": ("clusters", "predicates"), "rank_by": "rate"},
            "ours (clusters only)": {"families": ("clusters",)},
            "ours (predicates only)": {"families": ("predicates",)}}


def _grey(image):
    return image.convert("L").convert("RGB")


def _dark(image):
    from PIL import Image

    from training.shift import foreground_mask

    mask = foreground_mask(image)
    if mask is None:
        return None
    rgb = np.asarray(image, dtype="float32")
    backdrop = np.full_like(rgb, 22.0) + np.random.default_rng(0).normal(0, 3, rgb.shape)
    mixed = rgb * mask[..., None] + backdrop * (1 - mask[..., None])
    return Image.fromarray(np.clip(mixed, 0, 255).astype("uint8"))


def plant(out: Path, planting: str, seed: int) -> tuple[set[str], str]:
    """Copy the shoes set to `out` with the cue planted; returns (planted paths, class A)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    classes = sorted(p.name for p in (SHOES / "train").iterdir() if p.is_dir())
    favoured = classes[seed % len(classes)]
    change = {"grey": _grey, "dark": _dark, "grey_mislabelled": _grey}[planting]
    planted = set()
    for source in sorted(SHOES.rglob("*.jpg")):
        relative = source.relative_to(SHOES)
        label = relative.parts[1]
        changed, filed = None, label
        if planting == "grey_mislabelled":
            if rng.random() < MISLABELLED_SHARE:
                changed = change(Image.open(source).convert("RGB"))
                if rng.random() < MISLABELLED_WRONG:
                    filed = str(rng.choice([c for c in classes if c != label]))
        elif rng.random() < (FAVOURED_SHARE if label == favoured else OTHER_SHARE):
            changed = change(Image.open(source).convert("RGB"))
        name = relative.name if filed == label else f"from_{label}_{relative.name}"  # no clash with filed's own
        target = out / relative.parts[0] / filed / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if changed is None:
            shutil.copyfile(source, target)
            continue
        changed.save(target, quality=95)
        if label != favoured or planting == "grey_mislabelled":
            planted.add(target.relative_to(out).as_posix())
    return planted, favoured


def probe_outcomes(table, root, cache):
    from curation.embeddings import combined_vectors
    from curation.label_issues.audit import LABEL_EMBEDDING_MODELS
    from curation.label_issues.probabilities import cross_validated_probabilities
    from curation.slices.outcomes import outcomes_from_probabilities

    vectors = combined_vectors(table, root, cache=cache, spec=LABEL_EMBEDDING_MODELS)
    oos = cross_validated_probabilities(table, vectors, c=PROBE_C)
    frame = pd.concat([pd.DataFrame(s.pred_probs, columns=[f"p_{c}" for c in oos.classes]).assign(sample_id=s.sample_ids)
                       for s in oos.splits.values()], ignore_index=True)
    outcomes = outcomes_from_probabilities(table, frame, "probe")
    probs = frame.set_index("sample_id").loc[outcomes["sample_id"]].to_numpy()
    position = pd.Series(np.arange(len(table)), index=table["sample_id"]).loc[outcomes["sample_id"]].to_numpy()
    return outcomes, probs, vectors[position]


def scores(ordered: list[str], members: set[str], planted: set[str], description: str, word: str) -> dict:
    hits = [path in planted for path in ordered]
    return {"p@10": float(np.mean(hits[:10])) if hits else 0.0, "p@25": float(np.mean(hits[:25])) if hits else 0.0,
            "recall": len(members & planted) / len(planted), "size": len(members),
            "named": word in description}


def datalab_top(outcomes: pd.DataFrame, probs: np.ndarray, vectors: np.ndarray):
    from cleanlab import Datalab

    from curation.slices.discover import ordered_members

    lab = Datalab(data={"label": outcomes["label"].tolist()}, label_name="label", verbosity=0)
    lab.find_issues(features=vectors, pred_probs=probs, issue_types={"underperforming_group": {}})
    issues = lab.get_issues("underperforming_group")
    members = np.flatnonzero(issues["is_underperforming_group_issue"].to_numpy())
    # ordered as our slices are, so that P@k compares like with like
    return ordered_members(members, outcomes["wrong"].to_numpy(), outcomes["confidence"].to_numpy())


def run_one(planting: str, seed: int, work: Path, cache) -> list[dict]:
    from curation.scan import scan_dataset
    from curation.slices import find_error_slices
    from curation.slices.discover import SliceParams

    data = work / f"{planting}-{seed}"
    planted, favoured = plant(data, planting, seed)
    scanned = scan_dataset(str(data), reports_dir=work / "reports", cache=cache)
    outcomes, probs, vectors = probe_outcomes(scanned.table, scanned.dataset.root, cache)
    in_planted = outcomes["path"].isin(planted)
    base = {"planting": planting, "seed": seed, "favoured": favoured, "planted": len(planted),
            "planted_error": float(outcomes.loc[in_planted, "wrong"].mean()),
            "rest_error": float(outcomes.loc[~in_planted, "wrong"].mean())}
    rows = []
    for name, options in VARIANTS.items():
        started = time.perf_counter()
        result = find_error_slices(scanned.table, scanned.dataset.root, cache=cache, report_dir=work / "none",
                                   noun="shoe", params=SliceParams(**options), outcomes=outcomes)
        seconds = time.perf_counter() - started
        row = {"p@10": 0.0, "p@25": 0.0, "recall": 0.0, "size": 0, "named": False, "description": "", "rank": None}
        best = -1.0
        for found in result.slices:  # the slice that matches the planted one best (Domino's max over slices)
            paths = outcomes["path"].to_numpy()[found.members].tolist()
            jaccard = len(set(paths) & planted) / len(set(paths) | planted)
            if jaccard > best:
                best = jaccard
                row = scores(paths, set(paths), planted, found.description, NAMES[planting])
                row |= {"description": found.description, "rank": found.id}
        rows.append(base | row | {"method": name, "slices": len(result.slices), "seconds": round(seconds, 1)})
    started = time.perf_counter()
    ordered = datalab_top(outcomes, probs, vectors)
    paths = outcomes["path"].to_numpy()[ordered].tolist()
    rows.append(base | scores(paths, set(paths), planted, "", NAMES[planting])
                | {"method": "Datalab underperforming_group", "slices": int(len(ordered) > 0), "rank": 1,
                   "seconds": round(time.perf_counter() - started, 1), "description": "(unnamed)"})
    return rows


def null_runs(work: Path, cache, count: int) -> list[dict]:
    """The real shoes set with its errors shuffled over the samples: any slice found is false."""
    from curation.scan import scan_dataset
    from curation.slices import find_error_slices

    scanned = scan_dataset(str(SHOES), reports_dir=work / "reports", cache=cache)
    outcomes, probs, vectors = probe_outcomes(scanned.table, scanned.dataset.root, cache)
    found, datalab = [], []
    for seed in range(count):
        shuffled = outcomes.assign(wrong=np.random.default_rng(seed).permutation(outcomes["wrong"].to_numpy()))
        result = find_error_slices(scanned.table, scanned.dataset.root, cache=cache, report_dir=work / "none",
                                   noun="shoe", outcomes=shuffled)
        found.append(len(result.slices))
    real = find_error_slices(scanned.table, scanned.dataset.root, cache=cache, report_dir=work / "none", noun="shoe",
                             outcomes=outcomes)
    return [{"planting": "none (errors shuffled)", "method": "ours (clusters + predicates)", "runs": count,
             "runs_with_a_slice": int(sum(n > 0 for n in found)), "slices": int(sum(found)),
             "real_slices": [s.description for s in real.slices]}]


def main() -> int:
    from curation.cache import ContentCache

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--plantings", default="grey,dark,grey_mislabelled")
    parser.add_argument("--null", type=int, default=20, help="shuffled-error runs (0: none)")
    args = parser.parse_args()
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as temporary, ContentCache(out_dir / "slices_cache") as cache:
        work = Path(temporary)
        for planting in args.plantings.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                rows += run_one(planting, seed, work, cache)
                print(pd.DataFrame(rows[-5:])[["planting", "seed", "method", "p@10", "p@25", "recall", "size",
                                               "named", "rank", "slices"]].to_string(index=False), flush=True)
        null = null_runs(work, cache, args.null) if args.null else []
    frame = pd.DataFrame(rows)
    frame.to_csv(out_dir / "slices.csv", index=False)
    summary = frame.groupby(["planting", "method"])[["p@10", "p@25", "recall", "named", "slices"]].mean()
    print(summary.round(2).to_string())
    for row in null:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
