"""Is this one new picture the same as one already held? The audit's own decision (fuse.decide,
with keypoints and alignment) for a single image against its nearest indexed images, for callers
that judge images one at a time: the scraper, before it keeps a download.

    judge = PictureJudge()
    verdict = judge.judge(image, [Neighbour("train/nike/1.jpg", root / "train/nike/1.jpg", hash_distance=5)])
    verdict.is_copy, verdict.kind, verdict.of, verdict.evidence

The caller finds the neighbours (its hash or embedding index); the judge decides. Features of
the indexed images are computed on first use and kept for the run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from curation.image_io import load_rgb
from curation.leakage.alignment import Alignments, align, canonical_view
from curation.leakage.fuse import COPY_KINDS, KINDS, certainty, decide
from curation.leakage.params import LeakageParams
from curation.leakage.verify import image_keypoints, match_pair


@dataclass(frozen=True)
class Neighbour:
    """An indexed image close to the candidate by some cheap signal."""

    ref: str  # how the caller names it (a dataset path, a scraped file)
    path: Path  # where its pixels are
    hash_distance: int = 64  # pHash bits to the candidate (mirror included); 64: unknown
    hash_mirrored: bool = False
    cosine: float = float("nan")  # embedding cosine similarity; NaN: no embeddings


@dataclass(frozen=True)
class Verdict:
    kind: str  # exact | near_duplicate | same_scene | similar | "" (nothing related)
    of: str = ""  # ref of the closest indexed image
    signal: str = ""
    evidence: dict = field(default_factory=dict)

    @property
    def is_copy(self) -> bool:
        return self.kind in COPY_KINDS

    def describe(self) -> str:
        figures = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in self.evidence.items()
                            if v is not None and not (isinstance(v, float) and np.isnan(v)))
        return f"{self.kind.replace('_', '-')} of {self.of} ({self.signal}; {figures})"


@dataclass
class _Features:
    keypoints: tuple | None
    view: np.ndarray | None


class PictureJudge:
    """The duplicate engine for one image at a time; safe to share between threads."""

    def __init__(self, params: LeakageParams | None = None):
        self.params = (params or LeakageParams()).validate()
        self._known: dict[str, _Features] = {}
        self._lock = threading.Lock()

    def features(self, image: Image.Image) -> _Features:
        rgb = image.convert("RGB")
        return _Features(image_keypoints(rgb, self.params.keypoint_features), canonical_view(rgb))

    def _reference(self, neighbour: Neighbour) -> _Features:
        with self._lock:
            known = self._known.get(neighbour.ref)
        if known is None:
            try:
                known = self.features(load_rgb(neighbour.path))
            except Exception:  # unreadable now: judged on its cheap signals alone
                known = _Features(None, None)
            with self._lock:
                self._known[neighbour.ref] = known
        return known

    def judge(self, image: Image.Image | _Features, neighbours: list[Neighbour]) -> Verdict:
        """The most certain relation of the image to any neighbour (exact matches are the caller's:
        they need no pixels)."""
        if not neighbours:
            return Verdict("")
        candidate = image if isinstance(image, _Features) else self.features(image)
        p = self.params
        n = len(neighbours)
        cosine = np.array([nb.cosine for nb in neighbours], dtype="float64")
        distance = np.array([nb.hash_distance for nb in neighbours], dtype="int64")
        hash_mirrored = np.array([nb.hash_mirrored for nb in neighbours], dtype=bool)
        inliers, mirrored = np.zeros(n, dtype="int64"), np.zeros(n, dtype=bool)
        alignment = Alignments.empty(n)
        for i, neighbour in enumerate(neighbours):
            reference = self._reference(neighbour)
            if candidate.keypoints is None or reference.keypoints is None:
                continue
            inliers[i], mirrored[i], transform = match_pair(reference.keypoints, candidate.keypoints,
                                                           enough=p.inliers_near)
            suspect = cosine[i] >= p.cosine_support or distance[i] <= p.hash_strict
            if p.align and (inliers[i] >= p.align_min_inliers or suspect):
                aligned = align(reference.view, candidate.view, transform, (p.aligned_structure, p.aligned_tone))
                alignment.put(np.array([i]), _as_alignments(aligned))
        kind, signal = decide(np.full(n, "", dtype=object), cosine, distance, hash_mirrored, inliers, mirrored, p,
                              None, alignment)
        return _most_certain(neighbours, kind, signal, cosine, distance, inliers, alignment)


def _as_alignments(one) -> Alignments:
    return Alignments.of([one])


def _most_certain(neighbours, kind, signal, cosine, distance, inliers, alignment) -> Verdict:
    frame = pd.DataFrame({"kind": kind, "cosine": cosine, "hash_distance": distance, "inliers": inliers,
                          "fade_score": np.nan, "structure": alignment.structure, "tone": alignment.tone})
    rank = np.array([KINDS.index(k) if k in KINDS else len(KINDS) for k in kind])
    best = int(np.lexsort((-certainty(frame), rank))[0])
    if not kind[best]:
        return Verdict("")
    evidence = {"cosine": float(cosine[best]), "hash_distance": int(distance[best]), "inliers": int(inliers[best]),
                "structure": float(alignment.structure[best]), "tone": float(alignment.tone[best]),
                "colour": float(alignment.colour[best]), "overlay": float(alignment.overlay[best])}
    return Verdict(str(kind[best]), neighbours[best].ref, str(signal[best]), evidence)
