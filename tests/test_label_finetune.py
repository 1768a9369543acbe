"""The fine-tuned fold models of the label stage (curation/label_issues/finetune.py), on real shoes
images: the frozen stages run once per image and its mirror (cached by content), and the fold models
trained on those activations tell the classes apart out of fold."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from tests.shoes_data import copy_subset


def _table(root, cache):
    from curation.layout import list_folder_samples
    from curation.sample_table import build_sample_table

    table, _ = build_sample_table(root, list_folder_samples(root), cache=cache)
    return table


def test_activations_hold_the_image_and_its_mirror_and_are_computed_once(tmp_path, shoes_root, cache):
    from curation.label_issues.finetune import ACTIVATION_KIND, FinetuneParams, stage_activations

    root = copy_subset(shoes_root, tmp_path / "data", {"train": 2})
    source = root / "train" / "nike" / sorted(p.name for p in (root / "train" / "nike").iterdir())[0]
    ImageOps.mirror(Image.open(source).convert("RGB")).save(root / "train" / "nike" / "mirrored.png")
    Image.open(source).convert("RGB").save(root / "train" / "nike" / "original.png")  # lossless, to compare
    table = _table(root, cache)
    params = FinetuneParams()
    known = stage_activations(table, root, cache=cache, params=params)
    assert set(known) == set(table["sha256"])
    sha = dict(zip(table["path"], table["sha256"]))
    original, mirrored = known[sha["train/nike/original.png"]], known[sha["train/nike/mirrored.png"]]
    assert original.shape[0] == 2 and original.dtype == np.float16 and original.ndim == 4
    # the second view of an image is the first view of its mirror image (up to float16 rounding)
    assert np.abs(original[1].astype(float) - mirrored[0].astype(float)).max() < 0.05
    assert np.abs(original[0].astype(float) - mirrored[0].astype(float)).mean() > 0.05  # and not the same view
    stored = cache.count(ACTIVATION_KIND)
    again = stage_activations(table, root, cache=cache, params=params)
    assert cache.count(ACTIVATION_KIND) == stored == len(table)
    assert all(np.array_equal(again[k], known[k]) for k in known)


def test_fold_models_tell_the_brands_apart_out_of_fold_and_weights_mute_a_label(tmp_path, shoes_root, cache):
    from curation.label_issues.finetune import FinetuneParams, activation_tensor, finetuned_oof

    root = copy_subset(shoes_root, tmp_path / "data", {"train": 24})
    table = _table(root, cache)
    classes = sorted(table["label"].unique())
    labels = table["label"].map({c: k for k, c in enumerate(classes)}).to_numpy()
    params = FinetuneParams(epochs=4, frozen_blocks=6)  # the last stage only: the same mechanism, 3x faster
    activations = activation_tensor(table, root, cache=cache, params=params)
    probs = finetuned_oof(activations, labels, len(classes), n_folds=3, params=params)
    assert probs.shape == (len(table), 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    accuracy = (probs.argmax(axis=1) == labels).mean()
    assert accuracy > 0.6, accuracy  # chance is 1/3: every prediction is out of fold
    # a label weighed zero teaches nothing: with every adidas label muted, no fold learns adidas
    muted = np.where(labels == 0, 0.0, 1.0)
    muted_probs = finetuned_oof(activations, labels, len(classes), weights=muted, n_folds=3, params=params)
    assert muted_probs[:, 0].mean() < 0.5 * probs[:, 0].mean()


def test_other_splits_teach_the_fold_models_but_never_a_copy_of_what_they_predict(tmp_path, shoes_root, cache):
    """Train's fold models also learn from the other labelled splits (`extra`): on 4 train images a class,
    20 more a class from test make them better out of fold. An extra image in the copy group of an image
    a fold predicts is left out of that fold's fit: a wrongly labelled twin of every train image then
    does not make its twin look wrong, as the same twins outside the copy groups do."""
    from curation.label_issues.finetune import FinetuneParams, activation_tensor, finetuned_oof

    root = copy_subset(shoes_root, tmp_path / "data", {"train": 4, "test": 20})
    table = _table(root, cache)
    classes = sorted(table["label"].unique())
    labels = table["label"].map({c: k for k, c in enumerate(classes)}).to_numpy()
    params = FinetuneParams(epochs=4, min_steps=40, frozen_blocks=6)  # the last stage only: the same mechanism, fast
    activations = activation_tensor(table, root, cache=cache, params=params)
    train, test = np.flatnonzero(table["split"] == "train"), np.flatnonzero(table["split"] == "test")
    y = labels[train]
    rows = np.arange(len(train))

    def oof(extra=None):
        return finetuned_oof(activations[train], y, len(classes), extra=extra, n_folds=2, seed=0, params=params,
                             groups=rows)

    alone = oof()
    taught = oof((activations[test], labels[test], 100 + np.arange(len(test)), np.ones(len(test))))
    log_loss = {name: float(-np.log(probs[rows, y].clip(1e-9)).mean()) for name, probs in
                (("alone", alone), ("taught", taught))}
    assert log_loss["taught"] < 0.8 * log_loss["alone"], log_loss
    wrong = (y + 1) % len(classes)
    as_copies = oof((activations[train], wrong, rows, np.ones(len(train))))
    not_copies = oof((activations[train], wrong, 100 + rows, np.ones(len(train))))
    believed_as_copies, believed_not_copies = as_copies[rows, wrong].mean(), not_copies[rows, wrong].mean()
    assert believed_not_copies > believed_as_copies + 0.1, (believed_not_copies, believed_as_copies)


def test_a_second_round_of_fold_models_is_trained_on_other_folds_and_averaged_with_the_first(
        tmp_path, shoes_root, cache):
    from dataclasses import replace

    from curation.label_issues.finetune import (
        ROUND_SEED_STEP, FinetuneParams, activation_tensor, finetuned_oof, mixed_probabilities, probability_parts,
    )
    from curation.label_issues.probabilities import label_weights

    root = copy_subset(shoes_root, tmp_path / "data", {"train": 8})
    table = _table(root, cache)
    classes = sorted(table["label"].unique())
    labels = table["label"].map({c: k for k, c in enumerate(classes)}).to_numpy()
    flipped = np.zeros(len(labels), bool)
    flipped[[0, 10, 20]] = True  # one image of each class moved to the next class
    noisy = np.where(flipped, (labels + 1) % len(classes), labels)
    one_round = FinetuneParams(epochs=2, min_steps=20, frozen_blocks=6, rounds=1)  # the last stage only: fast
    activations = activation_tensor(table, root, cache=cache, params=one_round)
    # features that tell nothing apart: the fast path cannot explain the labels, so the fold models are used
    features = np.random.default_rng(0).normal(size=(len(labels), 16))
    fit = dict(n_folds=2, seed=0)
    fast, first = probability_parts(features, activations, noisy, len(classes), params=one_round, **fit)
    mixed, used = mixed_probabilities(fast, first, noisy)
    assert used == "finetune"
    weights = label_weights(mixed, noisy)
    second = finetuned_oof(activations, noisy, len(classes), weights=weights, params=one_round,
                           **{**fit, "seed": ROUND_SEED_STEP})
    assert np.abs(second - first).max() > 0.05  # other folds, other weights: another model
    _, both = probability_parts(features, activations, noisy, len(classes), params=replace(one_round, rounds=2), **fit)
    assert np.allclose(both, (first + second) / 2, atol=1e-5)


def test_the_next_round_weighs_a_label_the_mixture_doubts_down():
    """What a round passes on: labels that the mixture's noise channel finds likely wrong count less (a
    suspected flip teaches the next round of fold models less); the rest count fully."""
    from curation.label_issues.probabilities import label_weights

    rng = np.random.default_rng(0)
    true = rng.integers(0, 3, 300)
    probs = np.full((300, 3), 0.01)
    probs[np.arange(300), true] = 0.98  # a model that is right, and sure
    probs[:30] = 0.2
    probs[np.arange(30), true[:30]] = 0.6  # and some images it finds hard
    given = true.copy()
    given[30:60] = (true[30:60] + 1) % 3  # 10 % of the labels flipped, on images the model is sure of
    weights = label_weights(probs, given)
    assert weights[30:60].max() < 0.2 and weights[60:].min() > 0.9
    assert weights[:30].min() > 0.9  # a hard image with its right label is not doubted
