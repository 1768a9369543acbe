"""`python -m curation.slices DATA`: where the model fails, in words, with what to collect next.

Reads what the other stages wrote for DATA (the trained model's predictions and fold predictions in
reports/<dataset>/training/ or --model-dir, the label-issue stage's out-of-sample probabilities for
whatever the model did not predict), measures a few attributes of every image once (cached), and
finds error slices: groups of samples where the model errs far more often than elsewhere, beyond
chance after a permutation test over every group tried. Each slice is named by the attributes that
set it apart, with its error interval, thumbnails (errors first), and the scrape queries to collect
more of it (queries.csv, which `python -m curation.scrape DATA --queries-file` reads as it is).

Writes reports/<dataset>/slices/{slices.csv, members.csv, queries.csv, summary.json,
error_rates.png, index.html}. The dataset is only read.

Exit codes: 0 done; 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from curation.cache import ContentCache
from curation.cli import EXIT_OK, command_parser, run_cli, scan_from_args
from curation.engine import use_engine
from curation.slices.discover import SliceParams


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("python -m curation.slices", __doc__, engine=True)
    defaults = SliceParams()
    parser.add_argument("--model-dir", type=Path,
                        help="the training's output folder (default reports/<dataset>/training)")
    parser.add_argument("--noun", help='what the images show, for the words (default: from the dataset name, '
                                       '"shoes" -> "shoe", else "object")')
    parser.add_argument("--alpha", type=float, default=defaults.alpha,
                        help="family-wise error rate of the permutation test (default %(default)s)")
    parser.add_argument("--max-slices", type=int, default=defaults.max_slices)
    parser.add_argument("--min-size", type=int, default=defaults.min_size, help="smallest slice (default %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from curation.errors import CurationError
    from curation.slices import find_error_slices, object_noun
    from curation.slices.report import write_slice_report

    args = build_parser().parse_args(argv)
    if not 0 < args.alpha < 1:
        raise CurationError(f"--alpha must be between 0 and 1, not {args.alpha}")
    if args.model_dir is not None and not args.model_dir.is_dir():
        raise CurationError(f"--model-dir {args.model_dir} is not a folder")
    params = SliceParams(alpha=args.alpha, max_slices=args.max_slices, min_size=args.min_size)
    with use_engine(args.engine), ContentCache(args.cache_dir) as cache:
        scanned = scan_from_args(args, cache)
        noun = args.noun or object_noun(scanned.name)
        result = find_error_slices(scanned.table, scanned.dataset.root, cache=cache, report_dir=scanned.report_dir,
                                   model_dir=args.model_dir, noun=noun, params=params)
    out_dir = scanned.report_dir / "slices"
    summary = write_slice_report(result, root=scanned.dataset.root, out_dir=out_dir, dataset=scanned.name)
    print(f"{summary['errors']} errors in {summary['samples']} samples; {summary['slices']} error slice(s) "
          f"among {summary['candidates']} candidate groups")
    for row in summary["found"]:
        print(f"  slice {row['slice']}: {row['errors']}/{row['n']} wrong ({row['low']:.0%}-{row['high']:.0%}): "
              f"{row['description']}\n    -> {row['action']}")
    for note in summary["notes"]:
        print(f"note: {note}")
    print(f"report: {out_dir / 'index.html'}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(run_cli(main))
