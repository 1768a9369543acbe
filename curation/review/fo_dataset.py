"""Keeping one persistent FiftyOne dataset in step with the sample table.

Samples are matched by `curation_id` (the sample table's sample_id; FiftyOne reserves `sample_id`
for its own use), so a re-run adds new files, removes vanished ones and overwrites fields in
place: no sample is ever duplicated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from curation.progress import progress

KEY = "curation_id"


def open_dataset(name: str):
    import fiftyone as fo

    if fo.dataset_exists(name):
        return fo.load_dataset(name)
    dataset = fo.Dataset(name)
    dataset.persistent = True
    return dataset


def _new_sample(row, root: Path):
    import fiftyone as fo

    return fo.Sample(filepath=str((root / row.path).resolve()), **{KEY: row.sample_id},
                     tags=[row.split], ground_truth=fo.Classification(label=row.label))


def sync_samples(dataset, table: pd.DataFrame, root: Path) -> dict[str, int]:
    """Add samples for new rows, delete samples whose row vanished; returns the counts."""
    existing = dict(zip(*dataset.values([KEY, "id"]))) if len(dataset) else {}
    wanted = set(table["sample_id"])
    stale = [fo_id for key, fo_id in existing.items() if key not in wanted]
    if stale:
        dataset.delete_samples(stale)
    new_rows = table[~table["sample_id"].isin(existing)]
    if len(new_rows):
        samples = [_new_sample(row, root) for row in progress(new_rows.itertuples(), total=len(new_rows), desc="adding samples")]
        dataset.add_samples(samples, progress=False)
    return {"added": len(new_rows), "removed": len(stale), "kept": len(table) - len(new_rows)}


def set_base_fields(dataset, table: pd.DataFrame, root: Path) -> None:
    """Fields every sample has, straight from the sample table (overwritten on every run)."""
    import fiftyone as fo

    ids = table["sample_id"].tolist()
    columns = {
        "filepath": [str((root / p).resolve()) for p in table["path"]],
        "tags": [[s] for s in table["split"]],
        "split": table["split"].tolist(),
        "ground_truth": [fo.Classification(label=label) for label in table["label"]],
        "load_error": table["load_error"].tolist(),
        "sha256": table["sha256"].tolist(),
    }
    for field, values in columns.items():
        dataset.set_values(field, dict(zip(ids, values)), key_field=KEY)


def set_optional_fields(dataset, fields: pd.DataFrame, all_ids: list[str], defaults: dict[str, Any] | None = None) -> None:
    """Set each column of `fields` (indexed by sample_id); samples without a row get the default (None)."""
    defaults = defaults or {}
    for column in fields.columns:
        known = fields[column].to_dict()
        default = defaults.get(column)
        values = {key: _plain(known.get(key, default)) for key in all_ids}
        dataset.set_values(column, values, key_field=KEY)


def _plain(value: Any) -> Any:
    """numpy scalars and NaN to what MongoDB stores."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "item") and not isinstance(value, (list, dict)):
        return value.item()
    return value
