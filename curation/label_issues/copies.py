"""Copies in the label audit: the duplicate engine's copy groups, and the same picture filed under two labels.

The one engine that answers "is this the same picture?" (curation.leakage) gives exact and
near-duplicate pairs over every split; their connected components are copy groups. The label audit
uses them twice: folds keep a group whole (no image judged by a model that saw its copy), and a
group whose members carry different labels is a `conflicting_copies` finding, decided by the
probabilities of models that saw none of its members.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

COPY_KINDS = ("exact", "near_duplicate")
DECIDED = 0.7  # mean probability of one label over the copies at which the evidence names the right side


def copy_group_ids(table: pd.DataFrame, pairs: pd.DataFrame) -> np.ndarray:
    """One group id per table row: rows that are copies of each other share one; others have their own."""
    from curation.leakage.fuse import copy_groups

    position = {sid: i for i, sid in enumerate(table["sample_id"].astype(str))}
    copies = pairs[pairs["kind"].isin(COPY_KINDS)] if len(pairs) else pairs
    edges = np.array([[position[a], position[b]] for a, b in zip(copies.get("sample_id_a", []), copies.get("sample_id_b", []))
                      if a in position and b in position], dtype="int64").reshape(-1, 2)
    components = copy_groups(len(table), edges)
    return np.where(components >= 0, components, len(table) + np.arange(len(table)))


def find_copy_pairs(table: pd.DataFrame, root, *, cache) -> pd.DataFrame:
    """Ask the duplicate engine for every copy pair of the table (its caches make a second ask cheap)."""
    from curation.leakage import audit_leakage

    pairs = audit_leakage(table, root, cache=cache).pairs
    return pairs[pairs["kind"].isin(COPY_KINDS)].reset_index(drop=True)


@dataclass
class ConflictingCopies:
    group: int
    sample_ids: list[str]
    labels: list[str]  # given label per member
    supported: str  # the label the members' out-of-sample probabilities support ("" when they do not settle it)
    support: float  # mean probability of the likeliest label over the members
    likeliest: str  # that label, decided or not
    mislabelled: list[str]  # members whose given label is not `supported` (none when undecided)

    @property
    def finding(self) -> str:
        """The one member that carries the finding: the first mislabelled side, or the first member."""
        return (self.mislabelled or self.sample_ids)[0]

    def describe(self) -> str:
        filed = f"the same picture is filed as {', '.join(sorted(set(self.labels)))}"
        if self.supported:
            return f"{filed}; its copies' out-of-sample probabilities support {self.supported} ({self.support:.2f})"
        return f"{filed}; the evidence does not settle which (likeliest {self.likeliest}, {self.support:.2f}): look at it"


def conflicting_copies(issues: pd.DataFrame, classes: list[str]) -> list[ConflictingCopies]:
    """Copy groups whose members carry more than one label. `issues` needs sample_id, copy_group,
    given_label and p_<class> for checked members; unchecked members still count as filed copies."""
    found = []
    for group, members in issues[issues["copy_size"] > 1].groupby("copy_group", sort=False):
        labels = members["given_label"].astype(str)
        if labels[labels != ""].nunique() < 2:
            continue
        probs = members[[f"p_{name}" for name in classes]].dropna()
        if probs.empty:
            continue
        mean = probs.to_numpy().mean(axis=0)
        likeliest = classes[int(mean.argmax())]
        supported = likeliest if mean.max() >= DECIDED else ""
        mislabelled = members.loc[labels != supported, "sample_id"].tolist() if supported else []
        found.append(ConflictingCopies(int(group), members["sample_id"].tolist(), labels.tolist(), supported,
                                       float(mean.max()), likeliest, mislabelled))
    return found
