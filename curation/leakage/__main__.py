"""`python -m curation.leakage DATA` (or `python -m curation audit DATA`): the leakage audit (is the same picture in two splits?).

Finds exact copies (same bytes or same decoded pixels), near-duplicates (SIFT keypoints matched
under one transform, mirror-aware perceptual hashes confirmed by embedding similarity, or a high
embedding similarity alone) and similar images, within and across splits; copies across splits are leaks. Writes
reports/<dataset>/leakage/{index.html, pairs.csv, summary.json, summary.md, leak_free.csv,
similarity_histogram.png}. The dataset is only read, never modified.

Exit codes: 0 done (no leak, or leaks without --fail-on-leak); 1 leaks across splits found and
--fail-on-leak given; 2 bad input (message on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from curation.cache import ContentCache
from curation.cli import EXIT_FINDINGS, EXIT_OK, command_parser, run_cli, scan_from_args
from curation.engine import use_engine
from curation.leakage.params import HASH_METHODS, LeakageParams


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("python -m curation.leakage", __doc__, engine=True)
    d = LeakageParams()
    parser.add_argument("--fail-on-leak", nargs="?", const="copy", choices=("copy", "same_scene"), default=None,
                        help="exit 1 when copies across splits exist (for CI); '--fail-on-leak same_scene' also when "
                             "another frame of the same shoot is in two splits")
    parser.add_argument("--cosine-near", type=float, default=d.cosine_near,
                        help=f"embedding cosine at or above which a pair is a near-duplicate (default {d.cosine_near})")
    parser.add_argument("--cosine-support", type=float, default=d.cosine_support,
                        help=f"cosine that confirms a strict hash match as a near-duplicate (default {d.cosine_support})")
    parser.add_argument("--cosine-similar", type=float, default=d.cosine_similar,
                        help=f"cosine at or above which a pair is shown as similar, not a leak (default {d.cosine_similar})")
    parser.add_argument("--hash-strict", type=int, default=d.hash_strict,
                        help=f"Hamming distance of a strict hash match (default {d.hash_strict})")
    parser.add_argument("--hash-max-distance", type=int, default=d.hash_max_distance,
                        help=f"Hamming distance for 'similar' when embeddings are off (default {d.hash_max_distance})")
    parser.add_argument("--hash-methods", default=",".join(d.hash_methods),
                        help=f"comma-separated, some of {','.join(HASH_METHODS)} (default {','.join(d.hash_methods)})")
    parser.add_argument("--inliers-near", type=int, default=d.inliers_near,
                        help=f"SIFT matches under one transform that make a near-duplicate alone (default {d.inliers_near})")
    parser.add_argument("--inliers-support", type=int, default=d.inliers_support,
                        help=f"matches that make one with a cosine or hash match (default {d.inliers_support})")
    parser.add_argument("--align-min-inliers", type=int, default=d.align_min_inliers,
                        help=f"matches that carry a transform for the pixel alignment (default {d.align_min_inliers})")
    parser.add_argument("--aligned-structure", type=float, default=d.aligned_structure,
                        help=f"block alignment that, with --aligned-tone, makes a copy (default {d.aligned_structure})")
    parser.add_argument("--aligned-tone", type=float, default=d.aligned_tone,
                        help=f"share of content pixels one tone curve explains (default {d.aligned_tone})")
    parser.add_argument("--no-verify", action="store_true", help="skip keypoint verification (faster, misses crops)")
    parser.add_argument("--faded-near", type=float, default=d.faded_near,
                        help=f"fade score that makes a washed-out image a copy of another (default {d.faded_near})")
    parser.add_argument("--no-faded", action="store_true", help="skip the search for washed-out copies")
    parser.add_argument("--neighbours", type=int, default=d.neighbours, help=f"k nearest neighbours searched (default {d.neighbours})")
    parser.add_argument("--model", default=d.model, help=f"timm backbone for embeddings (default {d.model})")
    parser.add_argument("--weights", type=Path, help="a weights file for --model")
    parser.add_argument("--embedding-size", type=int, default=d.embedding_size,
                        help=f"input pixels for the embeddings (default {d.embedding_size}; 0: the model's own)")
    parser.add_argument("--no-embeddings", action="store_true", help="hashes only (fast, less precise)")
    return parser


def params_from_args(args: argparse.Namespace) -> LeakageParams:
    return LeakageParams(
        cosine_near=args.cosine_near, cosine_support=args.cosine_support, cosine_similar=args.cosine_similar,
        hash_methods=tuple(m.strip() for m in args.hash_methods.split(",") if m.strip()),
        hash_strict=args.hash_strict, hash_max_distance=args.hash_max_distance, neighbours=args.neighbours,
        inliers_near=args.inliers_near, inliers_support=args.inliers_support, verify=not args.no_verify,
        align_min_inliers=args.align_min_inliers, aligned_structure=args.aligned_structure, aligned_tone=args.aligned_tone,
        faded=not args.no_faded, faded_near=args.faded_near, model=args.model, weights=str(args.weights) if args.weights else None, use_embeddings=not args.no_embeddings,
        embedding_size=args.embedding_size or None,
    ).validate()


def main(argv: list[str] | None = None) -> int:
    from curation.leakage import audit_leakage, write_leakage_report
    from curation.leakage.report import print_summary

    args = build_parser().parse_args(argv)
    params = params_from_args(args)
    with use_engine(args.engine), ContentCache(args.cache_dir) as cache:
        scanned = scan_from_args(args, cache)
        result = audit_leakage(scanned.table, scanned.dataset.root, cache=cache, params=params, workers=args.workers)
    out_dir = scanned.report_dir / "leakage"
    summary = write_leakage_report(result, scanned.table, out_dir, dataset=scanned.name, root=scanned.dataset.root)
    print_summary(summary, out_dir, stream=sys.stdout)
    gated = summary["leaks"]["pairs"] + (summary["leaks"]["same_scene_pairs"] if args.fail_on_leak == "same_scene" else 0)
    return EXIT_FINDINGS if args.fail_on_leak and gated else EXIT_OK


if __name__ == "__main__":
    sys.exit(run_cli(main))
