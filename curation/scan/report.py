"""The integrity scan's outputs: files under reports/<dataset>/integrity/ and the printed summary."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import pandas as pd

from curation.checks.base import SEVERITIES, CheckResult
from curation.scan import ScannedDataset
from curation.html_pages import escape, page, table_html, thumbnail_data_uri
from curation.report_files import format_table, write_check_result, write_text_atomic


def split_class_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Samples per split (rows) and class (columns), with totals."""
    counts = pd.crosstab(table["split"], table["label"], margins=True, margins_name="total")
    return counts.reset_index().rename(columns={"split": "split \\ class"})


def findings_by_code(result: CheckResult) -> pd.DataFrame:
    findings = result.findings
    if findings.empty:
        return pd.DataFrame({"code": [], "severity": [], "count": []})
    grouped = findings.groupby(["severity", "code"]).size().reset_index(name="count")
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return grouped.sort_values(["severity", "code"], key=lambda c: c.map(order) if c.name == "severity" else c)[
        ["code", "severity", "count"]
    ]


def _summary_markdown(scanned: ScannedDataset, result: CheckResult) -> str:
    lines = [f"# Integrity scan of {scanned.name}", "", f"Root: `{scanned.dataset.root}`", "",
             f"{result.summary['samples']} files, {result.summary['readable']} readable, "
             f"{result.summary['unreadable']} unreadable.", "", "| code | severity | count |", "|---|---|---|"]
    lines += [f"| {r.code} | {r.severity} | {r.count} |" for r in findings_by_code(result).itertuples()]
    return "\n".join(lines) + "\n"


def _html(scanned: ScannedDataset, result: CheckResult) -> str:
    root = scanned.dataset.root
    counts = split_class_counts(scanned.table)
    cards = []
    for row in result.findings.itertuples():
        image = f"<img src='{thumbnail_data_uri(root / row.path)}' alt=''>" if row.path else ""
        cards.append(f"<div class=card>{image}<div class={escape(row.severity)}>{escape(row.code)}</div>"
                     f"<div>{escape(row.path or '(dataset)')}</div><div>{escape(row.message)}</div></div>")
    body = (f"<p>{result.summary['samples']} files under <code>{escape(root)}</code>; "
            f"{result.summary['unreadable']} unreadable.</p>"
            "<h2>Samples per split and class</h2>"
            + table_html(counts.to_dict("records"), list(counts.columns))
            + "<h2>Findings by code</h2>"
            + table_html(findings_by_code(result).to_dict("records"), ["code", "severity", "count"])
            + f"<h2>Every finding ({len(result.findings)})</h2>" + "".join(cards))
    return page(f"Integrity scan: {scanned.name}", body)


def write_integrity_report(scanned: ScannedDataset, result: CheckResult) -> Path:
    out_dir = scanned.report_dir / "integrity"
    write_check_result(result, out_dir, dataset=scanned.name)
    write_text_atomic(out_dir / "summary.md", _summary_markdown(scanned, result))
    write_text_atomic(out_dir / "index.html", _html(scanned, result))
    return out_dir


def print_scan_summary(scanned: ScannedDataset, result: CheckResult, out_dir: Path, *, stream: TextIO) -> None:
    stats = scanned.stats
    print(f"dataset {scanned.name} at {scanned.dataset.root} ({scanned.dataset.how})", file=stream)
    print(f"{stats.files} files: {stats.probed} decoded, {stats.cached} from the cache", file=stream)
    print("\n" + format_table(split_class_counts(scanned.table)), file=stream)
    by_code = findings_by_code(result)
    if by_code.empty:
        print("\nno integrity findings", file=stream)
    else:
        print("\n" + format_table(by_code), file=stream)
    counts = ", ".join(f"{result.count(s)} {s}" for s in SEVERITIES)
    print(f"\nfindings: {counts}\nreport: {out_dir / 'index.html'}", file=stream)
