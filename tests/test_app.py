"""The app as a user meets it: a real server on 127.0.0.1, started by the test, serving a real
(tiny) model trained on real shoes images, called over HTTP and from Chromium."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from curation.localhost import free_port
from tests.foreign_images import _as_rgb, not_available_graphic
from tests.odd_images import odd_files
from tests.shoes_data import PROJECT_ROOT, copy_subset

REFUSED = {"empty.jpg": 400, "truncated.jpg": 400, "not_an_image.jpg": 415, "notes.txt": 415, "huge.png": 413,
           "bomb.png": 413}




def _jpeg(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=options.pop("quality", 90), **options)
    return buffer.getvalue()


class Server:
    def __init__(self, argv: list[str], cwd: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "CURATION_PROGRESS": "0"}
        self.process = subprocess.Popen([*argv, "--port", str(self.port)], cwd=cwd, env=env,
                                        stdout=log.open("w"), stderr=subprocess.STDOUT)
        deadline, self.log = time.monotonic() + 240, log
        while time.monotonic() < deadline:
            assert self.process.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.5)
        raise AssertionError("the app did not start: " + log.read_text()[-3000:])

    def predict(self, content: bytes, name: str = "photo.jpg") -> httpx.Response:
        return httpx.post(self.url + "/api/predict", files={"file": (name, content)}, timeout=60)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def served(tmp_path_factory, shoes_root):
    """A tiny model trained by `curation run` on 8 train + 4 test real shoes per class, and its app."""
    from curation.__main__ import main as curation_main

    base = tmp_path_factory.mktemp("app")
    data = copy_subset(shoes_root, base / "minishoes", {"train": 8, "test": 4})
    argv = ["run", str(data), "--reports-dir", str(base / "reports"), "--cache-dir", str(base / "cache"),
            "--image-size", "64", "--epochs", "1", "--frozen-epochs", "0", "--threads", "1",
            "--stages", "scan,train,evaluate,slices"]
    assert curation_main(argv) == 0
    before = sorted((p.relative_to(data).as_posix(), p.stat().st_size) for p in data.rglob("*"))
    server = Server([sys.executable, "-m", "curation.app", str(data), "--reports-dir", str(base / "reports"),
                     "--cache-dir", str(base / "cache"), "--max-upload-mb", "2"], PROJECT_ROOT, base / "app.log")
    yield server, data, base
    server.stop()
    after = sorted((p.relative_to(data).as_posix(), p.stat().st_size) for p in data.rglob("*"))
    assert after == before  # nothing was ever written into the dataset


def test_a_new_shoe_photo_gets_calibrated_probabilities_a_set_and_its_evidence(served, shoes_root):
    server, data, _ = served
    answer = server.predict((shoes_root / "test" / "nike" / "30.jpg").read_bytes()).json()  # not in the subset
    classes = ["adidas", "converse", "nike"]
    assert answer["label"] in classes and sorted(answer["probabilities"]) == classes
    assert abs(sum(answer["probabilities"].values()) - 1) < 1e-3
    assert answer["label"] in answer["prediction_set"] and answer["coverage"] == 0.95
    assert max(answer["probabilities"], key=answer["probabilities"].get) == answer["label"]
    assert len(answer["nearest"]) == 5 and all(n["path"].startswith("train/") for n in answer["nearest"])
    assert all(n["label"] in classes and -1 <= n["similarity"] <= 1 for n in answer["nearest"])
    assert answer["no_class"] is False and answer["copy_of"] is None
    model = answer["model"]
    assert model["arch"] == "tf_efficientnet_lite2" and model["classes"] == classes
    assert model["calibration"]["temperature"] > 0 and model["calibration"]["n"] == 12
    assert answer["verdict"]["level"] in ("trust", "unsure")
    thumbnail = httpx.get(server.url + f"/api/reference/{answer['nearest'][0]['sample_id']}")
    assert thumbnail.status_code == 200 and Image.open(io.BytesIO(thumbnail.content)).width <= 160


def test_a_copy_of_a_training_photo_is_named(served):
    server, data, _ = served
    original = sorted((data / "train" / "adidas").iterdir())[0]
    relative = original.relative_to(data).as_posix()
    exact = server.predict(original.read_bytes()).json()
    assert exact["copy_of"]["path"] == relative and exact["copy_of"]["kind"] == "exact"
    assert exact["copy_of"]["split"] == "train" and "trained on it" in " ".join(exact["verdict"]["reasons"])
    image = Image.open(original).convert("RGB")
    w, h = image.size
    edited = image.crop((int(0.06 * w), int(0.06 * h), int(0.94 * w), int(0.94 * h))).resize((200, 200))
    near = server.predict(_jpeg(edited, quality=70)).json()
    assert near["copy_of"] is not None and near["copy_of"]["path"] == relative
    assert near["copy_of"]["kind"] == "near_duplicate" and near["verdict"]["level"] == "unsure"


def test_photos_of_other_things_are_flagged_no_class(served):
    import skimage.data

    server, _, _ = served
    others = {name: _as_rgb(getattr(skimage.data, name)()) for name in ("astronaut", "coffee", "rocket")}
    others["not available"] = not_available_graphic()
    for name, image in others.items():
        answer = server.predict(_jpeg(image)).json()
        assert answer["no_class"] is True, (name, answer["no_class_score"])
        assert answer["verdict"]["level"] == "do not trust"


def test_every_bad_file_gets_a_clear_4xx_and_the_server_stays_up(served):
    server, _, _ = served
    for name, (content, _) in odd_files().items():
        response = server.predict(content, name)
        expected = REFUSED.get(name, 200)
        assert response.status_code == expected, (name, response.status_code, response.text[:300])
        if expected != 200:
            assert "Traceback" not in response.text and response.json()["error"], name
        assert httpx.get(server.url + "/api/health").status_code == 200
    oversized = server.predict(b"\xff\xd8" + os.urandom(2 * 2**20 + 10))
    assert oversized.status_code == 413 and "limit" in oversized.json()["error"]
    missing = httpx.post(server.url + "/api/predict", timeout=30)
    assert missing.status_code == 400 and "multipart field 'file'" in missing.json()["error"]


def test_odd_but_readable_photos_are_read_as_training_read_them(served, shoes_root):
    server, _, _ = served
    upright = Image.open(shoes_root / "test" / "converse" / "30.jpg").convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view": the pixels are stored turned the other way
    stored = _jpeg(upright.transpose(Image.Transpose.ROTATE_90), exif=exif, quality=95)
    turned = server.predict(stored).json()
    plain = server.predict(_jpeg(upright, quality=95)).json()
    assert any("turned upright" in note for note in turned["notes"])
    assert turned["label"] == plain["label"]
    assert max(abs(turned["probabilities"][c] - plain["probabilities"][c]) for c in plain["probabilities"]) < 0.05
    cmyk = server.predict(odd_files()["cmyk.jpg"][0]).json()
    assert any("CMYK" in note for note in cmyk["notes"])
    assert any("first frame" in note for note in server.predict(odd_files()["animated.gif"][0]).json()["notes"])


def test_feedback_is_kept_beside_the_reports_once(served, shoes_root):
    from curation.cache import ContentCache
    from curation.scan import scan_dataset

    server, data, base = served
    photo = (shoes_root / "test" / "adidas" / "33.jpg").read_bytes()
    first = httpx.post(server.url + "/api/feedback", files={"file": ("mine.jpg", photo)}, data={"label": "converse"})
    assert first.status_code == 200 and first.json()["stored"] is True
    kept = Path(first.json()["path"])
    assert kept.parent == base / "feedback" / data.name / "converse" and kept.with_suffix(".json").is_file()
    again = httpx.post(server.url + "/api/feedback", files={"file": ("again.jpg", photo)}, data={"label": "converse"})
    assert again.json() == {"stored": False, "duplicate_of": str(kept), "label": "converse"}
    resized = _jpeg(Image.open(io.BytesIO(photo)).convert("RGB").resize((180, 180)), quality=75)
    copy = httpx.post(server.url + "/api/feedback", files={"file": ("copy.jpg", resized)}, data={"label": "converse"})
    assert copy.json()["stored"] is False
    bad = httpx.post(server.url + "/api/feedback", files={"file": ("x.jpg", photo)}, data={"label": "puma"})
    assert bad.status_code == 400 and "one of adidas, converse, nike" in bad.json()["error"]
    assert len(list((base / "feedback").rglob("*.jpg"))) == 1
    with ContentCache(base / "cache") as cache:  # the audit reads the folder as the split `feedback`
        table = scan_dataset(str(data), reports_dir=base / "reports", cache=cache).table
    assert table.loc[table["split"] == "feedback", "label"].tolist() == ["converse"]


def test_the_page_shows_a_result_in_chromium(served, tmp_path):
    from curation.browser import dump_dom, screenshot, screenshot_after_upload

    server, _, _ = served
    answer = server.predict(sorted((served[1] / "test" / "nike").iterdir())[0].read_bytes()).json()
    example = answer["copy_of"]["sample_id"]
    dom = dump_dom(f"{server.url}/?example={example}", virtual_time_budget_ms=20000, timeout=120)
    assert f'id="label">{answer["label"]}<' in dom
    assert "Prediction set at 95%" in dom and "Nearest training images" in dom and "Wrong? It is:" in dom
    png = screenshot(f"{server.url}/?example={example}", tmp_path / "page.png", virtual_time_budget_ms=20000)
    assert np.asarray(Image.open(png).convert("L")).std() > 10  # a page with content drawn, not a blank window
    # a person's upload: the page's own file input, driven through the DevTools protocol
    photo = tmp_path / "upload.jpg"
    photo.write_bytes(_jpeg(not_available_graphic()))
    uploaded = screenshot_after_upload(server.url, photo, tmp_path / "upload.png")
    pixels = np.asarray(Image.open(uploaded).convert("RGB")).astype(int)
    red_badge = (abs(pixels[..., 0] - 0xF8) < 6) & (abs(pixels[..., 1] - 0xD7) < 6) & (abs(pixels[..., 2] - 0xD7) < 6)
    assert red_badge.sum() > 200  # the "do not trust" badge is drawn beside the answer


def test_export_runs_from_another_folder(served, tmp_path, shoes_root):
    from curation.app.__main__ import main

    _, data, base = served
    target = tmp_path / "exported"
    assert main([str(data), "--reports-dir", str(base / "reports"), "--cache-dir", str(base / "cache"),
                 "--export", str(target)]) == 0
    assert {"app.py", "requirements.txt", "src", "data", "reports", "cache"} <= {p.name for p in target.iterdir()}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env_path = os.environ.get("PYTHONPATH")
    os.environ.pop("PYTHONPATH", None)
    try:
        exported = Server([sys.executable, str(target / "app.py")], elsewhere, tmp_path / "exported.log")
    finally:
        if env_path is not None:
            os.environ["PYTHONPATH"] = env_path
    try:
        answer = exported.predict((shoes_root / "test" / "nike" / "30.jpg").read_bytes()).json()
        assert answer["label"] in ("adidas", "converse", "nike") and len(answer["nearest"]) == 5
        assert httpx.get(exported.url + "/api/health").json()["code"] == str(target / "src" / "curation")
    finally:
        exported.stop()


def test_the_fast_forward_equals_the_evaluation_predictions(served):
    """No per-call DataLoader, OpenVINO when the model converts: the same probabilities as evaluation's."""
    import pandas as pd

    from curation.app.model_runner import ModelRunner
    from curation.image_io import load_rgb
    from training.export import load_trained

    _, data, base = served
    model_dir, metadata, learn = load_trained(None, base / "reports" / data.name)
    predictions = pd.read_parquet(model_dir / "predictions.parquet")
    runner = ModelRunner(learn, metadata["image_size"])
    assert runner.backend == "openvino"
    ours = np.exp(runner.log_probs([load_rgb(data / p) for p in predictions["path"]]))
    expected = predictions[[f"p_{c}" for c in metadata["classes"]]].to_numpy()
    assert np.abs(ours - expected).max() < 1e-3


def test_concurrent_photos_get_the_same_answers_as_one_at_a_time(served, shoes_root):
    from concurrent.futures import ThreadPoolExecutor

    server, _, _ = served
    photos = [(shoes_root / "test" / label / "31.jpg").read_bytes() for label in ("adidas", "converse", "nike")]
    alone = [server.predict(p).json()["probabilities"] for p in photos]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(lambda p: server.predict(p), photos * 2))
        health = pool.submit(httpx.get, server.url + "/api/health", timeout=30).result()
    assert health.status_code == 200 and all(r.status_code == 200 for r in together)
    for position, response in enumerate(together):
        assert response.json()["probabilities"] == alone[position % 3]
