"""`python -m curation.scrape DATA`: build an extra test split from the web.

For every class, asks the engines (in the order given) for "<query>" images until the output split
holds --count of them. Every candidate is downloaded with hard limits, decoded, turned RGB (EXIF
rotation applied, transparency on white), fitted to the dataset's image size and re-encoded as JPEG,
then compared with every image of every split (exact and pHash, mirror included; CNN embeddings with
--embedding-dedup) and with what was already scraped. Every candidate, kept or rejected, gets a row in <output>/manifest.jsonl (url,
engine, query, class, sha256, decision, reason, the sample it duplicates, time).

Interrupt it at any point (even kill -9) and run it again: it resumes, skips URLs already decided,
and tops each class up to --count. Writes images only below the output folder, under names it
chooses. A summary goes to reports/<dataset>/scrape/ (summary.json, summary.md, manifest.csv, and
index.html: kept images per class, each rejected duplicate next to the image it copies).

Engines: bing, baidu, google (scrape their result pages; no key), flickr (API key), greedy (crawl
--site pages; "{label}" in a site is replaced by the class), urllist (--url-file).

Exit codes: 0 every class full; 1 some class is short (engines ran out); 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from curation.cli import EXIT_FINDINGS, EXIT_OK, command_parser, run_cli
from curation.scrape.config import ENGINES, DedupRules, FetchLimits, ImageRules, ScrapeConfig, read_queries_file


def _size(text: str) -> tuple[int, int] | None:
    if text == "auto":
        return None
    try:
        width, _, height = text.lower().partition("x")
        size = (int(width), int(height or width))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WxH, W or auto, not {text!r}") from None
    if min(size) < 8:
        raise argparse.ArgumentTypeError(f"size {text!r} is too small")
    return size


def _engine_url(text: str) -> tuple[str, str]:
    engine, sep, url = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected ENGINE=URL, not {text!r}")
    return engine, url


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("python -m curation.scrape", __doc__)
    image, limits, dedup = ImageRules(), FetchLimits(), DedupRules()
    what = parser.add_argument_group("what to fetch")
    what.add_argument("--classes", help="comma-separated classes (default: the dataset's)")
    what.add_argument("--query", default="{label} shoes", help='search query template (default "{label} shoes")')
    what.add_argument("--queries-file", type=Path,
                      help="a CSV of label,query rows (e.g. reports/<dataset>/slices/queries.csv): each class's "
                           "queries are asked in turn instead of --query, and only its classes are scraped")
    what.add_argument("--count", type=int, default=100, help="images wanted per class in the output split")
    what.add_argument("--engine", action="append", choices=ENGINES, dest="engines",
                      help="search engine, repeatable, tried in order (default: bing; or urllist/greedy when "
                           "--url-file/--site is given)")
    what.add_argument("--site", action="append", default=[], help="greedy: a start page to crawl, repeatable")
    what.add_argument("--url-file", help='urllist: "urls/{label}.txt" (one URL a line) or a CSV with url,label')
    what.add_argument("--flickr-api-key", default=os.environ.get("FLICKR_APIKEY"), help="(default $FLICKR_APIKEY)")
    what.add_argument("--licence", "--license", dest="licence",
                      help="licence filter (bing, google: e.g. creativecommons, commercial; flickr: licence ids)")
    what.add_argument("--engine-url", action="append", type=_engine_url, default=[], metavar="ENGINE=URL",
                      help="another endpoint for an engine (a mirror, a proxy, a test server)")
    what.add_argument("--candidates-factor", type=float, default=3.0,
                      help="result entries asked of an engine per image still needed (default 3)")
    what.add_argument("--max-pages", type=int, default=50, help="greedy: pages crawled per class (default 50)")
    where = parser.add_argument_group("where the images go")
    where.add_argument("--split", default="test_extra", help="output split name (default test_extra)")
    where.add_argument("--output-dir", type=Path, help="output split folder (default <dataset>/<split>)")
    where.add_argument("--size", type=_size, default=None, help="WxH to fit images to (default: the dataset's "
                                                                 "most common size)")
    where.add_argument("--resize-mode", choices=("pad", "crop", "stretch"), default=image.resize_mode,
                       help="pad on white (default), crop the centre, or stretch")
    where.add_argument("--min-side", type=int, default=image.min_side, help="reject smaller images")
    where.add_argument("--max-aspect-ratio", type=float, default=image.max_aspect_ratio)
    where.add_argument("--jpeg-quality", type=int, default=image.jpeg_quality)
    dup = parser.add_argument_group("de-duplication")
    dup.add_argument("--near-threshold", type=int, default=dedup.near_threshold,
                     help="pHash Hamming distance within which an existing image is compared pixel by pixel "
                          "by the duplicate engine (default %(default)s of 64); only copies are rejected")
    dup.add_argument("--no-mirror", action="store_true", help="do not compare mirror images")
    dup.add_argument("--embedding-dedup", action="store_true",
                     help="also compare CNN embeddings (lite0): catches crops and colour-shifted copies pHash "
                          "misses; embeds every image once (cached), about 20 images/s on 2 cores")
    dup.add_argument("--embedding-threshold", type=float, default=dedup.embedding_threshold,
                     help="cosine similarity at or above which an existing image is compared too "
                          "(default %(default)s)")
    net = parser.add_argument_group("network")
    net.add_argument("--threads", type=int, default=4, help="download threads (default 4)")
    net.add_argument("--delay", type=float, default=0.0, help="seconds each thread waits between downloads")
    net.add_argument("--connect-timeout", type=float, default=limits.connect_timeout)
    net.add_argument("--read-timeout", type=float, default=limits.read_timeout)
    net.add_argument("--download-timeout", type=float, default=limits.total_timeout,
                     help="seconds for a whole download (default %(default)s)")
    net.add_argument("--max-bytes", type=int, default=limits.max_bytes, help="largest download (default 20 MB)")
    net.add_argument("--max-redirects", type=int, default=limits.max_redirects)
    net.add_argument("--retries", type=int, default=limits.retries,
                     help="extra attempts after a timeout, lost connection or 5xx (default %(default)s)")
    net.add_argument("--max-time", type=float, help="seconds per class and engine before moving on")
    net.add_argument("--retry-failed", action="store_true",
                     help="try again URLs whose download failed (timeout, 5xx) in an earlier run")
    return parser


def config_from_args(args: argparse.Namespace) -> ScrapeConfig:
    engines = args.engines or (["urllist"] if args.url_file else []) + (["greedy"] if args.site else []) or ["bing"]
    queries = read_queries_file(args.queries_file) if args.queries_file else {}
    classes = tuple(c.strip() for c in args.classes.split(",") if c.strip()) if args.classes else tuple(queries)
    return ScrapeConfig(
        data=args.data, classes=classes, query=args.query, queries=queries, count=args.count, engines=tuple(engines),
        sites=tuple(args.site), url_file=args.url_file, flickr_api_key=args.flickr_api_key,
        engine_urls=dict(args.engine_url), licence=args.licence, split=args.split, output_dir=args.output_dir,
        csv=args.csv, name=args.name, reports_dir=args.reports_dir, cache_dir=args.cache_dir,
        threads=args.threads, delay=args.delay, candidates_factor=args.candidates_factor,
        max_pages=args.max_pages, max_time=args.max_time, retry_failed=args.retry_failed, workers=args.workers,
        limits=FetchLimits(args.connect_timeout, args.read_timeout, args.download_timeout, args.max_bytes,
                           args.max_redirects, args.retries),
        image=ImageRules(args.size, args.resize_mode, args.min_side, args.max_aspect_ratio,
                         jpeg_quality=args.jpeg_quality),
        dedup=DedupRules(args.near_threshold, not args.no_mirror, args.embedding_dedup, args.embedding_threshold),
    )


def main(argv: list[str] | None = None) -> int:
    from curation.scrape.run import scrape
    from curation.scrape.summary import print_summary, write_summary

    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    summary = scrape(config)
    out_dir = write_summary(summary, summary.manifest_path, config.reports_dir / summary.dataset, config.as_record(),
                            cache_dir=config.cache_dir)
    print_summary(summary, out_dir, sys.stdout)
    return EXIT_OK if summary.complete else EXIT_FINDINGS


if __name__ == "__main__":
    sys.exit(run_cli(main))
