"""The scrape report a person looks at: reports/<dataset>/scrape/index.html, one self-contained page.

It covers the whole manifest (every run into this output folder): per class what was kept and what
was rejected by reason, a sample of the kept images, every rejected duplicate next to the image it
duplicates (the dataset's sample or an earlier scraped image) with the reason and the pHash distance
or embedding similarity, and a table of the other rejections. Images are inlined thumbnails; URLs
and file names are escaped text, never links, so opening the page loads nothing and runs nothing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from curation.cache import ContentCache
from curation.html_pages import PLACEHOLDER, escape, page, table_html, thumbnail_data_uri
from curation.report_files import write_text_atomic
from curation.scrape.evidence import thumbnail_uris
from curation.scrape.manifest import KEPT, REJECTED

REPORT_STYLE = """<style>
.pair{display:flex;gap:.6rem;align-items:flex-start;margin:.6rem 0;padding:.5rem;border:1px solid #ddd;border-radius:6px}
.pair figure{margin:0;width:170px;font-size:.75rem;word-break:break-all}
.pair img{width:160px;height:160px;object-fit:contain;background:#f8f8f8;display:block}
.pair .facts{font-size:.8rem;word-break:break-all;max-width:46rem}
code{font-size:.75rem;word-break:break-all}
</style>"""


def write_report(out_dir: Path, summary, rows: list[dict], run_rows: list[dict], *,
                 cache_dir: Path | None = None, kept_per_class: int = 12) -> Path:
    """Draw index.html into `out_dir` from the run summary (a ScrapeSummary) and the manifest rows."""
    with ContentCache(cache_dir) as cache:
        rejected_shas = [r["sha256"] for r in rows if _is_duplicate(r)]
        evidence = thumbnail_uris(cache, rejected_shas)
    body = "".join([
        REPORT_STYLE,
        _overview(summary),
        "<h2>This run</h2>",
        table_html(run_rows, ["class", "kept", "new", "rejected", "by reason", "engines"]),
        "<h2>All runs, per class</h2>",
        _totals(rows),
        f"<h2>Kept images (latest {kept_per_class} per class)</h2>",
        _kept_sample(rows, Path(summary.output_dir), kept_per_class),
        "<h2>Rejected duplicates</h2>",
        _duplicates(rows, summary, evidence),
        "<h2>Other rejections</h2>",
        _other_rejections(rows),
    ])
    path = out_dir / "index.html"
    write_text_atomic(path, page(f"Scrape of {summary.dataset}", body))
    return path


def _is_duplicate(row: dict) -> bool:
    return row["decision"] == REJECTED and str(row["reason"]).startswith("duplicate")


def _overview(summary) -> str:
    embedding = ("off" if summary.embedding_indexed is None
                 else f"on, {summary.embedding_indexed} image vectors compared")
    return (f"<p>Output split <code>{escape(summary.output_dir)}</code>, images fitted to "
            f"{summary.size[0]}x{summary.size[1]} JPEG. Every candidate was compared with "
            f"{summary.indexed} existing images (exact and pHash); embedding de-duplication {escape(embedding)}. "
            f"Run <code>{escape(summary.run_id)}</code>. Manifest: <code>{escape(summary.manifest_path)}</code>.</p>")


def _totals(rows: list[dict]) -> str:
    kept: Counter = Counter()
    rejected: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        if row["decision"] == KEPT:
            kept[row["label"]] += 1
        elif row["decision"] == REJECTED:
            rejected[row["label"]][row["reason"]] += 1
    labels = sorted(set(kept) | set(rejected))
    reasons = sorted({reason for counts in rejected.values() for reason in counts})
    table = [{"class": label, "kept": kept[label], "rejected": sum(rejected[label].values()),
              **{reason: rejected[label][reason] for reason in reasons}} for label in labels]
    return table_html(table, ["class", "kept", "rejected", *reasons]) if table else "<p>No candidates yet.</p>"


def _kept_sample(rows: list[dict], output_dir: Path, per_class: int) -> str:
    by_label: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if row["decision"] == KEPT:
            by_label[row["label"]].append(row)
    if not by_label:
        return "<p>No image kept yet.</p>"
    parts = []
    for label in sorted(by_label):
        kept = by_label[label]
        cards = "".join(
            f'<div class="card"><img alt="kept" src="{thumbnail_data_uri(output_dir / row["file"])}">'
            f'<div>{escape(row["file"])}</div><code class="url">{escape(row["url"])}</code></div>'
            for row in kept[-per_class:])
        parts.append(f"<h3>{escape(label)}: {len(kept)} kept</h3><div class=kept data-label=\"{escape(label)}\">"
                     f"{cards}</div>")
    return "".join(parts)


def _duplicates(rows: list[dict], summary, evidence: dict[str, str]) -> str:
    duplicates = [r for r in rows if _is_duplicate(r)]
    if not duplicates:
        return "<p>No candidate was rejected as a duplicate.</p>"
    root = Path(summary.root) if summary.root else Path(summary.output_dir).parent
    originals: dict[str, str] = {}  # one thumbnail per duplicated image, however often it is copied
    parts = [f"<p>{len(duplicates)} candidates, each next to the image it duplicates.</p>"]
    for row in sorted(duplicates, key=lambda r: (r["label"], r["time"])):
        ref = str(row["duplicate_of"])
        if ref not in originals:
            originals[ref] = thumbnail_data_uri(Path(ref) if Path(ref).is_absolute() else root / ref)
        parts.append(_pair(row, ref, evidence.get(row["sha256"], PLACEHOLDER), originals[ref]))
    return "".join(parts)


def _measure(row: dict) -> str:
    if row["reason"] == "duplicate_exact":
        return "identical file or pixels"
    measure = (f"embedding similarity {row['similarity']}" if row.get("similarity") not in (None, "")
               else f"pHash distance {row['distance']} bits")
    return f"{measure}; {row['detail']}" if row.get("detail") else measure


def _pair(row: dict, ref: str, candidate_uri: str, original_uri: str) -> str:
    return (
        f'<div class="pair" data-reason="{escape(row["reason"])}">'
        f'<figure><img class="candidate" alt="rejected candidate" src="{candidate_uri}">'
        f"<figcaption>rejected candidate ({escape(row['label'])})</figcaption></figure>"
        f'<figure><img class="original" alt="duplicated image" src="{original_uri}">'
        f"<figcaption>duplicates <code class=\"ref\">{escape(ref)}</code></figcaption></figure>"
        f'<div class="facts"><b>{escape(row["reason"])}</b>, {escape(_measure(row))}<br>'
        f'URL: <code class="url">{escape(row["url"])}</code><br>'
        f"{'' if row['detail'] == _measure(row) else escape(row['detail']) + '<br>'}"
        f"engine {escape(row['engine'])}, {escape(row['time'])}</div></div>")


def _other_rejections(rows: list[dict]) -> str:
    others = [r for r in rows if r["decision"] == REJECTED and not _is_duplicate(r)]
    if not others:
        return "<p>None.</p>"
    columns = ["label", "reason", "detail", "http_status", "url", "engine", "time"]
    return table_html(sorted(others, key=lambda r: (r["label"], r["reason"], r["time"])), columns)
