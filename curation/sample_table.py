"""The sample table: one row per file of a dataset, the spine every stage joins to by sample id.

Columns (see SAMPLE_COLUMNS): a stable sample id, the path relative to the dataset root, split,
label, size in bytes, sha256 of the file, a hash of the decoded pixels, width, height, the real
format (from the content), mode, frame count, EXIF orientation, and load_error ("" when fine).
Per-image work is cached by content (see curation.cache), so scanning an unchanged dataset again
decodes nothing.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from curation.atomic_files import atomic_path
from curation.cache import ContentCache
from curation.errors import CurationError
from curation.image_probe import DEFAULT_MAX_PIXELS, PROBE_VERSION, file_sha256, probe_image
from curation.layout import SampleEntry
from curation.progress import progress

SAMPLE_COLUMNS = [
    "sample_id", "path", "split", "label", "size_bytes", "sha256", "pixel_hash",
    "width", "height", "format", "mode", "n_frames", "exif_orientation", "load_error",
]
PROBE_KIND = "probe"


@dataclass
class ScanStats:
    """How much image work a scan did: `probed` images were decoded, `cached` were not."""

    files: int = 0
    probed: int = 0
    cached: int = 0
    unreadable_files: list[str] = field(default_factory=list)


def sample_id_for(path: str) -> str:
    """A stable id from the path relative to the dataset root (file names repeat across classes)."""
    return hashlib.sha256(path.encode()).hexdigest()[:16]


def _check_unique(entries: list[SampleEntry]) -> None:
    seen: set[str] = set()
    for entry in entries:
        if entry.path in seen:
            raise CurationError(f"the path {entry.path!r} is listed twice; each file is one sample")
        seen.add(entry.path)


def _hash_files(root: Path, entries: list[SampleEntry], workers: int, stats: ScanStats) -> list[tuple[str | None, int]]:
    def hash_one(entry: SampleEntry) -> tuple[str | None, int]:
        try:
            return file_sha256(root / entry.path)
        except OSError as exc:  # unreadable file (permissions, vanished): a row, not a crash
            stats.unreadable_files.append(f"{entry.path}: {exc}")
            return None, 0

    with ThreadPoolExecutor(max(1, workers)) as pool:
        return list(progress(pool.map(hash_one, entries), total=len(entries), desc="hashing files"))


def build_sample_table(
    root: Path,
    entries: list[SampleEntry],
    *,
    cache: ContentCache,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int = 2,
) -> tuple[pd.DataFrame, ScanStats]:
    """One row per entry, probing only images whose content is not in the cache yet."""
    _check_unique(entries)
    stats = ScanStats(files=len(entries))
    hashes = _hash_files(root, entries, workers, stats)
    params = {"version": PROBE_VERSION, "max_pixels": max_pixels}
    known = cache.get_many(PROBE_KIND, params, [sha for sha, _ in hashes if sha])
    to_probe = {sha: entry for entry, (sha, _) in zip(entries, hashes) if sha and sha not in known}

    def probe_one(item: tuple[str, SampleEntry]) -> tuple[str, dict]:
        sha, entry = item
        return sha, probe_image(root / entry.path, max_pixels=max_pixels)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        fresh = dict(progress(pool.map(probe_one, to_probe.items()), total=len(to_probe), desc="probing images"))
    cache.put_many(PROBE_KIND, params, fresh)
    known.update(fresh)
    stats.probed = len(fresh)
    stats.cached = len(entries) - len(fresh)

    rows = [_row(entry, sha, size, known.get(sha)) for entry, (sha, size) in zip(entries, hashes)]
    return _typed(pd.DataFrame(rows, columns=SAMPLE_COLUMNS)), stats


def _row(entry: SampleEntry, sha: str | None, size: int, probe: dict | None) -> dict:
    row = {"sample_id": sample_id_for(entry.path), "path": entry.path, "split": entry.split,
           "label": entry.label, "size_bytes": size, "sha256": sha}
    if probe is None:
        row["load_error"] = "unreadable file: could not be opened for reading"
        return row
    row.update(probe)
    return row


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    for column in ("width", "height", "n_frames", "exif_orientation"):
        table[column] = table[column].astype("Int64")
    table["size_bytes"] = table["size_bytes"].astype("int64")
    for column in ("sample_id", "path", "split", "label", "sha256", "pixel_hash", "format", "mode", "load_error"):
        table[column] = table[column].astype("string")
    table["load_error"] = table["load_error"].fillna("")
    return table


def write_sample_table(table: pd.DataFrame, path: Path) -> Path:
    """Write the table as Parquet atomically (a temporary file renamed into place)."""
    with atomic_path(path) as temporary:
        table.to_parquet(temporary, index=False)
    return path


def read_sample_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise CurationError(f"no sample table at {path}: run `python -m curation.scan` first")
    return pd.read_parquet(path)
