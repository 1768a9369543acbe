"""The duplicate checks of the registry, views of the leakage audit in the common CheckResult shape.

- exact_duplicates: same file bytes or same decoded pixels (reads only the sample table);
- near_duplicates: edited copies (perceptual hashes and embeddings; needs context.root and cache);
- leakage: copies of either kind across splits, plus label conflicts.
A copy inside one split is a warning (it weighs a picture twice); across splits it is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from curation.checks.base import CheckContext, CheckResult, make_findings, params_dict
from curation.errors import CurationError
from curation.leakage.params import LeakageParams


@dataclass
class ExactDuplicatesParams:
    """No settings: equality of file or pixel hashes has no threshold."""


def _pair_findings(pairs: pd.DataFrame) -> list[dict]:
    rows = []
    for pair in pairs.itertuples():
        where = f"{pair.split_a}/{pair.split_b}" if pair.cross_split else pair.split_a
        code = f"leak_{pair.kind}" if pair.cross_split else f"{pair.kind}"
        rows.append({
            "sample_id": pair.sample_id_b, "path": pair.path_b, "split": pair.split_b, "label": pair.label_b,
            "code": code, "severity": "error" if pair.cross_split else "warning",
            "message": f"{pair.kind.replace('_', '-')} of {pair.path_a} ({where}; {pair.signal})",
            "related_sample_id": pair.sample_id_a, "score": pair.score,
        })
        if pair.label_conflict:
            rows.append({**rows[-1], "code": "label_conflict", "severity": "error",
                         "message": f"same picture as {pair.path_a} but labelled {pair.label_b!r}, not {pair.label_a!r}"})
    return rows


def _summary(pairs: pd.DataFrame) -> dict:
    return {"pairs": len(pairs), "cross_split_pairs": int(pairs["cross_split"].sum()),
            "groups": int(pairs.loc[pairs["group"] > 0, "group"].nunique()),
            "label_conflicts": int(pairs["label_conflict"].sum())}


def run_exact(table: pd.DataFrame, params: ExactDuplicatesParams, context: CheckContext | None) -> CheckResult:
    from curation.leakage.exact import exact_pairs
    from curation.leakage.fuse import pair_frame

    table = table.reset_index(drop=True)
    found = exact_pairs(table)
    n = len(found)
    pairs = pair_frame(table, found[["a", "b"]].to_numpy().reshape(-1, 2), np.full(n, "exact", dtype=object),
                       np.array([f"exact:{s}" for s in found["signal"]], dtype=object),
                       np.full(n, np.nan), np.zeros(n, dtype="int64"), np.full(n, -1, dtype="int64"))
    return CheckResult("exact_duplicates", params_dict(params), make_findings(_pair_findings(pairs),
                                                                             "exact_duplicates"), _summary(pairs))


def _audit(table: pd.DataFrame, params: LeakageParams, context: CheckContext | None):
    from curation.leakage import audit_leakage

    if context is None or context.cache is None:
        raise CurationError("near-duplicate and leakage checks need a CheckContext with the dataset root and a cache")
    return audit_leakage(table, context.root, cache=context.cache, params=params)


def run_near(table: pd.DataFrame, params: LeakageParams, context: CheckContext | None) -> CheckResult:
    pairs = _audit(table, params, context).pairs
    near = pairs[pairs["kind"] == "near_duplicate"]
    return CheckResult("near_duplicates", params_dict(params), make_findings(_pair_findings(near),
                                                                            "near_duplicates"), _summary(near))


def run_leakage(table: pd.DataFrame, params: LeakageParams, context: CheckContext | None) -> CheckResult:
    result = _audit(table, params, context)
    leaks = result.leaks
    summary = {**_summary(leaks), "samples_to_drop": int(result.leak_free["drop"].sum())}
    return CheckResult("leakage", params_dict(params), make_findings(_pair_findings(leaks), "leakage"), summary)
