"""Every kind of bad candidate against a real local server: exact counts, reasons and manifest rows."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
from PIL import Image, ImageOps

from curation.scrape.config import ScrapeConfig
from curation.scrape.run import scrape
from tests.scrape_site import LocalSite, encode, fast_limits, make_picture, read_manifest

WEB_NAME = re.compile(r"web_[0-9a-f]{20}\.jpg")


@pytest.fixture
def faulty_site(small_shoes):
    train_file = sorted((small_shoes / "train" / "adidas").iterdir())[0]
    test_file = sorted((small_shoes / "test" / "adidas").iterdir())[0]
    with LocalSite() as site:
        pic = {i: make_picture(i) for i in range(1, 8)}
        ok1 = encode(pic[1])
        urls = {  # url -> (expected decision reason, "" for kept)
            site.add("/img/ok1.jpg", ok1): "",
            site.add("/img/ok2.jpg", encode(pic[2])): "",
            site.add("/img/alpha.png", encode(make_picture(3, mode="RGBA"), "PNG"), "image/png"): "",
            site.add("/img/ok1-copy.jpg", ok1) + "?from=elsewhere": "duplicate_exact",
            site.add("/img/ok2-mirror.jpg", encode(ImageOps.mirror(pic[2]))): "duplicate_near",
            site.add("/img/ok2-big.jpg", encode(pic[2].resize((640, 480)), quality=60)): "duplicate_near",
            site.add("/img/train-copy.jpg", train_file.read_bytes()): "duplicate_exact",
            site.add("/img/test-big.jpg", encode(Image.open(test_file).convert("RGB").resize((480, 480)))):
                "duplicate_near",
            site.url("/fault/404"): "http_error",
            site.url("/fault/500"): "http_error",
            site.url("/fault/timeout"): "timeout",
            site.url("/fault/drip"): "timeout",
            site.url("/fault/huge"): "too_large",
            site.url("/fault/huge-chunked"): "too_large",
            site.url("/fault/html-as-image.jpg"): "not_an_image",
            site.url("/fault/loop-a"): "redirect_loop",
            site.url("/fault/redirect-to:ftp://127.0.0.1/x.jpg"): "bad_scheme",
            "ftp://127.0.0.1/x.jpg": "bad_scheme",
            "file:///etc/passwd": "bad_scheme",
            site.add("/img/hostile", encode(pic[5]), Content_Disposition='attachment; filename="../../../evil.jpg"'): "",
            site.add("/img/..%2F..%2F..%2Fevil2.jpg", encode(pic[6])): "",
            site.add("/img/small.jpg", encode(pic[7].resize((50, 40)))): "too_small",
            site.add("/img/blank.jpg", encode(Image.new("RGB", (300, 300), (200, 10, 10)))): "blank",
            site.add("/img/truncated.jpg", encode(pic[7])[:3000]): "corrupt",
            site.add("/img/thin.jpg", encode(make_picture(8, size=(1000, 100)))): "odd_shape",
        }
        ok4 = site.add("/img/ok4.jpg", encode(pic[4]))
        urls[site.url("/fault/redirect-to:/img/ok4.jpg")] = ""
        url_file = small_shoes.parent / "urls_adidas.txt"
        url_file.write_text("# candidates for adidas\n" + "\n".join(urls) + "\n\n")
        yield site, small_shoes, url_file, urls, train_file, test_file, ok4


def test_every_fault_is_one_manifest_row_with_its_reason(faulty_site, tmp_path):
    site, data, url_file, urls, train_file, test_file, ok4 = faulty_site
    config = ScrapeConfig(data=str(data), classes=("adidas",), count=50, engines=("urllist",),
                          url_file=str(url_file).replace("adidas", "{label}"), threads=1,
                          cache_dir=tmp_path / "cache", limits=fast_limits())
    summary = scrape(config)

    rows = read_manifest(data / "test_extra" / "manifest.jsonl")
    assert [r["url"] for r in rows] == list(urls)  # one row per candidate, in order (one thread)
    by_url = {r["url"]: r for r in rows}
    for url, reason in urls.items():
        assert by_url[url]["reason"] == reason, (url, by_url[url])
        assert by_url[url]["decision"] == ("kept" if not reason else "rejected")
        assert by_url[url]["engine"] == "urllist" and by_url[url]["label"] == "adidas"
    expected = Counter(reason for reason in urls.values() if reason)
    (only,) = summary.classes
    assert (only.kept, only.new, only.short) == (6, 6, 44)
    assert only.rejected == expected

    # duplicates name what they duplicate: our own earlier file, or the dataset's sample
    kept_file = {r["url"].split("?")[0]: r["file"] for r in rows if r["decision"] == "kept"}
    assert by_url[site.url("/img/ok1-copy.jpg") + "?from=elsewhere"]["duplicate_of"] == \
        "test_extra/" + kept_file[site.url("/img/ok1.jpg")]
    assert by_url[site.url("/img/ok2-mirror.jpg")]["duplicate_of"] == "test_extra/" + kept_file[site.url("/img/ok2.jpg")]
    assert by_url[site.url("/img/train-copy.jpg")]["duplicate_of"] == f"train/adidas/{train_file.name}"
    assert by_url[site.url("/img/test-big.jpg")]["duplicate_of"] == f"test/adidas/{test_file.name}"
    assert by_url[site.url("/fault/404")]["http_status"] == 404
    redirected = by_url[site.url("/fault/redirect-to:/img/ok4.jpg")]
    assert redirected["final_url"] == ok4 and redirected["decision"] == "kept"

    # bounded retries: a 500 and a timeout are tried 1 + retries times, a 404 once
    assert site.hits["/fault/500"] == 2 and site.hits["/fault/timeout"] == 2 and site.hits["/fault/404"] == 1

    # files: our names only, all inside the output folder, all 240x240 JPEGs; nothing escaped
    out = data / "test_extra" / "adidas"
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 6 and all(WEB_NAME.fullmatch(name) for name in files)
    assert sorted(r["file"].split("/")[1] for r in rows if r["decision"] == "kept") == files
    assert not [p for p in tmp_path.rglob("*evil*")]
    for path in out.iterdir():
        with Image.open(path) as image:
            assert (image.format, image.size, image.mode) == ("JPEG", (240, 240), "RGB")
    # the transparent PNG was composited on white, not black
    alpha_file = data / "test_extra" / kept_file[site.url("/img/alpha.png")]
    corner = np.asarray(Image.open(alpha_file))[32, 2]
    assert corner.min() > 240, corner


def test_a_second_run_keeps_nothing_twice_and_fetches_nothing_again(faulty_site, tmp_path):
    site, data, url_file, urls, *_ = faulty_site
    config = dict(data=str(data), classes=("adidas",), count=50, engines=("urllist",),
                  url_file=str(url_file).replace("adidas", "{label}"), threads=3,
                  cache_dir=tmp_path / "cache", limits=fast_limits())
    first = scrape(ScrapeConfig(**config))
    hits_after_first = sum(site.hits.values())
    second = scrape(ScrapeConfig(**config))
    assert first.classes[0].kept == second.classes[0].kept == 6
    assert second.classes[0].new == 0 and not second.classes[0].rejected
    assert sum(site.hits.values()) == hits_after_first  # every URL was already decided
    rows = read_manifest(data / "test_extra" / "manifest.jsonl")
    assert len(rows) == len(urls) == len({r["url"] for r in rows})
    # --retry-failed tries the transient failures (5xx, timeouts) again, and only those
    third = scrape(ScrapeConfig(**config, retry_failed=True))
    retried = Counter(r["reason"] for r in read_manifest(data / "test_extra" / "manifest.jsonl")[len(rows):])
    assert retried == Counter({"http_error": 2, "timeout": 2})
    assert third.classes[0].kept == 6
