"""The scan stage: a dataset's sample table and its image integrity check.

`scan_dataset` (dataset.py) lists and probes every image once and writes reports/<dataset>/samples.parquet,
which every later stage reads; report.py writes the integrity check's findings; `python -m curation.scan`
(__main__.py) runs both. The dataset is only read, never modified.
"""

from curation.scan.dataset import ScannedDataset, scan_dataset

__all__ = ["ScannedDataset", "scan_dataset"]
