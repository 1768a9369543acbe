"""A scrape run from start to summary: open the output folder, index what exists, crawl each class
with each engine until it has its count, and report."""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from curation.cache import ContentCache
from curation.dataset_source import ResolvedDataset, load_descriptor, resolve_dataset
from curation.errors import CurationError
from curation.layout import list_csv_samples, list_folder_samples
from curation.progress import progress
from curation.sample_table import build_sample_table
from curation.scrape.candidates import CandidateJob, ScrapeState
from curation.scrape.config import ScrapeConfig
from curation.scrape.dedup import DedupIndex, index_samples
from curation.scrape.embedding_dedup import EmbeddingIndex, index_existing
from curation.scrape.engines import EngineOutcome, run_engine
from curation.scrape.manifest import MANIFEST_NAME, Manifest
from curation.scrape.store import OutputFolder


@dataclass
class ClassSummary:
    label: str
    target: int
    kept: int  # in the output folder now
    new: int  # kept by this run
    rejected: Counter  # this run, by reason
    engines: list[EngineOutcome] = field(default_factory=list)

    @property
    def short(self) -> int:
        return max(0, self.target - self.kept)


@dataclass
class ScrapeSummary:
    dataset: str
    output_dir: Path
    manifest_path: Path
    size: tuple[int, int]
    run_id: str
    indexed: int  # existing images every candidate was compared with
    removed: list[str]  # leftovers of an interrupted run that were cleaned up
    classes: list[ClassSummary]
    report_dir: Path | None = None
    root: Path | None = None  # the dataset's folder: duplicate_of paths are relative to it
    embedding_indexed: int | None = None  # vectors compared with (None: embedding dedup off)

    @property
    def complete(self) -> bool:
        return all(c.short == 0 for c in self.classes)

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset, "output_dir": str(self.output_dir), "manifest": str(self.manifest_path),
            "dataset_root": str(self.root), "size": list(self.size), "run_id": self.run_id,
            "indexed_images": self.indexed, "embedding_indexed_images": self.embedding_indexed,
            "removed_leftovers": self.removed, "complete": self.complete,
            "classes": [{"label": c.label, "target": c.target, "kept": c.kept, "new": c.new, "short": c.short,
                         "rejected": dict(c.rejected),
                         "engines": [{"engine": e.engine, "stopped": e.stopped, "candidates": e.candidates,
                                      "result_pages_failed": len(e.page_failures)} for e in c.engines]}
                        for c in self.classes],
        }


def _resolve(config: ScrapeConfig) -> ResolvedDataset:
    if config.csv is not None:
        root = Path(config.data) if Path(config.data).is_dir() else config.csv.parent
        name = config.name or root.resolve().name
        return ResolvedDataset(name, root.resolve(), load_descriptor(name), "csv")
    dataset = resolve_dataset(config.data)
    if config.name:
        dataset = ResolvedDataset(config.name, dataset.root, dataset.descriptor, dataset.how)
    return dataset


def _list_samples(config: ScrapeConfig, dataset: ResolvedDataset) -> list:
    if config.csv is not None:
        return list_csv_samples(config.csv, dataset.root)
    try:
        return list_folder_samples(dataset.root)
    except CurationError:
        return []  # an empty dataset: nothing to compare with, the size must then be given


def _classes(config: ScrapeConfig, dataset: ResolvedDataset, entries: list) -> tuple[str, ...]:
    known = tuple(dataset.descriptor.classes) if dataset.descriptor and dataset.descriptor.classes else \
        tuple(sorted({entry.label for entry in entries}))
    strangers = sorted(set(config.queries) - set(known))
    if config.queries and known and strangers:
        raise CurationError(f"--queries-file names classes the dataset does not have: {', '.join(strangers)} "
                            f"(it has {', '.join(known)})")
    if config.classes:
        return tuple(config.classes)
    if not known:
        raise CurationError(f"no classes: {dataset.root} has none; name them with --classes")
    return known


def dominant_size(table: pd.DataFrame, exclude_split: str) -> tuple[int, int] | None:
    """The most common (width, height) among readable samples outside the output split."""
    usable = table[(table["load_error"] == "") & (table["split"] != exclude_split)] if len(table) else table
    if not len(usable):
        return None
    width, height = Counter(zip(usable["width"], usable["height"])).most_common(1)[0][0]
    return int(width), int(height)


def _output_ref_prefix(output: Path, root: Path) -> str:
    return f"{output.relative_to(root).as_posix()}/" if output.is_relative_to(root) else f"{output}/"


def scrape(config: ScrapeConfig, *, on_class_done=None) -> ScrapeSummary:
    """Top every class of the output split up to `config.count` images. Safe to interrupt and re-run."""
    dataset = _resolve(config)
    output_path = (config.output_dir or dataset.root / config.split).resolve()
    output = OutputFolder(output_path)
    manifest = Manifest(output.path / MANIFEST_NAME)
    try:
        # Clean up after an interrupted run first, so that its leftovers are never indexed.
        config.classes = _classes(config, dataset, _list_samples(config, dataset))
        config.validate()
        classes = config.classes
        removed = output.clean(list(classes), {row["file"] for row in manifest.kept_rows()})
        entries = _list_samples(config, dataset)
        with ContentCache(config.cache_dir) as cache:
            table = (build_sample_table(dataset.root, entries, cache=cache, workers=config.workers)[0]
                     if entries else pd.DataFrame(columns=["path", "split", "label", "load_error", "sha256"]))
            size = config.image.size or dominant_size(table, output.path.name)
            if size is None:
                raise CurationError("the dataset has no readable images to take a size from; give --size WxH")
            index = DedupIndex(config.dedup.near_threshold, config.dedup.mirror)
            indexed = index_samples(index, table, dataset.root, cache) if len(table) else 0
            prefix = _output_ref_prefix(output.path, dataset.root)
            kept_rows = manifest.kept_rows()
            for row in kept_rows:
                index.add(prefix + row["file"], [row["sha256"], row["pixel_hash"], row["file_sha256"]],
                          [row.get("phash_source"), row["phash"]], output.path / row["file"])
            embeddings, embedded = None, None
            if config.dedup.embedding:
                embeddings = EmbeddingIndex(config.dedup.embedding_threshold, cache, config.dedup.embedding_model)
                embedded = index_existing(embeddings, table, dataset.root,
                               [(prefix + r["file"], output.path / r["file"], r["file_sha256"]) for r in kept_rows])
            run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}"
            state = ScrapeState(manifest, index, output, config.image, tuple(size),
                                {label: config.count for label in classes}, run_id, config.retry_failed, prefix,
                                embeddings=embeddings, evidence=cache)
            summaries = _crawl_all(config, state, classes, on_class_done)
        return ScrapeSummary(dataset.name, output.path, manifest.path, tuple(size), run_id, indexed, removed,
                             summaries, root=dataset.root, embedding_indexed=embedded)
    finally:
        manifest.close()
        output.close()


def _crawl_all(config: ScrapeConfig, state: ScrapeState, classes, on_class_done) -> list[ClassSummary]:
    start_kept = dict(state.kept)
    total_needed = sum(state.needed(label) for label in classes)
    bar = progress(range(total_needed), total=total_needed, desc="images kept")
    shown = 0

    def tick() -> None:
        nonlocal shown
        done = sum(state.kept[label] - start_kept[label] for label in classes)
        while shown < min(done, total_needed):
            next(bar, None)
            shown += 1

    summaries = []
    try:
        for label in classes:
            outcomes = []
            for engine in config.engines:
                for query in _queries(config, engine, label):
                    need = state.needed(label)
                    if need == 0:
                        break
                    seen = state.manifest.count_for(label, engine, query)
                    job = CandidateJob(state, label, engine, query, config.licence or "", config.delay)
                    outcomes.append(run_engine(job, config, seen + math.ceil(need * config.candidates_factor), tick))
            summary = ClassSummary(label, config.count, state.kept[label], state.kept[label] - start_kept[label],
                                   state.manifest.reasons(label, state.run_id), outcomes)
            summaries.append(summary)
            if on_class_done:
                on_class_done(summary)
    finally:
        close = getattr(bar, "close", None)  # tqdm's generator: closing it closes the bar
        if close:
            close()
    return summaries


def _queries(config: ScrapeConfig, engine: str, label: str) -> tuple[str, ...]:
    if engine == "greedy":
        return (" ".join(site.format(label=label) for site in config.sites),)
    if engine == "urllist":
        return (config.url_file.format(label=label) if "{label}" in config.url_file else config.url_file,)
    return config.queries_for(label)
