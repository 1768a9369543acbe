import shutil

import pytest

from curation.dataset_source import env_var_for, load_descriptor, resolve_dataset
from curation.errors import DatasetNotFound


@pytest.fixture
def descriptors(tmp_path):
    folder = tmp_path / "descriptors"
    folder.mkdir()
    (folder / "mini.toml").write_text('name = "mini"\nclasses = ["a"]\n[expected_counts.train]\na = 1\n')
    return folder


def _dataset(root):
    (root / "train" / "a").mkdir(parents=True)
    (root / "train" / "a" / "x.jpg").write_bytes(b"x")
    return root


def test_the_shoes_descriptor_matches_the_real_data():
    shoes = load_descriptor("shoes")
    assert shoes.classes == ("adidas", "converse", "nike") and shoes.image_size == (240, 240)
    assert shoes.expected_total() == 825 and shoes.kaggle == "die9origephit/nike-adidas-and-converse-imaged"


def test_resolution_order_explicit_then_environment_then_local_folder(tmp_path, descriptors, monkeypatch):
    explicit = _dataset(tmp_path / "explicit")
    from_env = _dataset(tmp_path / "from_env")
    local = _dataset(descriptors / "mini")
    monkeypatch.setenv(env_var_for("mini"), str(from_env))
    assert resolve_dataset(explicit, descriptor_dir=descriptors).how == "explicit path"
    found = resolve_dataset("mini", descriptor_dir=descriptors)
    assert (found.root, found.how, found.descriptor.name) == (from_env.resolve(), "environment", "mini")
    monkeypatch.delenv(env_var_for("mini"))
    assert resolve_dataset("mini", descriptor_dir=descriptors).root == local.resolve()


def test_when_nothing_works_the_error_names_every_place_tried(descriptors, monkeypatch):
    monkeypatch.setenv(env_var_for("mini"), "/nonexistent/place")
    with pytest.raises(DatasetNotFound) as raised:
        resolve_dataset("mini", descriptor_dir=descriptors)
    message = str(raised.value)
    for place in ("explicit path mini", "$CURATION_MINI_DIR", "/nonexistent/place", "local folder", "download"):
        assert place in message


def test_shoes_download_is_tried_last_and_its_failure_reported(tmp_path, monkeypatch):
    monkeypatch.delenv("CURATION_SHOES_DIR", raising=False)
    descriptors = tmp_path / "d"
    descriptors.mkdir()
    shutil.copyfile(load_descriptor.__globals__["DESCRIPTOR_DIR"] / "shoes.toml", descriptors / "shoes.toml")
    with pytest.raises(DatasetNotFound, match="die9origephit/nike-adidas-and-converse-imaged"):
        resolve_dataset("shoes", descriptor_dir=descriptors)  # no network here: the download fails
