"""Running a trained learner over rows of the sample table: logits, probabilities, optional TTA.

Inputs come from the same resized-image cache as training, so evaluation sees exactly the pixels
training saw for a given image size. Rows whose image cannot be read get no prediction (NaN) and
keep their row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curation.cache import ContentCache
from training.data import resized_images


@dataclass
class Predictions:
    """Arrays aligned with the rows passed in; rows without an image are NaN."""

    logits: np.ndarray  # (n, n_classes)
    probs: np.ndarray  # softmax of logits
    tta_probs: np.ndarray | None  # fastai TTA (augmented passes averaged, blended with the plain pass)
    has_image: np.ndarray  # bool (n,)


def predict_rows(learn, rows: pd.DataFrame, root: Path, *, cache: ContentCache, image_size: int,
                 tta: int = 0, batch_size: int = 16, tta_seed: int = 0) -> Predictions:
    """Predict every row; `tta` > 0 also runs that many augmented passes (fastai `Learner.tta`),
    with seeded augmentations so that a rerun gives the same figures."""
    import torch
    from fastai.torch_core import no_random
    from fastcore.basics import noop

    n_classes = len(learn.dls.vocab)
    readable = rows[rows["load_error"].fillna("") == ""]  # never decode what the scan refused
    images = resized_images(readable, root, cache=cache, size=image_size)
    has_image = (rows["sha256"].isin(images) & (rows["load_error"].fillna("") == "")).to_numpy()
    logits = np.full((len(rows), n_classes), np.nan, dtype="float32")
    probs = logits.copy()
    tta_probs = logits.copy() if tta else None
    items = [images[sha] for sha in rows.loc[has_image, "sha256"]]
    if items:
        dl = learn.dls.test_dl(items, bs=batch_size, num_workers=0)
        raw, _ = learn.get_preds(dl=dl, act=noop)
        logits[has_image] = raw.float().numpy()
        probs[has_image] = torch.softmax(raw.float(), dim=1).numpy()
        if tta:
            # fastai draws TTA's crops, flips and lighting at random: unseeded, two evaluations of
            # one lite2 model gave 9 and 13 TTA errors of 114. no_random restores the generators after.
            with no_random(tta_seed, reproducible=False):
                augmented, _ = learn.tta(dl=dl, n=tta)
            tta_probs[has_image] = augmented.float().numpy()
    return Predictions(logits, probs, tta_probs, has_image)


def prediction_frame(rows: pd.DataFrame, predictions: Predictions, classes: list[str]) -> pd.DataFrame:
    """The contract's per-sample table: sample_id, split, label, path, predicted, loss, p_<c>, logit_<c>.

    loss is the cross-entropy of the given label (NaN for a label the model never saw and for rows
    without an image); predicted is <NA> for rows without an image.
    """
    frame = rows[["sample_id", "split", "label", "path"]].reset_index(drop=True).copy()
    frame["predicted"] = predicted_labels(predictions.probs, predictions.has_image, classes)
    index = {c: i for i, c in enumerate(classes)}
    label_index = np.array([index.get(str(label), -1) for label in frame["label"]])
    known = (label_index >= 0) & predictions.has_image
    loss = np.full(len(frame), np.nan)
    picked = predictions.probs[np.arange(len(frame)), np.where(known, label_index, 0)]
    loss[known] = -np.log(np.clip(picked[known], 1e-12, 1.0))
    frame["loss"] = loss
    frame["correct"] = pd.array([bool(ok) and p == str(l) for ok, p, l in
                                 zip(predictions.has_image, frame["predicted"], frame["label"])], dtype="boolean")
    frame.loc[~predictions.has_image, "correct"] = pd.NA
    for i, name in enumerate(classes):
        frame[f"p_{name}"] = predictions.probs[:, i]
    for i, name in enumerate(classes):
        frame[f"logit_{name}"] = predictions.logits[:, i]
    if predictions.tta_probs is not None:
        frame["tta_predicted"] = predicted_labels(predictions.tta_probs, predictions.has_image, classes)
        for i, name in enumerate(classes):
            frame[f"tta_p_{name}"] = predictions.tta_probs[:, i]
    return frame


def predicted_labels(probs: np.ndarray, known: np.ndarray, classes: list[str]) -> pd.arrays.StringArray:
    """The most probable class name per row; <NA> where the row has no prediction (known False)."""
    best = np.argmax(np.where(known[:, None], probs, 0), axis=1)
    return pd.array([classes[i] if ok else None for i, ok in zip(best, known)], dtype="string")
