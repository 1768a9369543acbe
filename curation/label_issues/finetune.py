"""Fine-tuned out-of-fold probabilities at CPU cost: the last stages of a pretrained backbone,
fine-tuned per fold on cached activations of its frozen early stages.

Why: a logistic regression on frozen features (the fast path) errs on about 15 % of the clean shoes
train split, a fine-tuned model on about half as many, and the estimate of P(label wrong) is only as
good as the probabilities. K full fine-tunes cost K times the training on 2 cores; but the early
stages change little in a fine-tune. So each image, and its mirror image, goes through the frozen
stages once (cached by file content, through the engine layer), and each fold trains only the last
stages and a new head on those activations for a few epochs.

Each label's loss is weighed by 1 - its P(label wrong) from a first pass of the fast path, so a
suspected flip teaches the fold models less. Optionally (FinetuneParams.rounds, `--fold-model-rounds`)
a second round of fold models trains on other folds with each label weighed by 1 - the estimate of
the first round's mixture, which ranks flips better than the fast path, and the rounds' probabilities
are averaged: its models learn less from the flips, and two fold assignments err less than one.
Their probabilities are mixed with the fast path's in the share (MIX_WEIGHTS) under which the labels
are likeliest: with 10 % of shoes train flipped that is 3/4 fold models, ranking the flips at AUROC
0.981-0.984 against the fast path's 0.951-0.959 (bench/RESULTS.md).

Splits as in curation.label_issues.probabilities: train by K-fold within train, copy groups kept
whole in one fold (and, asked, each fold model also learning from the other labelled splits, less
the copies of the fold it predicts); every other labelled split by one model fitted on all of train,
less the copies of that split's images.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
import pandas as pd

from curation.engine import ImageTask, map_missing
from curation.image_io import load_rgb
from curation.label_issues.probabilities import (
    DEFAULT_C, TRAIN_SPLIT, OutOfSample, SplitProbabilities, _cv_problem, _encode, _folds, _n_folds, also_fitted_on,
    cv_probabilities, first_pass_weights, label_weights, labelled_rows, outside_predicted_groups,
)
from curation.progress import progress

ACTIVATION_KIND = "stage_activations"
ACTIVATION_VERSION = 1
# the fold models' shares tried in their mixture with the fast path; the labels' likelihood picks one.
# With 10 % flips on shoes train it picks 0.75 or so: the fold models rank flips better, the fast path
# smooths their confident mistakes (bench/RESULTS.md)
MIX_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
ROUND_SEED_STEP = 100  # round r draws its folds (and initialises its heads) from seed + r * ROUND_SEED_STEP
T = TypeVar("T")


@dataclass(frozen=True)
class FinetuneParams:
    model: str = "tf_efficientnet_lite2"  # the packaged backbone the training also starts from
    # blocks[:frozen_blocks] run once per image, the rest is trained per fold. Frozen through block 2 (of 7),
    # with 10 % flips on shoes train, averaged with the fast path: P 0.84 / R 0.72 / AUROC 0.980, P@R0.8 0.81
    # (through block 3: 0.83 / 0.73 / 0.976, P@R0.8 0.77, a third faster; through block 4: 0.83 / 0.67 / 0.973;
    # through block 5: 0.77 / 0.64 / 0.966). The fold models alone rank flips as well as the mean with the fast
    # path (AUROC 0.980), which is why the labels' likelihood gives them most of the weight (MIX_WEIGHTS).
    frozen_blocks: int = 3
    epochs: int = 6
    min_steps: int = 100  # at least this many optimiser steps per fold model, however small the split
    learning_rate: float = 1e-3
    batch_size: int = 32
    label_smoothing: float = 0.1
    weight_decay: float = 0.05
    # rounds of fold models, each on other folds and with every label weighed by 1 - the estimate of the
    # rounds before (mixed with the fast path); their probabilities are averaged. With 10 % flips on shoes
    # train (seeds 1 and 2), two rounds against one: AUROC 0.987 / 0.988 against 0.982 / 0.984 and the labels
    # likelier, but the default list's precision / recall 0.89 / 0.76 and 0.80 / 0.80 against 0.85 / 0.70 and
    # 0.84 / 0.80: not worth twice the fold models' time by default (bench/RESULTS.md)
    rounds: int = 1

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds of fold models must be at least 1, not {self.rounds}")

    def cache_params(self) -> dict:
        return {"version": ACTIVATION_VERSION, "model": self.model, "frozen_blocks": self.frozen_blocks}


# --- the frozen stages, once per image ---------------------------------------------------------

@dataclass(frozen=True)
class _FrozenStagesSetup:
    """Builds the frozen stages where the task runs (this process or a Ray actor)."""

    model: str
    frozen_blocks: int

    def __call__(self):
        import torch

        from curation.inference import pixel_transform
        from curation.models import load_model

        loaded = load_model(self.model)
        net = loaded.model.eval()
        config = loaded.data_config
        mean = torch.tensor(config["mean"], dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(config["std"], dtype=torch.float32).view(1, 3, 1, 1)
        stages = torch.nn.Sequential(net.conv_stem, net.bn1, *net.blocks[: self.frozen_blocks]).eval()
        return pixel_transform(config), stages, mean, std


def _activations_batch(state, paths: list[Path]) -> list[np.ndarray | None]:
    """(2, C, H, W) float16 per image: the frozen stages' output for the image and its mirror."""
    transform = state[0]
    pixels, kept = [], []
    for position, path in enumerate(paths):
        try:
            pixels.append(transform(load_rgb(path)))
            kept.append(position)
        except Exception:  # decoded once by the probe; a file changed since stays unchecked
            continue
    values: list[np.ndarray | None] = [None] * len(paths)
    for position, value in zip(kept, _frozen_stage_outputs(state, pixels) if pixels else []):
        values[position] = value
    return values


def _frozen_stage_outputs(state, pixels: list[np.ndarray]) -> np.ndarray:
    """(n, 2, C, H, W) float16: the frozen stages on each (H, W, 3) uint8 image and its mirror.
    `state` is what frozen_stages(params) builds."""
    import torch

    stages, x = state[1], normalized_pixels(state, pixels)
    with torch.no_grad():
        return torch.stack([stages(x), stages(x.flip(3))], dim=1).half().numpy()


def normalized_pixels(state, pixels: list[np.ndarray]) -> "torch.Tensor":  # noqa: F821
    """(n, 3, H, W) float32, normalised as the backbone was trained: the frozen stages' input."""
    import torch

    mean, std = state[2], state[3]
    return (torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float() / 255.0 - mean) / std


def frozen_stages(params: FinetuneParams):
    """(pixel transform, frozen stages, mean, std) in this process: for decoded images that are no files."""
    return _FrozenStagesSetup(params.model, params.frozen_blocks)()


def stage_activations(rows: pd.DataFrame, root: Path, *, cache, params: FinetuneParams) -> dict[str, np.ndarray]:
    """sha256 -> (2, C, H, W) activations of the frozen stages, cached by file content."""
    task = ImageTask(desc=f"frozen stages ({params.model})", fmt="npy", batch=_activations_batch,
                     setup=_FrozenStagesSetup(params.model, params.frozen_blocks), local_batch=8, uses_gpu=True)
    known, _ = map_missing(task, rows, root, cache=cache, kind=ACTIVATION_KIND, params=params.cache_params())
    return known


# --- the trained stages, once per fold ---------------------------------------------------------

class Trainable:
    """The backbone's later stages and a new head, built from the packaged weights once per call."""

    def __init__(self, params: FinetuneParams, n_classes: int):
        from curation.models import load_model

        self.params = params
        self.n_classes = n_classes
        self.backbone = load_model(params.model).model.eval()

    def fresh(self):
        import torch

        net = self.backbone
        return torch.nn.Sequential(
            *[copy.deepcopy(block) for block in net.blocks[self.params.frozen_blocks:]],
            copy.deepcopy(net.conv_head), copy.deepcopy(net.bn2), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
            torch.nn.Dropout(0.2), torch.nn.Linear(net.num_features, self.n_classes))


def fit_tail(trainable: Trainable, activations, labels: np.ndarray, weights: np.ndarray, fit_index: np.ndarray, *,
             seed: int):
    """The later stages and head trained on activations[fit_index] (a random view per step), in eval mode."""
    import torch

    params = trainable.params
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = trainable.fresh().train()
    y, w = torch.as_tensor(labels), torch.as_tensor(weights, dtype=torch.float32)
    optimiser = torch.optim.AdamW(net.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay)
    # a small split gets smaller batches and more epochs: a few dozen steps leave the new head untrained
    batch_size = min(params.batch_size, max(8, len(fit_index) // 8))
    per_epoch = int(np.ceil(len(fit_index) / batch_size))
    total = max(params.epochs * per_epoch, params.min_steps)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=params.learning_rate, total_steps=total,
                                                   pct_start=0.25)
    loss_of = torch.nn.CrossEntropyLoss(reduction="none", label_smoothing=params.label_smoothing)
    done = 0
    while done < total and len(fit_index) >= 2:  # batch norm needs two samples a batch
        order = rng.permutation(fit_index)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            if done == total:
                break
            if len(batch) < 2:
                continue
            view = torch.as_tensor(rng.integers(0, 2, len(batch)))
            x = activations[torch.as_tensor(batch), view].float()
            loss = (loss_of(net(x), y[batch]) * w[batch]).sum() / w[batch].sum().clamp(min=1e-6)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            done += 1
    return net.eval()


def predict_tail(net, activations, predict_index: np.ndarray) -> np.ndarray:
    """Probabilities (len(predict_index), K): the mean over each image's two views (it and its mirror)."""
    import torch

    with torch.no_grad():
        chunks = [sum(torch.softmax(net(activations[torch.as_tensor(part), view].float()), 1) for view in (0, 1)) / 2
                  for part in np.array_split(predict_index, max(1, len(predict_index) // 64))]
    return torch.cat(chunks).numpy().astype("float64")


def _fit_predict(trainable: Trainable, activations, labels: np.ndarray, weights: np.ndarray,
                 fit_index: np.ndarray, predict_index: np.ndarray, *, seed: int) -> np.ndarray:
    """Train on activations[fit_index], predict activations[predict_index]."""
    return predict_tail(fit_tail(trainable, activations, labels, weights, fit_index, seed=seed), activations,
                        predict_index)


def finetuned_oof(activations, labels: np.ndarray, n_classes: int, *, groups: np.ndarray | None = None,
                  weights: np.ndarray | None = None, n_folds: int = 5, seed: int = 0,
                  params: FinetuneParams | None = None, trainable: "Trainable | None" = None,
                  extra: tuple | None = None) -> np.ndarray:
    """Out-of-fold probabilities (n, n_classes) for one split's activations (n, 2, C, H, W) and labels:
    stratified K-fold, copy groups whole in one fold, each fold's later stages trained from the
    pretrained weights. The fine-tuned counterpart of probabilities.cv_probabilities.

    `extra` = (activations, labels, groups or None, weights) of samples of other labelled splits added
    to every fold's training set (never predicted), less those in a group of the fold being predicted,
    as in cv_probabilities."""
    trainable = trainable or Trainable(params or FinetuneParams(), n_classes)
    n = len(labels)
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype="float64")
    extra_rows, extra_groups = np.zeros(0, dtype=int), None
    if extra is not None and len(extra[1]):
        import torch

        extra_activations, extra_labels, extra_groups, extra_weights = extra
        activations = torch.cat([activations, extra_activations])
        labels = np.concatenate([labels, extra_labels])
        weights = np.concatenate([weights, np.asarray(extra_weights, dtype="float64")])
        extra_rows = np.arange(n, len(labels))
    probs = np.zeros((n, n_classes))
    folds = list(_folds(labels[:n], groups, n_folds, seed))
    for fold, (fit, predict) in enumerate(progress(folds, desc="fold models")):  # minutes each on 2 cores
        keep = outside_predicted_groups(len(extra_rows), extra_groups, groups, predict)
        probs[predict] = _fit_predict(trainable, activations, labels, weights, np.concatenate([fit, extra_rows[keep]]),
                                      predict, seed=seed + fold)
    return probs


def split_probabilities(features: np.ndarray, activations, labels: np.ndarray, n_classes: int, *,
                        groups: np.ndarray | None = None, n_folds: int = 5, seed: int = 0, c: float = DEFAULT_C,
                        reweigh: bool = True, params: FinetuneParams | None = None,
                        extra: tuple | None = None) -> tuple[np.ndarray, str]:
    """The label stage's probabilities for one split's arrays, as the audit makes them: a first fast
    pass (logistic regression on the embeddings) gives P(label wrong); the fast path refitted and the
    fold models both weigh each label by 1 - that; their mixture that explains the labels best is the
    answer (mixed_probabilities). Returns (probabilities, "finetune" or "cv_logreg"). For the
    noise-injection check and the benchmark, which refit it on new labels; `extra` as in
    probability_parts."""
    fast, tuned = probability_parts(features, activations, labels, n_classes, groups=groups, n_folds=n_folds,
                                    seed=seed, c=c, reweigh=reweigh, params=params, extra=extra)
    return mixed_probabilities(fast, tuned, labels)


def best_mixture(mix: Callable[[float], T], splits_of: Callable[[T], dict[str, tuple[np.ndarray, np.ndarray]]]
                 ) -> tuple[float, T, dict[str, float]]:
    """Of the mixtures mix(share) for each of the fold models' shares in MIX_WEIGHTS, the one whose labels
    (splits_of(mixture): split -> (probabilities, labels)) are likeliest under its fitted noise channels:
    (share, mixture, every share's mean log-likelihood per label keyed "0.00" ... "1.00"). The smaller
    share wins a tie: the fast path is the default. For arrays (mixed_probabilities) and the audit's
    OutOfSample alike."""
    from curation.label_issues.estimate import better_explained

    mixtures = {weight: mix(weight) for weight in sorted(MIX_WEIGHTS)}
    best, scores = better_explained({f"{weight:.2f}": splits_of(mixture) for weight, mixture in mixtures.items()})
    return float(best), mixtures[float(best)], scores


def mixed_probabilities(fast: np.ndarray, tuned: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, str]:
    """The mixture of the fast path and the fold models (shares in MIX_WEIGHTS) that explains the labels
    best; ("cv_logreg" where that is the fast path alone, else "finetune")."""
    weight, probs, _ = best_mixture(lambda share: (1 - share) * fast + share * tuned,
                                    lambda mixture: {"split": (mixture, labels)})
    return probs, ("finetune" if weight > 0 else "cv_logreg")


def probability_parts(features: np.ndarray, activations, labels: np.ndarray, n_classes: int, *,
                      groups: np.ndarray | None = None, n_folds: int = 5, seed: int = 0, c: float = DEFAULT_C,
                      reweigh: bool = True, params: FinetuneParams | None = None,
                      extra: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(fast path, fold models) out-of-fold probabilities for one split, both with labels weighed by the
    first pass; split_probabilities mixes them, the benchmark also keeps them apart.

    `extra` = (features, activations, labels, groups or None, weights) of other labelled splits' samples
    that every fit also learns from (never predicted, less the copies of what it predicts)."""
    params = params or FinetuneParams()
    fit = dict(groups=groups, n_folds=n_folds, seed=seed)
    fast_extra = tuned_extra = None
    if extra is not None:
        extra_features, extra_activations, extra_labels, extra_groups, extra_weights = extra
        fast_extra = (extra_features, extra_labels, extra_groups, np.asarray(extra_weights, dtype="float64"))
        tuned_extra = (extra_activations, extra_labels, extra_groups, extra_weights)
    weights = first_pass_weights(features, labels, n_classes, c=c, extra=fast_extra, **fit) if reweigh else None
    fast = cv_probabilities(features, labels, n_classes, c=c, weights=weights, extra=fast_extra, **fit)
    trainable = Trainable(params, n_classes)
    tuned = finetuned_oof(activations, labels, n_classes, weights=weights, trainable=trainable, extra=tuned_extra, **fit)
    for done in range(1, params.rounds):
        mixed, used = mixed_probabilities(fast, tuned, labels)
        if used != "finetune":  # the fast path explains the labels better: more fold models would not be used
            break
        again = finetuned_oof(activations, labels, n_classes, weights=label_weights(mixed, labels),
                              trainable=trainable, extra=tuned_extra, **{**fit, "seed": seed + done * ROUND_SEED_STEP})
        tuned = (done * tuned + again) / (done + 1)  # the mean over the rounds so far
    return fast, tuned


def activation_tensor(rows: pd.DataFrame, root: Path, *, cache, params: FinetuneParams):
    """The cached activations of `rows` (every one readable), in their order, as one float16 tensor."""
    return stacked_activations(stage_activations(rows, root, cache=cache, params=params), rows["sha256"])


def stacked_activations(known: dict[str, np.ndarray], digests) -> "torch.Tensor":  # noqa: F821
    """One tensor of the cached activations of `digests`, in their order."""
    import torch

    return torch.from_numpy(np.stack([known[sha] for sha in digests]))


def finetuned_probabilities(table: pd.DataFrame, root: Path, *, cache, groups: np.ndarray | None = None,
                            weights: np.ndarray | None = None, n_folds: int = 5, seed: int = 0,
                            train_split: str = TRAIN_SPLIT, params: FinetuneParams | None = None,
                            other_splits_teach_train: bool = False) -> OutOfSample:
    """Out-of-sample probabilities of fold models fine-tuned on cached activations (see module doc).

    `groups`, `weights` (one per table row) and `other_splits_teach_train` as in
    cross_validated_probabilities."""
    params = params or FinetuneParams()
    usable = labelled_rows(table)
    known = stage_activations(table[usable], root, cache=cache, params=params)
    usable &= table["sha256"].isin(known).to_numpy()
    rows = table[usable]
    classes = sorted(rows["label"].astype(str).unique())
    labels = _encode(rows["label"].astype(str), classes)
    group_of = (np.arange(len(table)) if groups is None else np.asarray(groups))[usable]
    weight_of = (np.ones(len(table)) if weights is None else np.asarray(weights, dtype="float64"))[usable]
    split_of = rows["split"].astype(str).to_numpy()
    activations = stacked_activations(known, rows["sha256"])
    trainable = Trainable(params, len(classes))
    result = OutOfSample(classes, {}, "finetune")
    in_train = np.flatnonzero(split_of == train_split)
    for split in progress(sorted(set(split_of), key=lambda s: (s != train_split, s)), desc="fold fine-tuning"):
        here = np.flatnonzero(split_of == split)
        if split == train_split or not len(in_train):
            problem = _cv_problem(labels[here])
            if problem:
                result.skipped[split] = problem
                continue
            others = np.flatnonzero(split_of != split) if split == train_split and other_splits_teach_train else \
                np.zeros(0, dtype=int)
            probs = finetuned_oof(activations[here], labels[here], len(classes), groups=group_of[here],
                                  weights=weight_of[here], n_folds=n_folds, seed=seed, trainable=trainable,
                                  extra=(activations[others], labels[others], group_of[others], weight_of[others]))
            how = (f"{_n_folds(labels[here], n_folds)}-fold fine-tuning within {split}{also_fitted_on(split_of[others])}"
                   f" ({_describe(params)})")
        else:
            fit = in_train[~np.isin(group_of[in_train], group_of[here])]  # no copy of what it predicts
            probs = _fit_predict(trainable, activations, labels, weight_of, fit, here, seed=seed)
            how = f"fine-tuned on {train_split} ({_describe(params)})"
        ids = rows["sample_id"].astype(str).to_numpy()[here].tolist()
        result.splits[split] = SplitProbabilities(split, ids, labels[here], probs, how)
    return result


def _describe(params: FinetuneParams) -> str:
    return (f"{params.model} frozen through block {params.frozen_blocks - 1}, the rest trained at least "
            f"{params.epochs} epochs and {params.min_steps} steps on cached activations of each image and its mirror; labels weighed by 1 - P(label wrong)")
