"""`python -m curation.app DATA --export DIR`: a folder that serves the same app anywhere.

DIR/
  app.py              python app.py [--host H] [--port P]
  requirements.txt    the pinned packages it needs (pip install -r requirements.txt)
  src/                this project's curation and training packages, as they are now
  data/<dataset>/     the dataset's readable images the answers point at (nearest, copies)
  reports/<dataset>/  the model (training/model.pkl, model.json, held-out predictions, companion.pt when one
                      was trained) and the slices
  cache/              the embeddings and hashes of those images, so start-up computes nothing again

model.pkl is a pickle: whoever runs the folder must trust whoever made it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from curation.errors import CurationError

ROOT = Path(__file__).resolve().parents[2]
MODEL_FILES = ("model.pkl", "model.json", "oof.parquet", "predictions.parquet", "companion.pt")
SLICE_FILES = ("slices.csv", "members.csv")
CACHED_KINDS = ("embedding", "phash")

APP_PY = '''"""The {dataset} classifier with its trust fields, exported by `python -m curation.app --export`."""
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

if __name__ == "__main__":
    from curation.app.__main__ import main
    from curation.cli import run_cli

    sys.exit(run_cli(main, [str(HERE / "data" / "{dataset}"), "--reports-dir", str(HERE / "reports"),
                            "--cache-dir", str(HERE / "cache"), *sys.argv[1:]]))
'''


def _copy_sources(target: Path) -> None:
    for package in ("curation", "training"):
        shutil.copytree(ROOT / package, target / "src" / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _copy_cache(table, cache_dir: Path | None, target: Path) -> None:
    """The cached values of the exported images, every params variant, into a fresh cache."""
    from curation.cache import ContentCache

    with ContentCache(cache_dir) as source, ContentCache(target) as fresh:
        source.copy_entries_to(fresh, kinds=CACHED_KINDS, digests=set(table["sha256"].dropna()))


def export_app(data: str, target: Path, *, reports_dir: Path, model_dir: Path | None, cache_dir: Path | None) -> Path:
    from curation.cache import ContentCache
    from curation.scan import scan_dataset

    target = Path(target).resolve()
    if target.exists() and any(target.iterdir()):
        raise CurationError(f"{target} exists and is not empty: export into a new folder")
    with ContentCache(cache_dir) as cache:
        scanned = scan_dataset(data, reports_dir=Path(reports_dir), cache=cache)
    model_dir = Path(model_dir) if model_dir else scanned.report_dir / "training"
    if not (model_dir / "model.pkl").is_file():
        raise CurationError(f"no model at {model_dir}: run `python -m curation run {data}` first")
    readable = scanned.table[(scanned.table["load_error"] == "") & ~scanned.table["split"].eq("feedback")]
    for path in readable["path"]:
        destination = target / "data" / scanned.name / path
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(scanned.dataset.root / path, destination)
    reports = target / "reports" / scanned.name
    for folder, names in ((model_dir, MODEL_FILES), (scanned.report_dir / "slices", SLICE_FILES)):
        for name in names:
            if (folder / name).is_file():
                destination = reports / ("training" if folder == model_dir else "slices") / name
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(folder / name, destination)
    _copy_cache(readable, cache_dir, target / "cache")
    _copy_sources(target)
    shutil.copyfile(ROOT / "requirements" / "base.txt", target / "requirements.txt")
    (target / "app.py").write_text(APP_PY.format(dataset=scanned.name))
    return target
