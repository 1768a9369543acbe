import shutil

import pandas as pd
import pytest

from curation.scan import scan_dataset
from curation.errors import CurationError
from curation.layout import list_csv_samples, list_folder_samples
from curation.sample_table import SAMPLE_COLUMNS, read_sample_table, sample_id_for


def test_the_real_shoes_set_is_825_readable_240px_images_in_2_splits_by_3_classes(shoes_root, cache, reports_dir):
    scanned = scan_dataset(shoes_root, reports_dir=reports_dir, cache=cache)
    table = scanned.table
    assert list(table.columns) == SAMPLE_COLUMNS
    assert len(table) == 825 and (table["load_error"] == "").all()
    assert set(table["split"]) == {"train", "test"} and set(table["label"]) == {"adidas", "converse", "nike"}
    assert table.groupby("split").size().to_dict() == {"test": 114, "train": 711}
    assert ((table["width"] == 240) & (table["height"] == 240)).all()
    assert set(table["format"]) == {"JPEG"} and set(table["mode"]) == {"RGB"}
    assert table["sample_id"].is_unique  # same file names repeat across classes: ids do not
    stored = read_sample_table(reports_dir / "shoes" / "samples.parquet")
    pd.testing.assert_frame_equal(stored, table)


def test_a_second_scan_of_an_unchanged_dataset_decodes_nothing(small_shoes, cache, reports_dir):
    first = scan_dataset(small_shoes, reports_dir=reports_dir, cache=cache)
    assert (first.stats.probed, first.stats.cached) == (36, 0)
    second = scan_dataset(small_shoes, reports_dir=reports_dir, cache=cache)
    assert (second.stats.probed, second.stats.cached) == (0, 36)
    pd.testing.assert_frame_equal(first.table, second.table)


def test_a_grown_dataset_decodes_only_the_new_images(small_shoes, shoes_root, cache, reports_dir):
    scan_dataset(small_shoes, reports_dir=reports_dir, cache=cache)
    extra = small_shoes / "test_extra" / "nike"
    extra.mkdir(parents=True)
    for name in ("100.jpg", "101.jpg"):
        shutil.copyfile(shoes_root / "train" / "nike" / name, extra / name)
    # A renamed copy of a known image is a cache hit: the cache is keyed by content, not path.
    shutil.copyfile(small_shoes / "train" / "adidas" / "38.jpg", extra / "renamed.jpg")
    grown = scan_dataset(small_shoes, reports_dir=reports_dir, cache=cache)
    assert grown.stats.probed == 2 and len(grown.table) == 39
    assert set(grown.table["split"]) == {"train", "test", "test_extra"}


def test_sample_ids_are_stable_and_rows_keep_identical_files_apart(small_shoes, cache, reports_dir):
    duplicate = small_shoes / "test" / "nike" / "copy_of_38.jpg"
    shutil.copyfile(small_shoes / "train" / "adidas" / "38.jpg", duplicate)
    table = scan_dataset(small_shoes, reports_dir=reports_dir, cache=cache).table.set_index("path")
    assert table.loc["test/nike/copy_of_38.jpg", "sample_id"] == sample_id_for("test/nike/copy_of_38.jpg")
    assert table.loc["test/nike/copy_of_38.jpg", "sha256"] == table.loc["train/adidas/38.jpg", "sha256"]
    assert table.loc["test/nike/copy_of_38.jpg", "pixel_hash"] == table.loc["train/adidas/38.jpg", "pixel_hash"]


def test_pixel_hash_survives_a_lossless_resave_in_another_format(small_shoes, cache, reports_dir):
    from PIL import Image

    source = small_shoes / "train" / "nike" / "38.jpg"
    with Image.open(source) as image:
        image.save(small_shoes / "test" / "nike" / "resaved.png")
    table = scan_dataset(small_shoes, reports_dir=reports_dir, cache=cache).table.set_index("path")
    assert table.loc["test/nike/resaved.png", "sha256"] != table.loc["train/nike/38.jpg", "sha256"]
    assert table.loc["test/nike/resaved.png", "pixel_hash"] == table.loc["train/nike/38.jpg", "pixel_hash"]


def test_any_folder_per_class_layout_with_any_split_names(tmp_path, shoes_root):
    for split in ("train", "val", "test_extra"):
        target = tmp_path / "data" / split / "converse"
        target.mkdir(parents=True)
        shutil.copyfile(shoes_root / "train" / "converse" / "40.jpg", target / "a.jpg")
    entries = list_folder_samples(tmp_path / "data")
    assert [(e.split, e.label) for e in entries] == [("test_extra", "converse"), ("train", "converse"), ("val", "converse")]


def test_a_folder_without_split_and_class_folders_is_a_clear_error(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.jpg").write_bytes(b"x")
    with pytest.raises(CurationError, match="<split>/<class>/<image>"):
        list_folder_samples(tmp_path / "flat")


def test_csv_layout(tmp_path, shoes_root, cache, reports_dir):
    images = tmp_path / "pile"
    images.mkdir()
    shutil.copyfile(shoes_root / "train" / "nike" / "38.jpg", images / "one.jpg")
    shutil.copyfile(shoes_root / "test" / "adidas" / "0.jpg", images / "two.jpg")
    csv = tmp_path / "labels.csv"
    csv.write_text(f"path,split,label\npile/one.jpg,train,nike\n{images / 'two.jpg'},test,adidas\n")
    assert [e.path for e in list_csv_samples(csv)] == ["pile/one.jpg", "pile/two.jpg"]
    scanned = scan_dataset(tmp_path, csv=csv, name="pile", reports_dir=reports_dir, cache=cache)
    assert scanned.table[["split", "label"]].values.tolist() == [["train", "nike"], ["test", "adidas"]]
    (tmp_path / "bad.csv").write_text("file,label\nx.jpg,nike\n")
    with pytest.raises(CurationError, match="lacks the column"):
        list_csv_samples(tmp_path / "bad.csv")
