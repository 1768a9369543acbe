"""K-fold cross-validation of the train split: out-of-fold probabilities and hard examples.

Each of K models trains on K-1 stratified folds of the usable train samples. The model's own
held-out fold gives out-of-sample probabilities, so every train sample is predicted exactly once
by a model that never saw it (oof.parquet: what cleanlab needs). Every fold model also predicts
every other sample (train samples it trained on, and the non-train splits), which shows which
images each model got wrong: a sample wrong for most fold models and for the final model is a
consensus hard example (the original author saw nearly all models miss the same few images).
Fold models keep their last epoch: choosing the best epoch on the held-out fold would make the
out-of-fold probabilities optimistic.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curation.atomic_files import atomic_path
from curation.cache import ContentCache
from curation.errors import CurationError
from curation.report_files import write_json
from training.config import TrainConfig
from training.data import class_names
from training.figures import plot_top_losses
from training.learner import Backbone, fit_learner, resolve_backbone
from training.oof import OOF_FILE
from training.predict import predict_rows, prediction_frame

log = logging.getLogger(__name__)
FOLD_WRONG_FILE = "fold_wrong.parquet"
HARD_EXAMPLES_FILE = "hard_examples.csv"


@dataclass
class FoldsResult:
    oof: pd.DataFrame
    fold_wrong: pd.DataFrame
    hard_examples: pd.DataFrame
    summary: dict


def assign_folds(train_rows: pd.DataFrame, k: int, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """A fold number (0..k-1) per row, stratified by label. `groups` (one id per row): copies of one
    picture (the duplicate engine's copy groups) share an id and a fold, so no fold model predicts
    an image whose copy it trained on."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if k < 2:
        raise CurationError(f"--folds needs at least 2 folds, not {k}")
    counts = train_rows["label"].value_counts()
    if counts.min() < k:
        raise CurationError(f"--folds {k} needs at least {k} train images per class; "
                            f"{counts.idxmin()!r} has {counts.min()}")
    folds = np.empty(len(train_rows), dtype=int)
    labels = train_rows["label"].astype(str)
    if groups is not None and len(np.unique(groups)) < len(groups):
        splits = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(labels, labels, groups)
    else:
        splits = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(labels, labels)
    for fold, (_, held_out) in enumerate(splits):
        folds[held_out] = fold
    return folds


def run_folds(
    usable: pd.DataFrame,
    root: Path,
    config: TrainConfig,
    k: int,
    out_dir: Path,
    *,
    cache: ContentCache,
    final_learn=None,
    backbone: Backbone | None = None,
    copy_groups: pd.Series | None = None,
) -> FoldsResult:
    """Train K fold models on the usable train rows; write oof.parquet, fold_wrong.parquet, hard examples.
    `copy_groups` (group id by sample_id) keeps copies in one fold."""
    train_rows = usable[usable["split"] == "train"].reset_index(drop=True)
    classes = class_names(train_rows)
    groups = None if copy_groups is None else train_rows["sample_id"].map(copy_groups).to_numpy()
    folds = assign_folds(train_rows, k, config.seed, groups)
    backbone = backbone or resolve_backbone(config)
    oof_parts, verdicts, fold_errors = [], [], []
    for fold in range(k):
        log.info("fold %d/%d: training on %d images, predicting %d held out", fold + 1, k,
                 int((folds != fold).sum()), int((folds == fold).sum()))
        fold_config = dataclasses.replace(config, select_best=False, seed=config.seed + fold)
        fit = fit_learner(train_rows[folds != fold], train_rows[folds == fold], root, fold_config,
                          out_dir / "folds", cache=cache, backbone=backbone, classes=classes)
        frame = _predict_all(fit.learn, usable, root, config, cache, classes)
        in_training = frame["sample_id"].isin(train_rows.loc[folds != fold, "sample_id"])
        held_out = frame["sample_id"].isin(train_rows.loc[folds == fold, "sample_id"])
        oof_parts.append(frame[held_out].assign(fold=fold))
        verdicts.append(frame.assign(fold_model=fold, in_training=in_training))
        fold_errors.append(float((~frame.loc[held_out, "correct"].astype(bool)).mean()))
    oof = _oof_table(pd.concat(oof_parts, ignore_index=True), classes)
    fold_wrong = _fold_wrong_table(pd.concat(verdicts, ignore_index=True))
    final = _predict_all(final_learn, usable, root, config, cache, classes) if final_learn is not None else None
    hard = consensus_hard_examples(fold_wrong, final, k)
    oof["consensus_hard"] = oof["sample_id"].map(hard.set_index("sample_id")["consensus"]).fillna(False).astype(bool)
    summary = {"folds": k, "oof_error": float(oof["wrong"].mean()), "fold_errors": fold_errors,
               "n_oof": int(len(oof)), "n_consensus_hard": int(hard["consensus"].sum()),
               "final_model_used": final is not None, "seed": config.seed}
    _write(out_dir, oof, fold_wrong, hard, summary, root)
    return FoldsResult(oof, fold_wrong, hard, summary)


def _predict_all(learn, rows, root, config, cache, classes) -> pd.DataFrame:
    predictions = predict_rows(learn, rows, root, cache=cache, image_size=config.image_size)
    return prediction_frame(rows, predictions, classes)


def _oof_table(frame: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    columns = ["sample_id", "label", "fold", "predicted", "loss", *[f"p_{c}" for c in classes]]
    oof = frame[columns].copy()
    oof.insert(4, "wrong", (oof["predicted"] != oof["label"]).astype(bool))
    return oof.sort_values("sample_id").reset_index(drop=True)


def _fold_wrong_table(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[frame["predicted"].notna()]
    out = frame[["sample_id", "split", "label", "path", "fold_model", "in_training", "predicted", "loss"]].copy()
    out["wrong"] = (out["predicted"] != out["label"]).astype(bool)
    return out.reset_index(drop=True)


def consensus_hard_examples(fold_wrong: pd.DataFrame, final: pd.DataFrame | None, k: int) -> pd.DataFrame:
    """Per sample: how many fold models got it wrong, whether the final model did, and the verdict.

    consensus: wrong for more than half of the fold models and (when a final model exists) for the
    final model too. Sorted with the consensus cases first, most models wrong first.
    """
    grouped = fold_wrong.groupby("sample_id", sort=False)
    hard = grouped.agg(split=("split", "first"), label=("label", "first"), path=("path", "first"),
                       n_models_wrong=("wrong", "sum"),
                       n_models=("wrong", "size"), mean_loss=("loss", "mean")).reset_index()
    wrong_guesses = fold_wrong[fold_wrong["wrong"]].groupby("sample_id")["predicted"].agg(lambda s: s.mode().iloc[0])
    hard["usual_wrong_prediction"] = hard["sample_id"].map(wrong_guesses).astype("string")
    oof_rows = fold_wrong[~fold_wrong["in_training"] & (fold_wrong["split"] == "train")].set_index("sample_id")
    hard["oof_wrong"] = hard["sample_id"].map(oof_rows["wrong"]).astype("boolean")
    majority = hard["n_models_wrong"] > k / 2
    if final is not None:
        final_wrong = final.set_index("sample_id")["correct"].map(lambda c: None if pd.isna(c) else not c)
        hard["final_wrong"] = hard["sample_id"].map(final_wrong).astype("boolean")
        hard["consensus"] = (majority & hard["final_wrong"].fillna(False)).astype(bool)
    else:
        hard["final_wrong"] = pd.array([pd.NA] * len(hard), dtype="boolean")
        hard["consensus"] = majority.astype(bool)
    return hard.sort_values(["consensus", "n_models_wrong", "mean_loss"], ascending=False).reset_index(drop=True)


def _write(out_dir: Path, oof, fold_wrong, hard, summary, root: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for frame, name in ((oof, OOF_FILE), (fold_wrong, FOLD_WRONG_FILE)):
        with atomic_path(out_dir / name) as temporary:
            frame.to_parquet(temporary, index=False)
    hard.to_csv(out_dir / HARD_EXAMPLES_FILE, index=False)
    write_json(out_dir / "folds.json", summary)
    _plot_hard_examples(hard, root, out_dir / "hard_examples.png")


def _plot_hard_examples(hard: pd.DataFrame, root: Path, path: Path) -> Path:
    shown = hard[hard["consensus"]].head(12).copy()
    shown["caption"] = [f"{r.label} -> {r.usual_wrong_prediction} ({r.split})\n{r.n_models_wrong}/{r.n_models} fold models wrong"
                        for r in shown.itertuples()]
    return plot_top_losses(shown, root, path, title=f"consensus hard examples ({len(hard[hard['consensus']])})")
