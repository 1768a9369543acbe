"""Writing a trained model: the fastai export (model.pkl) and its metadata (model.json).

model.json says what the model is and what it learnt from, so a number quoted from it can be
traced: architecture, weights source, classes, image size, normalisation, a hash of the training
data, the seed and every setting, the per-epoch history and the selected epoch. model.pkl is a
pickle: `load_learner` runs code from it, so only load files you made or trust.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import pandas as pd

from curation.atomic_files import atomic_path
from curation.errors import CurationError
from curation.report_files import write_json
from training.config import TrainConfig
from training.data import training_data_hash
from training.learner import FitResult

MODEL_FILE = "model.pkl"
METADATA_FILE = "model.json"
SCHEMA_VERSION = 1


def training_dir(report_dir: Path) -> Path:
    return report_dir / "training"


def model_metadata(fit: FitResult, config: TrainConfig, train_rows: pd.DataFrame, valid_rows: pd.DataFrame,
                   *, dataset: str, excluded: pd.DataFrame) -> dict[str, Any]:
    import fastai
    import timm
    import torch

    selected = fit.history[fit.selected_epoch] if fit.selected_epoch is not None else (fit.history[-1] if fit.history else {})
    return {
        "schema_version": SCHEMA_VERSION,
        "dataset": dataset,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "arch": config.arch,
        "weights_source": fit.backbone.source,
        "weights_tried": fit.backbone.tried,
        "classes": fit.classes,
        "image_size": config.image_size,
        "normalization": {"mean": list(fit.backbone.mean), "std": list(fit.backbone.std)},
        "training_data": {
            "hash": training_data_hash(train_rows),
            "n_samples": int(len(train_rows)),
            "per_class": {str(k): int(v) for k, v in train_rows["label"].value_counts().sort_index().items()},
            "excluded_unreadable": list(excluded["path"].astype(str)),
        },
        "validation": {
            "split": config.valid_split,
            "n_samples": int(len(valid_rows)),
            "used_for_checkpoint_selection": fit.selected_epoch is not None,
        },
        "seed": config.seed,
        "config": config.to_dict(),
        "history": fit.history,
        "selected_epoch": None if fit.selected_epoch is None else fit.history[fit.selected_epoch]["epoch"],
        "metrics": {k: v for k, v in selected.items() if k in ("valid_loss", "error_rate", "accuracy")},
        "timing": {
            "total_seconds": round(fit.seconds, 1),
            "seconds_per_epoch": round(fit.seconds / len(fit.history), 1) if fit.history else None,
            "threads": config.resolved_threads(),
            "device": fit.device,
        },
        "schedule": fit.schedule,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "fastai": fastai.__version__,
                     "timm": timm.__version__},
    }


def export_model(fit: FitResult, metadata: dict[str, Any], out_dir: Path) -> Path:
    """Write model.pkl and model.json under `out_dir`; returns the model path."""
    with atomic_path(out_dir / MODEL_FILE) as temporary:
        fit.learn.export(temporary)
    write_json(out_dir / METADATA_FILE, metadata)
    return out_dir / MODEL_FILE


def read_metadata(out_dir: Path) -> dict[str, Any]:
    path = out_dir / METADATA_FILE
    if not path.is_file():
        raise CurationError(f"no trained model at {out_dir} (missing {METADATA_FILE}): run `python -m training.train` first")
    return json.loads(path.read_text())


def load_trained(model_dir: Path | None, report_dir: Path) -> tuple[Path, dict[str, Any], Any]:
    """The model folder (`model_dir`, or the dataset's training folder), its model.json and its learner."""
    model_dir = model_dir or training_dir(report_dir)
    return model_dir, read_metadata(model_dir), load_exported(model_dir)


def load_exported(out_dir: Path):
    """The exported learner, on the CPU unless a GPU exists. Unpickles model.pkl: trusted files only."""
    import torch
    from fastai.learner import load_learner

    path = out_dir / MODEL_FILE
    if not path.is_file():
        raise CurationError(f"no exported model at {path}: run `python -m training.train` first")
    return load_learner(path, cpu=not torch.cuda.is_available())
