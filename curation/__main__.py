"""`python -m curation COMMAND ...`: every tool of the project behind one entry point.

    python -m curation run shoes            # the whole audit, one report: reports/shoes/index.html
    python -m curation scan DATA            # the image integrity scan
    python -m curation audit DATA           # leakage between splits
    python -m curation label_issues DATA    # likely label errors
    python -m curation slices DATA          # where the model fails: error slices in words
    python -m curation scrape DATA          # build an extended test split from the web
    python -m curation review DATA          # the FiftyOne dataset and App
    python -m curation app DATA             # serve the model, with whether to trust each answer
    python -m curation doctor               # check the installation
"""

from __future__ import annotations

import argparse
import importlib
import sys

from curation.cli import EXIT_FINDINGS, EXIT_OK, run_cli
from curation.engine import ENGINES

# command -> module whose main(argv) runs it (run is defined here)
COMMANDS = {
    "scan": "curation.scan.__main__",
    "audit": "curation.leakage.__main__",
    "label_issues": "curation.label_issues.__main__",
    "slices": "curation.slices.__main__",
    "scrape": "curation.scrape.__main__",
    "review": "curation.review.__main__",
    "app": "curation.app.__main__",
    "train": "training.train",
    "evaluate": "training.evaluate",
    "robustness": "training.robustness",
    "doctor": "curation.doctor",
}


def build_run_parser() -> argparse.ArgumentParser:
    from curation.pipeline.config import STAGES, TrainSettings

    defaults = TrainSettings()
    parser = argparse.ArgumentParser(
        prog="python -m curation run",
        description="scan -> leakage audit -> train (or reuse) -> evaluate (full and leak-free) -> label issues "
                    "-> FiftyOne dataset; writes reports/<dataset>/index.html. Unchanged stages are reused.")
    parser.add_argument("data", nargs="?", default=None, help="a dataset folder or a known name (default: shoes)")
    parser.add_argument("--config", type=argparse.FileType("rb"), help="a TOML file with [run] and [train] tables")
    parser.add_argument("--stages", help=f"comma-separated subset of: {','.join(STAGES)}")
    parser.add_argument("--reports-dir", help="where reports/<dataset>/ goes (default: reports)")
    parser.add_argument("--cache-dir", help="the per-image cache (default: $CURATION_CACHE_DIR or ~/.cache/curation)")
    parser.add_argument("--fail-on-leak", action="store_true", default=None, help="exit 1 when cross-split leaks exist")
    parser.add_argument("--no-review-embeddings", dest="review_embeddings", action="store_false", default=None,
                        help="skip uniqueness, similarity and UMAP in the FiftyOne dataset")
    parser.add_argument("--engine", choices=ENGINES, default=None,
                        help="where per-image work runs: this process (local, default) or a Ray cluster ($RAY_ADDRESS)")
    train = parser.add_argument_group("training")
    train.add_argument("--arch", help=f"timm architecture (default {defaults.arch})")
    train.add_argument("--weights", help="a weights file for --arch")
    train.add_argument("--image-size", type=int, help=f"default {defaults.image_size}")
    train.add_argument("--epochs", type=int, help=f"default {defaults.epochs}")
    train.add_argument("--frozen-epochs", type=int, help=f"default {defaults.frozen_epochs}")
    train.add_argument("--frozen-stages", type=int,
                       help=f"stem + this many first stages stay pretrained (default {defaults.frozen_stages})")
    train.add_argument("--batch-size", type=int, help=f"default {defaults.batch_size}")
    train.add_argument("--lr", type=float, help=f"default {defaults.lr}")
    train.add_argument("--lr-mult", type=float, help=f"earliest layers learn at lr/lr-mult (default {defaults.lr_mult:g})")
    train.add_argument("--valid-split", help="split monitored while training (default: valid if present)")
    train.add_argument("--folds", type=int, help="K fold models for out-of-fold label checks (default 0: fast path)")
    train.add_argument("--backdrop", type=float,
                       help=f"share of studio shots put on a made backdrop in training (default {defaults.backdrop:g})")
    train.add_argument("--degrade", type=float,
                       help=f"share of blurred or heavily re-encoded training copies (default {defaults.degrade:g})")
    train.add_argument("--crop-min-scale", type=float,
                       help=f"smallest random training crop, as a share of the area (default {defaults.crop_min_scale:g})")
    train.add_argument("--companion", action="store_true", default=None,
                       help="also train a companion model (a few minutes) and evaluate the two as an ensemble")
    train.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    train.add_argument("--time-budget", type=float, metavar="MIN",
                       help=f"minutes for the fit; fewer epochs where they would not fit (default {defaults.time_budget})")
    train.add_argument("--low-res-size", type=int, metavar="PX",
                       help="where the budget cannot fit every epoch, train the first ones at this size before cutting "
                            f"any (default {defaults.low_res_size}: cut epochs only)")
    return parser


def run_main(argv: list[str] | None = None) -> int:
    from pathlib import Path

    from curation.pipeline import run_pipeline
    from curation.pipeline.config import parse_stages, resolve_config

    args = build_run_parser().parse_args(argv)
    config_file = None
    if args.config is not None:
        config_file = Path(args.config.name)
        args.config.close()
    overrides = {"data": args.data, "reports_dir": args.reports_dir, "cache_dir": args.cache_dir,
                 "stages": parse_stages(args.stages) if args.stages else None,
                 "fail_on_leak": args.fail_on_leak, "review_embeddings": args.review_embeddings, "engine": args.engine}
    train = {k: getattr(args, k) for k in ("arch", "weights", "image_size", "epochs", "frozen_epochs", "frozen_stages",
                                           "batch_size", "lr", "lr_mult", "valid_split", "folds", "threads",
                                           "time_budget", "low_res_size", "backdrop", "degrade", "crop_min_scale",
                                           "companion")}
    result = run_pipeline(resolve_config(config_file, overrides, train))
    print(f"ran: {', '.join(result.ran) or 'nothing'}; reused: {', '.join(result.reused) or 'nothing'}")
    print(f"report: {result.report}")
    leaks = result.summaries.get("audit", {}).get("leak_pairs", 0)
    return EXIT_FINDINGS if result.config.fail_on_leak and leaks else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return EXIT_OK
    command, rest = argv[0], argv[1:]
    if command == "run":
        return run_main(rest)
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; commands: run, {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command])
    return module.main(rest) if command != "doctor" else module.main()


if __name__ == "__main__":
    sys.exit(run_cli(main))
