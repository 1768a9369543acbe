"""One candidate URL from download to decision: fetch, process, de-duplicate, write, record.

`ScrapeState` is shared by every engine and thread of a run: the manifest, the de-duplication
index, the output folder and the per-class quota. The decision and the write happen under one lock,
so two threads never keep the same picture and a class never gets more than it asked for.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from curation.cache import ContentCache
from curation.scrape.config import ImageRules
from curation.leakage.engine import Neighbour, PictureJudge
from curation.scrape.dedup import DedupIndex, Duplicate
from curation.scrape.embedding_dedup import EMBEDDING_REASON, EmbeddingIndex
from curation.scrape.evidence import store_thumbnail
from curation.scrape.fetch import FetchError, SafeSession, check_scheme
from curation.scrape.manifest import KEPT, REJECTED, Manifest
from curation.scrape.process import Rejected, process_image
from curation.scrape.store import OutputFolder

log = logging.getLogger(__name__)


@dataclass
class ScrapeState:
    manifest: Manifest
    index: DedupIndex
    output: OutputFolder
    rules: ImageRules
    size: tuple[int, int]
    targets: dict[str, int]  # wanted kept images per class
    run_id: str
    retry_failed: bool = False
    output_ref_prefix: str = ""  # how duplicate_of names our files: "<split>/" inside the dataset
    embeddings: EmbeddingIndex | None = None  # the optional embedding check (--embedding-dedup)
    evidence: ContentCache | None = None  # where rejected duplicates' thumbnails go, for the report
    judge: PictureJudge = field(default_factory=PictureJudge)  # the duplicate engine: copy or not
    lock: threading.Lock = field(default_factory=threading.Lock)
    kept: dict[str, int] = field(default_factory=dict)
    done: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for label in self.targets:
            self.kept[label] = len(self.manifest.kept_rows(label))
            self.done[label] = self.manifest.done_urls(label, retry_failed=self.retry_failed)

    def needed(self, label: str) -> int:
        return max(0, self.targets[label] - self.kept[label])

    def processed_count(self) -> int:
        return len(self.manifest.rows)


@dataclass
class CandidateJob:
    """Everything one engine's downloader needs to judge candidates for one class."""

    state: ScrapeState
    label: str
    engine: str
    query: str
    licence: str = ""
    delay: float = 0.0

    def quota_reached(self) -> bool:
        return self.state.needed(self.label) == 0

    def handle(self, url: str, session: SafeSession) -> None:
        """Decide one candidate and record it; never raises (a failure becomes a manifest row)."""
        state = self.state
        with state.lock:
            if self.quota_reached() or url in state.done[self.label]:
                return
            state.done[self.label].add(url)  # claimed: no other thread fetches it in this run
        if self.delay:
            time.sleep(self.delay)
        row = {"run_id": state.run_id, "label": self.label, "engine": self.engine, "query": self.query,
               "licence": self.licence, "url": url}
        try:
            self._judge(url, session, row)
        except Exception as exc:  # a bug must cost one candidate, not the run; the row says why
            log.exception("unexpected failure on %s", url)
            self._record(row, REJECTED, "internal_error", f"{type(exc).__name__}: {exc}")

    def _judge(self, url: str, session: SafeSession, row: dict) -> None:
        try:
            check_scheme(url)
            response = session.fetch(url)
        except FetchError as exc:
            row["http_status"] = exc.status or ""
            return self._record(row, REJECTED, exc.reason, exc.detail)
        body = response.content
        sha = hashlib.sha256(body).hexdigest()
        row.update(final_url=response.url, http_status=response.status_code, bytes=len(body), sha256=sha,
                   content_type=response.headers.get("content-type", "")[:100])
        try:
            processed = process_image(body, self.state.rules, self.state.size)
        except Rejected as exc:
            return self._record(row, REJECTED, exc.reason, exc.detail)
        file_sha = hashlib.sha256(processed.jpeg).hexdigest()
        hashes = self.state.index.candidate_phashes(processed.source_rgb, processed.image)
        exact = [sha, processed.source_pixel_hash, file_sha]
        row.update(pixel_hash=processed.source_pixel_hash, source_format=processed.source_format,
                   source_width=processed.source_size[0], source_height=processed.source_size[1],
                   phash=hashes["resized image"], phash_source=hashes["image"], file_sha256=file_sha)
        vector = None
        if self.state.embeddings is not None and self.state.index.find_exact(exact) is None:
            # Embedded outside the run's lock (the slow part); the decision below looks again.
            vector = self.state.embeddings.embed_jpeg(processed.jpeg, file_sha)
        features = self.state.judge.features(processed.image)  # keypoints and view, outside the lock too
        self._decide(row, processed, exact, hashes, vector, features)

    def _decide(self, row: dict, processed, exact: list[str], hashes: dict[str, str], vector, features) -> None:
        state = self.state
        with state.lock:
            if self.quota_reached():  # another thread filled the class meanwhile: not decided, not done
                state.done[self.label].discard(row["url"])
                return
            duplicate = state.index.find_exact(exact) or self._copy_of(row, hashes, vector, features)
            if duplicate:
                row.update(duplicate_of=duplicate.of)
                if duplicate.similarity is not None:
                    row["similarity"] = duplicate.similarity
                if duplicate.reason != EMBEDDING_REASON:  # a hash neighbour: its distance means something
                    row["distance"] = duplicate.distance
                if state.evidence is not None:
                    store_thumbnail(state.evidence, row["sha256"], processed.image)
                return self._record(row, REJECTED, duplicate.reason, duplicate.detail)
            relative = state.output.relative_name(self.label, row["sha256"])
            state.output.write_atomic(relative, processed.jpeg)
            row["file"] = relative
            self._record(row, KEPT, "", "")
            ref = state.output_ref_prefix + relative
            state.index.add(ref, exact, [hashes["image"], hashes["resized image"]], state.output.path / relative)
            if vector is not None:
                state.embeddings.add(ref, vector)
            state.kept[self.label] += 1

    def _copy_of(self, row: dict, hashes: dict[str, str], vector, features) -> Duplicate | None:
        """The duplicate engine's verdict on the candidate's neighbours: a Duplicate for a copy; for
        anything else the closest image and its kind go into the row, and the candidate is kept."""
        state = self.state
        neighbours = state.index.neighbours(hashes)
        by_hash = {n.ref for n in neighbours}
        if vector is not None:
            cosines = dict(state.embeddings.nearest(vector))
            neighbours = [Neighbour(n.ref, n.path, n.hash_distance, n.hash_mirrored, cosines.get(n.ref, float("nan")))
                          for n in neighbours]
            neighbours += [Neighbour(ref, state.index.path_of(ref), cosine=cosine)
                           for ref, cosine in cosines.items() if ref not in by_hash]
        verdict = state.judge.judge(features, neighbours)
        if verdict.kind:
            row.update(closest=verdict.of, closest_kind=verdict.kind, closest_signal=verdict.signal)
        if not verdict.is_copy:
            return None
        similarity = verdict.evidence["cosine"]
        return Duplicate("duplicate_near" if verdict.of in by_hash else EMBEDDING_REASON, verdict.of,
                         verdict.evidence["hash_distance"], verdict.describe(),
                         None if np.isnan(similarity) else round(similarity, 4))

    def _record(self, row: dict, decision: str, reason: str, detail: str) -> None:
        row.update(decision=decision, reason=reason, detail=detail)
        self.state.manifest.append(row)
