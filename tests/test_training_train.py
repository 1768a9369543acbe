"""A real (tiny) training run: lite0 with its packaged ImageNet weights, 64 px, 1 frozen + 1 epoch,
on 8 train + 4 test shoes per class, with one corrupt image in train and one in test."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from curation.cache import ContentCache
from curation.scan import scan_dataset
from curation.image_io import load_rgb
from tests.shoes_data import copy_subset
from training.config import AugmentConfig, TrainConfig
from training.data import training_data_hash
from training.figures import confusion_figure_pixels, top_losses_figure_pixels

CLASSES = ["adidas", "converse", "nike"]


def tiny_config(**overrides) -> TrainConfig:
    settings = dict(arch="tf_efficientnet_lite0", image_size=64, epochs=1, frozen_epochs=1, threads=1,
                    valid_split="test", batch_size=16)
    settings.update(overrides)
    return TrainConfig(**settings)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shoes_root):
    from training.pipeline import train_dataset

    base = tmp_path_factory.mktemp("training")
    root = copy_subset(shoes_root, base / "shoes_small", {"train": 8, "test": 4})
    (root / "train" / "adidas" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "test" / "nike" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg either")
    cache = ContentCache(base / "cache")
    scanned = scan_dataset(root, reports_dir=base / "reports", cache=cache)
    run = train_dataset(scanned, tiny_config(), cache=cache, tta=2)
    yield scanned, run, cache
    cache.close()


def test_exported_learner_loads_and_predicts(trained):
    from fastai.learner import load_learner

    scanned, run, _ = trained
    learn = load_learner(run.model_path)
    assert list(learn.dls.vocab) == CLASSES
    image = scanned.dataset.root / scanned.table.query("split == 'test' and load_error == ''")["path"].iloc[0]
    label, index, probs = learn.predict(image)
    assert label in CLASSES and CLASSES[int(index)] == label
    assert float(probs.sum()) == pytest.approx(1.0, abs=1e-5)
    # predict accepts a PIL image as well as a path: the input pipeline starts at PILImage.create
    label_again, _, probs_again = learn.predict(load_rgb(image))
    assert np.allclose(probs_again.numpy(), probs.numpy(), atol=0.05)


def test_metadata_records_what_the_model_is_and_learnt_from(trained):
    scanned, run, _ = trained
    meta = json.loads((run.model_path.parent / "model.json").read_text())
    assert meta["arch"] == "tf_efficientnet_lite0"
    assert meta["weights_source"].startswith("packaged:")
    assert meta["classes"] == CLASSES and meta["image_size"] == 64 and meta["seed"] == 42
    assert meta["normalization"] == {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    train = scanned.table.query("split == 'train' and load_error == ''")
    assert meta["training_data"]["hash"] == training_data_hash(train)
    assert meta["training_data"]["n_samples"] == 24
    assert meta["training_data"]["excluded_unreadable"] == ["train/adidas/broken.jpg"]
    assert [row["phase"] for row in meta["history"]] == ["frozen", "unfrozen"]
    assert meta["validation"] == {"split": "test", "n_samples": 12, "used_for_checkpoint_selection": True}
    errors = [row["error_rate"] for row in meta["history"]]
    assert meta["metrics"]["error_rate"] == pytest.approx(min(errors))


def test_predictions_cover_every_test_row_with_probabilities_that_sum_to_one(trained):
    scanned, run, _ = trained
    out = run.model_path.parent
    predictions = pd.read_parquet(out / "predictions.parquet")
    test = scanned.table[scanned.table["split"] == "test"]
    assert sorted(predictions["sample_id"]) == sorted(test["sample_id"])
    readable = predictions[predictions["predicted"].notna()]
    assert len(readable) == 12  # the corrupt test image keeps its row, without a prediction
    broken = predictions[predictions["path"] == "test/nike/broken.jpg"]
    assert broken["predicted"].isna().all() and broken["loss"].isna().all()
    probs = readable[[f"p_{c}" for c in CLASSES]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    logits = readable[[f"logit_{c}" for c in CLASSES]].to_numpy()
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert np.allclose(softmax, probs, atol=1e-5)
    label_index = readable["label"].map(CLASSES.index).to_numpy()
    assert np.allclose(readable["loss"], -np.log(probs[np.arange(len(probs)), label_index]), atol=1e-5)
    assert (readable["predicted"] == np.array(CLASSES)[probs.argmax(axis=1)]).all()
    metrics = json.loads((out / "metrics.json").read_text())["splits"]["test"]
    assert metrics["n_unreadable"] == 1
    assert metrics["full"]["n"] == 12
    assert metrics["full"]["error"] == pytest.approx(1 - readable["correct"].astype(bool).mean())
    assert metrics["full"]["tta_error"] is not None
    assert metrics["used_for_checkpoint_selection"] is True


def _assert_real_figure(path, size):
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == size
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 10  # drawn content, not a blank canvas


def test_evaluation_draws_a_confusion_matrix_and_a_top_losses_grid(trained):
    _, run, _ = trained
    out = run.model_path.parent
    _assert_real_figure(out / "confusion_test.png", confusion_figure_pixels(3))
    _assert_real_figure(out / "top_losses_test.png", top_losses_figure_pixels(12))
    summary = (out / "summary.md").read_text()
    assert "test chose the kept epoch" in summary and "no leakage audit found" in summary


def test_leak_free_metrics_sit_beside_the_full_ones(trained):
    from training.evaluate import evaluate_model
    from training.export import load_exported, read_metadata

    scanned, run, cache = trained
    out = run.model_path.parent
    test = scanned.table.query("split == 'test' and load_error == ''")
    leak_dir = scanned.report_dir / "leakage"
    leak_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"sample_id": test["sample_id"], "split": "test",
                  "drop": [i < 3 for i in range(len(test))], "reason": "near duplicate of a train image"}
                 ).to_csv(leak_dir / "leak_free.csv", index=False)
    learn = load_exported(out)
    evaluation = evaluate_model(learn, read_metadata(out), scanned.table, scanned.dataset.root, cache=cache,
                                out_dir=out / "with_leakage", report_dir=scanned.report_dir, tta=0)
    metrics = evaluation.metrics["test"]
    assert metrics["n_leaked_dropped"] == 3
    assert metrics["leak_free"]["n"] == metrics["full"]["n"] - 3
    kept = evaluation.predictions[~evaluation.predictions["sample_id"].isin(test["sample_id"].iloc[:3])]
    kept = kept[kept["predicted"].notna()]
    assert metrics["leak_free"]["error"] == pytest.approx(1 - kept["correct"].astype(bool).mean())


def test_tta_is_reproducible_and_leaves_the_callers_randomness_alone(trained):
    import random

    from fastai.torch_core import no_random

    from training.export import load_exported
    from training.predict import predict_rows

    scanned, run, cache = trained
    learn = load_exported(run.model_path.parent)
    test = scanned.table.query("split == 'test' and load_error == ''")

    def tta_probs(seed):
        return predict_rows(learn, test, scanned.dataset.root, cache=cache, image_size=64, tta=2,
                            tta_seed=seed).tta_probs

    first, again, other_seed = tta_probs(0), tta_probs(0), tta_probs(1)
    assert np.array_equal(first, again)
    assert not np.allclose(first, other_seed, atol=1e-6)  # the passes are augmented, and by the seed

    random.seed(123)
    expected = random.random()
    random.seed(123)
    with no_random(7, reproducible=False):  # what predict_rows wraps TTA in
        inside = random.random()
    assert random.random() == expected != inside  # the block restored Python's generator


def test_evaluate_cli_reevaluates_the_exported_model(trained, capsys):
    from training.evaluate import main

    scanned, run, cache = trained
    code = main([str(scanned.dataset.root), "--reports-dir", str(scanned.report_dir.parent),
                 "--cache-dir", str(cache.directory), "--tta", "0", "--threads", "1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "test" in out and "error" in out and "1 unreadable image(s) in test" in out


def test_convnext_without_offline_weights_trains_from_scratch_and_says_so(tmp_path, small_shoes, cache):
    from training.pipeline import train_dataset

    scanned = scan_dataset(small_shoes, reports_dir=tmp_path / "reports", cache=cache)
    config = tiny_config(arch="convnext_atto", epochs=1, frozen_epochs=1, augment=AugmentConfig(crop_min_scale=0))
    run = train_dataset(scanned, config, cache=cache, evaluate=False)
    assert run.metadata["weights_source"] == "none"
    assert any("hub" in line for line in run.metadata["weights_tried"])
    assert [row["phase"] for row in run.fit.history] == ["scratch"]  # nothing to freeze without weights


def test_frozen_stages_keep_their_pretrained_weights_while_later_stages_learn(tmp_path, small_shoes, cache):
    import torch

    from training.learner import resolve_backbone
    from training.pipeline import train_dataset

    scanned = scan_dataset(small_shoes, reports_dir=tmp_path / "reports", cache=cache)
    config = tiny_config(frozen_stages=2, select_best=False)
    run = train_dataset(scanned, config, cache=cache, evaluate=False)
    pretrained = resolve_backbone(config).state
    trained = dict(run.fit.learn.model[0].model.named_parameters())
    moved = {name for name, value in trained.items() if not torch.equal(value.detach(), pretrained[name])}
    fixed_prefixes = ("conv_stem.", "bn1.", "blocks.0.", "blocks.1.")
    assert not {name for name in moved if name.startswith(fixed_prefixes)}
    assert any(name.startswith("blocks.2.") for name in moved) and any(name.startswith("blocks.6.") for name in moved)
    assert all(p.requires_grad is False for n, p in trained.items() if n.startswith(fixed_prefixes))
    statistics = _statistics_moved(run, pretrained)  # fixed weights are not enough: their batch norm too
    assert statistics and not {name for name in statistics if name.startswith(fixed_prefixes)}
    assert any(name.startswith("blocks.6.") for name in statistics)


def _statistics_moved(run, pretrained: dict) -> set[str]:
    """Names of the body's batch-norm running statistics that differ from the pretrained ones."""
    import torch

    buffers = dict(run.fit.learn.model[0].model.named_buffers())
    return {name for name, value in buffers.items()
            if name.endswith(("running_mean", "running_var")) and not torch.equal(value, pretrained[name])}


@pytest.mark.parametrize("which", ["pretrained", "batch"])
def test_norm_statistics_choose_which_batch_norm_layers_follow_the_batches(tmp_path, small_shoes, cache, which):
    import torch

    from training.learner import resolve_backbone
    from training.pipeline import train_dataset

    scanned = scan_dataset(small_shoes, reports_dir=tmp_path / "reports", cache=cache)
    config = tiny_config(frozen_stages=2, select_best=False, norm_statistics=which)
    run = train_dataset(scanned, config, cache=cache, evaluate=False)
    pretrained = resolve_backbone(config).state
    moved = _statistics_moved(run, pretrained)
    if which == "pretrained":  # every backbone layer keeps ImageNet's statistics while its weights learn
        assert moved == set()
        head_norm = [m for m in run.fit.learn.model[1].modules() if isinstance(m, torch.nn.BatchNorm1d)]
        assert head_norm and all(int(m.num_batches_tracked) > 0 for m in head_norm)  # the new head's do learn
    else:  # PyTorch's default: the fixed stem's statistics drift with the batches
        assert any(name.startswith("bn1.") for name in moved)
    assert run.metadata["config"]["norm_statistics"] == which
    with pytest.raises(ValueError, match="norm_statistics"):
        tiny_config(norm_statistics="frozen")


def test_label_smoothing_is_the_loss_that_training_minimises(tmp_path, small_shoes, cache):
    from training.pipeline import train_dataset

    eps = 0.8  # large, so that the smoothed loss is far from the plain one even for an untrained head
    scanned = scan_dataset(small_shoes, reports_dir=tmp_path / "reports", cache=cache)
    run = train_dataset(scanned, tiny_config(label_smoothing=eps, epochs=0, select_best=False), cache=cache, tta=0)
    predictions = pd.read_parquet(run.model_path.parent / "predictions.parquet")
    log_probs = np.log(predictions[[f"p_{c}" for c in CLASSES]].to_numpy())
    picked = log_probs[np.arange(len(log_probs)), predictions["label"].map(CLASSES.index).to_numpy()]
    smoothed = -((1 - eps) * picked + eps * log_probs.mean(axis=1))  # fastai's LabelSmoothingCrossEntropy
    assert abs(smoothed.mean() - predictions["loss"].mean()) > 0.005  # the two losses can be told apart
    assert run.fit.history[-1]["valid_loss"] == pytest.approx(smoothed.mean(), abs=1e-3)
    assert run.metadata["config"]["label_smoothing"] == eps
    with pytest.raises(ValueError, match="label_smoothing"):
        tiny_config(label_smoothing=1.0)


def test_frozen_stages_beyond_the_backbone_are_refused():
    import timm

    from training.layer_freeze import freeze_early_stages

    model = timm.create_model("convnext_atto", pretrained=False, num_classes=0)
    with pytest.raises(ValueError, match="4 stages"):
        freeze_early_stages(model, 5)
    fixed = freeze_early_stages(model, 1)
    assert fixed and all(name.startswith(("stem.", "stages.0.")) for name in fixed)


def test_train_cli_requiring_pretrained_weights_fails_cleanly(tmp_path, small_shoes, capsys):
    from curation.cli import run_cli
    from training.train import main

    code = run_cli(main, [str(small_shoes), "--reports-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"),
                          "--arch", "convnext_atto", "--pretrained", "--epochs", "1"])
    assert code == 2
    assert "no weights for convnext_atto" in capsys.readouterr().err


def test_train_cli_rejects_a_missing_validation_split(tmp_path, small_shoes, capsys):
    from curation.cli import run_cli
    from training.train import main

    code = run_cli(main, [str(small_shoes), "--reports-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"),
                          "--valid-split", "holdout"])
    assert code == 2
    assert "no split named 'holdout'" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["training.train", "training.evaluate", "training.robustness"])
def test_every_cli_has_help(module, capsys):
    import importlib

    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(module).main(["--help"])
    assert exit_info.value.code == 0
    assert "reports/<dataset>/training" in capsys.readouterr().out


def test_robustness_scores_the_model_on_shifted_copies_beside_the_plain_images(trained, tmp_path):
    from training.export import load_exported, read_metadata
    from training.figures import shift_accuracy_figure_pixels
    from training.robustness import measure_robustness

    scanned, run, cache = trained
    out = run.model_path.parent
    learn, metadata = load_exported(out), read_metadata(out)
    result = measure_robustness(learn, metadata, scanned.table, scanned.dataset.root, cache=cache,
                                out_dir=tmp_path / "shift", shifts=["blur", "elsewhere"])
    figures = result.figures
    assert list(figures) == ["plain", "blur", "elsewhere"]
    # plain: the 12 readable test images, scored as the evaluation scored them
    evaluated = json.loads((out / "metrics.json").read_text())["splits"]["test"]["full"]
    assert figures["plain"]["n"] == 12 and figures["plain"]["accuracy"] == pytest.approx(evaluated["accuracy"])
    written = pd.read_csv(tmp_path / "shift" / "predictions.csv")
    for shift in ("blur", "elsewhere"):
        part = written[written["shift"] == shift]
        assert len(part) == 12 and figures[shift]["n"] == 12
        assert figures[shift]["accuracy"] == pytest.approx(part["correct"].astype(bool).mean())
        assert figures[shift]["drop"] == pytest.approx(figures["plain"]["accuracy"] - figures[shift]["accuracy"])
        low, high = figures[shift]["accuracy_ci95"]
        assert low <= figures[shift]["accuracy"] <= high
    assert figures["blur"]["changed"] == 12
    assert len(list((tmp_path / "shift" / "images").glob("v*-seed0/elsewhere/*/*.png"))) == 12
    _assert_real_figure(tmp_path / "shift" / "accuracy.png", shift_accuracy_figure_pixels())
    with Image.open(tmp_path / "shift" / "examples.png") as examples:
        assert np.asarray(examples.convert("L"), dtype=float).std() > 10
    saved = json.loads((tmp_path / "shift" / "robustness.json").read_text())
    assert saved["shifts"]["elsewhere"]["accuracy"] == pytest.approx(figures["elsewhere"]["accuracy"])
    assert "largest drop" in (tmp_path / "shift" / "summary.md").read_text()
