"""Label-issue detection: which labels look wrong, how sure the tool is, and why.

`python -m curation.label_issues DATA` audits every labelled split of a dataset:
- copies.py: the duplicate engine's copy groups (kept in one fold) and conflicting copies;
- probabilities.py: out-of-sample predicted probabilities (cross-validated logistic regression on
  cached embeddings, or the training issue's fold models);
- finetune.py: fold models fine-tuned on cached activations of a backbone's frozen early stages
  (`--probabilities finetune`), averaged with the fast path where that explains the labels better;
- estimate.py: P(label wrong) from a noise channel fitted to those probabilities;
- injection.py: the noise-injection check of that estimate on the dataset's own labels;
- foreign.py: images of no class, from their affinity to every class;
- evidence.py: the nearest train images beside each finding;
- detect.py: cleanlab find_label_issues and Datalab, run for comparison;
- audit.py: the pipeline over the sample table (LabelIssueParams, audit_label_issues, the kinds);
- report.py: issues.csv/json, datalab.csv, summary.json, index.html and the score figure;
- the `label_issues` entry of curation.checks wraps the audit in the common CheckResult.
Nothing heavy is imported here.
"""
