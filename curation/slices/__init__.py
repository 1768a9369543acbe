"""Error slices: where the model fails, named in words, with what to collect next.

`find_error_slices(table, root, ...)` joins what the other stages already computed (out-of-sample
predictions, the audit's embeddings, the label-issue flags) with image attributes measured once
per image, and returns the slices (see discover.py for the method and why it was kept).
`python -m curation.slices DATA` writes the page and the CSVs (report.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from curation.slices.discover import Slice, SliceParams


@dataclass
class SliceResult:
    slices: list[Slice]
    outcomes: pd.DataFrame  # one row per judged sample (outcomes.OUTCOME_COLUMNS), slice rows index into it
    flags: pd.DataFrame  # predicate table aligned with outcomes
    attributes: pd.DataFrame  # attribute table aligned with outcomes
    classes: list[str]
    candidates: int  # candidate groups tested (what the permutation test adjusts for)
    noun: str
    queries: list[dict] = field(default_factory=list)  # slice, label, query
    flagged: set[str] = field(default_factory=set)  # sample_ids the label-issue stage flagged
    vectors: np.ndarray | None = None  # unit embeddings aligned with outcomes

    def resembling_train(self, found: Slice, train_split: str = "train") -> dict[str, int]:
        """Per class, the training images as close to the slice's centre as most of its members are."""
        if self.vectors is None:
            return {}
        unit = self.vectors / np.linalg.norm(self.vectors, axis=1, keepdims=True).clip(min=1e-12)
        centre = unit[found.members].mean(axis=0)
        similarity = unit @ (centre / np.linalg.norm(centre))
        near = similarity >= np.quantile(similarity[found.members], 0.2)
        train = self.outcomes["split"].to_numpy() == train_split
        labels = self.outcomes["label"].to_numpy()
        return {label: int((near & train & (labels == label)).sum()) for label in self.classes}
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return int(self.outcomes["wrong"].sum())


def object_noun(dataset: str) -> str:
    """What the images show, for the words: "shoes" -> "shoe"; any other name -> "object"."""
    name = dataset.lower()
    return name[:-1] if name.isalpha() and name.endswith("s") and len(name) > 3 else "object"


def _aligned(table: pd.DataFrame, outcomes: pd.DataFrame) -> np.ndarray:
    position = pd.Series(np.arange(len(table)), index=table["sample_id"].astype(str))
    return position.loc[outcomes["sample_id"]].to_numpy()


def copy_groups_of(table: pd.DataFrame, root: Path, cache) -> np.ndarray:
    """One id per table row, shared by copies of one picture: the duplicate engine's copy groups (the
    label stage's, from the leakage audit's cached work)."""
    from curation.label_issues.copies import copy_group_ids, find_copy_pairs

    return copy_group_ids(table, find_copy_pairs(table, root, cache=cache))


def flagged_label_issues(report_dir: Path) -> set[str]:
    """The samples in the label-issue stage's default list (label_issues/issues.csv), if it ran."""
    path = Path(report_dir) / "label_issues" / "issues.csv"
    if not path.is_file():
        return set()
    issues = pd.read_csv(path, dtype={"sample_id": str}, usecols=["sample_id", "is_issue"], keep_default_na=False)
    return set(issues.loc[issues["is_issue"].astype(str).str.lower().isin(["true", "1"]), "sample_id"])


def find_error_slices(table: pd.DataFrame, root: Path, *, cache, report_dir: Path, model_dir: Path | None = None,
                      noun: str = "object", params: SliceParams | None = None,
                      outcomes: pd.DataFrame | None = None) -> SliceResult:
    """Error slices over every labelled split. `outcomes` overrides where predictions come from
    (default: slices.outcomes.gather_outcomes)."""
    from curation.embeddings import combined_vectors
    from curation.label_issues.audit import LABEL_EMBEDDING_MODELS
    from curation.slices.attributes import image_attributes, predicates
    from curation.slices.discover import find_slices
    from curation.slices.outcomes import gather_outcomes

    params = params or SliceParams()
    if outcomes is None:
        outcomes = gather_outcomes(table, root, report_dir=report_dir, model_dir=model_dir, cache=cache)
    rows = _aligned(table, outcomes)
    attributes = image_attributes(table, root, cache=cache).iloc[rows].reset_index(drop=True)
    flags = predicates(attributes, noun)
    vectors = combined_vectors(table, root, cache=cache, spec=LABEL_EMBEDDING_MODELS)[rows]
    groups = copy_groups_of(table, root, cache)[rows] if params.copies else None
    classes = sorted(outcomes["label"].unique())
    result = SliceResult([], outcomes, flags, attributes, classes, 0, noun, flagged=flagged_label_issues(report_dir),
                         vectors=vectors)
    if outcomes["wrong"].sum() < params.min_errors:
        result.notes.append(f"only {int(outcomes['wrong'].sum())} errors in {len(outcomes)} samples: too few to say "
                            "where the model fails")
        return result
    result.slices, result.candidates = find_slices(outcomes["wrong"].to_numpy(), outcomes["confidence"].to_numpy(),
                                                   outcomes["label"].to_numpy(), vectors=vectors, flags=flags,
                                                   params=params, groups=groups)
    _describe_slices(result)
    if not result.slices:
        result.notes.append(f"no group of samples errs significantly more than the rest ({result.errors} errors in "
                            f"{len(outcomes)} samples, {result.candidates} candidate groups tested at a "
                            f"family-wise {params.alpha:.0%})")
    return result


def _describe_slices(result: SliceResult) -> None:
    """Each slice's words (the predicates that set it apart, its labels and confusions) and the scrape
    queries that would collect more of it."""
    from curation.slices.describe import attribute_evidence, class_evidence, describe, scrape_queries

    for found in result.slices:
        found.evidence = attribute_evidence(result.flags, found.members)
        found.composition = class_evidence(result.outcomes, found.members)
        found.description = describe(found.evidence, found.composition)
        result.queries += [{"slice": found.id, "label": label, "query": query}
                           for label, query in scrape_queries(found.evidence, found.composition, result.classes,
                                                              result.noun)]
