"""The app's decisions on their own: calibration, conformal sets, the slice a photo falls in, the verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd

from curation.app.calibration import Calibration, conformal_threshold, fit_temperature
from curation.app.evidence import ReferenceImages, SliceInfo, photo_evidence
from curation.app.predictor import verdict


def test_temperature_undoes_an_overconfident_model():
    rng = np.random.default_rng(0)
    n, k = 4000, 3
    true_logits = rng.normal(0, 1.5, (n, k))
    true_probs = np.exp(true_logits) / np.exp(true_logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(k, p=p) for p in true_probs])  # drawn from the calibrated probabilities
    overconfident = 3.0 * true_logits  # a model three times too sure of itself
    log_probs = overconfident - np.log(np.exp(overconfident).sum(axis=1, keepdims=True))
    assert 2.6 < fit_temperature(log_probs, labels) < 3.4


def test_conformal_sets_hold_their_coverage_on_new_samples():
    rng = np.random.default_rng(1)
    n, k = 6000, 3
    labels = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), labels] += 1.2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    threshold = conformal_threshold(probs[:1000], labels[:1000], 0.9)
    calibration = Calibration(1.0, threshold, 0.9, "test", 1000)
    covered = [labels[i] in calibration.prediction_set(probs[i]) for i in range(1000, n)]
    sizes = [len(calibration.prediction_set(probs[i])) for i in range(1000, n)]
    assert 0.88 <= np.mean(covered) <= 0.93  # >= 0.9 up to sampling noise, and not trivially all classes
    assert 1 < np.mean(sizes) < 3


def _references(n_per_class: int = 30, dim: int = 16) -> ReferenceImages:
    rng = np.random.default_rng(2)
    classes = ["a", "b"]
    centres = rng.normal(0, 1, (2, dim))
    rows, vectors = [], []
    for c, name in enumerate(classes):
        for i in range(n_per_class):
            vectors.append(centres[c] + 0.3 * rng.normal(0, 1, dim))
            rows.append({"sample_id": f"{name}{i}", "path": f"train/{name}/{i}.jpg", "split": "train", "label": name})
    vectors = np.array(vectors)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    refs = ReferenceImages(pd.DataFrame(rows), vectors.astype("float32"), vectors.astype("float32"), classes)
    refs.affinity_median, refs.affinity_mad = 0.9, 0.02
    refs.slices = [SliceInfo(1, "class b, the hard ones", 0.4, {f"b{i}" for i in range(n_per_class)})]
    return refs


def test_a_photo_among_a_slices_members_is_said_to_be_in_it():
    refs = _references()
    inside = photo_evidence(refs, refs.vectors[35])  # one of b's images
    assert inside.slice == {"id": 1, "description": "class b, the hard ones", "accuracy": 0.4, "neighbours_in_slice": 5}
    assert photo_evidence(refs, refs.vectors[3]).slice is None  # among a's images
    assert [n["label"] for n in inside.nearest].count("b") >= 4


def test_a_photo_unlike_every_class_is_no_class():
    refs = _references()
    far = -refs.vectors.mean(axis=0)
    far /= np.linalg.norm(far)
    evidence = photo_evidence(refs, far)
    assert evidence.no_class and evidence.no_class_score > 4.5
    assert not photo_evidence(refs, refs.vectors[0]).no_class


def test_the_verdict_names_every_reason_and_never_trusts_a_photo_of_no_class():
    base = {"no_class": False, "no_class_score": 0.0, "prediction_set": ["a"], "coverage": 0.95, "copy_of": None,
            "slice": None, "model": {"train_split": "train"}}
    assert verdict(base) == {"level": "trust", "reasons": []}
    unsure = verdict(base | {"prediction_set": ["a", "b"], "slice": {"id": 2, "accuracy": 0.5}})
    assert unsure["level"] == "unsure" and "a or b at 95%" in unsure["reasons"][0] and "slice 2" in unsure["reasons"][1]
    copied = verdict(base | {"copy_of": {"kind": "near_duplicate", "path": "test/a/1.jpg", "split": "test"}})
    assert "(near-duplicate) of test/a/1.jpg, an image of the test split" in copied["reasons"][0]
    assert verdict(base | {"no_class": True, "no_class_score": 6.0})["level"] == "do not trust"
