"""The label-issue check: samples whose label an out-of-sample model confidently disputes, plus
Datalab's outliers and near duplicates, as findings of the common shape.

The heavy lifting is curation.label_issues.audit; this module turns its result into findings so
that the label-issue audit runs like every other check from the registry.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from curation.checks.base import CheckContext, CheckResult, finding, make_findings, params_dict
from curation.label_issues.audit import LabelAudit, LabelIssueParams, audit_label_issues

NAME = "label_issues"
DATALAB_FINDINGS = {  # Datalab issue type -> (finding code, message)
    "outlier": ("outlier", "unlike the other images of its split (Datalab outlier score {score:.2f})"),
    "near_duplicate": ("near_duplicate", "nearly identical to another image of its split (Datalab score {score:.2f})"),
}


def run(table: pd.DataFrame, params: LabelIssueParams, context: CheckContext | None = None) -> CheckResult:
    if context is None or context.cache is None:
        raise ValueError("the label_issues check needs a context with the dataset root and a ContentCache")
    report_dir = getattr(context, "report_dir", None) or Path("reports") / context.dataset
    audit = audit_label_issues(table, context.root, cache=context.cache, params=params, report_dir=report_dir)
    return check_result(table, audit)


def check_result(table: pd.DataFrame, audit: LabelAudit) -> CheckResult:
    """The audit as findings: label_issue warnings, Datalab outlier/near_duplicate infos, skipped splits."""
    samples = table.set_index("sample_id", drop=False)
    rows = []
    for issue in audit.flagged.itertuples():
        rows.append(finding(samples.loc[issue.sample_id], "label_issue", "warning",
                            f"labelled {issue.given_label!r}, looks like {issue.suggested_label!r} "
                            f"(issue score {issue.score:.2f})", score=issue.score, related_sample_id=""))
    if not audit.datalab.empty:
        for issue_type, (code, message) in DATALAB_FINDINGS.items():
            flagged = audit.datalab[audit.datalab.get(f"is_{issue_type}_issue", False) == True]  # noqa: E712
            for row in flagged.itertuples():
                score = float(getattr(row, f"{issue_type}_score"))
                rows.append(finding(samples.loc[row.sample_id], code, "info", message.format(score=score),
                                    score=1.0 - score, related_sample_id=""))
    for split, info in audit.summary["splits"].items():
        if "skipped" in info:
            rows.append(finding(None, "split_not_checked", "info", f"split {split!r} not checked: {info['skipped']}",
                                split=split, related_sample_id=""))
    result = CheckResult(NAME, params_dict(audit.params), make_findings(rows, NAME), dict(audit.summary))
    result.summary["by_code"] = result.counts_by_code()
    return result
