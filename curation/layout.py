"""Listing a dataset's files with their split and label, from folders or from a CSV.

Folder layout: top-level folders are splits (train, valid/val, test, test_extra, ...), the folders
below them classes, and every file below a class folder is a sample, whatever its extension: a
file that is not an image becomes a row with a load error, never a silently dropped sample.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from curation.errors import CurationError

# Files that operating systems drop into folders: not samples, never reported.
SYSTEM_FILES = {".DS_Store", "Thumbs.db", "desktop.ini"}
VALIDATION_SPLIT_NAMES = ("valid", "val", "validation")


@dataclass(frozen=True)
class SampleEntry:
    path: str  # relative to the dataset root, POSIX separators
    split: str
    label: str


def _is_listed(path: Path) -> bool:
    return not path.name.startswith(".") and path.name not in SYSTEM_FILES


def list_folder_samples(root: Path) -> list[SampleEntry]:
    """Every file under <root>/<split>/<class>/ (recursively below the class folder), sorted."""
    entries: list[SampleEntry] = []
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir() and _is_listed(p)):
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir() and _is_listed(p)):
            for file in sorted(class_dir.rglob("*")):
                if file.is_file() and _is_listed(file):
                    rel = file.relative_to(root).as_posix()
                    entries.append(SampleEntry(rel, split_dir.name, class_dir.name))
    if not entries:
        raise CurationError(
            f"{root} holds no samples: expected <split>/<class>/<image> folders "
            "(for example train/nike/1.jpg), or pass --csv with path,split,label columns"
        )
    return entries


FEEDBACK_SPLIT = "feedback"


def feedback_folder(reports_dir: Path, dataset: str) -> Path:
    """Where the app keeps corrected photos of a dataset: feedback/<dataset>/<label>/, beside reports/."""
    return Path(reports_dir).resolve().parent / "feedback" / dataset


def list_feedback_samples(folder: Path) -> list[SampleEntry]:
    """The app's corrected photos (<folder>/<label>/<image>) as the split `feedback`; absolute paths,
    because the folder lies outside the dataset, which the tool never writes into."""
    if not folder.is_dir():
        return []
    return [SampleEntry(file.resolve().as_posix(), FEEDBACK_SPLIT, class_dir.name)
            for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and _is_listed(p))
            for file in sorted(class_dir.iterdir()) if file.is_file() and _is_listed(file) and file.suffix != ".json"]


def list_csv_samples(csv_path: Path, root: Path | None = None) -> list[SampleEntry]:
    """Rows of a CSV with columns path, split, label; paths relative to `root` (default: the CSV's folder)."""
    root = root or csv_path.parent
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"path", "split", "label"} - set(reader.fieldnames or ())
        if missing:
            raise CurationError(f"{csv_path} lacks the column(s) {', '.join(sorted(missing))}")
        entries = []
        for line, row in enumerate(reader, start=2):
            if not row["path"]:
                raise CurationError(f"{csv_path}:{line}: empty path")
            path = Path(row["path"])
            if path.is_absolute() and path.is_relative_to(root):
                path = path.relative_to(root)  # an absolute path outside root stays absolute
            entries.append(SampleEntry(path.as_posix(), row["split"], row["label"]))
    return entries
