"""A fastai learner on a timm architecture, its weights from the shared model loader, and fitting.

fastai's own `pretrained=True` would download from the hub; here weights come from
`curation.models.load_model` (a local file, the hub, or the packaged lite0) and are copied into
the body (`learn.model[0].model`). Because fastai then adds no Normalize and does not freeze,
`training.data` adds Normalize with the backbone's statistics and `fit_learner` freezes the body
for the frozen epochs itself.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from curation.cache import ContentCache
from curation.errors import CurationError, WeightsNotFound
from training.config import TrainConfig
from training.data import class_names, make_dataloaders, resized_images
from training.layer_freeze import freeze_early_stages, keep_norm_statistics_callback
from training.time_budget import epochs_within, step_seconds
from training.weight_average import weight_average_callback

log = logging.getLogger(__name__)
# The step probe times forward and backward, not the optimiser's update of the weights the unfreezing made
# trainable, and real unfrozen epochs ran longer than the estimate on every host measured (an AVX2-only
# EPYC: 52 s estimated, 58 s median; AVX-512: 44 s against 43-56 s; bench/RESULTS.md 2026-12-06, -07):
# the budget counts a tenth more per epoch.
UNTIMED_STEP_SHARE = 1.1
BEST_CHECKPOINT = "best"


@dataclass
class Backbone:
    state: dict | None  # the backbone's state dict, None for random initialisation
    source: str  # "file:<path>", "hub", "packaged:...", or "none"
    mean: tuple[float, ...]
    std: tuple[float, ...]
    tried: list[str] = field(default_factory=list)


@dataclass
class FitResult:
    learn: Any  # fastai Learner, best (or last) epoch loaded
    classes: list[str]
    backbone: Backbone
    history: list[dict]  # one row per epoch: phase, train_loss, valid_loss, error_rate, accuracy, seconds
    selected_epoch: int | None  # index into history of the weights kept (None: the last)
    seconds: float
    device: str
    schedule: dict | None = None  # the time budget's decision (training.time_budget), when one was set


def resolve_backbone(config: TrainConfig) -> Backbone:
    """Weights for `config.arch`: required when pretrained is True, best effort when None (auto)."""
    from curation.models import load_model

    if config.pretrained is False:
        loaded = load_model(config.arch, pretrained=False)
        return Backbone(None, "none", tuple(loaded.data_config["mean"]), tuple(loaded.data_config["std"]))
    try:
        loaded = load_model(config.arch, weights=config.weights, pretrained=True)
    except WeightsNotFound as exc:
        if config.pretrained or config.weights is not None:
            raise
        log.warning("no pretrained weights for %s, training from random initialisation:\n%s", config.arch, exc)
        random = load_model(config.arch, pretrained=False)
        return Backbone(None, "none", tuple(random.data_config["mean"]), tuple(random.data_config["std"]),
                        tried=str(exc).splitlines()[1:])
    return Backbone(loaded.model.state_dict(), loaded.source, tuple(loaded.data_config["mean"]),
                    tuple(loaded.data_config["std"]), loaded.tried)


def load_backbone_state(body, state: dict) -> None:
    """Copy weights into fastai's body (a timm model built with num_classes=0): all but the classifier."""
    own = body.state_dict()
    leftover = [k for k in state if k not in own]
    classifier = body.default_cfg.get("classifier", "classifier")
    if any(not k.startswith(classifier) for k in leftover):
        raise CurationError(f"weights do not fit the architecture: unexpected keys {leftover[:3]}")
    body.load_state_dict({k: v for k, v in state.items() if k in own}, strict=True)


def build_learner(dls, classes: list[str], config: TrainConfig, backbone: Backbone, out_dir: Path):
    from fastai.losses import CrossEntropyLossFlat, LabelSmoothingCrossEntropyFlat
    from fastai.metrics import accuracy, error_rate
    from fastai.vision.learner import vision_learner

    loss = (LabelSmoothingCrossEntropyFlat(eps=config.label_smoothing) if config.label_smoothing
            else CrossEntropyLossFlat())
    learn = vision_learner(dls, config.arch, pretrained=False, normalize=False, n_out=len(classes),
                           loss_func=loss, metrics=[error_rate, accuracy],
                           path=out_dir, model_dir="checkpoints", wd=config.weight_decay)
    if backbone.state is not None:
        load_backbone_state(learn.model[0].model, backbone.state)
    if _on_gpu() and config.mixed_precision:
        import fastai.callback.fp16  # noqa: F401 - adds Learner.to_fp16

        learn.to_fp16()
    if os.environ.get("CURATION_PROGRESS", "1") == "0" or not sys.stderr.isatty():
        from fastai.callback.progress import ProgressCallback

        learn.remove_cb(ProgressCallback)  # epoch lines come from EpochLog instead
        learn.logger = _quiet  # the Recorder would print raw value lists to stdout
    return learn


def _quiet(*_args) -> None:
    return None


def _on_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _channels_last_callback():
    from fastai.callback.core import Callback

    class ChannelsLast(Callback):
        """Model and image batches in channels-last memory order. On a CPU, oneDNN's depthwise and
        pointwise convolutions run about 2.5x faster that way (lite0 at 224 px, batch 16, 2 threads:
        17 against 7 images/s for a training step); fastai's own ChannelsLast needs mixed precision."""

        order = -1

        def before_fit(self):
            import torch

            self.learn.model.to(memory_format=torch.channels_last)

        def before_batch(self):
            import torch

            self.learn.xb = tuple(x.contiguous(memory_format=torch.channels_last) if getattr(x, "ndim", 0) == 4 else x
                                  for x in self.learn.xb)

    return ChannelsLast


def _epoch_log_callback(history: list[dict], total_epochs: int):
    from fastai.callback.core import Callback

    class EpochLog(Callback):
        """Records each epoch's losses, metrics and wall time, and logs one line per epoch."""

        order = 70  # after the Recorder has the epoch's values

        def __init__(self, phase: str):
            self.phase = phase

        def before_epoch(self):
            self.started, self.cpu_started = time.perf_counter(), time.process_time()
            self.size = None

        def after_batch(self):
            if self.training and self.size is None:  # the size this epoch trains at (progressive resizing)
                self.size = int(self.xb[0].shape[-1])

        def after_epoch(self):
            names = [n for n in self.recorder.metric_names if n not in ("epoch", "time")]
            values = dict(zip(names, self.recorder.log[1 : 1 + len(names)]))
            # CPU seconds beside wall seconds: on a shared machine the wall clock measures the neighbours too
            row = {"epoch": len(history) + 1, "phase": self.phase, "size": self.size,
                   "seconds": round(time.perf_counter() - self.started, 2),
                   "cpu_seconds": round(time.process_time() - self.cpu_started, 2),
                   **{k: (float(v) if v is not None else None) for k, v in values.items()}}
            history.append(row)
            shown = "  ".join(f"{k} {v:.4f}" for k, v in row.items() if isinstance(v, float) and "seconds" not in k)
            log.info("epoch %d/%d (%s)  %s  %.0f s (%.0f s CPU)", row["epoch"], total_epochs, self.phase, shown,
                     row["seconds"], row["cpu_seconds"])

    return EpochLog


def fit_learner(
    train_rows: pd.DataFrame,
    valid_rows: pd.DataFrame,
    root: Path,
    config: TrainConfig,
    out_dir: Path,
    *,
    cache: ContentCache,
    backbone: Backbone | None = None,
    classes: list[str] | None = None,
) -> FitResult:
    """Train on `train_rows`, monitor `valid_rows` (may be empty), keep the best epoch by error rate."""
    import fastai.callback.schedule  # noqa: F401 - adds Learner.fit_one_cycle
    import numpy as np
    import torch
    from fastai.callback.tracker import SaveModelCallback
    from fastai.torch_core import set_seed

    torch.set_num_threads(config.resolved_threads())
    set_seed(config.seed, reproducible=True)
    backbone = backbone or resolve_backbone(config)
    classes = classes or class_names(train_rows)
    images = resized_images(pd.concat([train_rows, valid_rows]), root, cache=cache, size=config.image_size)
    train_rows = _with_image(train_rows, images, "train")
    valid_rows = _with_image(valid_rows, images, "validation")
    dls = make_dataloaders(train_rows, valid_rows, images, classes, config, mean=backbone.mean, std=backbone.std)
    low_dls = _smaller_training_loaders(dls, train_rows, valid_rows, images, classes, config, backbone)
    learn = build_learner(dls, classes, config, backbone, out_dir)

    history: list[dict] = []
    pretrained = backbone.state is not None
    frozen = config.frozen_epochs if pretrained else 0
    EpochLog = _epoch_log_callback(history, frozen + config.epochs)
    # passed per fit, as EpochLog: a local class does not pickle (export would fail on it)
    per_fit = [_channels_last_callback()()]
    if pretrained:  # random initial statistics are no statistics to keep
        per_fit.append(keep_norm_statistics_callback(config.norm_statistics))
    select = config.select_best and len(valid_rows) > 0
    tracker = SaveModelCallback(monitor="error_rate", comp=np.less, fname=BEST_CHECKPOINT, reset_on_fit=False)
    started = time.perf_counter()
    epochs, low_res_epochs, schedule, frozen_step = config.epochs, config.low_res_epochs, None, None
    if frozen:
        learn.freeze()
        _keep_early_stages(learn, config)  # fastai's freeze trains batch norm everywhere; these keep theirs
        learn.fit_one_cycle(frozen, slice(config.lr), pct_start=0.99,
                            cbs=[*per_fit, EpochLog("frozen"), *([tracker] if select else [])])
        if config.time_budget and epochs:
            frozen_step = step_seconds(learn)
    if epochs:
        learn.unfreeze()
        if pretrained:
            _keep_early_stages(learn, config)
        if config.time_budget:
            schedule = _budgeted_schedule(learn, config, history, frozen_step, time.perf_counter() - started, low_dls)
            epochs, low_res_epochs = schedule.epochs, schedule.low_res_epochs
            log.info("time budget %.1f min: %s", config.time_budget, schedule.reason)
        lr = slice(config.lr / 2 / config.lr_mult, config.lr / 2) if pretrained else config.lr
        averaging = [weight_average_callback(config.average_epochs)] if config.average_epochs else []
        phase = EpochLog("unfrozen" if pretrained else "scratch")
        resizing = [_resolution_steps_callback(low_dls, dls, low_res_epochs)()] if low_res_epochs else []
        learn.fit_one_cycle(epochs, lr, cbs=[*per_fit, *resizing, *averaging, phase, *([tracker] if select else [])])
    seconds = time.perf_counter() - started
    selected = _selected_epoch(history) if select else None
    _remove_checkpoints(out_dir / "checkpoints")
    if _on_gpu():
        learn.to_fp32()  # an exported model should load anywhere
    return FitResult(learn, classes, backbone, history, selected, seconds, "cuda" if _on_gpu() else "cpu",
                     schedule.to_dict() if schedule else None)


def _budgeted_schedule(learn, config: TrainConfig, history: list[dict], frozen_step: float | None, spent_s: float,
                       low_dls=None):
    """The unfrozen epochs that fit: the frozen epoch's time scaled by what an unfrozen step costs
    against a frozen one; without a frozen epoch, the unfrozen step times the batches, plus a tenth
    for validation. With `low_dls`, where the recipe does not fit, an epoch at the smaller size is the
    same epoch scaled by what a step there costs."""
    unfrozen_step = step_seconds(learn)
    if frozen_step and history:
        epoch_s = history[-1]["seconds"] * unfrozen_step / frozen_step * UNTIMED_STEP_SHARE
    else:
        epoch_s = unfrozen_step * len(learn.dls.train) * 1.1 * UNTIMED_STEP_SHARE
    full_size = epochs_within(config.time_budget * 60, spent_s, epoch_s, config.epochs)
    if low_dls is None or unfrozen_step <= 0 or full_size.epochs == config.epochs:
        return full_size  # the smaller size is probed only where the recipe does not fit at full size
    full_dls, learn.dls = learn.dls, low_dls
    try:
        low_res_epoch_s = epoch_s * step_seconds(learn) / unfrozen_step
    finally:
        learn.dls = full_dls
    return epochs_within(config.time_budget * 60, spent_s, epoch_s, config.epochs, low_res_epoch_s=low_res_epoch_s,
                         low_res_size=config.low_res_size)


def _smaller_training_loaders(dls, train_rows, valid_rows, images, classes, config: TrainConfig, backbone):
    """For progressive resizing: the same images through the same transforms, cropped to low_res_size for
    training, validated at full size as every other epoch is (None without a low_res_size)."""
    if not config.low_res_size:
        return None
    from fastai.data.core import DataLoaders

    low_config = replace(config, image_size=config.low_res_size, low_res_size=0, low_res_epochs=0)
    low = make_dataloaders(train_rows, valid_rows, images, classes, low_config, mean=backbone.mean, std=backbone.std)
    return DataLoaders(low.train, dls.valid, device=dls.device)


def _resolution_steps_callback(low_dls, full_dls, low_res_epochs: int):
    from fastai.callback.core import Callback

    class ResolutionSteps(Callback):
        """The first `low_res_epochs` epochs of the fit on `low_dls`, the rest on `full_dls` (the learner's
        own, which it keeps after the fit: export and evaluation see the full size)."""

        order = -5  # before the epoch's loader is taken

        def before_epoch(self):
            self.learn.dls = low_dls if self.epoch < low_res_epochs else full_dls

        def after_fit(self):
            self.learn.dls = full_dls

    return ResolutionSteps


def _keep_early_stages(learn, config: TrainConfig) -> None:
    """Fix the body's stem and first `config.frozen_stages` stages (again after each freeze/unfreeze)."""
    fixed = freeze_early_stages(learn.model[0].model, config.frozen_stages)
    if fixed:
        log.info("stem and first %d stage(s) keep their pretrained weights (%d tensors)", config.frozen_stages,
                 len(fixed))


def _with_image(rows: pd.DataFrame, images: dict[str, bytes], what: str) -> pd.DataFrame:
    missing = ~rows["sha256"].isin(images)
    if missing.any():
        log.warning("%d %s image(s) could not be read any more and are left out: %s", int(missing.sum()), what,
                    ", ".join(rows.loc[missing, "path"].head(5)))
    return rows[~missing].reset_index(drop=True)


def _selected_epoch(history: list[dict]) -> int | None:
    """The epoch SaveModelCallback kept: the first with the lowest validation error."""
    errors = [row.get("error_rate") for row in history]
    valid = [(e, i) for i, e in enumerate(errors) if e is not None]
    return min(valid)[1] if valid else None


def _remove_checkpoints(directory: Path) -> None:
    if directory.is_dir():
        for file in directory.glob("*.pth"):
            file.unlink()
        if not any(directory.iterdir()):
            directory.rmdir()
