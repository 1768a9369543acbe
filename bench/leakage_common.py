"""Shared by the leakage benchmarks: the planted benchmark dataset and imagededup's baselines."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

SHOES = PROJECT.parent / "shared" / "datasets" / "shoes"
OUT = PROJECT / "bench" / "out"


def numeric_sorted(folder: Path) -> list[Path]:
    return sorted(folder.iterdir(), key=lambda p: (int(p.stem) if p.stem.isdigit() else 10**9, p.name))


def copy_dataset(source: Path, target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.txt"))
    return target


def imagededup_cnn(model_name: str = "tf_efficientnet_lite0"):
    """imagededup's CNN with our packaged lite0 (its default MobileNetV3 downloads weights)."""
    from imagededup.methods import CNN
    from imagededup.utils import CustomModel
    from timm.data import create_transform

    from curation.models import load_model

    loaded = load_model(model_name)
    loaded.model.reset_classifier(0)  # forward() then returns pooled features (batch, dim)
    transform = create_transform(**loaded.data_config)
    return CNN(verbose=False, model_config=CustomModel(name=model_name, model=loaded.model, transform=transform))


def imagededup_pairs(duplicates: dict[str, list]) -> set[tuple[str, str]]:
    """imagededup's {file: [duplicates]} as a set of sorted relative-path pairs."""
    pairs = set()
    for name, found in duplicates.items():
        for other in found:
            other = other[0] if isinstance(other, (tuple, list)) else other
            pairs.add(tuple(sorted((str(name), str(other)))))
    return pairs
