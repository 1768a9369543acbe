"""The resized-image cache and the data pipeline's handling of unreadable images."""

from __future__ import annotations

import io

import pandas as pd
from PIL import Image

from curation.scan import scan_dataset
from training.config import AugmentConfig, TrainConfig
from training.data import RESIZED_KIND, resized_images, split_usable, training_data_hash


def test_images_are_resized_once_and_then_read_from_the_cache(tmp_path, small_shoes, cache):
    Image.new("RGB", (40, 30), "red").save(small_shoes / "train" / "nike" / "tiny.png")
    scanned = scan_dataset(small_shoes, reports_dir=tmp_path / "reports", cache=cache)
    rows = split_usable(scanned.table).usable
    images = resized_images(rows, small_shoes, cache=cache, size=96)
    assert set(images) == set(rows["sha256"])
    for row in rows.itertuples():
        with Image.open(io.BytesIO(images[row.sha256])) as image:
            assert image.format == "JPEG"
            expected = (40, 30) if row.path.endswith("tiny.png") else (96, 96)  # shrink only, never enlarge
            assert image.size == expected
    before = cache.stats[RESIZED_KIND].hits
    again = resized_images(rows, small_shoes, cache=cache, size=96)
    assert again == images
    assert cache.stats[RESIZED_KIND].hits - before == len(set(rows["sha256"]))
    assert cache.count(RESIZED_KIND) == len(set(rows["sha256"]))


def test_unreadable_rows_are_set_aside_with_their_reason(tmp_path, small_shoes, cache):
    (small_shoes / "train" / "nike" / "broken.jpg").write_bytes(b"not an image")
    scanned = scan_dataset(small_shoes, reports_dir=tmp_path / "reports", cache=cache)
    rows = split_usable(scanned.table)
    assert list(rows.excluded["path"]) == ["train/nike/broken.jpg"]
    assert rows.excluded["load_error"].str.len().gt(0).all()
    assert len(rows.usable) + len(rows.excluded) == len(scanned.table)


def test_training_data_hash_depends_on_content_and_labels_not_order():
    rows = pd.DataFrame({"sha256": ["a", "b"], "label": ["x", "y"]})
    assert training_data_hash(rows) == training_data_hash(rows.iloc[::-1])
    assert training_data_hash(rows) != training_data_hash(rows.assign(label=["y", "x"]))


def test_a_fixed_seed_gives_the_same_training_run(tmp_path, small_shoes, cache):
    from training.learner import fit_learner

    scanned = scan_dataset(small_shoes, reports_dir=tmp_path / "reports", cache=cache)
    table = scanned.table
    config = TrainConfig(arch="tf_efficientnet_lite0", image_size=64, epochs=1, frozen_epochs=0, threads=1,
                         batch_size=8, augment=AugmentConfig())
    runs = [fit_learner(table[table["split"] == "train"], table[table["split"] == "test"], small_shoes, config,
                        tmp_path / f"run{i}", cache=cache) for i in range(2)]
    assert runs[0].history[0]["train_loss"] == runs[1].history[0]["train_loss"]
    assert runs[0].history[0]["valid_loss"] == runs[1].history[0]["valid_loss"]
