"""From the sample table to fastai DataLoaders, through a cache of resized images.

Every image is decoded and resized once per size (cache kind "resized", keyed by file content),
then kept in memory as a small JPEG: an epoch decodes thumbnails, not 240 px originals. Rows
whose image did not decode (load_error) are left out of training and listed, never dropped
silently.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from curation.cache import ContentCache
from curation.errors import CurationError
from curation.image_io import load_rgb
from curation.progress import progress
from training.config import TrainConfig

RESIZED_KIND = "resized"
RESIZED_VERSION = 1
JPEG_QUALITY = 95


@dataclass
class UsableRows:
    """The rows a stage can use and those it cannot (with the reason in load_error)."""

    usable: pd.DataFrame
    excluded: pd.DataFrame


def split_usable(table: pd.DataFrame) -> UsableRows:
    readable = table["load_error"].fillna("") == ""
    return UsableRows(table[readable].reset_index(drop=True), table[~readable].reset_index(drop=True))


def resized_params(size: int) -> dict:
    return {"version": RESIZED_VERSION, "shorter_side": size, "quality": JPEG_QUALITY}


def _resize_to_jpeg(path: Path, size: int) -> bytes:
    from PIL import Image

    image = load_rgb(path)
    scale = size / min(image.size)
    if scale < 1:  # only ever shrink: upscaling adds nothing the model's resize would not
        target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(target, Image.Resampling.BICUBIC, reducing_gap=3.0)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def resized_images(rows: pd.DataFrame, root: Path, *, cache: ContentCache, size: int) -> dict[str, bytes]:
    """sha256 -> JPEG bytes with the shorter side at most `size`, for every row that decodes.

    Only images missing from the cache are decoded. A file that changed or vanished since the scan
    is left out of the result (callers report it), not a crash.
    """
    params = resized_params(size)
    found = cache.get_many(RESIZED_KIND, params, rows["sha256"])
    missing = rows[~rows["sha256"].isin(found)].drop_duplicates("sha256")
    fresh: dict[str, bytes] = {}
    todo = list(missing.itertuples())
    for row in progress(todo, desc=f"resizing images to {size} px") if todo else ():
        try:
            fresh[row.sha256] = _resize_to_jpeg(root / row.path, size)
        except Exception:  # noqa: BLE001 - unreadable now: reported by the caller as missing
            continue
        if len(fresh) >= 200:  # write in chunks: an interrupted run keeps what it resized
            cache.put_many(RESIZED_KIND, params, fresh, fmt="bytes")
            found.update(fresh)
            fresh = {}
    cache.put_many(RESIZED_KIND, params, fresh, fmt="bytes")
    found.update(fresh)
    return found


def training_data_hash(rows: pd.DataFrame) -> str:
    """A digest of what a model learnt from: the sorted (file sha256, label) pairs."""
    lines = sorted(f"{sha}\t{label}" for sha, label in zip(rows["sha256"], rows["label"]))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def class_names(train_rows: pd.DataFrame) -> list[str]:
    classes = sorted(train_rows["label"].astype(str).unique())
    if len(classes) < 2:
        raise CurationError(f"training needs at least 2 classes in the train split, found {classes}")
    return classes


def item_transforms(config: TrainConfig) -> list:
    from fastai.vision.augment import RandomResizedCrop, Resize, ResizeMethod

    degrade = []  # whole-image changes, before the crop: a new backdrop first, then blur or JPEG
    if config.augment.backdrop > 0:
        from training.backdrop import BackdropSwap

        degrade.append(BackdropSwap(p=config.augment.backdrop))
    if config.augment.degrade > 0:
        from training.degrade import PhotoDegrade

        degrade.append(PhotoDegrade(p=config.augment.degrade))
    if config.augment.crop_min_scale > 0:
        return [*degrade, RandomResizedCrop(config.image_size, min_scale=config.augment.crop_min_scale)]
    method = {"squish": ResizeMethod.Squish, "crop": ResizeMethod.Crop, "pad": ResizeMethod.Pad}[config.resize_method]
    return [*degrade, Resize(config.image_size, method=method)]


def batch_transforms(config: TrainConfig, mean, std) -> list:
    from fastai.vision.augment import Normalize, aug_transforms

    augment = config.augment
    tfms = []
    if augment.enabled():
        tfms = aug_transforms(do_flip=augment.flip, max_rotate=augment.max_rotate, min_zoom=augment.min_zoom,
                              max_zoom=augment.max_zoom, max_lighting=augment.max_lighting, max_warp=0.0)
    # Normalize with the backbone's own statistics: fastai adds none when it did not load the weights.
    return [*tfms, Normalize.from_stats(mean, std)]


def make_dataloaders(
    train_rows: pd.DataFrame,
    valid_rows: pd.DataFrame,
    images: dict[str, bytes],
    classes: list[str],
    config: TrainConfig,
    *,
    mean,
    std,
):
    """fastai DataLoaders whose inputs are the cached JPEG bytes (PILImage.create reads bytes).

    Inputs and targets are two TfmdLists so that an exported learner's `predict` accepts a path,
    a PIL image or bytes: its input pipeline starts at PILImage.create.
    """
    from fastai.data.core import Datasets, TfmdLists
    from fastai.data.transforms import Categorize, IntToFloatTensor
    from fastai.torch_core import default_device
    from fastai.vision.augment import ToTensor
    from fastai.vision.core import PILImage

    rows = pd.concat([train_rows, valid_rows], ignore_index=True)
    splits = [list(range(len(train_rows))), list(range(len(train_rows), len(rows)))]
    xs = [images[sha] for sha in rows["sha256"]]
    ys = list(rows["label"].astype(str))
    tls = [TfmdLists(xs, [PILImage.create], splits=splits), TfmdLists(ys, [Categorize(vocab=classes)], splits=splits)]
    datasets = Datasets(tls=tls, n_inp=1)
    # Full batches only (BatchNorm cannot train on a batch of one); small sets get one smaller batch.
    batch_size = max(2, min(config.batch_size, len(train_rows)))
    return datasets.dataloaders(
        bs=batch_size, num_workers=0, device=default_device(), drop_last=True,
        after_item=[*item_transforms(config), ToTensor()],
        after_batch=[IntToFloatTensor(), *batch_transforms(config, mean, std)],
    )
