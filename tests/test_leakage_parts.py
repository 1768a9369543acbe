"""The audit's parts on their own: search indexes, mirror-aware hashes, the check registry."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from curation.checks import get_check
from curation.checks.base import CheckContext
from curation.scan import scan_dataset
from curation.leakage.fuse import copy_groups
from curation.leakage.perceptual import compute_hashes, hash_candidate_pairs, hash_distances
from curation.leakage.planting import plant_copy
from curation.leakage.similarity import neighbour_pairs


def _clustered_vectors(n_clusters=60, per_cluster=3, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim))
    vectors = np.repeat(centres, per_cluster, axis=0) + rng.normal(scale=0.05, size=(n_clusters * per_cluster, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    splits = ["train", "test", "train"] * n_clusters
    return vectors.astype("float32"), splits


def test_approximate_index_finds_the_same_close_pairs_as_the_exact_one():
    vectors, splits = _clustered_vectors()
    valid = np.ones(len(vectors), dtype=bool)
    exact = neighbour_pairs(vectors, valid, splits, k=3, exact_limit=10_000, split_order=["train", "test"])
    approx = neighbour_pairs(vectors, valid, splits, k=3, exact_limit=10, split_order=["train", "test"])
    assert set(approx.index_kind.values()) == {"ivf"} and set(exact.index_kind.values()) == {"flat"}
    close = lambda r: {tuple(p) for p, s in zip(r.pairs, r.cosine) if s > 0.9}
    assert close(exact) == close(approx)
    assert len(close(exact)) == 60 * 3  # every pair inside each cluster of three
    # each test vector's nearest train vector is its cluster-mate
    test = np.flatnonzero(np.array(splits) == "test")
    assert np.all(exact.nearest_across[test] > 0.9)
    assert np.isnan(exact.nearest_across[np.array(splits) == "train"]).all()


@pytest.mark.parametrize("graph_above_cells, one_level_up_to", [(0, 10**6), (10**6, 16)],
                         ids=["hnsw-quantizer", "exact-quantizer-two-level-kmeans"])
def test_bounded_cell_index_scans_few_cells_and_answers_each_query_in_its_own_row(graph_above_cells, one_level_up_to,
                                                                                  monkeypatch):
    import faiss

    from curation.leakage import cell_index
    from curation.leakage.similarity import build_index, search

    monkeypatch.setattr(cell_index, "GRAPH_QUANTIZER_ABOVE_CELLS", graph_above_cells)
    monkeypatch.setattr(cell_index, "ONE_LEVEL_KMEANS_UP_TO_CELLS", one_level_up_to)
    monkeypatch.setattr(cell_index, "QUERY_BLOCK", 128)  # several blocks, sorted and put back
    monkeypatch.setattr(cell_index, "SCORES_PER_PRODUCT", 512)  # several products per cell

    rng = np.random.default_rng(1)
    centres = rng.normal(size=(300, 32))
    vectors = np.repeat(centres, 8, axis=0) + rng.normal(scale=0.1, size=(2400, 32))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype("float32")
    approx = build_index(vectors, exact_limit=10, cell_size=16)
    assert 140 <= approx.cells <= 160 and approx.probes < approx.cells / 4  # most cells are never scanned
    assert np.bincount(approx.own_probes[:, 0], minlength=approx.cells).max() < 100  # no giant cell
    assert isinstance(approx.quantizer, faiss.IndexHNSWFlat) == (graph_above_cells == 0)
    assert sorted(approx.ids) == list(range(2400))  # every vector stored once
    queries = vectors[rng.permutation(len(vectors))[:500]]  # in no particular cell order
    exact_sims, exact_labels = search(build_index(vectors, exact_limit=10**6), queries, 4)
    sims, labels = search(approx, queries, 4)
    own_sims, own_labels = search(approx, vectors, 4, own=True)  # the stored cells of the indexed vectors
    assert np.mean(own_labels[:, 0] == np.arange(len(vectors))) > 0.99 and np.allclose(own_sims[:, 0], 1, atol=1e-5)
    found = np.mean([len(set(a) & set(b)) / 4 for a, b in zip(labels, exact_labels)])
    assert found > 0.98  # rows come back in the queries' order (a mix-up would find almost nothing)
    assert np.all(labels >= 0) and all(len(set(row)) == 4 for row in labels)  # no vector twice
    assert np.allclose(sims[labels == exact_labels], exact_sims[labels == exact_labels], atol=1e-5)
    assert np.allclose(sims, np.einsum("ij,ikj->ik", queries, vectors[labels]), atol=1e-5)  # exact float32 scores
    assert np.all(np.diff(sims, axis=1) <= 0)


def test_cell_index_keeps_k_per_query_among_identical_vectors_and_marks_missing_ones():
    """Ties everywhere (one picture many times) still give k distinct neighbours, and an index
    holding fewer than k vectors answers with the ones it holds rather than made-up neighbours."""
    from curation.leakage.cell_index import CellIndex

    same = np.tile(np.eye(1, 16, dtype="float32"), (600, 1))
    index = CellIndex(same, cell_size=16)
    sims, labels = index.search(same[:50], 5)
    assert np.allclose(sims, 1.0) and np.all(labels >= 0) and all(len(set(row)) == 5 for row in labels)
    few = CellIndex(np.eye(3, 16, dtype="float32"), cell_size=1)  # three cells of one vector each
    sims, labels = few.search(np.eye(3, 16, dtype="float32"), 5)
    assert labels.shape == (3, 3)  # k is capped at the vectors held
    assert np.array_equal(labels[:, 0], [0, 1, 2]) and np.allclose(sims[:, 0], 1.0)


def test_mirror_hash_matches_a_flipped_copy_that_the_plain_hash_misses(tmp_path, shoes_root, cache):
    source = sorted((shoes_root / "train" / "converse").iterdir())[3]
    root = tmp_path / "data"
    (root / "train" / "converse").mkdir(parents=True)
    Image.open(source).save(root / "train" / "converse" / "a.jpg")
    plant_copy(source, root / "test" / "converse", "hflip", stem="b")
    table = scan_dataset(root, reports_dir=tmp_path / "reports", cache=cache).table
    hashes = compute_hashes(table, root, cache=cache, methods=("phash", "dhash"))
    distance, mirrored = hash_distances(hashes, np.array([0]), np.array([1]))
    plain = np.unpackbits(hashes.codes["phash"][0] ^ hashes.codes["phash"][1]).sum()
    assert distance[0] <= 4 and mirrored[0] and plain > 10
    assert {tuple(p) for p in hash_candidate_pairs(hashes, 4)} == {(0, 1)}
    assert cache.count("perceptual_hash") == 2 * 2  # two images, two methods, cached
    again = compute_hashes(table, root, cache=cache, methods=("phash", "dhash"))
    assert again.computed == 0


def test_copy_groups_are_connected_components():
    groups = copy_groups(6, np.array([[0, 1], [1, 2], [4, 5]]))
    assert groups[0] == groups[1] == groups[2] != groups[4] == groups[5]
    assert groups[3] == -1


def test_duplicate_checks_in_the_registry(small_shoes, tmp_path, tmp_path_factory):
    import shutil

    from curation.cache import ContentCache

    cache = ContentCache(tmp_path_factory.getbasetemp() / "leakage-cache")  # shared: images embedded once

    train = sorted((small_shoes / "train" / "nike").iterdir())
    shutil.copyfile(train[0], small_shoes / "train" / "nike" / "again.jpg")  # within train: a warning
    plant_copy(train[1], small_shoes / "test" / "nike", "jpeg_q30")  # across: an error
    (small_shoes / "test" / "nike" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    scanned = scan_dataset(small_shoes, reports_dir=tmp_path / "reports", cache=cache)
    context = CheckContext(small_shoes, "small_shoes", None, cache)
    exact = get_check("exact_duplicates")(scanned.table, context=context)
    assert exact.counts_by_code() == {"exact": 1} and exact.count("warning") == 1
    leakage = get_check("leakage")(scanned.table, context=context)
    assert leakage.counts_by_code() == {"leak_near_duplicate": 1} and leakage.count("error") == 1
    assert leakage.findings["path"].iloc[0].endswith("_jpeg_q30.jpg")
    assert leakage.summary["samples_to_drop"] == 1
    near = get_check("near_duplicates")(scanned.table, context=context)
    assert near.count() == 1
    with pytest.raises(Exception, match="CheckContext"):
        get_check("leakage")(scanned.table, context=None)
    cache.close()


def test_unreadable_files_are_compared_by_bytes_and_never_crash_the_audit(tmp_path, cache):
    from curation.leakage import audit_leakage

    root = tmp_path / "broken"
    for split in ("train", "test"):
        (root / split / "nike").mkdir(parents=True)
        (root / split / "nike" / "same.jpg").write_bytes(b"\xff\xd8 truncated")
    (root / "test" / "nike" / "other.jpg").write_bytes(b"not an image at all")
    table = scan_dataset(root, reports_dir=tmp_path / "reports", cache=cache).table
    assert (table["load_error"] != "").all()
    result = audit_leakage(table, root, cache=cache)
    assert len(result.pairs) == 1
    pair = result.pairs.iloc[0]
    assert pair["signal"] == "exact:file" and pair["leak"]
    assert result.leak_free["drop"].sum() == 1 and len(result.leak_free) == 2


def test_derived_mirror_keypoints_match_a_detection_on_the_flipped_pixels(shoes_root):
    from curation.leakage.verify import CANONICAL_SIDE, MIRROR_BINS, _resize_long_side

    for index in (5, 40, 77):
        gray = np.asarray(Image.open(sorted((shoes_root / "train" / "nike").iterdir())[index]).convert("L"))
        _assert_mirror_matches_flipped_detection(_resize_long_side(gray, CANONICAL_SIDE))
    assert sorted(MIRROR_BINS) == list(range(128))


def _assert_mirror_matches_flipped_detection(gray):
    import cv2

    from curation.leakage.verify import _sift_features, _split

    _, (mirror_points, mirror_descriptors) = _split(_sift_features(gray, 500))
    detected_points, detected_descriptors = _split(_sift_features(np.ascontiguousarray(gray[:, ::-1]), 500))[0]
    matcher = cv2.BFMatcher(cv2.NORM_L2, crossCheck=True)
    matches = matcher.match(mirror_descriptors, detected_descriptors)
    close = [m for m in matches if m.distance < 1e-3]
    assert len(close) > 0.6 * len(mirror_descriptors)  # identical descriptors (a wrong permutation: none)
    offsets = [detected_points[m.trainIdx, 0] - mirror_points[m.queryIdx, 0] for m in close]
    assert np.ptp(offsets) < 0.01  # the same keypoints up to one shift of x (the derived ones negate x)
    assert np.allclose([detected_points[m.trainIdx, 1] for m in close], [mirror_points[m.queryIdx, 1] for m in close])
