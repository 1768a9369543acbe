"""The time budget: fewer unfrozen epochs where an epoch is slower, the recipe's count where they
fit, the first epochs at a smaller size before any are cut, and real (tiny) runs that record and
follow the schedule they chose."""

from __future__ import annotations

import json

import pytest

from training.time_budget import EXPORT_RESERVE_S, LAST_FULL_EPOCHS, epochs_within, step_seconds


def test_a_slower_epoch_gets_fewer_epochs_and_a_fast_one_the_recipes():
    budget, spent = 15 * 60, 60.0  # a 15-minute fit after a 60 s frozen epoch
    fast = epochs_within(budget, spent, epoch_s=37, max_epochs=14)  # an AVX-512 host's epoch
    slow = epochs_within(budget, spent, epoch_s=80, max_epochs=14)  # an AVX2-only host's
    assert fast.epochs == 14 and "fit" in fast.reason
    assert slow.epochs == int((budget - spent - EXPORT_RESERVE_S) // 80) == 10
    assert "10 of the recipe's 14" in slow.reason
    hopeless = epochs_within(budget, spent, epoch_s=2000, max_epochs=14)
    assert hopeless.epochs == 1 and "over the budget" in hopeless.reason
    assert slow.to_dict()["epoch_s"] == 80.0 and slow.to_dict()["epochs"] == 10


def test_a_slower_epoch_trains_its_first_epochs_smaller_before_any_is_cut():
    budget, spent = 15 * 60, 60.0
    left = budget - spent - EXPORT_RESERVE_S
    # an AVX2 host at 62 s an epoch, 46 s at 224 px: all 14 kept, the fewest first ones smaller
    tight = epochs_within(budget, spent, epoch_s=62, max_epochs=14, low_res_epoch_s=46, low_res_size=224)
    assert (tight.epochs, tight.low_res_epochs, tight.low_res_size) == (14, 4, 224)
    assert 4 * 46 + 10 * 62 <= left < 3 * 46 + 11 * 62
    assert "the recipe's 14 epochs, the first 4 at 224 px" in tight.reason
    # at 80 s (59 s smaller) 14 or 13 do not fit with the last three at full size: 12, of them 8 smaller
    slow = epochs_within(budget, spent, epoch_s=80, max_epochs=14, low_res_epoch_s=59, low_res_size=224)
    assert (slow.epochs, slow.low_res_epochs) == (12, 8)
    assert 8 * 59 + 4 * 80 <= left < (13 - LAST_FULL_EPOCHS) * 59 + LAST_FULL_EPOCHS * 80
    assert "12 of the recipe's 14 epochs, the first 8 at 224 px" in slow.reason
    # where everything fits at full size, or the smaller size is no faster, nothing is smaller
    fast = epochs_within(budget, spent, epoch_s=37, max_epochs=14, low_res_epoch_s=27, low_res_size=224)
    assert (fast.epochs, fast.low_res_epochs, fast.low_res_size) == (14, 0, 0)
    useless = epochs_within(budget, spent, epoch_s=80, max_epochs=14, low_res_epoch_s=80, low_res_size=224)
    assert (useless.epochs, useless.low_res_epochs) == (10, 0)


def test_measuring_a_step_leaves_weights_statistics_and_gradients_as_they_were(tmp_path, small_shoes, cache):
    import torch

    from curation.scan import scan_dataset
    from training.config import TrainConfig
    from training.data import make_dataloaders, resized_images
    from training.learner import build_learner, resolve_backbone

    scanned = scan_dataset(small_shoes, reports_dir=tmp_path / "reports", cache=cache)
    rows = scanned.table[scanned.table["split"] == "train"]
    config = TrainConfig(arch="tf_efficientnet_lite0", image_size=64, batch_size=8, threads=1)
    backbone = resolve_backbone(config)
    images = resized_images(rows, small_shoes, cache=cache, size=64)
    dls = make_dataloaders(rows, rows.iloc[:0], images, sorted(rows["label"].unique()), config,
                           mean=backbone.mean, std=backbone.std)
    learn = build_learner(dls, sorted(rows["label"].unique()), config, backbone, tmp_path)
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    seconds = step_seconds(learn)
    assert seconds > 0
    after = learn.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running means included
    assert all(p.grad is None for p in learn.model.parameters())


def test_a_budgeted_run_records_its_schedule_and_trains_what_it_chose(tmp_path, small_shoes, cache):
    from curation.scan import scan_dataset
    from training.config import TrainConfig
    from training.pipeline import train_dataset

    scanned = scan_dataset(small_shoes, reports_dir=tmp_path / "reports", cache=cache)
    # a 30 s budget is all reserve (export): whatever this machine's speed, one unfrozen epoch, said so
    config = TrainConfig(arch="tf_efficientnet_lite0", image_size=64, epochs=50, frozen_epochs=1, threads=1,
                         batch_size=16, valid_split="test", time_budget=0.5, low_res_size=48)
    run = train_dataset(scanned, config, cache=cache, evaluate=False)
    schedule = json.loads(run.model_path.with_name("model.json").read_text())["schedule"]
    assert schedule["epochs"] == 1 and schedule["max_epochs"] == 50 and "over the budget" in schedule["reason"]
    assert len(run.fit.history) == 2  # the frozen epoch and the one unfrozen epoch it chose
    assert schedule["budget_s"] == pytest.approx(30.0) and schedule["epoch_s"] > 0 and schedule["spent_s"] > 0
    assert 0 < schedule["low_res_epoch_s"] < schedule["epoch_s"]  # the smaller size was probed too
    again = epochs_within(schedule["budget_s"], schedule["spent_s"], schedule["epoch_s"], 50,
                          low_res_epoch_s=schedule["low_res_epoch_s"], low_res_size=48)
    assert again.to_dict() == schedule


def test_the_first_epochs_train_at_the_smaller_size_and_the_model_ends_at_full_size(tmp_path, small_shoes, cache):
    from curation.scan import scan_dataset
    from training.config import TrainConfig
    from training.pipeline import train_dataset

    scanned = scan_dataset(small_shoes, reports_dir=tmp_path / "reports", cache=cache)
    config = TrainConfig(arch="tf_efficientnet_lite0", image_size=64, epochs=3, frozen_epochs=1, threads=1,
                         batch_size=16, valid_split="test", low_res_size=48, low_res_epochs=2)
    run = train_dataset(scanned, config, cache=cache, evaluate=False)
    assert [(row["phase"], row["size"]) for row in run.fit.history] == [
        ("frozen", 64), ("unfrozen", 48), ("unfrozen", 48), ("unfrozen", 64)]
    saved = json.loads(run.model_path.with_name("model.json").read_text())
    assert [row["size"] for row in saved["history"]] == [64, 48, 48, 64]
    assert run.fit.learn.dls.train.one_batch()[0].shape[-2:] == (64, 64)  # what export and evaluation see
    assert all(row["error_rate"] is not None for row in run.fit.history)


def test_the_smaller_epochs_train_small_and_validate_at_full_size(tmp_path, small_shoes, cache):
    from curation.scan import scan_dataset
    from training.config import TrainConfig
    from training.data import class_names, make_dataloaders, resized_images
    from training.learner import _smaller_training_loaders, resolve_backbone

    table = scan_dataset(small_shoes, reports_dir=tmp_path / "reports", cache=cache).table
    train, valid = table[table["split"] == "train"], table[table["split"] == "test"]
    config = TrainConfig(arch="tf_efficientnet_lite0", image_size=64, batch_size=8, low_res_size=48)
    backbone, classes = resolve_backbone(config), class_names(train)
    images = resized_images(table, small_shoes, cache=cache, size=64)
    full = make_dataloaders(train, valid, images, classes, config, mean=backbone.mean, std=backbone.std)
    low = _smaller_training_loaders(full, train, valid, images, classes, config, backbone)
    assert low.train.one_batch()[0].shape[-2:] == (48, 48) and len(low.train) == len(full.train)
    assert low.valid is full.valid  # validation figures of smaller epochs compare with the others'
    with pytest.raises(ValueError, match="low_res_size"):
        TrainConfig(image_size=64, low_res_size=64)
    with pytest.raises(ValueError, match="low_res_epochs"):
        TrainConfig(epochs=3, low_res_epochs=2)
