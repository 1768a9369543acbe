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
