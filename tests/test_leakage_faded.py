"""Washed-out copies: a white shoe brightened until mostly blank is still found, by its dark shapes,
and a look-alike photo of the same product in another colourway is not taken for it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from curation.cache import ContentCache
from curation.scan import scan_dataset
from curation.leakage import LeakageParams, audit_leakage
from curation.leakage.faded import find_faded_pairs
from curation.leakage.planting import plant_copy

# Real shoes images: white-on-white shots whose brightened copies no other signal finds
# (bench/RESULTS.md), and adidas 251, the same product render as adidas 185 in another colourway.
TRAIN = ("adidas/214.jpg", "nike/84.jpg", "adidas/251.jpg", "converse/101.jpg", "adidas/100.jpg", "nike/100.jpg")


@pytest.fixture(scope="module")
def faded_set(tmp_path_factory, shoes_root):
    root = tmp_path_factory.mktemp("faded") / "shoes"
    for name in TRAIN:
        (root / "train" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shoes_root / "train" / name, root / "train" / name)
    copies = {
        "train/adidas/214.jpg": plant_copy(shoes_root / "train/adidas/214.jpg", root / "test/adidas", "rotate_brightness"),
        "train/nike/84.jpg": plant_copy(shoes_root / "train/nike/84.jpg", root / "test/nike", "brightness_contrast"),
    }
    # adidas 185 brightened: its original is not in the set, only 251, its colourway twin.
    twin_copy = plant_copy(shoes_root / "train/adidas/185.jpg", root / "test/adidas", "brightness_contrast")
    shutil.copyfile(shoes_root / "test/adidas/1.jpg", root / "test/adidas/1.jpg")  # a clean test image
    (root / "test/nike").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (200, 160), (255, 255, 255)).save(root / "test/nike/blank.png")  # all saturated: no ink to match
    return root, {s: c.relative_to(root).as_posix() for s, c in copies.items()}, twin_copy.relative_to(root).as_posix()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with ContentCache(tmp_path_factory.mktemp("faded-cache")) as store:
        yield store


@pytest.fixture(scope="module")
def table(faded_set, tmp_path_factory, cache):
    root, _, _ = faded_set
    return scan_dataset(root, reports_dir=tmp_path_factory.mktemp("reports"), cache=cache).table


def test_brightened_copies_are_faded_and_scored_above_the_threshold(faded_set, table, cache):
    root, copies, twin_copy = faded_set
    found = find_faded_pairs(table, root, cache=cache, faded_fraction=0.85, candidates=3)
    paths = table["path"].to_numpy()
    # the originals are not washed out, and a blank image has nothing to match
    assert set(paths[found.faded]) == set(copies.values()) | {twin_copy}
    score = {frozenset(paths[pair]): s for pair, s in zip(found.pairs, found.scores)}
    threshold = LeakageParams().faded_near
    for source, copy in copies.items():
        assert score[frozenset((source, copy))] >= threshold
    assert score.get(frozenset(("train/adidas/251.jpg", twin_copy)), -1) < threshold


def test_audit_calls_them_leaks_through_the_fade_signal_only(faded_set, table, cache):
    root, copies, twin_copy = faded_set
    pairs = audit_leakage(table, root, cache=cache).pairs
    leaks = {(r.path_a, r.path_b): r for r in pairs[pairs["leak"]].itertuples()}
    for source, copy in copies.items():
        assert leaks[(source, copy)].signal == "faded" and leaks[(source, copy)].kind == "near_duplicate"
        assert leaks[(source, copy)].fade_score >= LeakageParams().faded_near
    assert set(leaks) == set(copies.items())  # the colourway twin and the clean image are not leaks
    without = audit_leakage(table, root, cache=cache, params=LeakageParams(faded=False)).pairs
    found_without = without[without["leak"]]
    # Without the fade step only the pixel alignment can find one, and it finds no false one.
    assert set(zip(found_without["path_a"], found_without["path_b"])) <= set(copies.items())
    assert found_without["signal"].str.endswith("+aligned").all()
    assert np.isnan(without["fade_score"]).all()
