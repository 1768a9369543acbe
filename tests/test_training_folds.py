"""K-fold training: every usable train sample gets out-of-sample probabilities exactly once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from curation.scan import scan_dataset
from curation.errors import CurationError
from training.config import AugmentConfig, TrainConfig
from training.data import split_usable
from training.figures import top_losses_figure_pixels
from training.folds import assign_folds, consensus_hard_examples
from training.oof import read_oof

CLASSES = ["adidas", "converse", "nike"]


def test_folds_give_every_train_sample_out_of_sample_probabilities_once(tmp_path, small_shoes, cache):
    from training.folds import run_folds

    scanned = scan_dataset(small_shoes, reports_dir=tmp_path / "reports", cache=cache)
    usable = split_usable(scanned.table).usable
    config = TrainConfig(arch="tf_efficientnet_lite0", image_size=64, epochs=1, frozen_epochs=0, threads=1,
                         batch_size=8, augment=AugmentConfig(crop_min_scale=0))
    out = scanned.report_dir / "training"
    assert read_oof(scanned.report_dir) is None
    result = run_folds(usable, scanned.dataset.root, config, 3, out, cache=cache)

    oof = read_oof(scanned.report_dir)
    train_ids = usable.loc[usable["split"] == "train", "sample_id"]
    assert sorted(oof["sample_id"]) == sorted(train_ids)  # each train sample exactly once
    assert oof["sample_id"].is_unique
    assert sorted(oof["fold"].unique()) == [0, 1, 2]
    assert (oof.groupby(["fold", "label"]).size() >= 2).all()  # stratified: every class in every fold
    probs = oof[[f"p_{c}" for c in CLASSES]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (oof["wrong"] == (oof["predicted"] != oof["label"])).all()

    # each fold model judged every usable sample; its own held-out fold is the out-of-fold row
    fold_wrong = pd.read_parquet(out / "fold_wrong.parquet")
    assert (fold_wrong.groupby("sample_id").size() == 3).all()
    assert len(fold_wrong) == 3 * len(usable)
    held_out = fold_wrong[(fold_wrong["split"] == "train") & ~fold_wrong["in_training"]]
    merged = held_out.merge(oof, on="sample_id", suffixes=("", "_oof"))
    assert len(merged) == len(oof) and (merged["fold_model"] == merged["fold"]).all()
    assert (merged["wrong"] == merged["wrong_oof"]).all()
    assert not fold_wrong.loc[fold_wrong["split"] == "test", "in_training"].any()

    assert result.summary["n_oof"] == len(train_ids)
    assert result.summary["oof_error"] == pytest.approx(oof["wrong"].mean())
    hard = pd.read_csv(out / "hard_examples.csv", dtype={"sample_id": str})
    consensus_ids = set(hard.loc[hard["consensus"], "sample_id"])
    assert set(oof.loc[oof["consensus_hard"], "sample_id"]) == consensus_ids & set(train_ids)
    assert len(hard) == len(usable) and hard["consensus"].sum() == result.summary["n_consensus_hard"]
    with Image.open(out / "hard_examples.png") as image:
        assert image.size == top_losses_figure_pixels(min(12, int(hard["consensus"].sum())))


def test_copies_of_one_picture_share_a_fold():
    rows = pd.DataFrame({"label": ["a"] * 12 + ["b"] * 12})
    groups = np.arange(24)
    groups[[1, 2, 3]] = 1  # three copies of one 'a' picture
    groups[[13, 20]] = 13  # a 'b' picture and its copy
    for seed in range(5):
        folds = assign_folds(rows, 3, seed=seed, groups=groups)
        assert len(set(folds[[1, 2, 3]])) == 1 and len(set(folds[[13, 20]])) == 1
        assert sorted(set(folds)) == [0, 1, 2]


def test_too_few_images_per_class_for_the_fold_count_is_a_clear_error():
    rows = pd.DataFrame({"label": ["a"] * 5 + ["b"] * 2})
    with pytest.raises(CurationError, match="needs at least 3 train images per class; 'b' has 2"):
        assign_folds(rows, 3, seed=0)


def test_consensus_needs_most_fold_models_and_the_final_model_wrong():
    def verdicts(sample, wrong_flags):
        return [{"sample_id": sample, "split": "test", "label": "a", "path": f"{sample}.jpg", "fold_model": i,
                 "in_training": False, "predicted": "b" if w else "a", "loss": 2.0 if w else 0.1, "wrong": w}
                for i, w in enumerate(wrong_flags)]

    fold_wrong = pd.DataFrame(verdicts("hard", [True, True, False]) + verdicts("fluke", [True, False, False])
                              + verdicts("final_right", [True, True, True]))
    final = pd.DataFrame({"sample_id": ["hard", "fluke", "final_right"],
                          "correct": pd.array([False, False, True], dtype="boolean")})
    hard = consensus_hard_examples(fold_wrong, final, 3).set_index("sample_id")
    assert hard.loc["hard", "consensus"] and hard.loc["hard", "n_models_wrong"] == 2
    assert not hard.loc["fluke", "consensus"]  # one fold model of three
    assert not hard.loc["final_right", "consensus"]  # the final model got it right
    assert hard.loc["hard", "usual_wrong_prediction"] == "b"
    without_final = consensus_hard_examples(fold_wrong, None, 3).set_index("sample_id")
    assert without_final.loc["final_right", "consensus"]
