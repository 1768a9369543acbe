"""Error slices on real shoes images: a planted failure is found and named, random errors make no
slice, the page renders in Chromium, and the scraper asks the slice's queries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from curation.cache import ContentCache
from curation.scan import scan_dataset
from tests.shoes_data import copy_subset

CLASSES = ["adidas", "converse", "nike"]


@pytest.fixture
def grey_shoes(tmp_path, shoes_root):
    """60 real train and 30 real test images; every third of them turned grey."""
    root = copy_subset(shoes_root, tmp_path / "grey_shoes", {"train": 20, "test": 10})
    for number, path in enumerate(sorted(root.rglob("*.jpg"))):
        if number % 3 == 0:
            Image.open(path).convert("L").convert("RGB").save(path, quality=95)
    return root


def _is_grey(root, path: str) -> bool:
    pixels = np.asarray(Image.open(root / path).convert("RGB"), dtype="int16")
    return int(np.abs(pixels[..., 0] - pixels[..., 1]).max()) <= 2


def _write_predictions(table: pd.DataFrame, report_dir, wrong: np.ndarray) -> None:
    """What training writes (oof.parquet for train, predictions.parquet for the rest), for a model
    that errs where `wrong` says: its predicted class is the next one."""
    label = table["label"].to_numpy()
    predicted = np.array([CLASSES[(CLASSES.index(l) + 1) % 3] if w else l for l, w in zip(label, wrong)])
    probs = pd.DataFrame({f"p_{c}": np.where(predicted == c, 0.8, 0.1) for c in CLASSES})
    frame = pd.concat([table[["sample_id", "split", "label"]].reset_index(drop=True), probs], axis=1)
    frame["predicted"] = predicted
    folder = report_dir / "training"
    folder.mkdir(parents=True, exist_ok=True)
    frame[frame["split"] == "train"].drop(columns=["split"]).to_parquet(folder / "oof.parquet", index=False)
    frame[frame["split"] != "train"].to_parquet(folder / "predictions.parquet", index=False)


def _scan(root, tmp_path):
    with ContentCache(tmp_path / "cache") as cache:
        scanned = scan_dataset(str(root), reports_dir=tmp_path / "reports", cache=cache)
    return scanned.table, scanned.report_dir


def test_a_planted_slice_is_found_named_drawn_and_its_queries_scraped(grey_shoes, tmp_path, capsys):
    from curation.browser import dump_dom
    from curation.slices.__main__ import main

    table, report_dir = _scan(grey_shoes, tmp_path)
    grey = np.array([_is_grey(grey_shoes, p) for p in table["path"]])
    rng = np.random.default_rng(0)
    wrong = np.where(grey, rng.random(len(table)) < 0.8, rng.random(len(table)) < 0.05)
    _write_predictions(table, report_dir, wrong)

    code = main([str(grey_shoes), "--reports-dir", str(tmp_path / "reports"), "--cache-dir", str(tmp_path / "cache")])
    assert code == 0
    out_dir = report_dir / "slices"
    slices = pd.read_csv(out_dir / "slices.csv")
    assert len(slices) >= 1
    top = slices.iloc[0]
    assert "grey-scale" in top["description"]  # named by the planted attribute
    assert top["low"] > wrong.mean()  # its interval starts above the overall error rate
    members = pd.read_csv(out_dir / "members.csv")
    first = members[members["slice"] == top["slice"]]
    assert set(first.columns) >= {"path", "split", "label", "predicted", "slice"}
    # its errors, which the page shows first, are the planted ones; the slice around them is mostly grey
    # (ranked by cost, the top slice is the broadest group that surely errs: the planted one and a margin)
    assert first.loc[first["wrong"], "path"].map(lambda p: _is_grey(grey_shoes, p)).mean() >= 0.8
    assert first["path"].map(lambda p: _is_grey(grey_shoes, p)).mean() >= 0.6
    found_grey_errors = set(first.loc[first["wrong"], "path"])
    planted_errors = set(table.loc[grey & wrong, "path"])
    assert len(found_grey_errors & planted_errors) >= 0.7 * len(planted_errors)
    assert "slice 1:" in capsys.readouterr().out

    dom = dump_dom(out_dir / "index.html")
    assert "Where the model fails" in dom and "Slice 1:" in dom and "grey-scale" in dom
    assert dom.count("<img") >= min(len(first), 24)

    _review_has_the_slices(grey_shoes, tmp_path, members)

    queries = pd.read_csv(out_dir / "queries.csv")
    slice_queries = queries[queries["slice"] == top["slice"]]
    assert len(slice_queries) and slice_queries["query"].str.contains("black and white photo").all()
    _scrape_with(grey_shoes, out_dir / "queries.csv", slice_queries, tmp_path)


def _review_has_the_slices(root, tmp_path, members: pd.DataFrame) -> None:
    """The FiftyOne dataset gets each sample's slices and one saved view per slice."""
    import fiftyone as fo

    from curation.review import build_review

    with ContentCache(tmp_path / "cache") as cache:
        scanned = scan_dataset(str(root), reports_dir=tmp_path / "reports", cache=cache)
        build_review(scanned, name="slices-review", cache=cache, embeddings=False)
    dataset = fo.load_dataset("slices-review")
    for number, rows in members.groupby("slice"):
        view = dataset.load_saved_view(f"error-slice-{number}")
        assert sorted(view.values("curation_id")) == sorted(rows["sample_id"])
    assert sum(len(v) for v in dataset.values("error_slices")) == len(members)


def _scrape_with(root, queries_file, slice_queries: pd.DataFrame, tmp_path) -> None:
    """The scraper, pointed at a bing-like result page on 127.0.0.1, asks exactly the file's queries."""
    from curation.scrape.__main__ import main as scrape_main
    from tests.scrape_site import LocalSite, encode, make_picture, read_manifest

    with LocalSite() as site:
        for k, (label, query) in enumerate(zip(slice_queries["label"], slice_queries["query"])):
            site.results[query] = [site.add(f"/img/{k}/{i}.jpg", encode(make_picture(900 + 10 * k + i))) for i in range(2)]
        code = scrape_main([str(root), "--queries-file", str(queries_file), "--count", "2", "--engine", "bing",
                            "--engine-url", f"bing={site.url('/bing/async')}", "--reports-dir", str(tmp_path / "reports"),
                            "--cache-dir", str(tmp_path / "cache"), "--read-timeout", "1", "--download-timeout", "2",
                            "--retries", "0", "--threads", "1"])
    rows = read_manifest(root / "test_extra" / "manifest.jsonl")
    kept = {(r["label"], r["query"]) for r in rows if r["decision"] == "kept"}
    assert code == 0
    assert set(zip(slice_queries["label"], slice_queries["query"])) <= kept


def test_errors_spread_at_random_make_no_slice(grey_shoes, tmp_path, capsys):
    from curation.slices.__main__ import main

    table, report_dir = _scan(grey_shoes, tmp_path)
    wrong = np.random.default_rng(1).random(len(table)) < 0.15
    _write_predictions(table, report_dir, wrong)
    assert main([str(grey_shoes), "--reports-dir", str(tmp_path / "reports"), "--cache-dir", str(tmp_path / "cache")]) == 0
    assert pd.read_csv(report_dir / "slices" / "slices.csv").empty
    summary = (report_dir / "slices" / "summary.json").read_text()
    assert "no group of samples errs significantly more than the rest" in summary


def test_too_few_errors_are_said_not_sliced(grey_shoes, tmp_path):
    from curation.slices import find_error_slices

    table, report_dir = _scan(grey_shoes, tmp_path)
    wrong = np.zeros(len(table), dtype=bool)
    wrong[:2] = True
    _write_predictions(table, report_dir, wrong)
    with ContentCache(tmp_path / "cache") as cache:
        result = find_error_slices(table, grey_shoes, cache=cache, report_dir=report_dir)
    assert result.slices == [] and "too few to say" in result.notes[0]


def test_queries_file_errors_are_clear(tmp_path):
    from curation.errors import CurationError
    from curation.scrape.config import read_queries_file

    bad = tmp_path / "q.csv"
    bad.write_text("label,words\nnike,x\n")
    with pytest.raises(CurationError, match="label and query columns"):
        read_queries_file(bad)
    good = tmp_path / "g.csv"
    good.write_text("label,query,slice\nnike,nike street photo shoes,1\nnike,nike street photo shoes,2\nadidas,a b,1\n")
    assert read_queries_file(good) == {"nike": ("nike street photo shoes",), "adidas": ("a b",)}
