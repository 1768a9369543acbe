"""The end-of-run summary: printed per class, and written as JSON, Markdown and a CSV of the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import pandas as pd

from curation.report_files import format_table, write_json, write_text_atomic
from curation.scrape.manifest import Manifest
from curation.scrape.report import write_report
from curation.scrape.run import ScrapeSummary


def summary_rows(summary: ScrapeSummary) -> list[dict]:
    rows = []
    for c in summary.classes:
        rejected = ", ".join(f"{reason} {n}" for reason, n in c.rejected.most_common()) or "-"
        engines = ", ".join(f"{e.engine}: {e.stopped}" for e in c.engines) or "-"
        rows.append({"class": c.label, "kept": f"{c.kept}/{c.target}", "new": c.new,
                     "rejected": sum(c.rejected.values()), "by reason": rejected, "engines": engines})
    return rows


def format_summary(summary: ScrapeSummary) -> str:
    lines = [f"scrape of {summary.dataset} into {summary.output_dir} ({summary.size[0]}x{summary.size[1]} JPEG), "
             f"compared with {summary.indexed} existing images"]
    if summary.removed:
        lines.append(f"removed {len(summary.removed)} leftover(s) of an interrupted run")
    lines.append(format_table(pd.DataFrame(summary_rows(summary),
                                           columns=["class", "kept", "new", "rejected", "by reason", "engines"])))
    short = [c for c in summary.classes if c.short]
    if short:
        lines.append("short: " + ", ".join(f"{c.label} needs {c.short} more" for c in short)
                     + " (the engines ran out of candidates; add engines, sites or URLs and re-run)")
    lines.append(f"manifest: {summary.manifest_path}")
    return "\n".join(lines)


def write_summary(summary: ScrapeSummary, manifest_path: Path, report_dir: Path, config_record: dict, *,
                  cache_dir: Path | None = None) -> Path:
    """summary.json, summary.md, manifest.csv and the drawn index.html into <report_dir>/scrape/."""
    out = report_dir / "scrape"
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "summary.json", {**summary.to_dict(), "config": config_record})
    write_text_atomic(out / "summary.md", "# Scrape summary\n\n```\n" + format_summary(summary) + "\n```\n")
    manifest = Manifest(manifest_path)
    try:
        manifest.write_csv(out / "manifest.csv")
        write_report(out, summary, manifest.rows, summary_rows(summary), cache_dir=cache_dir)
    finally:
        manifest.close()
    return out


def print_summary(summary: ScrapeSummary, out_dir: Path, stream: TextIO) -> None:
    print(format_summary(summary), file=stream)
    print(f"report: {out_dir}", file=stream)
