"""kill -9 in the middle of a scrape, then a re-run: no duplicates, no partial files, no lost rows,
every class topped up exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from PIL import Image

from curation.scrape.config import ScrapeConfig
from curation.scrape.run import scrape
from tests.scrape_site import LocalSite, encode, make_picture, read_manifest, steady_limits

LABELS = ("adidas", "converse", "nike")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _serve(site: LocalSite, url_dir: Path, per_class: int) -> None:
    url_dir.mkdir()
    for k, label in enumerate(LABELS):
        urls = [site.add(f"/img/{label}/{i}.jpg", encode(make_picture(1000 * (k + 1) + i))) for i in range(per_class)]
        urls.insert(3, urls[0] + "?again")  # one repeat per class
        (url_dir / f"{label}.txt").write_text("\n".join(urls) + "\n")


def _cli(data: Path, url_dir: Path, tmp: Path, count: int) -> list[str]:
    return [sys.executable, "-m", "curation.scrape", str(data), "--count", str(count),
            "--url-file", str(url_dir / "{label}.txt"), "--threads", "3", "--reports-dir", str(tmp / "reports"),
            "--cache-dir", str(tmp / "cache"), "--read-timeout", "2", "--download-timeout", "3"]


def _check_consistent(out: Path, count: int) -> list[dict]:
    rows = read_manifest(out / "manifest.jsonl")  # every line parses
    assert len({(r["label"], r["url"]) for r in rows}) == len(rows)  # no candidate decided twice
    kept = [r for r in rows if r["decision"] == "kept"]
    assert len({r["file_sha256"] for r in kept}) == len(kept)  # no picture kept twice
    files = sorted(p.relative_to(out).as_posix() for p in out.glob("*/*"))
    assert files == sorted(r["file"] for r in kept)  # no partial, orphan or temporary file
    for label in LABELS:
        assert sum(r["label"] == label for r in kept) <= count
    for path in out.glob("*/*.jpg"):
        with Image.open(path) as image:
            image.load()  # whole
    return rows


def test_kill_9_then_rerun_tops_up_exactly(small_shoes, tmp_path):
    count = 8
    out = small_shoes / "test_extra"
    env = {**os.environ, "CURATION_PROGRESS": "0", "PYTHONPATH": str(PROJECT_ROOT)}
    with LocalSite() as site:
        _serve(site, tmp_path / "urls", per_class=12)
        site.image_delay = 0.15  # slow enough to be killed in the middle
        command = _cli(small_shoes, tmp_path / "urls", tmp_path, count)
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        manifest = out / "manifest.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if manifest.exists() and manifest.read_text().count("\n") >= 6:
                break
            time.sleep(0.02)
        assert process.poll() is None, "the run finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        lines = manifest.read_text().splitlines(keepends=True)
        rows_before = [json.loads(line) for line in lines if line.endswith("\n")]  # complete rows only
        assert 6 <= len(rows_before) < 3 * count

        # what a kill can also leave: a half-written row, a temporary file, an image without its row
        with manifest.open("a") as handle:
            handle.write('{"time": "2026-11-28T00:00:00", "label": "adid')
        (out / "nike").mkdir(exist_ok=True)
        (out / "nike" / ".tmp-0123abcd").write_bytes(b"\xff\xd8 half a jpeg")
        orphan = out / "nike" / f"web_{'a' * 20}.jpg"
        orphan.write_bytes(encode(make_picture(99)))

        site.image_delay = 0.0
        result = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "removed 2 leftover(s) of an interrupted run" in result.stdout
    rows = _check_consistent(out, count)
    assert rows[: len(rows_before)] == rows_before  # nothing lost, nothing rewritten
    kept = Counter(r["label"] for r in rows if r["decision"] == "kept")
    assert kept == {label: count for label in LABELS}
    assert not orphan.exists()


def test_torn_last_row_is_cut_off_and_later_rows_stay_whole(small_shoes, tmp_path):
    with LocalSite() as site:
        url = site.add("/img/one.jpg", encode(make_picture(7)))
        (tmp_path / "adidas.txt").write_text(url + "\n")
        out = tmp_path / "out"
        out.mkdir()
        (out / "manifest.jsonl").write_text(json.dumps({"label": "x"})[:9])  # a first row cut short
        summary = scrape(ScrapeConfig(data=str(small_shoes), classes=("adidas",), count=1, engines=("urllist",),
                                      url_file=str(tmp_path / "{label}.txt"), output_dir=out,
                                      cache_dir=tmp_path / "cache", limits=steady_limits()))
    assert summary.classes[0].kept == 1
    rows = read_manifest(out / "manifest.jsonl")
    assert [(r["url"], r["decision"]) for r in rows] == [(url, "kept")]
