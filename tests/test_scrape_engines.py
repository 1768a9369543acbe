"""Each engine against its result-page format served on 127.0.0.1, read by icrawler's real parsers."""

from __future__ import annotations

import re
import time

import pytest

from curation.scrape.__main__ import main
from curation.scrape.config import ScrapeConfig
from curation.scrape.run import scrape
from tests.scrape_site import LocalSite, encode, make_picture, read_manifest, steady_limits

ENDPOINTS = {"bing": "/bing/async", "baidu": "/baidu/acjson", "google": "/google/search", "flickr": "/flickr/rest/"}
LABELS = ("adidas", "nike")


def _serve_results(site: LocalSite, per_class: int) -> dict[str, list[str]]:
    """`per_class` distinct pictures per class plus one repeat of the first under another URL."""
    urls = {}
    for k, label in enumerate(LABELS):
        pictures = [encode(make_picture(100 * (k + 1) + i)) for i in range(per_class)]
        urls[label] = [site.add(f"/img/{label}/{i}.jpg", body) for i, body in enumerate(pictures)]
        urls[label].append(site.add(f"/mirror/{label}/again.jpg", pictures[0]))
        site.results[f"{label} shoes"] = urls[label]
    return urls


@pytest.mark.parametrize("engine", sorted(ENDPOINTS))
def test_search_engine_result_pages_are_parsed_and_every_class_filled(engine, small_shoes, tmp_path):
    with LocalSite() as site:
        urls = _serve_results(site, per_class=4)
        config = ScrapeConfig(data=str(small_shoes), classes=LABELS, count=4, engines=(engine,),
                              engine_urls={engine: site.url(ENDPOINTS[engine])}, flickr_api_key="test-key",
                              cache_dir=tmp_path / "cache", limits=steady_limits(), threads=1)
        summary = scrape(config)
        requested = list(site.requests)
    assert [(c.label, c.kept, c.short) for c in summary.classes] == [("adidas", 4, 0), ("nike", 4, 0)]
    rows = read_manifest(small_shoes / "test_extra" / "manifest.jsonl")
    for label in LABELS:
        kept = [r for r in rows if r["label"] == label and r["decision"] == "kept"]
        assert sorted(r["url"] for r in kept) == sorted(urls[label][:4])
        assert {(r["engine"], r["query"]) for r in kept} == {(engine, f"{label} shoes")}
    # the engine's own result page was asked for each query
    assert any(ENDPOINTS[engine] in path and "adidas" in path for path in requested)


def test_engine_with_fewer_results_than_asked_finishes_promptly(small_shoes, tmp_path):
    with LocalSite() as site:
        _serve_results(site, per_class=2)
        config = ScrapeConfig(data=str(small_shoes), classes=LABELS, count=30, engines=("bing", "baidu"),
                              engine_urls={"bing": site.url("/bing/async"), "baidu": site.url("/baidu/acjson")},
                              cache_dir=tmp_path / "cache", limits=steady_limits())
        started = time.monotonic()
        summary = scrape(config)
        elapsed = time.monotonic() - started
    assert elapsed < 20
    for c in summary.classes:
        assert (c.kept, c.short) == (2, 28), (c.rejected, [(e.engine, e.stopped, e.page_failures) for e in c.engines])
        assert [(e.engine, e.stopped) for e in c.engines] == [("bing", "exhausted"), ("baidu", "exhausted")]
        # bing found the repeat first; baidu offered the same URLs again and they were not re-fetched
        assert c.rejected == {"duplicate_exact": 1}


def test_greedy_crawl_follows_site_links_within_bounds(small_shoes, tmp_path):
    with LocalSite() as site:
        for k, label in enumerate(LABELS):
            imgs = [site.add(f"/shop/{label}/img/{i}.jpg", encode(make_picture(500 + 10 * k + i))) for i in range(3)]
            site.pages[f"/shop/{label}"] = (f'<a href="{site.base}/shop/{label}/p1.html">page 1</a>'
                                            f'<a href="http://elsewhere.invalid/x.html">away</a>'
                                            f'<img src="{imgs[0]}">')
            site.pages[f"/shop/{label}/p1.html"] = (f'<img src="{imgs[1]}"><a href="{imgs[2]}">big</a>'
                                                    f'<a href="{site.base}/shop/{label}">home</a>')
        summary = scrape(ScrapeConfig(data=str(small_shoes), classes=LABELS, count=10, engines=("greedy",),
                                      sites=(site.url("/shop/{label}"),), cache_dir=tmp_path / "cache",
                                      limits=steady_limits()))
        assert [(c.label, c.kept) for c in summary.classes] == [("adidas", 3), ("nike", 3)]
        assert site.hits["/shop/adidas"] == 1  # the link back home was not followed twice

        # an endless site stops after --max-pages pages
        before = sum(v for k, v in site.hits.items() if k.startswith("/deep"))
        scrape(ScrapeConfig(data=str(small_shoes), classes=("converse",), count=5, engines=("greedy",),
                            sites=(site.url("/deep"),), max_pages=5, cache_dir=tmp_path / "cache",
                            limits=steady_limits()))
        deep = sum(v for k, v in site.hits.items() if k.startswith("/deep")) - before
    assert 5 <= deep <= 6


def test_cli_prints_the_summary_and_writes_the_report(small_shoes, tmp_path, capsys):
    with LocalSite() as site:
        urls = _serve_results(site, per_class=3)
        url_csv = tmp_path / "urls.csv"
        ordered = {label: [urls[label][0], urls[label][-1], *urls[label][1:-1]] for label in LABELS}  # repeat 2nd
        url_csv.write_text("url,label\n" + "".join(f"{u},{label}\n" for label in LABELS for u in ordered[label]))
        code = main([str(small_shoes), "--classes", "adidas,nike", "--count", "3", "--url-file", str(url_csv),
                     "--reports-dir", str(tmp_path / "reports"), "--cache-dir", str(tmp_path / "cache"),
                     "--read-timeout", "1", "--download-timeout", "2", "--retries", "0", "--threads", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"^adidas\s+3/3\s+3\s+1 ", out, re.M) and re.search(r"^nike\s+3/3\s+3\s+1 ", out, re.M)
    report = tmp_path / "reports" / "small_shoes" / "scrape"
    assert (report / "summary.json").is_file() and (report / "manifest.csv").read_text().count("\n") == 8 + 1


def test_bad_options_are_refused_with_a_clear_message(small_shoes, tmp_path, capsys):
    from curation.cli import run_cli

    assert run_cli(main, [str(small_shoes), "--engine", "baidu", "--licence", "creativecommons"]) == 2
    assert "baidu engine has no licence filter" in capsys.readouterr().err
    assert run_cli(main, [str(small_shoes), "--engine", "greedy"]) == 2
    assert "needs at least one --site" in capsys.readouterr().err
