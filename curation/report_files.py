"""Writing a check's result to disk (CSV, JSON, Markdown) and printing it as a table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from curation.atomic_files import atomic_path
from curation.checks.base import SEVERITIES, CheckResult


def write_text_atomic(path: Path, text: str) -> Path:
    """Write through a temporary file renamed into place: a reader never sees half a report."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return path


def write_json(path: Path, data: Any) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def write_check_result(result: CheckResult, directory: Path, *, dataset: str) -> dict[str, Path]:
    """findings.csv, findings.json and summary.json of one check, under `directory`."""
    findings = result.findings
    paths = {
        "findings_csv": write_text_atomic(directory / "findings.csv", findings.to_csv(index=False)),
        "findings_json": write_json(directory / "findings.json", _records(findings)),
        "summary_json": write_json(directory / "summary.json", {
            "schema_version": 1,
            "dataset": dataset,
            "check": result.check,
            "params": result.params,
            "counts_by_severity": {s: result.count(s) for s in SEVERITIES},
            **result.summary,
        }),
    }
    return paths


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records"))


def format_table(frame: pd.DataFrame) -> str:
    """A plain-text table (no extra dependency): numeric columns right-aligned, text left-aligned."""
    numeric = [pd.api.types.is_numeric_dtype(dtype) for dtype in frame.dtypes]
    cells = [[str(c) for c in frame.columns]] + [[str(v) for v in row] for row in frame.itertuples(index=False)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]

    def line(row: list[str]) -> str:
        return "  ".join(cell.rjust(w) if right else cell.ljust(w) for cell, w, right in zip(row, widths, numeric)).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths)] + [line(row) for row in cells[1:]])
