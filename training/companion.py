"""A companion model for an ensemble, at a few minutes' CPU cost: lite2's later stages and a new head
fine-tuned on cached activations of its frozen early stages, exactly as the label stage's fold models
are (curation.label_issues.finetune), but on all of train.

Why: the trained model and the companion start from the same pretrained stages but learn the later
ones differently (the model with heavy augmentation at 260 px for 14 epochs; the companion on each
image and its mirror, 6 epochs, label smoothing), so their mistakes differ. The mean of their
probabilities errs less than either on the shoes test split (bench/RESULTS.md, 2026-12-07).

`python -m training.train --companion` trains it before the model (with a time budget, its minutes
come out of the budget, so the promise holds) and saves it beside model.pkl as companion.pt (its
tail's weights, the classes and the settings); training.evaluate then reports the ensemble's error
next to the model's, and adds ensemble_p_<class> and ensemble_predicted columns.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curation.atomic_files import atomic_path
from curation.cache import ContentCache

log = logging.getLogger(__name__)
COMPANION_FILE = "companion.pt"


@dataclass
class Companion:
    net: object  # torch.nn.Module: the trained tail (later stages and head), eval mode
    params: object  # curation.label_issues.finetune.FinetuneParams
    classes: list[str]
    summary: dict  # what the report says of it: images, seed, seconds

    def probabilities(self, rows: pd.DataFrame, root: Path, *, cache: ContentCache) -> np.ndarray:
        """(len(rows), K): each image and its mirror through the frozen stages (cached) and the tail;
        NaN for rows whose image could not be read."""
        from curation.label_issues.finetune import predict_tail, stacked_activations, stage_activations

        probs = np.full((len(rows), len(self.classes)), np.nan)
        readable = (rows["load_error"].fillna("") == "").to_numpy()
        known = stage_activations(rows[readable], root, cache=cache, params=self.params) if readable.any() else {}
        have = readable & rows["sha256"].isin(known).to_numpy()
        if have.any():
            activations = stacked_activations(known, rows.loc[have, "sha256"])
            probs[have] = predict_tail(self.net, activations, np.arange(int(have.sum())))
        return probs


def train_companion(train_rows: pd.DataFrame, root: Path, classes: list[str], *, cache: ContentCache,
                    seed: int) -> Companion:
    """Fit the companion on every readable train row (labels in `classes`); save_companion writes it."""
    from curation.label_issues.finetune import FinetuneParams, Trainable, activation_tensor, fit_tail

    started = time.perf_counter()
    params = FinetuneParams()
    rows = train_rows[(train_rows["load_error"].fillna("") == "") & train_rows["label"].isin(classes)]
    labels = rows["label"].map({name: k for k, name in enumerate(classes)}).to_numpy()
    activations = activation_tensor(rows, root, cache=cache, params=params)
    log.info("training the companion model on %d images' cached activations", len(rows))
    net = fit_tail(Trainable(params, len(classes)), activations, labels, np.ones(len(rows)),
                   np.arange(len(rows)), seed=seed)
    summary = {"images": int(len(rows)), "seed": seed, "seconds": round(time.perf_counter() - started, 1)}
    return Companion(net, params, list(classes), summary)


def save_companion(companion: Companion, out_dir: Path) -> Path:
    """companion.pt beside the model (written once the model is: it belongs to that model)."""
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / COMPANION_FILE) as temporary:
        torch.save({"state_dict": companion.net.state_dict(), "params": asdict(companion.params),
                    "classes": companion.classes, "summary": companion.summary}, temporary)
    return out_dir / COMPANION_FILE


def load_companion(model_dir: Path, classes: list[str]) -> Companion | None:
    """The companion saved beside a model, or None when there is none or it was trained for other classes."""
    import torch

    from curation.label_issues.finetune import FinetuneParams, Trainable

    path = model_dir / COMPANION_FILE
    if not path.exists():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if list(saved["classes"]) != list(classes):
        log.warning("%s was trained for classes %s, not the model's %s: not used", path, saved["classes"], classes)
        return None
    params = FinetuneParams(**saved["params"])
    net = Trainable(params, len(classes)).fresh()
    net.load_state_dict(saved["state_dict"])
    return Companion(net.eval(), params, list(classes), dict(saved["summary"]))


def ensemble_probabilities(model_probs: np.ndarray, companion_probs: np.ndarray) -> np.ndarray:
    """The mean of the two models' probabilities (equal shares: fixed before looking at any test image)."""
    return (np.asarray(model_probs, dtype="float64") + companion_probs) / 2
