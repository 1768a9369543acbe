"""The review fields, declared up front so every field exists (empty) before its stage has run."""

from __future__ import annotations

# field -> (FiftyOne field class name, embedded document type or None, what it holds)
REVIEW_FIELDS = {
    "split": ("StringField", None, "the split folder (also a tag)"),
    "load_error": ("StringField", None, "why the file does not decode; empty when fine"),
    "sha256": ("StringField", None, "file content hash"),
    "integrity_codes": ("ListField", "StringField", "integrity finding codes"),
    "integrity_severity": ("StringField", None, "the worst integrity finding: error, warning or info"),
    "predictions": ("EmbeddedDocumentField", "Classification", "the trained model's prediction, with logits"),
    "ensemble_predictions": ("EmbeddedDocumentField", "Classification",
                             "the mean of the model's and its companion's probabilities (with --companion)"),
    "fold_predictions": ("EmbeddedDocumentField", "Classification", "out-of-fold prediction (train split)"),
    "consensus_hard": ("BooleanField", None, "wrong in most folds and by the final model"),
    "is_leak": ("BooleanField", None, "a copy of a sample in another split"),
    "leak_kind": ("StringField", None, "exact or near_duplicate"),
    "leak_of": ("StringField", None, "curation_id of the sample it copies"),
    "leak_of_path": ("StringField", None, "path of the sample it copies"),
    "leak_similarity": ("FloatField", None, "similarity to that sample, 1 = identical"),
    "leak_signal": ("StringField", None, "which signal caught it"),
    "leak_group": ("IntField", None, "copies of one picture share a group"),
    "label_issue": ("BooleanField", None, "a label finding: no class fits, conflicting copies, or a likely error"),
    "label_issue_kind": ("StringField", None, "not_in_any_class, conflicting_copies, label_error or review"),
    "label_issue_score": ("FloatField", None, "P(label wrong), the calibrated estimate"),
    "label_issue_note": ("StringField", None, "the evidence that decided the finding"),
    "label_copies": ("StringField", None, "the sample's copies, as label:path"),
    "label_nearest": ("StringField", None, "the nearest train images, as label:path:cosine"),
    "suggested_label": ("StringField", None, "the label the model suggests instead (empty: no class fits)"),
    "error_slices": ("ListField", "IntField", "the error slices the sample belongs to (slices/index.html)"),
}


def declare_fields(dataset) -> None:
    import fiftyone as fo

    schema = dataset.get_field_schema()
    for name, (kind, inner, _) in REVIEW_FIELDS.items():
        if name in schema:
            continue
        if kind == "ListField":
            dataset.add_sample_field(name, fo.ListField, subfield=getattr(fo, inner))
        elif kind == "EmbeddedDocumentField":
            dataset.add_sample_field(name, fo.EmbeddedDocumentField, embedded_doc_type=getattr(fo, inner))
        else:
            dataset.add_sample_field(name, getattr(fo, kind))
