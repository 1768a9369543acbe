"""`python -m curation.review DATA [--launch]`: build or update the FiftyOne review dataset.

One persistent FiftyOne dataset named after the data set (or --dataset-name), one sample per
sample-table row, with every stage's results that exist under reports/<dataset>/ and the saved
views still-wrong, consensus-hard, leaks, label-issues and extended-test-wrong. Re-running updates
it in place. --launch then serves the App on 127.0.0.1:PORT until interrupted; afterwards
`fiftyone app launch <name>` opens it again, since the dataset is persistent.
"""

from __future__ import annotations

import argparse
import sys

from curation.cache import ContentCache
from curation.cli import EXIT_OK, command_parser, run_cli, scan_from_args


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("python -m curation.review", __doc__)
    parser.add_argument("--dataset-name", help="the FiftyOne dataset's name (default: the data set's name)")
    parser.add_argument("--no-embeddings", action="store_true",
                        help="skip uniqueness, the similarity index and the UMAP plot")
    parser.add_argument("--launch", action="store_true", help="serve the FiftyOne App afterwards")
    parser.add_argument("--address", default="127.0.0.1", help="the App's address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5151, help="the App's port (default 5151)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from curation.review import build_review

    args = build_parser().parse_args(argv)
    with ContentCache(args.cache_dir) as cache:
        scanned = scan_from_args(args, cache)
        result = build_review(scanned, name=args.dataset_name, cache=cache, embeddings=not args.no_embeddings)
    print(f"FiftyOne dataset {result.name!r}: {result.samples} samples "
          f"({result.sync['added']} added, {result.sync['removed']} removed, {result.sync['kept']} updated)")
    print(f"stage fields: {', '.join(result.fields) or 'none yet'}; brain runs: {', '.join(result.brain_runs) or 'none'}")
    for view, count in result.views.items():
        print(f"  view {view:20} {count} samples")
    if args.launch:
        import fiftyone as fo

        session = fo.launch_app(fo.load_dataset(result.name), address=args.address, port=args.port, remote=True)
        print(f"App at http://{args.address}:{args.port}/ (Ctrl-C to stop)", flush=True)
        session.wait(-1)
    else:
        print(f"open it with: fiftyone app launch {result.name}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(run_cli(main))
