"""Which error slices appear on the shift proxy: the test split as it is and under each shift.

Reads what `python -m training.robustness DATA` wrote (the shifted images and the model's
predictions on them) and runs the error-slice finder over all of them together, each shift a
split. A shift that hurts the model should come out as a slice named "from split <shift>", and
the attributes should say what the hurt images have in common.

Run: python bench/bench_slices_shift.py shoes [--reports-dir reports] [--cache-dir DIR]; writes
bench/out/slices_shift/ (the slice page and CSVs).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CURATION_PROGRESS", "0")


def main() -> int:
    from curation.cache import ContentCache
    from curation.scan import scan_dataset
    from curation.slices import find_error_slices
    from curation.slices.outcomes import OUTCOME_COLUMNS
    from curation.slices.report import write_slice_report
    from training.shift import SHIFT_VERSION

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", default="shoes")
    parser.add_argument("--reports-dir", type=Path, default=ROOT / "reports")
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with ContentCache(args.cache_dir) as cache:
        scanned = scan_dataset(args.data, reports_dir=args.reports_dir, cache=cache, feedback=False)
        shift_dir = scanned.report_dir / "training" / "shift"
        predictions = pd.read_csv(shift_dir / "predictions.csv", keep_default_na=False)
        images = shift_dir / "images" / f"v{SHIFT_VERSION}-seed{args.seed}"
        with tempfile.TemporaryDirectory() as temporary:
            combined = Path(temporary) / f"{scanned.name}_shift"  # one folder: plain and every shift as splits
            combined.mkdir()
            (combined / "plain").symlink_to(scanned.dataset.root / "test")
            for shift in sorted(p.name for p in images.iterdir() if p.is_dir()):
                (combined / shift).symlink_to(images / shift)
            table = scan_dataset(str(combined), reports_dir=Path(temporary) / "reports", cache=cache,
                                 feedback=False).table
            # plain rows are named as in the dataset (test/<label>/...), shifted ones as under images/
            predictions["key"] = [f"plain/{p.split('/', 1)[1]}" if s == "plain" else p
                                  for s, p in zip(predictions["shift"], predictions["path"])]
            joined = table.merge(predictions[["key", "predicted"]], left_on="path", right_on="key", how="inner")
            joined = joined[joined["predicted"] != ""]
            outcomes = joined.assign(confidence=1.0, wrong=joined["predicted"] != joined["label"],
                                     source="the trained model")[OUTCOME_COLUMNS].reset_index(drop=True)
            result = find_error_slices(table, combined, cache=cache, report_dir=Path(temporary) / "none",
                                       noun="shoe", outcomes=outcomes)
            out_dir = ROOT / "bench" / "out" / "slices_shift"
            summary = write_slice_report(result, root=combined, out_dir=out_dir, dataset=f"{scanned.name} shift proxy")
    per_split = outcomes.groupby("split")["wrong"].agg(["size", "sum", "mean"]).round(3)
    print(per_split.to_string())
    print(f"{summary['errors']} errors in {summary['samples']}; {summary['slices']} slices")
    for row in summary["found"]:
        print(f"  slice {row['slice']}: {row['errors']}/{row['n']} ({row['low']:.0%}-{row['high']:.0%}) {row['description']}")
    print(f"page: {out_dir / 'index.html'} (thumbnails embedded; a temporary folder held the links)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
