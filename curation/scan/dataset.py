"""Scanning a dataset into its sample table: the first step of every stage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from curation.cache import ContentCache
from curation.dataset_source import ResolvedDataset, resolve_dataset
from curation.image_probe import DEFAULT_MAX_PIXELS
from curation.layout import feedback_folder, list_csv_samples, list_feedback_samples, list_folder_samples
from curation.sample_table import ScanStats, build_sample_table, write_sample_table


@dataclass
class ScannedDataset:
    dataset: ResolvedDataset
    table: pd.DataFrame
    stats: ScanStats
    report_dir: Path

    @property
    def name(self) -> str:
        return self.dataset.name


def scan_dataset(
    data: str | Path,
    *,
    csv: Path | None = None,
    name: str | None = None,
    reports_dir: Path = Path("reports"),
    cache: ContentCache | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int = 2,
    feedback: bool = True,
) -> ScannedDataset:
    """Resolve, list and probe a dataset; write reports/<name>/samples.parquet. Never modifies the data.
    `feedback`: the app's corrected photos (feedback/<name>/, beside reports/) join as the split
    `feedback` when that folder exists: what the model got wrong becomes the next test split."""
    if csv is not None:
        root = Path(data) if Path(data).is_dir() else csv.parent
        from curation.dataset_source import load_descriptor

        dataset_name = name or root.resolve().name
        dataset = ResolvedDataset(dataset_name, root.resolve(), load_descriptor(dataset_name), "csv")
        entries = list_csv_samples(csv, dataset.root)
    else:
        dataset = resolve_dataset(data)
        if name:
            dataset = ResolvedDataset(name, dataset.root, dataset.descriptor, dataset.how)
        entries = list_folder_samples(dataset.root)
    if feedback:
        entries += list_feedback_samples(feedback_folder(reports_dir, dataset.name))
    cache = cache or ContentCache()
    table, stats = build_sample_table(dataset.root, entries, cache=cache, max_pixels=max_pixels, workers=workers)
    report_dir = reports_dir / dataset.name
    write_sample_table(table, report_dir / "samples.parquet")
    return ScannedDataset(dataset, table, stats, report_dir)
