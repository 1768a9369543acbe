"""What the model got right and wrong on every labelled sample, from what the other stages wrote.

Every prediction must be out of sample, or an error slice would only show where the model remembers:
- train: the fold models' out-of-fold predictions (training/oof.parquet, `--folds K`), else the
  label-issue stage's out-of-sample probabilities (label_issues/issues.csv), else those computed
  now by the same engine (curation.label_issues.probabilities);
- every other split (test, valid, a scraped test_extra): the trained model's predictions
  (training/predictions.parquet), else the label-issue probabilities as above.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from curation.errors import CurationError

OUTCOME_COLUMNS = ["sample_id", "split", "path", "label", "predicted", "confidence", "wrong", "source"]
SOURCES = {
    "oof": "fold models, out of fold",
    "model": "the trained model",
    "probe": "embedding probe, out of fold (label-issue stage)",
}


def _from_probabilities(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    columns = [c for c in frame.columns if c.startswith("p_")]
    if not columns:
        raise CurationError(f"{SOURCES[source]}: no p_<class> probability columns")
    probs = frame[columns].to_numpy(dtype="float64")
    best = probs.argmax(axis=1)
    classes = np.array([c[2:] for c in columns])
    return pd.DataFrame({"sample_id": frame["sample_id"].astype(str).to_numpy(), "predicted": classes[best],
                         "confidence": probs[np.arange(len(probs)), best], "source": source})


def _model_outcomes(model_dir: Path) -> pd.DataFrame:
    frames = []
    oof = model_dir / "oof.parquet"
    if oof.is_file():
        frames.append(_from_probabilities(pd.read_parquet(oof), "oof"))
    predictions = model_dir / "predictions.parquet"
    if predictions.is_file():
        frame = pd.read_parquet(predictions)
        frames.append(_from_probabilities(frame[frame["predicted"].notna()], "model"))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["sample_id"])


def _probe_outcomes(table: pd.DataFrame, root: Path, report_dir: Path, cache) -> pd.DataFrame:
    issues = report_dir / "label_issues" / "issues.csv"
    if issues.is_file():
        frame = pd.read_csv(issues, dtype={"sample_id": str}, keep_default_na=False)
        columns = [c for c in frame.columns if c.startswith("p_")]
        frame[columns] = frame[columns].apply(pd.to_numeric, errors="coerce")
        return _from_probabilities(frame[frame[columns].notna().all(axis=1)], "probe")  # unchecked rows are blank
    from curation.embeddings import combined_vectors
    from curation.label_issues.audit import LABEL_EMBEDDING_MODELS
    from curation.label_issues.probabilities import cross_validated_probabilities

    vectors = combined_vectors(table, root, cache=cache, spec=LABEL_EMBEDDING_MODELS)
    oos = cross_validated_probabilities(table, vectors)
    frames = [pd.DataFrame(split.pred_probs, columns=[f"p_{c}" for c in oos.classes]).assign(sample_id=split.sample_ids)
              for split in oos.splits.values()]
    return _from_probabilities(pd.concat(frames, ignore_index=True), "probe") if frames else pd.DataFrame()


def _labelled(table: pd.DataFrame) -> pd.DataFrame:
    return table[(table["label"].fillna("").astype(str) != "") & (table["load_error"] == "")]


def gather_outcomes(table: pd.DataFrame, root: Path, *, report_dir: Path, model_dir: Path | None = None,
                    cache=None) -> pd.DataFrame:
    """One row per labelled, readable sample with an out-of-sample prediction (OUTCOME_COLUMNS)."""
    found = _model_outcomes(model_dir or report_dir / "training")
    missing = _labelled(table)[lambda rows: ~rows["sample_id"].isin(found["sample_id"])]
    if len(missing):
        found = pd.concat([found, _probe_outcomes(table, root, report_dir, cache)], ignore_index=True)
    return _joined(table, found.drop_duplicates("sample_id"))  # model first: the probe only fills what it lacks


def outcomes_from_probabilities(table: pd.DataFrame, probabilities: pd.DataFrame, source: str) -> pd.DataFrame:
    """Outcomes from any frame of sample_id and p_<class> columns (a benchmark's own model, say)."""
    return _joined(table, _from_probabilities(probabilities, source))


def _joined(table: pd.DataFrame, found: pd.DataFrame) -> pd.DataFrame:
    rows = _labelled(table)[["sample_id", "split", "path", "label"]].merge(found, on="sample_id", how="inner")
    rows["label"] = rows["label"].astype(str)
    rows["wrong"] = rows["predicted"] != rows["label"]
    return rows[OUTCOME_COLUMNS].reset_index(drop=True)
