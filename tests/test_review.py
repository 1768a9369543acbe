"""The FiftyOne review dataset, on FiftyOne's real MongoDB (a throw-away folder, see conftest)."""

import os
import shutil
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from curation.checks import get_check
from curation.scan import scan_dataset
from curation.scan.report import write_integrity_report
from curation.localhost import free_port
from curation.review import build_review
from curation.review.views import saved_view_definitions

VIEWS = {"still-wrong", "consensus-hard", "leaks", "label-issues", "extended-test-wrong"}


def scan_and_check(root, reports_dir, cache):
    scanned = scan_dataset(root, reports_dir=reports_dir, cache=cache)
    write_integrity_report(scanned, get_check("integrity")(scanned.table))
    return scanned


@pytest.fixture
def review_data(small_shoes):
    (small_shoes / "test" / "nike" / "broken.jpg").write_bytes(b"no picture here")
    Image.open(small_shoes / "train" / "adidas" / "38.jpg").convert("L").save(small_shoes / "train" / "adidas" / "gray.jpg")
    return small_shoes


def test_the_dataset_holds_one_sample_per_row_with_the_review_fields(review_data, cache, reports_dir):
    import fiftyone as fo

    scanned = scan_and_check(review_data, reports_dir, cache)
    result = build_review(scanned, name="review-fields", cache=cache)
    dataset = fo.load_dataset("review-fields")
    assert dataset.persistent and len(dataset) == len(scanned.table) == 38
    schema = dataset.get_field_schema()
    for field in ("curation_id", "ground_truth", "split", "integrity_codes", "is_leak", "predictions",
                  "label_issue", "uniqueness"):
        assert field in schema, field
    by_path = {os.path.basename(s.filepath): s for s in dataset.match_tags("test")}
    assert by_path["broken.jpg"].integrity_codes == ["not_an_image"] and by_path["broken.jpg"].integrity_severity == "error"
    gray = dataset.match(fo.ViewField("filepath").ends_with("gray.jpg")).first()
    assert gray.integrity_codes == ["grayscale"] and gray.ground_truth.label == "adidas"
    assert sorted(dataset.count_sample_tags().items()) == [("test", 13), ("train", 25)]
    assert set(dataset.list_saved_views()) == VIEWS and set(result.views) == VIEWS
    assert {"uniqueness", "similarity", "umap"} <= set(dataset.list_brain_runs())
    uniqueness = np.array(dataset.exists("uniqueness").values("uniqueness"))
    assert len(uniqueness) == 37 and uniqueness.min() >= 0 and uniqueness.max() <= 1 and uniqueness.std() > 0


def test_rerunning_updates_in_place_without_duplicates(review_data, cache, reports_dir):
    import fiftyone as fo

    scanned = scan_and_check(review_data, reports_dir, cache)
    first = build_review(scanned, name="review-rerun", cache=cache, embeddings=False)
    second = build_review(scanned, name="review-rerun", cache=cache, embeddings=False)
    assert (first.sync["added"], second.sync["added"], second.sync["removed"]) == (38, 0, 0)
    dataset = fo.load_dataset("review-rerun")
    assert len(dataset) == 38 and len(set(dataset.values("curation_id"))) == 38
    assert dataset.count_sample_tags() == {"test": 13, "train": 25}  # tags replaced, not appended

    (review_data / "test" / "nike" / "broken.jpg").unlink()
    shutil.copyfile(review_data / "train" / "nike" / "38.jpg", review_data / "test" / "nike" / "new.jpg")
    third = build_review(scan_and_check(review_data, reports_dir, cache), name="review-rerun", embeddings=False)
    assert (third.sync["added"], third.sync["removed"], third.samples) == (1, 1, 38)
    assert len(fo.load_dataset("review-rerun").match(fo.ViewField("integrity_severity") == "error")) == 0




def _wait_for_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def test_fiftyone_app_launch_serves_the_persistent_dataset_in_chromium(review_data, cache, reports_dir, tmp_path):
    from curation.browser import dump_dom, screenshot

    build_review(scan_and_check(review_data, reports_dir, cache), name="review-app", embeddings=False)
    port = free_port()
    app = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "fiftyone"), "app", "launch", "review-app",
         "--remote", "--address", "127.0.0.1", "--port", str(port),
         # a remote App exits 3 s after its last tab closes; the screenshot and the DOM dump are two tabs
         "--wait", "-1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy(), start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/datasets/review-app"
        _wait_for_http(f"http://127.0.0.1:{port}/", timeout=120)
        png = screenshot(url, tmp_path / "app.png", virtual_time_budget_ms=15000, timeout=120)
        pixels = np.asarray(Image.open(png).convert("L"), dtype=float)
        assert pixels.std() > 10  # not a blank page
        assert "review-app" in dump_dom(url, virtual_time_budget_ms=15000, timeout=120)
    finally:
        os.killpg(app.pid, 15)
        app.wait(timeout=60)


def test_views_are_defined_for_any_dataset():
    import fiftyone as fo

    dataset = fo.Dataset()
    assert set(saved_view_definitions(dataset)) == VIEWS
