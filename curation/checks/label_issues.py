"""The label-issue check: the audit's findings in the common shape, one code per kind.

- `not_in_any_class`: an image far from every class (no label fits; none is suggested);
- `conflicting_copies`: the side of a picture filed under two labels that the evidence does not support;
- `label_issue`: a label whose estimated probability of being wrong is at least the threshold;
- `outlier` (info): Datalab's outliers, for context.
The heavy lifting is curation.label_issues.audit; copies come from the duplicate engine, never Datalab.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from curation.checks.base import CheckContext, CheckResult, finding, make_findings, params_dict
from curation.label_issues.audit import LabelAudit, LabelIssueParams, audit_label_issues

NAME = "label_issues"
CODES = {"not_in_any_class": "not_in_any_class", "conflicting_copies": "conflicting_copies", "label_error": "label_issue"}


def run(table: pd.DataFrame, params: LabelIssueParams, context: CheckContext | None = None) -> CheckResult:
    if context is None or context.cache is None:
        raise ValueError("the label_issues check needs a context with the dataset root and a ContentCache")
    report_dir = getattr(context, "report_dir", None) or Path("reports") / context.dataset
    audit = audit_label_issues(table, context.root, cache=context.cache, params=params, report_dir=report_dir)
    return check_result(table, audit)


def describe(issue) -> str:
    """One line a person reads: what is wrong, how sure, and the evidence that decided it."""
    if issue.kind == "not_in_any_class":
        return (f"filed as {issue.given_label!r} but far from every class ({issue.affinity_deviations:.1f} deviations "
                f"below the dataset's typical class affinity): likely no class fits")
    if issue.kind == "conflicting_copies":
        return f"labelled {issue.given_label!r}: {issue.note} (copies: {issue.copies})"
    return (f"labelled {issue.given_label!r}, looks like {issue.suggested_label!r}: P(label wrong) "
            f"{issue.wrong_probability:.2f}" + (f" (copies: {issue.copies})" if issue.copies else ""))


def check_result(table: pd.DataFrame, audit: LabelAudit) -> CheckResult:
    samples = table.set_index("sample_id", drop=False)
    rows = []
    for issue in audit.flagged.itertuples():
        score = issue.wrong_probability if issue.kind != "not_in_any_class" else min(1.0, issue.affinity_deviations / 10)
        rows.append(finding(samples.loc[issue.sample_id], CODES[issue.kind], "warning", describe(issue),
                            score=float(score), related_sample_id=""))
    if not audit.datalab.empty and "is_outlier_issue" in audit.datalab:
        for row in audit.datalab[audit.datalab["is_outlier_issue"].astype(bool)].itertuples():
            rows.append(finding(samples.loc[row.sample_id], "outlier", "info",
                                f"unlike the other images of its split (Datalab outlier score {row.outlier_score:.2f})",
                                score=1.0 - float(row.outlier_score), related_sample_id=""))
    for split, info in audit.summary["splits"].items():
        if "skipped" in info:
            rows.append(finding(None, "split_not_checked", "info", f"split {split!r} not checked: {info['skipped']}",
                                split=split, related_sample_id=""))
    result = CheckResult(NAME, params_dict(audit.params), make_findings(rows, NAME), dict(audit.summary))
    result.summary["by_code"] = result.counts_by_code()
    return result
