"""The drawn scrape report opens in headless Chromium and shows every rejected duplicate next to the
image it duplicates, the kept images, the other rejections, and hostile names only as text."""

from __future__ import annotations

import base64
import io
import shutil

import numpy as np
from bs4 import BeautifulSoup
from PIL import Image, ImageOps

from curation.browser import dump_dom
from curation.html_pages import thumbnail_data_uri
from curation.scrape.__main__ import main
from tests.scrape_site import LocalSite, encode, make_picture, read_manifest

HOSTILE_FILE = "<img src=x onerror=alert(1)>.jpg"
HOSTILE_QUERY = "?q=<script>document.body.setAttribute('data-pwned','1')</script>"


def _decode_uri(uri: str) -> Image.Image:
    assert uri.startswith("data:image/jpeg;base64,"), uri[:40]
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB")


def _looks_like(uri: str, picture: Image.Image) -> bool:
    shown = _decode_uri(uri)
    expected = ImageOps.pad(picture.convert("RGB"), (240, 240), color=(255, 255, 255)).resize(shown.size)
    return float(np.abs(np.asarray(shown, float) - np.asarray(expected, float)).mean()) < 12


def test_report_shows_each_duplicate_beside_its_original_and_hostile_text_as_text(small_shoes, shoes_root, tmp_path):
    hostile = small_shoes / "train" / "adidas" / HOSTILE_FILE
    shutil.copyfile(sorted((shoes_root / "train" / "converse").iterdir())[-1], hostile)
    test_file = sorted((small_shoes / "test" / "nike").iterdir())[0]
    pictures = {i: make_picture(500 + i) for i in range(3)}
    with LocalSite() as site:
        urls = [site.add(f"/img/ok{i}.jpg", encode(p)) for i, p in pictures.items()]
        duplicates = {  # url -> (reason, what it duplicates, the candidate picture)
            site.add("/img/copy.jpg", hostile.read_bytes()) + HOSTILE_QUERY:
                ("duplicate_exact", f"train/adidas/{HOSTILE_FILE}", Image.open(hostile)),
            site.add("/img/mirror.jpg", encode(ImageOps.mirror(pictures[1]))):
                ("duplicate_near", None, ImageOps.mirror(pictures[1])),
            site.add("/img/test-big.jpg", encode(Image.open(test_file).convert("RGB").resize((400, 400)))):
                ("duplicate_near", f"test/nike/{test_file.name}", Image.open(test_file)),
        }
        others = {site.url("/fault/404") + "?<b id=pwned404>x</b>": "http_error",
                  site.url("/fault/html-as-image.jpg"): "not_an_image",
                  site.add("/img/small.jpg", encode(make_picture(9, size=(60, 50)))): "too_small"}
        url_file = tmp_path / "adidas.txt"
        url_file.write_text("\n".join([*urls, *duplicates, *others]) + "\n")
        code = main([str(small_shoes), "--classes", "adidas", "--count", "10", "--url-file", str(tmp_path / "{label}.txt"),
                     "--threads", "1", "--reports-dir", str(tmp_path / "reports"), "--cache-dir",
                     str(tmp_path / "cache"), "--retries", "0", "--read-timeout", "2"])
    assert code == 1  # short of 10: the URL list ran out
    rows = {r["url"]: r for r in read_manifest(small_shoes / "test_extra" / "manifest.jsonl")}
    kept_files = {r["url"]: r["file"] for r in rows.values() if r["decision"] == "kept"}
    assert len(kept_files) == 3

    report = tmp_path / "reports" / "small_shoes" / "scrape" / "index.html"
    dom = BeautifulSoup(dump_dom(report), "html.parser")

    pairs = dom.select("div.pair")
    assert len(pairs) == len(duplicates)
    by_url = {pair.select_one("code.url").get_text(): pair for pair in pairs}
    assert set(by_url) == set(duplicates)  # every duplicate, its URL as plain text
    for url, (reason, original, candidate) in duplicates.items():
        row, pair = rows[url], by_url[url]
        original = original or "test_extra/" + kept_files[urls[1]]
        assert (row["reason"], row["duplicate_of"]) == (reason, original)
        assert pair["data-reason"] == reason and pair.select_one("code.ref").get_text() == original
        # both images are there: the refused candidate as downloaded, and the very file it duplicates
        assert _looks_like(pair.select_one("img.candidate")["src"], candidate)
        assert pair.select_one("img.original")["src"] == thumbnail_data_uri(small_shoes / original)
        measure = f"pHash distance {row['distance']} bits" if reason == "duplicate_near" else "identical file or pixels"
        assert measure in pair.get_text()

    # hostile names and URLs are text: nothing injected, nothing ran, nothing loads from anywhere
    text = dom.get_text()
    assert HOSTILE_FILE in text and "<b id=pwned404>x</b>" in text and "document.body.setAttribute" in text
    assert dom.body.get("data-pwned") is None and dom.find(id="pwned404") is None
    assert not dom.find_all("script") and not dom.find_all("a")
    assert all(img["src"].startswith("data:image/") for img in dom.find_all("img"))

    # the kept sample shows the three kept images; the other rejections are a table with their reasons
    kept = dom.select_one('div.kept[data-label="adidas"]')
    assert len(kept.select("img")) == 3
    for url, file in kept_files.items():
        assert file in kept.get_text() and url in kept.get_text()
    table_rows = [[td.get_text() for td in tr.find_all("td")] for tr in dom.find_all("table")[-1].select("tbody tr")]
    assert sorted((r[1], r[4]) for r in table_rows) == sorted((reason, url) for url, reason in others.items())
