"""The leak-free view: which evaluation samples to drop so that no picture is seen twice.

A non-train sample is dropped when it is an exact or near-duplicate of a sample in a split ranked
before it, or another frame of the same shoot (same_scene; its `kind` column counts it apart) (train, then validation, then test): a test image copied from train inflates test
metrics; a test image copied from validation was, in effect, used for model selection. Copies
inside one evaluation split are kept: they weigh a picture twice but leak nothing.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from curation.leakage.params import is_train, split_rank

LEAK_FREE_COLUMNS = ["sample_id", "split", "drop", "kind", "reason"]
LEAK_FREE_FILE = "leak_free.csv"


def leak_free_view(table: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per non-train sample: sample_id, split, drop (bool), kind and reason ('' when kept)."""
    evaluation = table[~table["split"].map(is_train)]
    reasons: dict[str, str] = {}
    kinds: dict[str, str] = {}
    scene = (pairs["kind"] == "same_scene") & pairs["cross_split"]
    for pair in pairs[pairs["leak"] | scene].itertuples():  # copies first: pairs are sorted by kind
        # Pairs are oriented with the earlier split on side a: side b is the one to drop.
        if split_rank(pair.split_a) < split_rank(pair.split_b) and pair.sample_id_b not in reasons:
            reasons[pair.sample_id_b] = f"{pair.kind.replace('_', '-')} of {pair.split_a} sample {pair.path_a} ({pair.signal})"
            kinds[pair.sample_id_b] = pair.kind
    return pd.DataFrame({
        "sample_id": evaluation["sample_id"].to_numpy(),
        "split": evaluation["split"].to_numpy(),
        "drop": evaluation["sample_id"].isin(reasons).to_numpy(),
        "kind": [kinds.get(s, "") for s in evaluation["sample_id"]],
        "reason": [reasons.get(s, "") for s in evaluation["sample_id"]],
    }, columns=LEAK_FREE_COLUMNS)


def leak_free_ids(report_dir: Path | str) -> set[str] | None:
    """sample_ids to DROP for a leak-free evaluation, or None when the audit has not run.

    `report_dir` is reports/<dataset> (or its leakage/ folder).
    """
    report_dir = Path(report_dir)
    for candidate in (report_dir / "leakage" / LEAK_FREE_FILE, report_dir / LEAK_FREE_FILE):
        if candidate.is_file():
            frame = pd.read_csv(candidate, dtype={"sample_id": str, "split": str, "reason": str})
            drop = frame["drop"].astype(str).str.lower() == "true"
            return set(frame.loc[drop, "sample_id"])
    return None
