"""Exact copies from the sample table alone: the same file bytes, or the same decoded pixels
(a copy re-saved with other metadata, or losslessly in another format). No image is read."""

from __future__ import annotations

import itertools

import pandas as pd

MAX_PAIRS_PER_GROUP = 2_000  # a picture copied 60+ times: pair each copy with the first instead


def exact_pairs(table: pd.DataFrame) -> pd.DataFrame:
    """Rows (a, b, signal) of table positions a < b with equal sha256 ('file') or pixel_hash ('pixels')."""
    rows: list[tuple[int, int, str]] = []
    readable = table["load_error"] == ""
    for column, signal, mask in (("sha256", "file", table["sha256"] != ""),
                                 ("pixel_hash", "pixels", readable & (table["pixel_hash"] != ""))):
        positions = pd.Series(range(len(table)), index=table.index)[mask.to_numpy()]
        keys = table.loc[mask, column]
        for _, group in positions.groupby(keys.to_numpy()):
            members = sorted(group.tolist())
            if len(members) < 2:
                continue
            rows.extend((a, b, signal) for a, b in _group_pairs(members))
    frame = pd.DataFrame(rows, columns=["a", "b", "signal"])
    # Same file bytes implies same pixels: keep the stronger signal once per pair.
    return frame.drop_duplicates(["a", "b"], keep="first").reset_index(drop=True)


def _group_pairs(members: list[int]):
    if len(members) * (len(members) - 1) // 2 <= MAX_PAIRS_PER_GROUP:
        return itertools.combinations(members, 2)
    return ((members[0], other) for other in members[1:])
