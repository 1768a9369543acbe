"""Dataset descriptors (datasets/<name>.toml) and resolution of a dataset's root folder."""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from curation.errors import CurationError, DatasetNotFound

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DESCRIPTOR_DIR = PROJECT_ROOT / "datasets"


@dataclass(frozen=True)
class DatasetDescriptor:
    """What a known dataset holds and where it comes from."""

    name: str
    title: str = ""
    classes: tuple[str, ...] = ()
    image_size: tuple[int, int] | None = None
    expected_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    kaggle: str | None = None
    kaggle_subdir: str | None = None

    def expected_total(self) -> int:
        return sum(sum(per_class.values()) for per_class in self.expected_counts.values())


@dataclass(frozen=True)
class ResolvedDataset:
    """A dataset root on disk, with its name and descriptor (None for an unknown folder)."""

    name: str
    root: Path
    descriptor: DatasetDescriptor | None
    how: str  # which rule found it: "explicit path", "environment", "local folder", "download"


def list_descriptors(directory: Path = DESCRIPTOR_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.toml"))


def load_descriptor(name: str, directory: Path = DESCRIPTOR_DIR) -> DatasetDescriptor | None:
    path = directory / f"{name}.toml"
    if not path.is_file():
        return None
    raw = tomllib.loads(path.read_text())
    source = raw.get("source", {})
    size = raw.get("image_size")
    return DatasetDescriptor(
        name=raw.get("name", name),
        title=raw.get("title", ""),
        classes=tuple(raw.get("classes", ())),
        image_size=tuple(size) if size else None,
        expected_counts={s: dict(c) for s, c in raw.get("expected_counts", {}).items()},
        kaggle=source.get("kaggle"),
        kaggle_subdir=source.get("subdir"),
    )


def env_var_for(name: str) -> str:
    return f"CURATION_{re.sub(r'[^A-Za-z0-9]', '_', name).upper()}_DIR"


def _looks_like_dataset(root: Path) -> bool:
    return root.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir())


def resolve_dataset(
    data: str | os.PathLike,
    *,
    descriptor_dir: Path = DESCRIPTOR_DIR,
    allow_download: bool = True,
) -> ResolvedDataset:
    """Find a dataset's root from a path or a known name.

    Order: an explicit existing path; the environment variable CURATION_<NAME>_DIR; the local
    folder datasets/<name>/; a kagglehub download. Raises DatasetNotFound naming every place tried.
    """
    as_path = Path(data).expanduser()
    if as_path.is_dir():
        name = as_path.resolve().name
        return ResolvedDataset(name, as_path.resolve(), load_descriptor(name, descriptor_dir), "explicit path")
    name = str(data)
    descriptor = load_descriptor(name, descriptor_dir)
    tried = [f"explicit path {as_path} (not a folder)"]

    env_name = env_var_for(name)
    env_value = os.environ.get(env_name)
    if env_value and _looks_like_dataset(Path(env_value)):
        return ResolvedDataset(name, Path(env_value).resolve(), descriptor, "environment")
    tried.append(f"${env_name} ({'unset' if not env_value else env_value + ' is not a dataset folder'})")

    local = descriptor_dir / name
    if _looks_like_dataset(local):
        return ResolvedDataset(name, local.resolve(), descriptor, "local folder")
    tried.append(f"local folder {local} (missing or empty)")

    if descriptor is None:
        known = ", ".join(list_descriptors(descriptor_dir)) or "none"
        tried.append(f"download (no descriptor datasets/{name}.toml; known datasets: {known})")
    elif not descriptor.kaggle:
        tried.append("download (the descriptor names no Kaggle source)")
    elif not allow_download:
        tried.append("download (disabled)")
    else:
        try:
            return ResolvedDataset(name, _download_kaggle(descriptor, local), descriptor, "download")
        except Exception as exc:  # any failure of the optional download is one more place tried
            tried.append(f"download of Kaggle dataset {descriptor.kaggle} ({type(exc).__name__}: {exc})")
    raise DatasetNotFound(f"dataset {name!r} not found. Tried:\n  - " + "\n  - ".join(tried))


def _download_kaggle(descriptor: DatasetDescriptor, target: Path) -> Path:
    try:
        import kagglehub
    except ImportError as exc:
        raise CurationError("kagglehub is not installed (pip install kagglehub)") from exc
    downloaded = Path(kagglehub.dataset_download(descriptor.kaggle))
    source = downloaded / descriptor.kaggle_subdir if descriptor.kaggle_subdir else downloaded
    if not _looks_like_dataset(source):
        raise CurationError(f"the download at {source} holds no split folders")
    shutil.copytree(source, target, dirs_exist_ok=True)
    return target.resolve()
