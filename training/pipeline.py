"""One training run end to end, as a library call: train the final model, export, evaluate, folds.

The CLI (`python -m training.train`) only parses options and calls `train_dataset`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from curation.cache import ContentCache
from curation.scan import ScannedDataset
from curation.errors import CurationError
from training.companion import COMPANION_FILE, save_companion, train_companion
from training.config import TrainConfig
from training.data import class_names, split_usable
from training.evaluate import Evaluation, evaluate_model
from training.export import export_model, model_metadata, training_dir
from training.folds import FoldsResult, run_folds
from training.learner import FitResult, fit_learner, resolve_backbone

log = logging.getLogger(__name__)
MIN_FIT_BUDGET = 1.0  # minutes the model's fit keeps when the companion took (nearly) all of the budget


@dataclass
class TrainingRun:
    fit: FitResult
    metadata: dict
    model_path: Path
    evaluation: Evaluation | None
    folds: FoldsResult | None
    excluded: pd.DataFrame  # rows left out because their image does not decode
    companion: dict | None = None  # the companion model's summary (images, seed, seconds) when one was trained


def resolve_valid_split(table: pd.DataFrame, requested: str) -> str:
    """'auto': the split named valid (or validation) when present, else none."""
    splits = set(table["split"].astype(str))
    if requested == "auto":
        return next((s for s in ("valid", "validation", "val") if s in splits), "none")
    if requested != "none" and requested not in splits:
        raise CurationError(f"no split named {requested!r} to validate on; splits are {sorted(splits)}")
    if requested == "train":
        raise CurationError("the validation split cannot be the train split")
    return requested


def train_dataset(scanned: ScannedDataset, config: TrainConfig, *, cache: ContentCache, folds: int = 0,
                  evaluate: bool = True, tta: int = 4, out_dir: Path | None = None,
                  companion: bool = False) -> TrainingRun:
    """Train on the train split, export to reports/<dataset>/training/, train the companion model if
    asked (training.companion: evaluated as an ensemble with the model), evaluate, then K folds if asked."""
    out_dir = out_dir or training_dir(scanned.report_dir)
    rows = split_usable(scanned.table)
    usable, excluded = rows.usable, rows.excluded
    if len(excluded):
        log.warning("%d image(s) do not decode: left out of training and of the metrics (see the integrity report): %s",
                    len(excluded), ", ".join(excluded["path"].astype(str).head(5)))
    config = replace(config, valid_split=resolve_valid_split(scanned.table, config.valid_split))
    train_rows = usable[usable["split"] == "train"]
    if train_rows.empty:
        raise CurationError(f"no usable images in a split named 'train' (splits: {sorted(scanned.table['split'].unique())})")
    valid_rows = usable[usable["split"] == config.valid_split]
    (out_dir / COMPANION_FILE).unlink(missing_ok=True)  # one trained with an earlier model is not this one's
    trained_companion = None
    if companion:  # first: with a budget, its minutes come out of the fit's
        trained_companion = train_companion(train_rows, scanned.dataset.root, class_names(train_rows), cache=cache,
                                            seed=config.seed)
        if config.time_budget:
            spent = trained_companion.summary["seconds"] / 60
            config = replace(config, time_budget=max(config.time_budget - spent, MIN_FIT_BUDGET))
    backbone = resolve_backbone(config)
    log.info("training %s with weights from %s on %d images (%s validation images), %d px, %d threads",
             config.arch, backbone.source, len(train_rows), len(valid_rows) or "no", config.image_size,
             config.resolved_threads())
    fit = fit_learner(train_rows, valid_rows, scanned.dataset.root, config, out_dir, cache=cache, backbone=backbone)
    metadata = model_metadata(fit, config, train_rows, valid_rows, dataset=scanned.name,
                              excluded=excluded[excluded["split"] == "train"])
    if trained_companion is not None:
        metadata["companion"] = trained_companion.summary
    model_path = export_model(fit, metadata, out_dir)
    if trained_companion is not None:
        save_companion(trained_companion, out_dir)
    evaluation = None
    if evaluate:
        evaluation = evaluate_model(fit.learn, metadata, scanned.table, scanned.dataset.root, cache=cache,
                                    out_dir=out_dir, report_dir=scanned.report_dir, tta=tta)
    fold_result = None
    if folds:
        # the fold models train the schedule the budget gave the main model, not a budget each
        schedule = fit.schedule or {"epochs": config.epochs, "low_res_epochs": config.low_res_epochs}
        fold_config = replace(config, time_budget=0.0, epochs=schedule["epochs"],
                              low_res_epochs=schedule["low_res_epochs"])
        fold_result = run_folds(usable, scanned.dataset.root, fold_config, folds, out_dir, cache=cache,
                                final_learn=fit.learn, backbone=backbone,
                                copy_groups=_copy_groups(scanned.table, scanned.dataset.root, cache))
    return TrainingRun(fit, metadata, model_path, evaluation, fold_result, excluded,
                       trained_companion.summary if trained_companion is not None else None)


def _copy_groups(table: pd.DataFrame, root: Path, cache: ContentCache) -> pd.Series:
    """The duplicate engine's copy groups, by sample_id (the one engine that says what is a copy)."""
    from curation.label_issues.copies import copy_group_ids, find_copy_pairs

    return pd.Series(copy_group_ids(table, find_copy_pairs(table, root, cache=cache)), index=table["sample_id"].astype(str))
