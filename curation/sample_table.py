"""The sample table: one row per file of a dataset, the spine every stage joins to by sample id.

Columns (see SAMPLE_COLUMNS): a stable sample id, the path relative to the dataset root, split,
label, size in bytes, sha256 of the file, a hash of the decoded pixels, width, height, the real
format (from the content), mode, frame count, EXIF orientation, and load_error ("" when fine).
Per-image work is cached by content (see curation.cache), so scanning an unchanged dataset again
decodes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pandas as pd

from curation.atomic_files import atomic_path
from curation.cache import ContentCache
from curation.engine import current_engine, per_image
from curation.errors import CurationError
from curation.image_probe import DEFAULT_MAX_PIXELS, PROBE_VERSION, file_sha256, probe_image
from curation.layout import SampleEntry

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


def _hash_one(path: Path) -> dict:
    try:
        sha, size = file_sha256(path)
        return {"sha256": sha, "size": size}
    except OSError as exc:  # unreadable file (permissions, vanished): a row, not a crash
        return {"error": str(exc)}


def _probe_one(path: Path, max_pixels: int) -> dict:
    return probe_image(path, max_pixels=max_pixels)


def _hash_files(root: Path, entries: list[SampleEntry], workers: int, stats: ScanStats) -> list[tuple[str | None, int]]:
    task = per_image(_hash_one, desc="hashing files", fmt="json")
    paths = [entry.path for entry in entries]
    found = current_engine().map_images(task, root, paths, paths, workers=workers)
    hashes = []
    for path in paths:
        if "sha256" in found[path]:
            hashes.append((found[path]["sha256"], found[path]["size"]))
        else:
            stats.unreadable_files.append(f"{path}: {found[path]['error']}")
            hashes.append((None, 0))
    return hashes


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
    to_probe = {sha: entry.path for entry, (sha, _) in zip(entries, hashes) if sha and sha not in known}
    task = per_image(_probe_one, desc="probing images", fmt="json", max_pixels=max_pixels)
    fresh = current_engine().map_images(task, root, list(to_probe), list(to_probe.values()), workers=workers,
                                        sink=partial(cache.put_many, PROBE_KIND, params))
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
