"""Label issues from out-of-sample probabilities: cleanlab's confident learning, and Datalab.

`find_label_issues_ranked` flags samples with cleanlab.filter.find_label_issues (the `filter_by`
method an option) and scores every sample with cleanlab.rank.get_label_quality_scores. The score we
report is the *issue score* = 1 - label quality, in [0, 1], higher = more likely mislabelled; with the
default `rank_by="self_confidence"` it is 1 - p(given label), the probability mass the out-of-sample
model puts on other classes. Rankings sort by it, highest first.

`datalab_issues` runs cleanlab's Datalab with the embeddings as features: label, outlier,
near_duplicate, class_imbalance and non_iid issues, one row per sample.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FILTER_BY = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given",
             "low_normalized_margin", "low_self_confidence")
RANK_BY = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")
DATALAB_ISSUE_TYPES = ("label", "outlier", "near_duplicate", "class_imbalance", "non_iid")


def validate_options(filter_by: str, rank_by: str) -> None:
    if filter_by not in FILTER_BY:
        raise ValueError(f"filter_by {filter_by!r} is not one of {', '.join(FILTER_BY)}")
    if rank_by not in RANK_BY:
        raise ValueError(f"rank_by {rank_by!r} is not one of {', '.join(RANK_BY)}")


def issue_scores(labels: np.ndarray, pred_probs: np.ndarray, *, rank_by: str = "self_confidence") -> np.ndarray:
    """1 - cleanlab label quality, shape (n,): 0 = the model agrees fully with the label."""
    from cleanlab.rank import get_label_quality_scores

    return 1.0 - get_label_quality_scores(labels, pred_probs, method=rank_by)


def find_label_issues_ranked(labels: np.ndarray, pred_probs: np.ndarray, *, filter_by: str = "prune_by_noise_rate",
                             rank_by: str = "self_confidence") -> pd.DataFrame:
    """Per sample (same order as `labels`): is_issue, score, suggested (argmax class index).

    labels: int array (n,); pred_probs: (n, K) out-of-sample probabilities, columns = classes.
    """
    from cleanlab.filter import find_label_issues

    validate_options(filter_by, rank_by)
    labels = np.asarray(labels, dtype=int)
    # n_jobs=1: cleanlab's multiprocessing buys nothing at this size and fights the other workers.
    flagged = find_label_issues(labels, pred_probs, filter_by=filter_by, n_jobs=1)
    return pd.DataFrame({
        "is_issue": np.asarray(flagged, dtype=bool),
        "score": issue_scores(labels, pred_probs, rank_by=rank_by),
        "suggested": pred_probs.argmax(axis=1),
    })


def datalab_issues(labels: list[str], features: np.ndarray, pred_probs: np.ndarray, *,
                   issue_types: tuple[str, ...] = DATALAB_ISSUE_TYPES) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Datalab's per-sample issues (is_<type>_issue, <type>_score columns) and its summary table.

    `labels` are class names; Datalab orders classes lexicographically, as `pred_probs` columns are.
    """
    from cleanlab import Datalab

    lab = Datalab(data={"label": list(labels)}, label_name="label", verbosity=0)
    kwargs = {"pred_probs": pred_probs} if pred_probs is not None else {}
    # n_jobs=1 for the label check too: its multiprocessing pool forks this process, and a fork of a
    # process that runs other threads (a Ray driver's, torch's) can hang for good (seen in the tests)
    options = {name: {} for name in issue_types}
    if "label" in options:
        options["label"] = {"clean_learning_kwargs": {"find_label_issues_kwargs": {"n_jobs": 1}}}
    lab.find_issues(features=features, issue_types=options, **kwargs)
    issues = lab.get_issues()
    keep = [c for c in issues.columns if c.startswith("is_") or c.endswith("_score")] + \
           [c for c in ("predicted_label",) if c in issues.columns]
    return issues[keep].reset_index(drop=True), lab.get_issue_summary()
