"""Where the real shoes images are, and small copies of them for fast tests.

Kept out of conftest.py so that tests can import it: importing conftest a second time (as
tests.conftest) would run its set-up again and point FiftyOne at another database folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHOES_ROOT = Path(os.environ.get("CURATION_SHOES_DIR", PROJECT_ROOT.parent / "shared" / "datasets" / "shoes"))


def copy_subset(source: Path, target: Path, per_class: dict[str, int]) -> Path:
    """Copy the first `per_class[split]` images of every class of each split (sorted by name)."""
    for split, count in per_class.items():
        for class_dir in sorted((source / split).iterdir()):
            files = sorted(class_dir.iterdir(), key=lambda p: int(p.stem) if p.stem.isdigit() else p.stem)[:count]
            (target / split / class_dir.name).mkdir(parents=True, exist_ok=True)
            for file in files:
                shutil.copyfile(file, target / split / class_dir.name / file.name)
    return target
