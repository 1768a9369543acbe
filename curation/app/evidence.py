"""What the audit knows that says whether to trust an answer on a new photo.

Built once at start-up from the dataset and what the stages cached, then asked per photo:
- `nearest`: the training images closest in embedding space (curation.embeddings.combined_vectors of
  the evidence backbones: lite0 by default, the leakage audit's; the label stage's three on request),
  with their labels;
- `no_class`: the label stage's images-of-no-class rule (curation.label_issues.foreign), the same
  function and threshold: the photo's affinity to its best class, in robust deviations below the
  training images' median affinity;
- `copy_of`: the duplicate engine (curation.leakage.engine.PictureJudge, as the scraper asks it)
  on the photo's exact-hash, pHash and lite0-cosine neighbours among every split's images;
- `slice`: the error slice (reports/<dataset>/slices) that 2 or more of the photo's 5 nearest images
  belong to.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from curation.label_issues.foreign import MAX_DEVIATIONS, NEIGHBOURS, class_affinity

NEAREST = 5
# A photo is like a slice when 2 of its 5 nearest images are members. Leave-one-out on the shoes set's
# three slices (bench/RESULTS.md): 15 / 74 / 65 % of members found, 0.9 / 1.6 / 3.2 % of the rest
# wrongly; a majority (3 of 5) found 4 / 64 / 30 %. A k-means cell within a class (slice 1) is not a
# neighbourhood, and no neighbour rule finds it well.
SLICE_NEIGHBOURS, SLICE_VOTES = 5, 2


@dataclass
class SliceInfo:
    id: int
    description: str
    accuracy: float
    members: set[str]


@dataclass
class ReferenceImages:
    """Every readable, labelled image of the dataset, with its unit vectors."""

    table: pd.DataFrame  # sample_id, path, split, label, sha256, pixel_hash (readable, labelled rows)
    vectors: np.ndarray  # combined unit vectors (n, d), rows aligned with `table`
    lite0: np.ndarray  # lite0's own unit vectors: the duplicate engine's cosine is calibrated on them
    classes: list[str]
    train_split: str = "train"
    affinity_median: float = 0.0
    affinity_mad: float = 1.0
    slices: list[SliceInfo] = field(default_factory=list)

    # Derived once, not per photo: each answer reads them.
    @cached_property
    def train(self) -> np.ndarray:
        return (self.table["split"] == self.train_split).to_numpy()

    @cached_property
    def labels(self) -> np.ndarray:
        return self.table["label"].astype(str).to_numpy()

    @cached_property
    def paths(self) -> np.ndarray:
        return self.table["path"].astype(str).to_numpy()

    @cached_property
    def row_of_path(self) -> dict[str, int]:
        return {path: row for row, path in enumerate(self.paths)}


def build_references(table: pd.DataFrame, root: Path, *, cache, report_dir: Path, classes: list[str],
                     spec: str, train_split: str = "train") -> ReferenceImages:
    """`spec`: the backbones of the evidence vectors (curation.embeddings.combined_vectors)."""
    from curation.embeddings import compute_embeddings, combined_vectors

    usable = ((table["load_error"] == "") & table["label"].fillna("").astype(str).isin(classes)).to_numpy()
    vectors = combined_vectors(table, root, cache=cache, spec=spec)
    lite0 = compute_embeddings(table, root, cache=cache).normalized()
    usable &= ~np.isnan(vectors).any(axis=1)
    rows = table[usable].reset_index(drop=True)
    references = ReferenceImages(rows, vectors[usable], lite0[usable], classes, train_split)
    train = references.train
    labels = rows["label"].astype(str).map({c: i for i, c in enumerate(classes)}).to_numpy()
    affinity = class_affinity(references.vectors[train], labels[train], np.arange(int(train.sum())), len(classes))
    references.affinity_median, references.affinity_mad = affinity.median, affinity.mad
    references.slices = read_slices(report_dir)
    return references


def read_slices(report_dir: Path) -> list[SliceInfo]:
    folder = Path(report_dir) / "slices"
    if not (folder / "slices.csv").is_file() or not (folder / "members.csv").is_file():
        return []
    slices = pd.read_csv(folder / "slices.csv", keep_default_na=False)
    members = pd.read_csv(folder / "members.csv", dtype={"sample_id": str}, keep_default_na=False)
    return [SliceInfo(int(row.slice), str(row.description), round(1.0 - float(row.error_rate), 4),
                      set(members.loc[members["slice"] == row.slice, "sample_id"]))
            for row in slices.itertuples()]


@dataclass
class PhotoEvidence:
    nearest: list[dict]
    no_class: bool
    no_class_score: float  # robust deviations below the training images' median class affinity
    class_affinity: dict[str, float]
    slice: dict | None


def photo_evidence(references: ReferenceImages, vector: np.ndarray) -> PhotoEvidence:
    """Nearest training images, the no-class rule and the slice for one combined unit vector."""
    similarity = references.vectors @ vector
    train, labels = references.train, references.labels
    affinity = {}
    for name in references.classes:
        members = np.sort(similarity[train & (labels == name)])[-NEIGHBOURS:]
        affinity[name] = round(float(members.mean()), 4) if len(members) else float("nan")
    best = max(v for v in affinity.values() if v == v)
    deviations = (references.affinity_median - best) / references.affinity_mad
    order = np.argsort(-np.where(train, similarity, -np.inf))[:NEAREST]
    nearest = [{"path": str(references.paths[i]), "label": str(labels[i]),
                "similarity": round(float(similarity[i]), 4), "sample_id": str(references.table["sample_id"].iloc[i])}
               for i in order]
    return PhotoEvidence(nearest, bool(deviations >= MAX_DEVIATIONS), round(float(deviations), 2), affinity,
                         _slice_of(references, similarity))


def _slice_of(references: ReferenceImages, similarity: np.ndarray) -> dict | None:
    if not references.slices:
        return None
    around = set(references.table["sample_id"].iloc[np.argsort(-similarity)[:SLICE_NEIGHBOURS]])
    counts = [(len(around & s.members), s) for s in references.slices]
    count, best = max(counts, key=lambda item: item[0])
    if count < SLICE_VOTES:
        return None
    return {"id": best.id, "description": best.description, "accuracy": best.accuracy,
            "neighbours_in_slice": count}


class CopyFinder:
    """Is the photo a copy of an image of the dataset? The scraper's question, asked the same way."""

    def __init__(self, references: ReferenceImages, root: Path, cache):
        from curation.leakage.engine import PictureJudge
        from curation.leakage.params import LeakageParams
        from curation.scrape.dedup import DedupIndex, index_samples

        self.params = LeakageParams()
        self.index = DedupIndex(near_threshold=self.params.hash_max_distance)
        index_samples(self.index, references.table, root, cache)
        self.judge = PictureJudge(self.params)
        self.references = references
        self.root = root

    def copy_of(self, data: bytes, raw_pixel_hash: str, image: Image.Image, lite0: np.ndarray) -> dict | None:
        from curation.leakage.engine import Neighbour
        from curation.scrape.dedup import phash

        exact = self.index.find_exact([hashlib.sha256(data).hexdigest(), raw_pixel_hash])
        if exact:
            return self._found(exact.of, "exact", exact.detail)
        hashes = {"image": phash(image), "mirror image": phash(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))}
        neighbours = self.index.neighbours(hashes)
        cosine = self.references.lite0 @ lite0
        paths, row_of = self.references.paths, self.references.row_of_path
        by_path = {n.ref for n in neighbours}
        neighbours = [Neighbour(n.ref, n.path, n.hash_distance, n.hash_mirrored, float(cosine[row_of[n.ref]]))
                      for n in neighbours]
        for i in np.argsort(-cosine)[:NEAREST]:
            if cosine[i] >= self.params.cosine_similar and paths[i] not in by_path:
                neighbours.append(Neighbour(paths[i], self.root / paths[i], cosine=float(cosine[i])))
        verdict = self.judge.judge(image, neighbours)
        if not verdict.is_copy:
            return None
        return self._found(verdict.of, verdict.kind, verdict.describe())

    def _found(self, path: str, kind: str, evidence: str) -> dict:
        row = self.references.row_of_path.get(path)
        table = self.references.table
        split = "" if row is None else str(table["split"].iloc[row])
        sample_id = "" if row is None else str(table["sample_id"].iloc[row])
        return {"path": path, "kind": kind, "split": split, "sample_id": sample_id, "evidence": evidence}
