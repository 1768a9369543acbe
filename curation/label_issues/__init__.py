"""Label-issue detection: which samples look mislabelled, and what they look like instead.

`python -m curation.label_issues DATA` audits every labelled split of a dataset:
- probabilities.py: out-of-sample predicted probabilities (cross-validated logistic regression on
  cached embeddings, or the training issue's fold models);
- detect.py: cleanlab find_label_issues (flags + a documented score) and Datalab;
- audit.py: the per-split pipeline over the sample table (LabelIssueParams, audit_label_issues);
- report.py: issues.csv/json, datalab.csv, summary.json, index.html and the score figure;
- the `label_issues` entry of curation.checks wraps the audit in the common CheckResult.
Nothing heavy is imported here.
"""
