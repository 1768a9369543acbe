"""Planted label problems on the whole shoes set: cross-class copies and images of no class.

A copy of the shoes set (825 real images) gets:
- cross-class copies: `--copies` random train images, each copied (re-encoded at JPEG quality 75,
  a 5% border cropped, resized to 85%; every third one a byte-for-byte copy) into another class's folder;
- foreign images: the photos scikit-image ships that are not shoes (people, animals, objects,
  textures, microscopy) and a made "image not available" graphic, filed under random classes.
The label-issue audit runs with its defaults. Reported: the copies found as `conflicting_copies`
with the right label supported and the planted side named; the foreign images found as
`not_in_any_class`; shoes wrongly called `not_in_any_class`; the other flags of the default list;
and, side by side on the same run, what cleanlab's find_label_issues and Datalab's outlier check
make of the same planted images.

Run: python bench/bench_label_planted.py [--copies 10] [--seed 0]; writes bench/out/label_planted.csv.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CURATION_PROGRESS", "0")

FOREIGN = ("astronaut", "coffee", "rocket", "chelsea", "page", "camera", "horse", "text", "coins", "brick", "clock",
           "moon", "immunohistochemistry", "hubble_deep_field", "colorwheel")


def plant_copies(root: Path, count: int, rng) -> dict[str, str]:
    """planted path -> source path; a copy of a train image in another class's folder."""
    from PIL import Image

    classes = sorted(p.name for p in (root / "train").iterdir())
    sources = sorted(p for p in (root / "train").rglob("*.jpg"))
    planted = {}
    for n, source in enumerate(rng.choice(sources, size=count, replace=False)):
        wrong = rng.choice([c for c in classes if c != source.parent.name])
        target = root / "train" / wrong / f"planted_copy_{source.parent.name}_{source.name}"
        if n % 3 == 2:
            shutil.copyfile(source, target)
        else:
            image = Image.open(source).convert("RGB")
            w, h = image.size
            image = image.crop((int(0.05 * w), int(0.05 * h), int(0.95 * w), int(0.95 * h)))
            image.resize((int(0.85 * w), int(0.85 * h))).save(target, quality=75)
        planted[target.relative_to(root).as_posix()] = source.relative_to(root).as_posix()
    return planted


def plant_foreign(root: Path, rng) -> list[str]:
    from tests.foreign_images import write_foreign_images

    classes = sorted(p.name for p in (root / "train").iterdir())
    written = []
    for n, name in enumerate(FOREIGN):
        split = "train" if n % 3 else "test"
        written += write_foreign_images(root / split / rng.choice(classes), (name,), graphic=n == 0)
    return [p.relative_to(root).as_posix() for p in written]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path)
    args = parser.parse_args()
    from curation.cache import ContentCache
    from curation.scan import scan_dataset
    from curation.label_issues.audit import audit_label_issues
    from tests.shoes_data import SHOES_ROOT

    rng = np.random.default_rng(args.seed)
    base = Path(tempfile.mkdtemp(prefix="bench-label-planted-"))
    root = base / "shoes_planted"
    shutil.copytree(SHOES_ROOT, root)
    copies = plant_copies(root, args.copies, rng)
    foreign = plant_foreign(root, rng)
    started = time.perf_counter()
    with ContentCache(args.cache_dir) as cache:
        scanned = scan_dataset(root, name="shoes_planted", reports_dir=base / "reports", cache=cache)
        audit = audit_label_issues(scanned.table, root, cache=cache, report_dir=scanned.report_dir)
    seconds = time.perf_counter() - started
    issues = audit.issues.set_index("path")
    datalab = audit.datalab.set_index("sample_id")
    rows = []
    for planted, source in copies.items():
        row = issues.loc[planted]
        rows.append({"what": "cross-class copy", "path": planted, "kind": row["kind"], "is_issue": bool(row["is_issue"]),
                     "supported": row["suggested_label"], "note": row["note"],
                     "right": row["kind"] == "conflicting_copies" and bool(row["is_issue"])
                     and row["suggested_label"] == source.split("/")[1],
                     "cleanlab_issue": bool(row["cleanlab_issue"]), "source": source})
    for path in foreign:
        row = issues.loc[path]
        rows.append({"what": "foreign", "path": path, "kind": row["kind"], "is_issue": bool(row["is_issue"]),
                     "right": row["kind"] == "not_in_any_class", "cleanlab_issue": bool(row["cleanlab_issue"]),
                     "datalab_outlier": bool(datalab.loc[row["sample_id"], "is_outlier_issue"])})
    import pandas as pd

    frame = pd.DataFrame(rows)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "label_planted.csv", index=False)
    planted_paths = set(copies) | set(foreign) | set(copies.values())
    others = audit.flagged[~audit.flagged["path"].isin(planted_paths)]
    shoes_foreign = audit.issues[(audit.issues["kind"] == "not_in_any_class") & ~audit.issues["path"].isin(foreign)]
    copies_frame, foreign_frame = frame[frame["what"] == "cross-class copy"], frame[frame["what"] == "foreign"]
    found = copies_frame["kind"] == "conflicting_copies"
    undecided = found & (copies_frame["supported"] == "")
    print(f"cross-class copies: {int(found.sum())}/{len(copies_frame)} found as conflicting_copies; "
          f"{int(copies_frame['right'].sum())} with the right label supported and the planted side named, "
          f"{int(undecided.sum())} undecided ('look at it'), {int((found & ~undecided & ~copies_frame['right']).sum())} "
          f"decided wrongly (cleanlab flags {int(copies_frame['cleanlab_issue'].sum())} of the planted sides)")
    print(f"foreign images: {int(foreign_frame['right'].sum())}/{len(foreign_frame)} not_in_any_class "
          f"(Datalab outlier {int(foreign_frame['datalab_outlier'].sum())}, cleanlab {int(foreign_frame['cleanlab_issue'].sum())})")
    print(f"shoes called not_in_any_class: {len(shoes_foreign)} {list(shoes_foreign['path'])}")
    print(f"other flags of the default list: {len(others)} {list(others['path'])}; "
          f"cleanlab flags in all: {int(audit.issues['cleanlab_issue'].sum())}")
    print(f"audit {seconds:.0f} s (new images embedded; the rest from the cache)")
    print(frame[~frame["right"]].to_string() if (~frame["right"]).any() else "every planted image found as its kind")
    shutil.rmtree(base)


if __name__ == "__main__":
    main()
