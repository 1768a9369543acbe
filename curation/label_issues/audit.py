"""The label-issue audit of a sample table: probabilities, cleanlab flags and Datalab, per split.

Every labelled split is checked on its own (train, test, an extended test_extra scraped from a
search engine, ...), because a split's labels may come from a different, noisier process. The
result has one row per sample of the table, checked or not (an unreadable image is a row saying
so, never a silently dropped sample).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curation.label_issues.detect import datalab_issues, find_label_issues_ranked, validate_options
from curation.label_issues.probabilities import (
    DEFAULT_C, OutOfSample, cross_validated_probabilities, fold_probabilities,
)
from curation.progress import progress

ISSUE_COLUMNS = ["sample_id", "split", "path", "given_label", "suggested_label", "score", "is_issue", "method"]
SOURCES = ("cv_logreg", "folds")
LABEL_EMBEDDING_MODELS = "tf_efficientnet_lite0,tf_efficientnet_lite1,tf_efficientnet_lite2"


@dataclass
class LabelIssueParams:
    source: str = "cv_logreg"  # cv_logreg: the fast path on embeddings; folds: the training's fold models
    filter_by: str = "prune_by_noise_rate"  # cleanlab.filter.find_label_issues(filter_by=...)
    rank_by: str = "self_confidence"  # cleanlab.rank label quality behind the score (score = 1 - quality)
    n_folds: int = 5
    c: float = DEFAULT_C
    seed: int = 0
    # A timm name, or several comma-separated whose features go side by side: the three packaged
    # backbones together err less than any one (bench/RESULTS.md: AUROC 0.94-0.95 against 0.91).
    embedding_model: str = LABEL_EMBEDDING_MODELS
    datalab: bool = True  # also run Datalab (outliers, near duplicates, class imbalance, non-iid)
    train_split: str = "train"

    def validate(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source {self.source!r} is not one of {', '.join(SOURCES)}")
        validate_options(self.filter_by, self.rank_by)
        if self.n_folds < 2:
            raise ValueError(f"n_folds must be at least 2, got {self.n_folds}")


@dataclass
class LabelAudit:
    issues: pd.DataFrame  # one row per table row: ISSUE_COLUMNS + label_quality, note, p_<class>, datalab_*
    datalab: pd.DataFrame  # per checked sample: sample_id, split, Datalab's is_<type>_issue / <type>_score
    datalab_summary: pd.DataFrame  # split, issue_type, score, num_issues
    classes: list[str]
    params: LabelIssueParams
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def flagged(self) -> pd.DataFrame:
        return self.issues[self.issues["is_issue"]]


def audit_label_issues(table: pd.DataFrame, root: Path, *, cache, params: LabelIssueParams | None = None,
                       report_dir: Path | None = None) -> LabelAudit:
    """Run the audit. `report_dir` (reports/<dataset>) is where --from-folds finds the training output."""
    params = params or LabelIssueParams()
    params.validate()
    vectors = None
    if params.source == "cv_logreg" or params.datalab:
        from curation.embeddings import combined_vectors

        vectors = combined_vectors(table, root, cache=cache, spec=params.embedding_model)
    if params.source == "cv_logreg":
        oos = cross_validated_probabilities(table, vectors, n_folds=params.n_folds, c=params.c, seed=params.seed,
                                            train_split=params.train_split)
    else:
        oos = fold_probabilities(table, report_dir or Path("reports"), train_split=params.train_split)
    per_split = [_detect_split(oos, split, params) for split in oos.splits]
    datalab, datalab_summary = _run_datalab(table, vectors, oos) if params.datalab else (pd.DataFrame(), pd.DataFrame())
    issues = _issue_table(table, oos, per_split, datalab, vectors, params)
    audit = LabelAudit(issues, datalab, datalab_summary, oos.classes, params)
    audit.summary = _summary(audit, oos)
    return audit


def _method(params: LabelIssueParams) -> str:
    return f"{params.source}+find_label_issues({params.filter_by})"


def _detect_split(oos: OutOfSample, split: str, params: LabelIssueParams) -> pd.DataFrame:
    probs = oos.splits[split]
    found = find_label_issues_ranked(probs.labels, probs.pred_probs, filter_by=params.filter_by, rank_by=params.rank_by)
    found.insert(0, "sample_id", probs.sample_ids)
    found["given"] = probs.labels
    found["label_quality"] = 1.0 - found["score"]
    for k, name in enumerate(oos.classes):
        found[f"p_{name}"] = probs.pred_probs[:, k]
    return found


def _run_datalab(table: pd.DataFrame, vectors: np.ndarray, oos: OutOfSample) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Datalab per split, on the same probabilities and the L2-normalised embeddings."""
    position = {sid: i for i, sid in enumerate(table["sample_id"].astype(str))}
    frames, summaries = [], []
    for split, probs in progress(list(oos.splits.items()), desc="Datalab"):
        rows = [position[sid] for sid in probs.sample_ids]
        features = vectors[rows] / np.linalg.norm(vectors[rows], axis=1, keepdims=True).clip(min=1e-12)
        issues, summary = datalab_issues([oos.classes[k] for k in probs.labels], features, probs.pred_probs)
        issues.insert(0, "split", split)
        issues.insert(0, "sample_id", probs.sample_ids)
        frames.append(issues)
        summaries.append(summary.assign(split=split))
    return pd.concat(frames, ignore_index=True), pd.concat(summaries, ignore_index=True)


def _note(row, checked_splits: set[str], skipped: dict[str, str]) -> str:
    if row.load_error:
        return f"not checked: unreadable image ({row.load_error})"
    if not row.label:
        return "not checked: no label"
    if row.split in skipped:
        return f"not checked: {skipped[row.split]}"
    if row.split not in checked_splits:
        return "not checked: no out-of-sample prediction for this sample"
    return "not checked: no embedding"


def _issue_table(table, oos, per_split, datalab, vectors, params) -> pd.DataFrame:
    found = pd.concat(per_split, ignore_index=True) if per_split else pd.DataFrame(columns=["sample_id"])
    base = table[["sample_id", "split", "path", "label", "load_error"]].copy()
    base["label"] = base["label"].fillna("").astype(str)
    merged = base.merge(found, on="sample_id", how="left")
    checked = merged["score"].notna()
    merged["given_label"] = merged["label"]
    merged["suggested_label"] = [oos.classes[int(k)] if ok else "" for k, ok in zip(merged["suggested"].fillna(0), checked)]
    merged["is_issue"] = merged["is_issue"].fillna(False).astype(bool)
    merged["method"] = np.where(checked, _method(params), "")
    merged["note"] = [
        "" if ok else _note(row, set(oos.splits), oos.skipped) for ok, row in zip(checked, merged.itertuples())]
    if not datalab.empty:
        extra = datalab[["sample_id", "is_label_issue", "label_score"]].rename(
            columns={"is_label_issue": "datalab_label_issue", "label_score": "datalab_label_quality"})
        merged = merged.merge(extra, on="sample_id", how="left")
    probability_columns = [f"p_{name}" for name in oos.classes]
    columns = ISSUE_COLUMNS + ["label_quality", "note"] + probability_columns + \
        [c for c in ("datalab_label_issue", "datalab_label_quality") if c in merged.columns]
    ranked = merged[columns].sort_values(["is_issue", "score"], ascending=[False, False], na_position="last")
    return ranked.reset_index(drop=True)


def _summary(audit: LabelAudit, oos: OutOfSample) -> dict[str, Any]:
    issues = audit.issues
    splits = {}
    for split, probs in oos.splits.items():
        here = issues[issues["split"] == split]
        checked = here[here["method"] != ""]
        splits[split] = {
            "samples": int(len(here)),
            "checked": int(len(checked)),
            "flagged": int(checked["is_issue"].sum()),
            "flagged_fraction": round(float(checked["is_issue"].mean()), 4) if len(checked) else 0.0,
            "model_disagrees": int((checked["suggested_label"] != checked["given_label"]).sum()),
            "probabilities": probs.how,
        }
    for split, why in oos.skipped.items():
        splits[split] = {"samples": int((issues["split"] == split).sum()), "checked": 0, "flagged": 0, "skipped": why}
    datalab_counts = {}
    if not audit.datalab_summary.empty:
        for row in audit.datalab_summary.itertuples():
            datalab_counts.setdefault(row.split, {})[row.issue_type] = {"num_issues": int(row.num_issues),
                                                                        "score": round(float(row.score), 4)}
    return {
        "classes": oos.classes,
        "source": oos.source,
        "method": _method(audit.params),
        "score": f"1 - cleanlab label quality ({audit.params.rank_by}); higher = more likely mislabelled",
        "samples": int(len(issues)),
        "checked": int((issues["method"] != "").sum()),
        "flagged": int(issues["is_issue"].sum()),
        "not_checked": int((issues["method"] == "").sum()),
        "splits": splits,
        "datalab": datalab_counts,
        "params": asdict(audit.params),
    }
