import shutil

import numpy as np

from curation.scan import scan_dataset
from curation.embeddings import compute_embeddings


def test_embeddings_are_cached_aligned_and_nan_for_unreadable_rows(small_shoes, cache, reports_dir):
    shutil.copyfile(small_shoes / "train" / "nike" / "38.jpg", small_shoes / "test" / "nike" / "copy.jpg")
    (small_shoes / "test" / "nike" / "broken.jpg").write_bytes(b"not an image")
    table = scan_dataset(small_shoes, reports_dir=reports_dir, cache=cache).table
    first = compute_embeddings(table, small_shoes, cache=cache)
    assert first.vectors.shape == (38, 1280) and first.computed == 36  # the copy shares its original's vector
    by_path = dict(zip(table["path"], first.normalized()))
    assert np.isnan(by_path["test/nike/broken.jpg"]).all()
    np.testing.assert_allclose(by_path["test/nike/copy.jpg"], by_path["train/nike/38.jpg"])
    different = float(by_path["train/nike/38.jpg"] @ by_path["train/adidas/38.jpg"])
    assert different < 0.95
    again = compute_embeddings(table, small_shoes, cache=cache)
    assert again.computed == 0 and again.source == "cache"
    np.testing.assert_array_equal(again.vectors, first.vectors)


def test_two_backbones_side_by_side_weigh_the_same_and_keep_unreadable_rows_nan(small_shoes, cache, reports_dir):
    from curation.embeddings import combined_vectors

    (small_shoes / "test" / "nike" / "broken.jpg").write_bytes(b"not an image")
    table = scan_dataset(small_shoes, reports_dir=reports_dir, cache=cache).table
    both = combined_vectors(table, small_shoes, cache=cache, spec="tf_efficientnet_lite0, tf_efficientnet_lite1")
    assert both.shape == (37, 1280 + 1280)
    broken = (table["path"] == "test/nike/broken.jpg").to_numpy()
    assert np.isnan(both[broken]).all() and not np.isnan(both[~broken]).any()
    halves = np.linalg.norm(both[~broken, :1280], axis=1), np.linalg.norm(both[~broken, 1280:], axis=1)
    np.testing.assert_allclose(halves[0], np.sqrt(0.5), rtol=1e-5)
    np.testing.assert_allclose(halves[1], np.sqrt(0.5), rtol=1e-5)
    lite0 = compute_embeddings(table, small_shoes, cache=cache)  # the first half is lite0's own direction
    assert lite0.computed == 0
    np.testing.assert_allclose(both[~broken, :1280] * np.sqrt(2), lite0.normalized()[~broken], atol=1e-5)
