"""The leakage audit on a small copy of the real shoes images with copies planted by the test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from curation.cache import ContentCache
from curation.scan import scan_dataset
from curation.leakage import LeakageParams, audit_leakage, leak_free_ids, write_leakage_report
from curation.leakage.planting import plant_copy
from tests.shoes_data import copy_subset

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def planted(tmp_path_factory, shoes_root):
    """A small shoes subset with known copies: (root, list of (source, copy, kind, cross_split))."""
    root = copy_subset(shoes_root, tmp_path_factory.mktemp("planted") / "shoes", {"train": 5, "test": 3})
    train = {c: sorted((root / "train" / c).iterdir()) for c in ("adidas", "converse", "nike")}
    expected = []

    def plant(source: Path, split: str, label: str, edit: str, stem: str | None = None, kind="near_duplicate"):
        copy = plant_copy(source, root / split / label, edit, stem=stem)
        expected.append((source.relative_to(root).as_posix(), copy.relative_to(root).as_posix(), kind))

    plant(train["adidas"][0], "test", "adidas", "hflip")
    plant(train["adidas"][1], "test", "adidas", "crop_10")
    plant(train["converse"][0], "test", "converse", "jpeg_q30", stem=HOSTILE)
    plant(train["converse"][1], "test", "converse", "png_resave", kind="exact")
    plant(train["nike"][0], "test", "nike", "grayscale")
    plant(train["nike"][0], "test", "nike", "watermark")  # a second copy of one picture: one group
    plant(train["nike"][1], "train", "nike", "downscale_50")  # a copy inside train: not a leak
    conflict = root / "test" / "converse" / "relabelled.jpg"  # same bytes, another label
    shutil.copyfile(train["nike"][2], conflict)
    expected.append((train["nike"][2].relative_to(root).as_posix(), "test/converse/relabelled.jpg", "exact"))
    return root, expected


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    # One cache for the session's leakage tests: the same shoes images are embedded once.
    with ContentCache(tmp_path_factory.getbasetemp() / "leakage-cache") as cache:
        yield cache


@pytest.fixture(scope="module")
def audited(planted, module_cache, tmp_path_factory):
    root, _ = planted
    scanned = scan_dataset(root, reports_dir=tmp_path_factory.mktemp("reports"), cache=module_cache)
    result = audit_leakage(scanned.table, root, cache=module_cache)
    return scanned, result


def _pair(pairs, a, b):
    match = pairs[((pairs["path_a"] == a) & (pairs["path_b"] == b)) | ((pairs["path_a"] == b) & (pairs["path_b"] == a))]
    return match.iloc[0] if len(match) else None


def test_every_planted_copy_is_found_with_its_kind(planted, audited):
    _, expected = planted
    pairs = audited[1].pairs
    for source, copy, kind in expected:
        pair = _pair(pairs, source, copy)
        assert pair is not None, f"{copy} (copy of {source}) not found"
        assert pair["kind"] == kind, (copy, pair["kind"], pair["signal"])
        assert bool(pair["leak"]) == (copy.split("/")[0] != source.split("/")[0])


def test_flipped_copy_is_caught_through_the_mirror_hash(planted, audited):
    _, expected = planted
    source, copy, _ = expected[0]
    pair = _pair(audited[1].pairs, source, copy)
    assert pair["mirrored"] and pair["hash_distance"] <= LeakageParams().hash_strict


def test_clean_images_are_not_flagged(planted, audited):
    _, expected = planted
    involved = {p for s, c, _ in expected for p in (s, c)}
    copies = audited[1].pairs[audited[1].pairs["kind"].isin(["exact", "near_duplicate"])]
    for pair in copies.itertuples():
        assert pair.path_a in involved and pair.path_b in involved, (pair.path_a, pair.path_b, pair.kind, pair.signal)
    planted_copies = {c for _, c, _ in expected}
    spurious = copies[~copies["path_a"].isin(planted_copies) & ~copies["path_b"].isin(planted_copies)]
    assert spurious.empty, spurious[["path_a", "path_b", "kind"]]


def test_copies_of_one_picture_form_one_group(planted, audited):
    _, expected = planted
    pairs = audited[1].pairs
    nike_source = expected[4][0]
    groups = set(pairs.loc[(pairs["path_a"] == nike_source) | (pairs["path_b"] == nike_source), "group"])
    assert len(groups) == 1 and 0 not in groups
    members = pairs[pairs["group"] == groups.pop()]
    assert set(members["path_a"]) | set(members["path_b"]) == {nike_source, expected[4][1], expected[5][1]}


def test_same_picture_under_two_labels_is_a_label_conflict(planted, audited):
    _, expected = planted
    source, copy, _ = expected[-1]
    pair = _pair(audited[1].pairs, source, copy)
    assert pair["label_conflict"] and pair["signal"] == "exact:file"
    assert audited[1].pairs["label_conflict"].sum() == 1


def test_leak_free_view_drops_exactly_the_leaked_test_samples(planted, audited, tmp_path):
    _, expected = planted
    scanned, result = audited
    assert leak_free_ids(tmp_path) is None  # the audit has not run there
    write_leakage_report(result, scanned.table, tmp_path / "leakage", dataset="planted", root=planted[0])
    leaked = {c for s, c, _ in expected if c.startswith("test/")}
    ids = dict(zip(scanned.table["path"], scanned.table["sample_id"]))
    assert leak_free_ids(tmp_path) == {ids[p] for p in leaked}
    view = result.leak_free
    assert len(view) == (scanned.table["split"] == "test").sum()
    assert view.loc[view["drop"], "reason"].str.contains("train").all()


def test_report_opens_in_chromium_shows_every_pair_and_escapes_names(planted, audited, tmp_path):
    from curation.browser import dump_dom

    scanned, result = audited
    out = tmp_path / "leakage"
    summary = write_leakage_report(result, scanned.table, out, dataset="planted", root=planted[0])
    dom = dump_dom(out / "index.html")
    for pair in result.pairs[result.pairs["kind"] != "similar"].itertuples():
        assert f"data-a=\"{pair.sample_id_a}\" data-b=\"{pair.sample_id_b}\"" in dom
    assert dom.count("<tr class=\"pair\"") == len(result.pairs)
    assert "id=\"same-scene\"" in dom and "Same scene: another frame of the same shoot" in dom  # its own section
    assert "&lt;img src=x onerror=alert(1)&gt;" in dom  # the file name is shown as text
    assert "onerror=\"alert(1)\"" not in dom  # and never becomes an element
    assert f"<b id=\"leak-count\">{summary['leaks']['pairs']}</b>" in dom
    assert (out / "similarity_histogram.png").read_bytes()[:4] == b"\x89PNG"
    for name in ("pairs.csv", "summary.json", "summary.md", "leak_free.csv"):
        assert (out / name).stat().st_size > 0


SETTING = {  # real photos from the shoes set, labelled by eye (bench/pairs/shoes_pairs.csv)
    "train/converse/117.jpg": "train",  # a black Chuck Lugged pair on a peach backdrop
    "train/converse/41.jpg": "test",  # the same shoe, alone, in the same shoot: same_scene
    "train/converse/195.jpg": "train",  # a black Pro Leather on the same peach backdrop: similar
    "train/converse/39.jpg": "train",  # a white Chuck Shoreline from above on a grey backdrop
    "train/converse/62.jpg": "test",  # a red Chuck on the same grey backdrop: similar
}


def test_another_frame_of_one_shoot_is_same_scene_and_another_shoe_on_its_backdrop_is_not(shoes_root, tmp_path,
                                                                                          module_cache):
    root = copy_subset(shoes_root, tmp_path / "setting", {"train": 3, "test": 2})
    for source, split in SETTING.items():
        shutil.copyfile(shoes_root / source, root / split / "converse" / f"setting_{Path(source).name}")
    scanned = scan_dataset(root, reports_dir=tmp_path / "reports", cache=module_cache)
    result = audit_leakage(scanned.table, root, cache=module_cache)
    pairs = result.pairs

    scene = _pair(pairs, "train/converse/setting_117.jpg", "test/converse/setting_41.jpg")
    assert scene is not None and scene.kind == "same_scene" and "backdrop" in scene.signal, scene
    assert scene.cross_split and not scene.leak  # counted apart from copies
    assert scene.backdrop >= 0.63 and scene.object_colours >= 0.65
    for a, b in (("train/converse/setting_117.jpg", "train/converse/setting_195.jpg"),
                 ("train/converse/setting_39.jpg", "test/converse/setting_62.jpg")):
        other = _pair(pairs, a, b)
        assert other is None or other.kind == "similar", other  # the backdrop alone makes no scene
    view = result.leak_free.set_index("sample_id")
    ids = dict(zip(scanned.table["path"], scanned.table["sample_id"]))
    assert view.loc[ids["test/converse/setting_41.jpg"], "kind"] == "same_scene"
    assert not view.loc[ids["test/converse/setting_62.jpg"], "drop"]
    assert (pairs["kind"] == "same_scene").sum() == 1, pairs[pairs["kind"] == "same_scene"]

    write_leakage_report(result, scanned.table, tmp_path / "leakage", dataset="setting", root=root)
    html = (tmp_path / "leakage" / "index.html").read_text()
    section = html[html.index("id=same-scene"):html.index("Similar but different")]
    assert "setting_41.jpg" in section and "backdrop patches matched" in section
