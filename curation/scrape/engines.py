"""icrawler's crawlers, made safe: configurable endpoints, bounded queues and loops, our downloader.

Each engine keeps icrawler's own parser (so real result pages are read exactly as icrawler reads
them) and a feeder whose endpoint is configurable. Differences from the stock crawlers, each a
known icrawler hang or hazard:
- the queues are unbounded (a greedy parser feeding links back into its own 5-slot queue deadlocks);
- the greedy feeder returns after seeding (stock: loops until max_num images exist, forever when
  the site has fewer) and the greedy parser stops following links after `max_pages` pages;
- the downloader exits when the parser is done and its queue is empty (stock: waits forever while
  nothing was downloaded, or quits after 5 idle seconds while a page is still being parsed);
- a parser that raises or returns None (GoogleParser on a page without results) ends that page,
  not the thread;
- the crawl loop stops an engine that makes no progress for `idle_timeout` seconds or runs past
  `max_time`, and every thread is stopped through icrawler's reach_max_num signal when it returns.
"""

from __future__ import annotations

import logging
import math
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote_plus, urlencode

from icrawler import Crawler, ImageDownloader, UrlListFeeder
from icrawler.builtin import baidu, bing, flickr, google, greedy
from icrawler.builtin.urllist import PseudoParser
from icrawler.storage import BaseStorage
from icrawler.utils import CachedQueue

from curation.errors import CurationError
from curation.scrape.candidates import CandidateJob
from curation.scrape.config import ScrapeConfig
from curation.scrape.fetch import SafeSession

log = logging.getLogger(__name__)
FLICKR_SIZES = ["original", "large 2048", "large 1600", "large", "medium 800", "medium 640", "medium",
                "small 320", "small", "thumbnail", "large Square", "square"]


# ---- feeders with a configurable endpoint (icrawler's own build the real URLs in feed()) ----

class BingFeeder(bing.BingFeeder):
    def feed(self, keyword, offset, max_num, filters=None, base_url=""):
        filter_str = self.get_filter().apply(filters)
        filter_str = "&qft=" + filter_str if filter_str else ""
        for i in range(offset, offset + max_num, 20):
            self.out_queue.put(f"{base_url}?q={quote_plus(keyword)}&first={i}{filter_str}")


class BaiduFeeder(baidu.BaiduFeeder):
    def feed(self, keyword, offset, max_num, filters=None, base_url=""):
        filter_str = self.get_filter().apply(filters, sep="&")
        for i in range(offset, offset + max_num, 30):
            url = f"{base_url}?tn=resultjson_com&ipn=rj&word={quote_plus(keyword)}&pn={i}&rn=30"
            self.out_queue.put(url + ("&" + filter_str if filter_str else ""))


class GoogleFeeder(google.GoogleFeeder):
    def feed(self, keyword, offset, max_num, language=None, filters=None, base_url=""):
        filter_str = self.get_filter().apply(filters, sep=",")
        for i in range(offset, offset + max_num, 100):
            params = dict(q=keyword, ijn=i // 100, start=i, tbs=filter_str, tbm="isch")
            if language:
                params["lr"] = "lang_" + language
            self.out_queue.put(f"{base_url}?{urlencode(params)}")


class FlickrFeeder(flickr.FlickrFeeder):
    """Asks for as many result pages as the candidates wanted (stock: up to 40 pages, always)."""

    def feed(self, apikey, max_num=100, base_url="", per_page=100, **search):
        params = {"method": "flickr.photos.search", "api_key": apikey, "format": "json", "nojsoncallback": 1,
                  "per_page": per_page, **search}
        for page in range(1, math.ceil(min(max_num, 4000) / per_page) + 1):
            self.out_queue.put(f"{base_url}?{urlencode(params)}&page={page}")


class GreedyFeeder(greedy.GreedyFeeder):
    def feed(self, domains):
        for domain in domains:
            self.output(domain)


# ---- parsers: icrawler's own, with failures contained ----

class _ContainedParse:
    """A parse that raises, or returns None, ends that page only."""

    def parse(self, response, **kwargs):
        try:
            tasks = super().parse(response, **kwargs)
            yield from (tasks or ())
        except Exception as exc:
            log.warning("could not parse result page %s: %s: %s", response.url, type(exc).__name__, exc)


class BingParser(_ContainedParse, bing.BingParser):
    pass


class BaiduParser(_ContainedParse, baidu.BaiduParser):
    pass


class GoogleParser(_ContainedParse, google.GoogleParser):
    pass


class UrlListParser(PseudoParser):
    pass


class _FlickrSizesParser(flickr.FlickrParser):
    """icrawler's FlickrParser with the getSizes endpoint configurable (stock: api.flickr.com)."""

    def parse(self, response, apikey, size_preference=None, base_url=""):
        import json

        content = json.loads(response.content.decode("utf-8", "ignore"))
        if content.get("stat") != "ok":
            log.warning("flickr answered %s: %s", content.get("stat"), content.get("message", ""))
            return
        for photo in content["photos"]["photo"]:
            params = {"method": "flickr.photos.getSizes", "api_key": apikey, "photo_id": photo["id"],
                      "format": "json", "nojsoncallback": 1}
            try:
                info = json.loads(self.session.get(f"{base_url}?{urlencode(params)}").content.decode())
            except Exception:
                continue
            if info.get("stat") != "ok":
                continue
            urls = {str(item["label"]).lower(): item["source"] for item in info["sizes"]["size"]}
            for size in size_preference or FLICKR_SIZES:
                if size in urls:
                    yield dict(file_url=urls[size], meta=photo)
                    break


class FlickrParser(_ContainedParse, _FlickrSizesParser):
    pass


class GreedyParser(_ContainedParse, greedy.GreedyParser):
    """Follows links within the given sites for at most `max_pages` pages."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pages = 0

    def parse(self, response, domains, max_pages=50):
        with self.lock:
            self.pages += 1
            follow = self.pages < max_pages
        for task in super().parse(response, domains=domains):
            if isinstance(task, dict) or follow:
                yield task


# ---- the downloader: every candidate goes through CandidateJob ----

class NoStorage(BaseStorage):
    """icrawler wants a storage; ours writes through OutputFolder, so this one refuses everything."""

    def write(self, id, data):
        raise RuntimeError("the scrape downloader writes through OutputFolder only")

    def exists(self, id):
        return False

    def max_file_idx(self):
        return 0


class ScrapeDownloader(ImageDownloader):
    def __init__(self, thread_num, signal, session, storage, job: CandidateJob):
        super().__init__(thread_num, signal, session, storage)
        self.job = job

    def download(self, task, default_ext, timeout=5, max_retry=3, overwrite=False, **kwargs):
        """Our safe fetch, checks, de-duplication and atomic write instead of storage.write(raw bytes)."""
        self.job.handle(task["file_url"], self.session)

    def worker_exec(self, max_num=0, default_ext="jpg", queue_timeout=0.2, **kwargs):
        while not self.signal.get("reach_max_num"):
            try:
                task = self.in_queue.get(timeout=queue_timeout)
            except queue.Empty:
                if self.signal.get("parser_exited"):
                    break  # every page parsed and every task taken: the engine is exhausted
                continue
            try:
                self.download(task, default_ext)
            finally:
                self.in_queue.task_done()
            if self.job.quota_reached():
                self.signal.set(reach_max_num=True)


# ---- the crawler ----

@dataclass
class EngineOutcome:
    label: str
    engine: str
    stopped: str  # quota | exhausted | idle | max_time | no candidates
    candidates: int = 0  # manifest rows written by this engine for this class
    page_failures: list[tuple[str, str]] = field(default_factory=list)


class BoundedCrawler(Crawler):
    def __init__(self, feeder_cls, parser_cls, job: CandidateJob, session: SafeSession, threads: int):
        self._safe_session = session
        super().__init__(feeder_cls, parser_cls, ScrapeDownloader, downloader_threads=threads,
                         storage=NoStorage(), extra_downloader_args={"job": job})
        self.job = job
        pages, tasks = CachedQueue(), CachedQueue()  # unbounded; CachedQueue drops repeated URLs
        self.feeder.out_queue = self.parser.in_queue = pages
        self.parser.out_queue = self.downloader.in_queue = tasks

    def set_logger(self, log_level=logging.INFO):
        self.logger = logging.getLogger("icrawler.crawler")  # stock: basicConfig on the root logger
        for name in ("feeder", "parser", "downloader", "icrawler.crawler"):
            logging.getLogger(name).setLevel(logging.ERROR)

    def set_session(self, headers=None):
        self.session = self._safe_session

    def run(self, feeder_kwargs: dict, parser_kwargs: dict, *, idle_timeout: float, max_time: float | None,
            on_tick: Callable[[], None] = lambda: None) -> str:
        """Crawl until the class is full, the engine is exhausted, idle or out of time; returns which."""
        self.signal.reset()
        self.feeder.start(**feeder_kwargs)
        self.parser.start(queue_timeout=0.2, max_retry=1, **parser_kwargs)
        self.downloader.start()
        started = last_activity = time.monotonic()
        activity = self._activity()
        stopped = "exhausted"
        while self.downloader.is_alive():
            if not self.feeder.is_alive():
                self.signal.set(feeder_exited=True)
            if not self.parser.is_alive():
                self.signal.set(parser_exited=True)
            now = time.monotonic()
            if self._activity() != activity:
                activity, last_activity = self._activity(), now
            if now - last_activity > idle_timeout:
                stopped = "idle"
                break
            if max_time is not None and now - started > max_time:
                stopped = "max_time"
                break
            on_tick()
            time.sleep(0.05)
        self.signal.set(reach_max_num=True)  # every icrawler thread checks this and returns
        self.downloader_join(timeout=2.0)
        on_tick()
        return "quota" if self.job.quota_reached() else stopped

    def downloader_join(self, timeout: float) -> None:
        """Wait briefly for downloads in flight (their rows are already written or will be)."""
        end = time.monotonic() + timeout
        for worker in self.downloader.workers:
            worker.join(max(0.0, end - time.monotonic()))

    def _activity(self) -> tuple[int, int]:
        return self.job.state.processed_count(), self._safe_session.requests


def read_url_list(url_file: str, label: str) -> list[str]:
    """URLs for one class: a "{label}" template of text files (one URL a line, # comments), or a CSV
    with url,label columns."""
    import csv

    if "{label}" in url_file:
        path = Path(url_file.format(label=label))
        if not path.is_file():
            raise CurationError(f"--url-file: {path} (for class {label!r}) does not exist")
        lines = path.read_text(encoding="utf-8").splitlines()
        return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    path = Path(url_file)
    if not path.is_file():
        raise CurationError(f"--url-file: {path} does not exist")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not {"url", "label"} <= set(reader.fieldnames or ()):
            raise CurationError(f"--url-file {path} must have url and label columns, or use a {{label}} template")
        return [row["url"].strip() for row in reader if row["label"] == label and row["url"].strip()]


def engine_plan(engine: str, config: ScrapeConfig, label: str, query: str, max_candidates: int):
    """(feeder class, parser class, feeder kwargs, parser kwargs) for one engine and class, or None
    when the engine has nothing to offer this class (an empty URL list)."""
    base = config.engine_url(engine)
    licence_filter = {"license": config.licence} if config.licence else None
    max_num = min(max_candidates, 1000)  # the search engines serve at most 1000 results
    if engine == "bing":
        return BingFeeder, BingParser, dict(keyword=query, offset=0, max_num=max_num, filters=licence_filter,
                                            base_url=base), {}
    if engine == "baidu":
        return BaiduFeeder, BaiduParser, dict(keyword=query, offset=0, max_num=max_num, base_url=base), {}
    if engine == "google":
        return GoogleFeeder, GoogleParser, dict(keyword=query, offset=0, max_num=max_num, filters=licence_filter,
                                                base_url=base), {}
    if engine == "flickr":
        search = {"text": query, **({"license": config.licence} if config.licence else {})}
        return (FlickrFeeder, FlickrParser,
                dict(apikey=config.flickr_api_key, max_num=max_candidates, base_url=base, **search),
                dict(apikey=config.flickr_api_key, size_preference=FLICKR_SIZES, base_url=base))
    if engine == "greedy":
        domains = [site.format(label=label).rstrip("/") for site in config.sites]
        return GreedyFeeder, GreedyParser, dict(domains=domains), dict(domains=domains, max_pages=config.max_pages)
    if engine == "urllist":
        urls = read_url_list(config.url_file, label)
        return (UrlListFeeder, UrlListParser, dict(url_list=urls), {}) if urls else None
    raise CurationError(f"unknown engine {engine!r}")


def run_engine(job: CandidateJob, config: ScrapeConfig, max_candidates: int,
               on_tick: Callable[[], None] = lambda: None) -> EngineOutcome:
    plan = engine_plan(job.engine, config, job.label, job.query, max_candidates)
    rows_before = job.state.processed_count()
    if plan is None:
        return EngineOutcome(job.label, job.engine, "no candidates")
    feeder_cls, parser_cls, feeder_kwargs, parser_kwargs = plan
    session = SafeSession(config.limits)
    crawler = BoundedCrawler(feeder_cls, parser_cls, job, session, config.threads)
    stopped = crawler.run(feeder_kwargs, parser_kwargs, idle_timeout=config.idle_seconds(),
                          max_time=config.max_time, on_tick=on_tick)
    return EngineOutcome(job.label, job.engine, stopped, job.state.processed_count() - rows_before,
                         list(session.page_failures))
