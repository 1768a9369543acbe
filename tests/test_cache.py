import numpy as np

from curation.cache import ContentCache


def test_values_are_keyed_by_content_kind_and_parameters(tmp_path):
    with ContentCache(tmp_path) as cache:
        cache.put_many("probe", {"v": 1}, {"aa": {"w": 3}})
        cache.put_many("embedding", {"model": "m"}, {"aa": np.arange(4, dtype="float32")}, fmt="npy")
        assert cache.get_many("probe", {"v": 1}, ["aa", "bb"]) == {"aa": {"w": 3}}
        assert cache.get_many("probe", {"v": 2}, ["aa"]) == {}  # other parameters: recomputed
        np.testing.assert_array_equal(cache.get_many("embedding", {"model": "m"}, ["aa"])["aa"], np.arange(4))
        assert (cache.stats["probe"].hits, cache.stats["probe"].misses) == (1, 2)


def test_the_cache_persists_across_processes(tmp_path):
    with ContentCache(tmp_path) as cache:
        cache.put_many("resized", {"size": 8}, {"cc": b"\xff\xd8jpeg"}, fmt="bytes")
    with ContentCache(tmp_path) as reopened:
        assert reopened.get_many("resized", {"size": 8}, ["cc"]) == {"cc": b"\xff\xd8jpeg"}
        assert reopened.count("resized") == 1
