"""The FiftyOne review: one persistent dataset holding every stage's results, with saved views.

`build_review(scanned, ...)` creates or updates the dataset named after the data set, one sample
per sample-table row, and fills in whatever stage outputs exist under reports/<dataset>/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from curation.review.fields import integrity_fields, label_issue_fields, leak_fields, prediction_fields, slice_fields
from curation.review.schema import REVIEW_FIELDS

CLASSIFICATION_FIELDS = tuple(name for name, (_, inner, _) in REVIEW_FIELDS.items() if inner == "Classification")


@dataclass
class ReviewResult:
    name: str
    samples: int
    sync: dict[str, int]
    fields: list[str]
    brain_runs: list[str]
    views: dict[str, int] = field(default_factory=dict)


def _as_classifications(fields: pd.DataFrame) -> pd.DataFrame:
    import fiftyone as fo
    import numpy as np

    for column in CLASSIFICATION_FIELDS:
        if column in fields.columns:
            fields[column] = fields[column].map(
                lambda record: None if not isinstance(record, tuple)
                else fo.Classification(label=record[0], confidence=record[1], logits=np.asarray(record[2])))
    return fields


def gather_fields(report_dir: Path) -> pd.DataFrame:
    """Every optional per-sample field that the stages' outputs provide, indexed by sample_id."""
    parts = [integrity_fields(report_dir), prediction_fields(report_dir), leak_fields(report_dir),
             label_issue_fields(report_dir), slice_fields(report_dir)]
    parts = [part for part in parts if not part.empty]
    return pd.concat(parts, axis=1) if parts else pd.DataFrame()


def build_review(scanned, *, name: str | None = None, cache=None, embeddings: bool = True) -> ReviewResult:
    """Create or update the persistent FiftyOne dataset for a scanned data set."""
    from curation.review import brain_runs, fo_dataset, schema, views

    name = name or scanned.name
    table, root = scanned.table, scanned.dataset.root
    dataset = fo_dataset.open_dataset(name)
    sync = fo_dataset.sync_samples(dataset, table, root)
    schema.declare_fields(dataset)
    fo_dataset.set_base_fields(dataset, table, root)
    extra = _as_classifications(gather_fields(scanned.report_dir))
    if "error_slices" in extra.columns:  # a list field: samples in no slice get [], never NaN
        extra["error_slices"] = extra["error_slices"].map(lambda v: v if isinstance(v, list) else [])
    defaults = {"is_leak": False, "label_issue": False, "consensus_hard": False, "error_slices": []}
    fo_dataset.set_optional_fields(dataset, extra, table["sample_id"].tolist(), defaults)
    ran = brain_runs.prediction_runs(dataset)
    if embeddings and cache is not None:
        from curation.embeddings import compute_embeddings

        computed = compute_embeddings(table, root, cache=cache)
        vectors = {key: vector for key, vector, ok in zip(computed.sample_ids, computed.normalized(), computed.valid) if ok}
        ran += brain_runs.embedding_runs(dataset, vectors)
    counts = views.save_views(dataset, slices=views.slice_ids(scanned.report_dir))
    return ReviewResult(name, len(dataset), sync, sorted(extra.columns), ran, counts)
