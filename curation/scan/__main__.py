"""`python -m curation.scan DATA`: the image integrity scan.

Builds the sample table, runs the integrity check, prints a summary and writes
reports/<dataset>/samples.parquet and reports/<dataset>/integrity/{findings.csv,findings.json,
summary.json,summary.md,index.html}. The dataset is only read, never modified.

Exit codes: 0 done; 1 findings at or above --fail-on; 2 bad input (message on stderr).
"""

from __future__ import annotations

import argparse
import sys

from curation.cache import ContentCache
from curation.checks import get_check
from curation.checks.base import CheckContext
from curation.checks.integrity import IntegrityParams
from curation.engine import use_engine
from curation.cli import EXIT_FINDINGS, EXIT_OK, command_parser, run_cli, scan_from_args
from curation.scan.report import print_scan_summary, write_integrity_report

FAIL_LEVELS = {"never": (), "error": ("error",), "warning": ("error", "warning")}


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("python -m curation.scan", __doc__, engine=True)
    defaults = IntegrityParams()
    parser.add_argument("--min-side", type=int, default=defaults.min_side, help="smallest acceptable side in pixels")
    parser.add_argument("--max-aspect-ratio", type=float, default=defaults.max_aspect_ratio)
    parser.add_argument("--max-pixels", type=int, default=defaults.max_pixels,
                        help="images announcing more pixels are refused without decoding")
    parser.add_argument("--fail-on", choices=sorted(FAIL_LEVELS), default="never",
                        help="exit 1 when findings of this severity (or worse) exist")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    params = IntegrityParams(args.min_side, args.max_aspect_ratio, args.max_pixels)
    with use_engine(args.engine), ContentCache(args.cache_dir) as cache:
        scanned = scan_from_args(args, cache, max_pixels=params.max_pixels)
        context = CheckContext(scanned.dataset.root, scanned.name, scanned.dataset.descriptor, cache)
        result = get_check("integrity")(scanned.table, params, context)
    out_dir = write_integrity_report(scanned, result)
    print_scan_summary(scanned, result, out_dir, stream=sys.stdout)
    failing = sum(result.count(level) for level in FAIL_LEVELS[args.fail_on])
    return EXIT_FINDINGS if failing else EXIT_OK


if __name__ == "__main__":
    sys.exit(run_cli(main))
