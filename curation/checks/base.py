"""The one result shape every check returns.

A check is a function `run(table, params, context) -> CheckResult`. Its findings are rows with the
columns of FINDING_COLUMNS: which sample (empty for a dataset-level finding), a machine-readable
`code`, a `severity` (error, warning, info), a message for people, and optionally the sample it
relates to (the original of a duplicate) and a score in [0, 1] where the check has one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import pandas as pd

SEVERITIES = ("error", "warning", "info")
FINDING_COLUMNS = [
    "sample_id", "path", "split", "label", "check", "code", "severity", "message",
    "related_sample_id", "score",
]


@dataclass
class CheckContext:
    """What a check may need beyond the sample table."""

    root: Path
    dataset: str
    descriptor: Any = None  # DatasetDescriptor or None
    cache: Any = None  # ContentCache or None


@dataclass
class CheckResult:
    check: str
    params: dict[str, Any]
    findings: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    def count(self, severity: str | None = None) -> int:
        if severity is None:
            return len(self.findings)
        return int((self.findings["severity"] == severity).sum())

    def counts_by_code(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.findings["code"].value_counts().sort_index().items()}


def params_dict(params: Any) -> dict[str, Any]:
    return asdict(params) if is_dataclass(params) else dict(params or {})


def make_findings(rows: list[dict[str, Any]], check: str) -> pd.DataFrame:
    """A findings frame with every column of FINDING_COLUMNS, in order, severities validated."""
    frame = pd.DataFrame(rows, columns=FINDING_COLUMNS)
    frame["check"] = check
    unknown = set(frame["severity"]) - set(SEVERITIES)
    if unknown:
        raise ValueError(f"unknown severity {sorted(unknown)}; expected one of {SEVERITIES}")
    for column in FINDING_COLUMNS:
        if column != "score":
            frame[column] = frame[column].fillna("").astype("string")
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce").astype("float64")
    return frame


def finding(sample: Any, code: str, severity: str, message: str, **extra: Any) -> dict[str, Any]:
    """One finding row about a sample (a sample-table row, or None for the whole dataset)."""
    row = {"code": code, "severity": severity, "message": message, **extra}
    if sample is not None:
        row.update(sample_id=sample["sample_id"], path=sample["path"], split=sample["split"], label=sample["label"])
    return row
