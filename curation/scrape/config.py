"""What a scrape run is asked to do, as one dataclass validated once at the boundary."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from curation.errors import CurationError

# The engines' real endpoints (as icrawler 0.6.10 uses them). Tests point them at 127.0.0.1.
DEFAULT_ENGINE_URLS = {
    "bing": "https://www.bing.com/images/async",
    "baidu": "http://image.baidu.com/search/acjson",
    "google": "https://www.google.com/search",
    "flickr": "https://api.flickr.com/services/rest/",
}
ENGINES = ("bing", "baidu", "google", "flickr", "greedy", "urllist")
# Licence filters each engine understands (icrawler's names; Flickr takes its licence ids, e.g. "4,5,9,10").
LICENCE_CHOICES = {
    "bing": ("creativecommons", "publicdomain", "noncommercial", "commercial", "noncommercial,modify",
             "commercial,modify"),
    "google": ("noncommercial", "commercial", "noncommercial,modify", "commercial,modify"),
    "flickr": None,  # any comma-separated list of licence ids
}
RESIZE_MODES = ("pad", "crop", "stretch")
EMBEDDING_THRESHOLD = 0.80
SAFE_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.+-]{0,99}")


@dataclass(frozen=True)
class FetchLimits:
    """Bounds on every HTTP request (result pages and images alike)."""

    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 30.0  # a whole download, so a slow drip cannot hold a thread
    max_bytes: int = 20_000_000
    max_redirects: int = 5
    retries: int = 2  # extra attempts after a timeout, a lost connection or a 5xx answer
    retry_backoff: float = 0.5

    def worst_case_seconds(self) -> float:
        attempts = 1 + self.retries
        backoff = sum(self.retry_backoff * 2**i for i in range(self.retries))
        return attempts * (self.total_timeout + self.connect_timeout) + backoff


@dataclass(frozen=True)
class ImageRules:
    """How a downloaded image is judged and normalised."""

    size: tuple[int, int] | None = None  # None: the dataset's dominant size
    resize_mode: str = "pad"  # pad on white (keeps the whole shoe), crop the centre, or stretch
    min_side: int = 100
    max_aspect_ratio: float = 3.0
    max_pixels: int = 40_000_000
    min_std: float = 3.0  # below this pixel standard deviation an image is blank
    jpeg_quality: int = 92


@dataclass(frozen=True)
class DedupRules:
    # pHash Hamming distance (of 64 bits) within which an indexed image is compared with a candidate
    # by the duplicate engine (the audit's hash_max_distance): a neighbour, not a verdict.
    near_threshold: int = 10
    mirror: bool = True  # also compare the mirrored image (flipped web copies are common)
    embedding: bool = False  # also compare CNN embeddings (catches crops and colour shifts; slower)
    # Cosine similarity at or above which an indexed image is compared too (the audit's cosine_similar).
    embedding_threshold: float = EMBEDDING_THRESHOLD
    embedding_model: str = "tf_efficientnet_lite0"


@dataclass
class ScrapeConfig:
    data: str
    classes: tuple[str, ...] = ()  # empty: the dataset's classes
    query: str = "{label} shoes"
    # label -> its own queries, asked in turn instead of `query` (--queries-file, e.g. an error slice's
    # slices/queries.csv); only these labels are scraped unless --classes says otherwise
    queries: dict[str, tuple[str, ...]] = field(default_factory=dict)
    count: int = 100  # wanted images per class in the output split
    engines: tuple[str, ...] = ("bing",)
    sites: tuple[str, ...] = ()  # greedy crawl start pages; "{label}" is replaced by the class
    url_file: str | None = None  # "{label}" template of text files, or a CSV with url,label columns
    flickr_api_key: str | None = None
    engine_urls: dict[str, str] = field(default_factory=dict)
    licence: str | None = None
    split: str = "test_extra"
    output_dir: Path | None = None  # default <dataset root>/<split>
    csv: Path | None = None
    name: str | None = None
    reports_dir: Path = Path("reports")
    cache_dir: Path | None = None
    threads: int = 4
    delay: float = 0.0  # seconds each download thread waits between requests (politeness)
    candidates_factor: float = 3.0  # result entries asked of an engine per image still needed
    max_pages: int = 50  # greedy crawl: pages fetched per class
    max_time: float | None = None  # seconds per class and engine, then that engine is stopped
    idle_timeout: float | None = None  # seconds without any progress before an engine is stopped
    retry_failed: bool = False  # re-try URLs whose download failed in an earlier run
    workers: int = 2
    limits: FetchLimits = field(default_factory=FetchLimits)
    image: ImageRules = field(default_factory=ImageRules)
    dedup: DedupRules = field(default_factory=DedupRules)

    def engine_url(self, engine: str) -> str:
        return self.engine_urls.get(engine, DEFAULT_ENGINE_URLS.get(engine, ""))

    def idle_seconds(self) -> float:
        return self.idle_timeout if self.idle_timeout is not None else self.limits.worst_case_seconds() + 5

    def queries_for(self, label: str) -> tuple[str, ...]:
        return self.queries.get(label) or (self.query.format(label=label),)

    def validate(self) -> None:
        """Every bad option is named with its value; nothing downstream re-checks."""
        unknown = [e for e in self.engines if e not in ENGINES]
        if unknown or not self.engines:
            raise CurationError(f"unknown engine(s) {unknown or '(none)'}; choose from {', '.join(ENGINES)}")
        if self.count < 1:
            raise CurationError(f"--count must be at least 1, not {self.count}")
        if self.threads < 1:
            raise CurationError(f"--threads must be at least 1, not {self.threads}")
        if "{label}" not in self.query and len(self.classes) != 1:
            raise CurationError(f"the query {self.query!r} lacks {{label}}: every class would get the same images")
        if "greedy" in self.engines and not self.sites:
            raise CurationError("the greedy engine needs at least one --site to crawl")
        if "urllist" in self.engines and not self.url_file:
            raise CurationError("the urllist engine needs --url-file")
        if "flickr" in self.engines and not self.flickr_api_key:
            raise CurationError("the flickr engine needs an API key (--flickr-api-key or $FLICKR_APIKEY)")
        for site in self.sites:
            if not site.startswith(("http://", "https://")):
                raise CurationError(f"--site {site!r} must be an http:// or https:// address")
        for engine, url in self.engine_urls.items():
            if engine not in DEFAULT_ENGINE_URLS:
                raise CurationError(f"--engine-url: {engine!r} has no configurable address "
                                    f"(those that do: {', '.join(DEFAULT_ENGINE_URLS)})")
            if not url.startswith(("http://", "https://")):
                raise CurationError(f"--engine-url {engine}={url!r} must be an http:// or https:// address")
        self._validate_licence()
        if self.image.resize_mode not in RESIZE_MODES:
            raise CurationError(f"--resize-mode must be one of {RESIZE_MODES}, not {self.image.resize_mode!r}")
        if not 0 <= self.dedup.near_threshold <= 64:
            raise CurationError(f"--near-threshold must be between 0 and 64, not {self.dedup.near_threshold}")
        if not 0 < self.dedup.embedding_threshold <= 1:
            raise CurationError(f"--embedding-threshold must be in (0, 1], not {self.dedup.embedding_threshold}")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.split):
            raise CurationError(f"--split {self.split!r} must be a plain folder name")
        for label in self.classes:
            check_label(label)

    def _validate_licence(self) -> None:
        if not self.licence:
            return
        for engine in self.engines:
            if engine not in LICENCE_CHOICES:
                raise CurationError(f"the {engine} engine has no licence filter; drop --licence or that engine")
            choices = LICENCE_CHOICES[engine]
            if choices is not None and self.licence not in choices:
                raise CurationError(f"--licence {self.licence!r} is not a {engine} licence filter; "
                                    f"choose from {', '.join(choices)}")

    def as_record(self) -> dict:
        """The options as plain JSON, written into the summary so a run can be reproduced."""
        record = asdict(self)
        record.pop("flickr_api_key", None)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in record.items()}


def check_label(label: str) -> str:
    """A class name becomes a folder name: refuse anything that could leave the output folder."""
    if not SAFE_LABEL.fullmatch(label) or label in (".", ".."):
        raise CurationError(f"class name {label!r} is not a safe folder name (letters, digits, space, _ . + -)")
    return label


def read_queries_file(path: Path) -> dict[str, tuple[str, ...]]:
    """label -> queries from a CSV with label and query columns (others, such as slice, are ignored),
    the format of reports/<dataset>/slices/queries.csv."""
    import csv

    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise CurationError(f"cannot read --queries-file {path}: {exc.strerror or exc}") from None
    if not rows or not {"label", "query"} <= set(rows[0]):
        raise CurationError(f"--queries-file {path} needs a header with label and query columns and at least one row")
    queries: dict[str, list[str]] = {}
    for number, row in enumerate(rows, start=2):
        label, query = (row.get("label") or "").strip(), (row.get("query") or "").strip()
        if not label or not query:
            raise CurationError(f"--queries-file {path}, line {number}: empty label or query")
        if query not in queries.setdefault(check_label(label), []):
            queries[label].append(query)
    return {label: tuple(found) for label, found in queries.items()}
