"""Every setting of a training run, resolved in one place and written into model.json."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_ARCH = "convnext_tiny"
OFFLINE_PRETRAINED_ARCH = "tf_efficientnet_lite0"
RESIZE_METHODS = ("squish", "crop", "pad")
NORM_STATISTICS = ("batch", "fixed-stages", "pretrained")  # see training.layer_freeze


@dataclass
class AugmentConfig:
    """The augmentations the original project tried (rotation, zoom) plus a random resized crop.

    `max_rotate` 0 and `min_zoom` == `max_zoom` == 1 turn the affine part off; `crop_min_scale`
    0 turns the random resized crop off (a plain resize is used instead).
    """

    max_rotate: float = 15.0
    min_zoom: float = 0.8
    max_zoom: float = 1.2
    crop_min_scale: float = 0.75
    flip: bool = True
    max_lighting: float = 0.2
    degrade: float = 0.0  # probability of a blur or heavy-JPEG copy in training (training.degrade); 0: off
    backdrop: float = 0.0  # probability of a plain-background photo put on a made backdrop (training.backdrop); 0: off

    def __post_init__(self) -> None:
        for name in ("degrade", "backdrop"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1] (a probability), not {getattr(self, name)}")
        if not 0 <= self.crop_min_scale <= 1:
            raise ValueError(f"crop_min_scale must be in [0, 1] (a share of the area), not {self.crop_min_scale}")

    def enabled(self) -> bool:
        return bool(self.max_rotate or self.min_zoom != 1 or self.max_zoom != 1 or self.flip or self.max_lighting
                    or self.degrade or self.backdrop)


@dataclass
class TrainConfig:
    arch: str = DEFAULT_ARCH
    weights: Path | None = None  # a local weights file (state dict) for `arch`
    # True: pretrained weights required; False: random initialisation; None: pretrained where
    # weights can be found (file, hub, packaged lite0), random initialisation otherwise.
    pretrained: bool | None = None
    image_size: int = 224
    resize_method: str = "squish"
    epochs: int = 5  # epochs with the whole network trainable
    frozen_epochs: int = 1  # epochs training the head only (pretrained weights only)
    lr: float = 2e-3
    lr_mult: float = 100.0  # discriminative rates after unfreezing: the earliest layers get lr / lr_mult
    batch_size: int = 32
    weight_decay: float | None = None  # fastai's default when None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # pretrained only: the stem and this many first stages keep their weights in both phases,
    # batch norm included (training.layer_freeze: a shorter backward pass)
    frozen_stages: int = 0
    # pretrained only: which of the body's batch-norm layers keep their pretrained running statistics
    # in training (training.layer_freeze.NORM_STATISTICS): "fixed-stages" (those of the fixed stages),
    # "pretrained" (all of them) or "batch" (none: PyTorch's default, this project's before 2026-12-03)
    norm_statistics: str = "fixed-stages"
    # > 0: the unfrozen epochs also keep an exponential moving average of the weights spanning about
    # this many epochs, which validation and the exported model use (training.weight_average)
    average_epochs: float = 0.0
    # > 0: cross-entropy against labels smoothed by this much (fastai's LabelSmoothingCrossEntropy)
    label_smoothing: float = 0.0
    select_best: bool = True  # keep the epoch with the lowest validation error (SaveModelCallback)
    # > 0: minutes for the whole fit; the unfrozen epochs are cut to what fits on this machine
    # (training.time_budget), never raised above `epochs`. 0: exactly `epochs`.
    time_budget: float = 0.0
    # > 0: a smaller size for the first unfrozen epochs (progressive resizing): the first `low_res_epochs`
    # train at it, or with a time budget as many as the budget needs to keep the recipe's epochs
    # (training.time_budget); the last epochs are always at image_size
    low_res_size: int = 0
    low_res_epochs: int = 0
    seed: int = 42
    threads: int = 0  # torch threads; 0: every core this process may use
    # The split monitored during training and used to keep the best epoch: "auto" is the split named
    # valid/validation/val when present, else "none" (no validation, the last epoch is kept).
    valid_split: str = "auto"
    mixed_precision: bool = True  # only ever used on a GPU

    def __post_init__(self) -> None:
        if self.resize_method not in RESIZE_METHODS:
            raise ValueError(f"resize_method must be one of {RESIZE_METHODS}, not {self.resize_method!r}")
        if self.image_size < 32:
            raise ValueError(f"image_size must be at least 32 pixels, not {self.image_size}")
        if self.epochs < 0 or self.frozen_epochs < 0:
            raise ValueError("epochs and frozen_epochs must not be negative")
        if self.frozen_stages < 0:
            raise ValueError(f"frozen_stages must not be negative, not {self.frozen_stages}")
        if self.norm_statistics not in NORM_STATISTICS:
            raise ValueError(f"norm_statistics must be one of {NORM_STATISTICS}, not {self.norm_statistics!r}")
        if self.average_epochs < 0:
            raise ValueError(f"average_epochs must not be negative, not {self.average_epochs}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), not {self.label_smoothing}")
        if self.time_budget < 0:
            raise ValueError(f"time_budget must not be negative, not {self.time_budget}")
        if self.low_res_size and not 32 <= self.low_res_size < self.image_size:
            raise ValueError(f"low_res_size must be at least 32 and below image_size ({self.image_size}), "
                             f"not {self.low_res_size}")
        if not 0 <= self.low_res_epochs <= self.epochs or (self.low_res_epochs and not self.low_res_size):
            raise ValueError(f"low_res_epochs must be within [0, epochs] and needs a low_res_size, "
                             f"not {self.low_res_epochs}")
        if self.lr_mult < 1:
            raise ValueError(f"lr_mult must be at least 1, not {self.lr_mult}")

    def resolved_threads(self) -> int:
        if self.threads > 0:
            return self.threads
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["weights"] = str(self.weights) if self.weights else None
        return data
