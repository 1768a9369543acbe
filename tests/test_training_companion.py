"""The companion model (training/companion.py): trained beside a real (tiny) model on real shoes
images, saved and reloaded, and evaluated with the model as an ensemble whose probabilities are the
mean of both; a model trained without one leaves no stale companion behind."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from curation.cache import ContentCache
from curation.scan import scan_dataset
from tests.shoes_data import copy_subset
from tests.test_training_train import CLASSES, tiny_config


@pytest.fixture(scope="module")
def with_companion(tmp_path_factory, shoes_root):
    from training.pipeline import train_dataset

    base = tmp_path_factory.mktemp("companion")
    root = copy_subset(shoes_root, base / "shoes_small", {"train": 10, "test": 4})
    (root / "test" / "nike" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    cache = ContentCache(base / "cache")
    scanned = scan_dataset(root, reports_dir=base / "reports", cache=cache)
    # a budget of 10 minutes never binds 1 + 1 tiny epochs; the companion's time comes out of it
    run = train_dataset(scanned, tiny_config(valid_split="none", time_budget=10), cache=cache, tta=2, companion=True)
    yield scanned, run, cache
    cache.close()


def test_the_companion_learns_and_reloads_to_the_same_predictions(with_companion):
    from training.companion import COMPANION_FILE, load_companion

    scanned, run, cache = with_companion
    model_dir = run.model_path.parent
    assert (model_dir / COMPANION_FILE).is_file()
    companion = load_companion(model_dir, CLASSES)
    assert companion.summary["images"] == 30 and companion.classes == CLASSES
    assert run.companion == companion.summary and run.companion["seconds"] > 0
    # trained first, its minutes are taken from the fit's budget, and model.json says so
    saved = json.loads((model_dir / "model.json").read_text())
    assert saved["companion"] == companion.summary
    assert saved["config"]["time_budget"] == pytest.approx(10 - companion.summary["seconds"] / 60)
    train = scanned.table[scanned.table["split"] == "train"].reset_index(drop=True)
    probs = companion.probabilities(train, scanned.dataset.root, cache=cache)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    labels = train["label"].map({c: k for k, c in enumerate(CLASSES)}).to_numpy()
    assert (probs.argmax(axis=1) == labels).mean() >= 0.9  # an untrained head is at chance, 1/3
    assert load_companion(model_dir, ["adidas", "nike"]) is None  # trained for other classes: not used


def test_evaluation_scores_the_mean_of_model_and_companion(with_companion):
    from training.companion import load_companion

    scanned, run, cache = with_companion
    model_dir = run.model_path.parent
    predictions = pd.read_parquet(model_dir / "predictions.parquet")
    test = scanned.table[scanned.table["split"] == "test"].reset_index(drop=True)
    companion = load_companion(model_dir, CLASSES).probabilities(test, scanned.dataset.root, cache=cache)
    frame = predictions.set_index("sample_id").loc[test["sample_id"]]
    readable = frame["predicted"].notna().to_numpy()
    assert readable.sum() == 12 and np.isnan(companion[~readable]).all()  # the broken image has neither
    model = frame[[f"p_{c}" for c in CLASSES]].to_numpy(float)[readable]
    ensemble = frame[[f"ensemble_p_{c}" for c in CLASSES]].to_numpy(float)[readable]
    assert np.allclose(ensemble, (model + companion[readable]) / 2, atol=1e-6)
    assert list(frame["ensemble_predicted"][readable]) == [CLASSES[k] for k in ensemble.argmax(axis=1)]
    tta = frame[[f"tta_p_{c}" for c in CLASSES]].to_numpy(float)[readable]  # the model's TTA with the companion
    assert list(frame["ensemble_tta_predicted"][readable]) == [
        CLASSES[k] for k in (tta + companion[readable]).argmax(axis=1)]
    full = json.loads((model_dir / "metrics.json").read_text())["splits"]["test"]["full"]
    wrong = (frame["ensemble_predicted"][readable] != frame["label"][readable]).mean()
    assert full["ensemble_error"] == pytest.approx(wrong)
    assert full["ensemble_tta_error"] == pytest.approx(
        (frame["ensemble_tta_predicted"][readable] != frame["label"][readable]).mean())
    summary = (model_dir / "summary.md").read_text()
    assert "ensemble error" in summary and "ensemble TTA error" in summary


def test_robustness_reports_the_ensemble_beside_the_model(with_companion, tmp_path):
    from training.companion import load_companion
    from training.export import load_exported, read_metadata
    from training.robustness import measure_robustness

    scanned, run, cache = with_companion
    model_dir = run.model_path.parent
    result = measure_robustness(load_exported(model_dir), read_metadata(model_dir), scanned.table,
                                scanned.dataset.root, cache=cache, out_dir=tmp_path / "shift", shifts=["blur"],
                                companion=load_companion(model_dir, CLASSES))
    written = pd.read_csv(tmp_path / "shift" / "predictions.csv")
    blurred = written[written["shift"] == "blur"]
    assert len(blurred) == 12
    assert result.figures["blur"]["ensemble_accuracy"] == pytest.approx(
        (blurred["ensemble_predicted"] == blurred["label"]).mean())
    assert "ensemble accuracy" in (tmp_path / "shift" / "summary.md").read_text()


def test_a_model_trained_without_a_companion_drops_the_earlier_one(with_companion, tmp_path):
    from training.companion import COMPANION_FILE
    from training.pipeline import train_dataset

    scanned, run, cache = with_companion
    out = tmp_path / "training"
    out.mkdir()
    (out / COMPANION_FILE).write_bytes((run.model_path.parent / COMPANION_FILE).read_bytes())
    again = train_dataset(scanned, tiny_config(valid_split="none", epochs=0), cache=cache, tta=0, out_dir=out)
    assert not (out / COMPANION_FILE).exists()
    assert "ensemble_predicted" not in again.evaluation.predictions
    assert "ensemble_error" not in again.evaluation.metrics["test"]["full"]


def test_the_app_serves_the_ensemble_calibrated_on_the_ensembles_held_out_predictions(with_companion):
    """The app answers with the mean of both models' probabilities, as evaluation scored it, and fits its
    calibration on the ensemble's held-out columns; --no-companion serves the model's own."""
    from dataclasses import replace

    from curation.app.calibration import fit_calibration
    from curation.app.predictor import TrustedPredictor
    from curation.image_io import load_rgb

    scanned, run, cache = with_companion
    model_dir = run.model_path.parent
    predictions = pd.read_parquet(model_dir / "predictions.parquet")
    test = predictions[predictions["split"].eq("test") & predictions["predicted"].notna()]
    served = TrustedPredictor.load(str(scanned.dataset.root), reports_dir=scanned.report_dir.parent,
                                   cache_dir=cache.directory)
    assert served.model_info()["companion"] == run.companion
    assert "ensemble" in served.calibration.source and served.companion.backend == "openvino"
    images = [load_rgb(scanned.dataset.root / path) for path in test["path"]]
    ensemble = test[[f"ensemble_p_{c}" for c in CLASSES]].to_numpy(float)
    model = test[[f"p_{c}" for c in CLASSES]].to_numpy(float)
    assert np.abs(ensemble - model).max() > 0.05  # the two differ, so the check below tells them apart
    assert np.abs(np.exp(served.log_probabilities(images)) - ensemble).max() < 5e-3
    answer = served.predict((scanned.dataset.root / test["path"].iloc[0]).read_bytes())
    calibrated = served.calibration.probabilities(np.log(ensemble[0]))
    assert list(answer["probabilities"].values()) == pytest.approx(list(calibrated), abs=5e-3)

    alone = replace(served, companion=None, calibration=fit_calibration(model_dir, CLASSES))
    assert alone.model_info()["companion"] is None and "ensemble" not in alone.calibration.source
    assert np.abs(np.exp(alone.log_probabilities(images)) - model).max() < 1e-3


def test_the_fiftyone_dataset_holds_the_ensembles_prediction_beside_the_models(with_companion):
    import fiftyone as fo

    from curation.review import build_review

    scanned, run, cache = with_companion
    predictions = pd.read_parquet(run.model_path.parent / "predictions.parquet").set_index("sample_id")
    build_review(scanned, name="review-companion", cache=cache, embeddings=False)
    dataset = fo.load_dataset("review-companion")
    test = dataset.match_tags("test").exists("predictions")
    assert len(test) == 12
    for sample_id, ensemble, model in zip(test.values("curation_id"), test.values("ensemble_predictions"),
                                          test.values("predictions")):
        row = predictions.loc[sample_id]
        assert ensemble.label == row["ensemble_predicted"] and model.label == row["predicted"]
        assert ensemble.confidence == pytest.approx(max(row[f"ensemble_p_{c}"] for c in CLASSES))
    assert len(dataset.match_tags("test").exists("ensemble_predictions")) == 12  # not the broken image
