"""Per-sample review fields, gathered from every stage's outputs under reports/<dataset>/.

Pure pandas, no FiftyOne: each function returns a frame indexed by sample_id whose columns become
sample fields. A stage whose outputs do not exist yet contributes nothing; its fields then stay
empty on the FiftyOne dataset rather than failing the review.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from curation.checks.base import SEVERITIES


def integrity_fields(report_dir: Path) -> pd.DataFrame:
    """integrity_codes (list of finding codes) and integrity_severity (the worst) per sample."""
    path = report_dir / "integrity" / "findings.csv"
    if not path.is_file():
        return pd.DataFrame()
    findings = pd.read_csv(path, dtype=str, keep_default_na=False)
    findings = findings[findings["sample_id"] != ""]
    if findings.empty:
        return pd.DataFrame()
    rank = {severity: i for i, severity in enumerate(SEVERITIES)}
    grouped = findings.groupby("sample_id")
    return pd.DataFrame({
        "integrity_codes": grouped["code"].apply(lambda codes: sorted(set(codes))),
        "integrity_severity": grouped["severity"].apply(lambda s: min(s, key=rank.__getitem__)),
    })


def class_columns(frame: pd.DataFrame, prefix: str) -> list[str]:
    return [c for c in frame.columns if c.startswith(prefix)]


def classification_records(frame: pd.DataFrame, prefix: str = "p_") -> pd.Series:
    """Per sample: (predicted label, confidence, logits) from <prefix><class> and logit_<class> columns
    (log-probabilities where there are no logits, as for the ensemble's ensemble_p_<class>).

    Rows without probabilities (an image that does not decode) get no prediction at all.
    """
    probability_columns = class_columns(frame, prefix)
    frame = frame[frame[probability_columns].notna().all(axis=1)]
    classes = [c.removeprefix(prefix) for c in probability_columns]
    logit_columns = [f"logit_{c}" for c in classes]
    has_logits = prefix == "p_" and all(c in frame.columns for c in logit_columns)
    probabilities = frame[probability_columns].to_numpy(dtype="float64")
    logits = frame[logit_columns].to_numpy(dtype="float64") if has_logits else np.log(np.clip(probabilities, 1e-12, 1))
    best = probabilities.argmax(axis=1)
    records = [(classes[b], float(probabilities[i, b]), logits[i].tolist()) for i, b in enumerate(best)]
    return pd.Series(records, index=frame["sample_id"].to_numpy())


def _read_parquet(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.is_file() else None


def prediction_fields(report_dir: Path) -> pd.DataFrame:
    """`predictions` (final model, non-train splits), `ensemble_predictions` (the model with its companion,
    when one was trained) and `fold_predictions` + `consensus_hard` (train)."""
    training = report_dir / "training"
    columns = {}
    predictions = _read_parquet(training / "predictions.parquet")
    if predictions is not None and len(predictions):
        columns["predictions"] = classification_records(predictions)
        if class_columns(predictions, "ensemble_p_"):
            columns["ensemble_predictions"] = classification_records(predictions, "ensemble_p_")
    oof = _read_parquet(training / "oof.parquet")
    if oof is not None and len(oof):
        columns["fold_predictions"] = classification_records(oof)
        if "consensus_hard" in oof.columns:
            columns["consensus_hard"] = pd.Series(oof["consensus_hard"].astype(bool).to_numpy(), index=oof["sample_id"])
    return pd.DataFrame(columns)


def label_issue_fields(report_dir: Path) -> pd.DataFrame:
    """label_issue, its kind, score (P(label wrong)), note, copies, nearest train images and suggested_label
    from reports/<dataset>/label_issues/issues.csv."""
    path = report_dir / "label_issues" / "issues.csv"
    if not path.is_file():
        return pd.DataFrame()
    issues = pd.read_csv(path, dtype={"sample_id": str}, keep_default_na=False).drop_duplicates("sample_id")
    issues = issues.set_index("sample_id")
    text = {column: issues[source].astype(str) if source in issues else pd.Series("", index=issues.index)
            for column, source in (("label_issue_kind", "kind"), ("label_issue_note", "note"),
                                   ("label_copies", "copies"), ("label_nearest", "nearest"))}
    score = issues["wrong_probability"] if "wrong_probability" in issues else issues["score"]
    return pd.DataFrame({
        "label_issue": issues["is_issue"].astype(str).str.lower().isin(["true", "1"]),
        "label_issue_score": pd.to_numeric(score, errors="coerce"),
        "suggested_label": issues["suggested_label"].astype(str),
        **text,
    })


def leak_fields(report_dir: Path) -> pd.DataFrame:
    """Leak fields from the leakage audit's pairs.csv.

    Every member of a copy group (exact or near-duplicate pairs) gets its `leak_group`; the side of
    a cross-split pair that is not the earlier split (train first) is the leak: `is_leak`, the
    sample it copies (`leak_of`, `leak_of_path`), the score, the signal and the kind. A sample in
    several pairs keeps its most certain one.
    """
    path = report_dir / "leakage" / "pairs.csv"
    if not path.is_file():
        return pd.DataFrame()
    pairs = pd.read_csv(path, dtype={"sample_id_a": str, "sample_id_b": str}, keep_default_na=False)
    copies = pairs[pairs["kind"].isin(["exact", "near_duplicate"])]
    if copies.empty:
        return pd.DataFrame()
    groups = pd.concat([copies[["sample_id_a", "group"]].set_axis(["sample_id", "group"], axis=1),
                        copies[["sample_id_b", "group"]].set_axis(["sample_id", "group"], axis=1)])
    fields = pd.DataFrame({"leak_group": groups.drop_duplicates("sample_id").set_index("sample_id")["group"].astype(int)})
    leaks = copies[copies["leak"].astype(str).str.lower().isin(["true", "1"])].sort_values("score", ascending=False)
    # pairs.csv lists the earlier split (train first) as side a: side b is the copy.
    leaks = leaks.drop_duplicates("sample_id_b").set_index("sample_id_b")
    leak_columns = pd.DataFrame({
        "is_leak": True,
        "leak_kind": leaks["kind"],
        "leak_of": leaks["sample_id_a"],
        "leak_of_path": leaks["path_a"],
        "leak_similarity": leaks["score"].astype(float),
        "leak_signal": leaks["signal"],
    }, index=leaks.index)
    return fields.join(leak_columns, how="outer")


def slice_fields(report_dir: Path) -> pd.DataFrame:
    """`error_slices` (the slices a sample belongs to) from reports/<dataset>/slices/members.csv."""
    path = report_dir / "slices" / "members.csv"
    if not path.is_file():
        return pd.DataFrame()
    members = pd.read_csv(path, dtype={"sample_id": str}, keep_default_na=False)
    if members.empty:
        return pd.DataFrame()
    grouped = members.groupby("sample_id")["slice"].agg(lambda s: sorted(int(v) for v in s))
    return pd.DataFrame({"error_slices": grouped})
