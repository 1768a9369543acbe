"""Is a candidate already in the dataset, or already scraped? The index that finds what to compare.

Exact: the downloaded file's sha256, the sha256 of its decoded pixels (`pixel_hash`, the sample
table's column) and the sha256 of the JPEG we would write: a match is a copy, no pixels needed.
Otherwise the indexed images within `near_threshold` pHash bits (imagededup's PHash of the
normalised image and of its mirror image) are the candidate's neighbours, and the duplicate engine
(curation.leakage.engine) decides on their pixels whether any is the same picture: a hash
distance alone throws away new photos of look-alike products. Existing samples' pHashes are
cached in the ContentCache under PHASH_KIND, keyed by file sha256.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from curation.cache import ContentCache
from curation.leakage.engine import Neighbour
from curation.progress import progress

PHASH_KIND = "phash"
PHASH_PARAMS = {"library": "imagededup", "method": "PHash", "input": "load_rgb", "version": 1}


@dataclass(frozen=True)
class Duplicate:
    reason: str  # duplicate_exact | duplicate_near
    of: str  # the sample it duplicates: a dataset path (train/nike/1.jpg) or a scraped file
    distance: int = 0  # pHash bits, for duplicate_near
    detail: str = ""
    similarity: float | None = None  # embedding cosine similarity, for duplicate_embedding


def phash(image: Image.Image) -> str:
    """imagededup's PHash (16 hex digits), bit for bit (tests compare the two), computed here because
    importing imagededup.methods takes about 11 s (it loads torch) and every run and test would pay it:
    32x32 LANCZOS, grey, 2-D DCT, top-left 8x8 coefficients >= their median without the DC term."""
    from scipy.fftpack import dct

    small = Image.fromarray(np.asarray(image.convert("RGB"), dtype=np.uint8)).resize((32, 32), Image.LANCZOS)
    pixels = np.array(small.convert("L")).astype("uint8")
    coefficients = dct(dct(pixels, axis=0), axis=1)[:8, :8]
    bits = coefficients >= np.median(coefficients.flatten()[1:])
    return "".join("%0.2x" % byte for byte in np.packbits(bits))


NEIGHBOURS = 5  # indexed images within the radius handed to the engine, nearest first


class DedupIndex:
    """Every image a candidate must differ from; safe to query and grow from several threads."""

    def __init__(self, near_threshold: int, mirror: bool = True):
        self.near_threshold = near_threshold
        self.mirror = mirror
        self._exact: dict[str, str] = {}
        self._hashes = np.zeros(0, dtype=np.uint64)
        self._refs: list[str] = []
        self._paths: dict[str, Path] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._refs)

    def add(self, ref: str, exact_keys: list[str], phashes: list[str | None], path: Path | None = None) -> None:
        """Index an image by its exact keys and pHashes; `path` is where the engine reads its pixels."""
        with self._lock:
            if path is not None:
                self._paths[ref] = path
            for key in exact_keys:
                if key:
                    self._exact.setdefault(key, ref)
            new = [np.uint64(int(h, 16)) for h in phashes if h]
            if new:
                self._hashes = np.append(self._hashes, np.array(new, dtype=np.uint64))
                self._refs.extend([ref] * len(new))

    def find_exact(self, exact_keys: list[str]) -> Duplicate | None:
        """The indexed image with one of these file or pixel hashes; None if there is none."""
        with self._lock:
            for key in exact_keys:
                if key and key in self._exact:
                    return Duplicate("duplicate_exact", self._exact[key], 0, "identical file or pixels")
        return None

    def neighbours(self, phashes: dict[str, str], limit: int = NEIGHBOURS) -> list[Neighbour]:
        """Indexed images within near_threshold bits of any of the candidate's pHashes, nearest first.
        `phashes` maps a description ("image", "mirror image", ...) to a candidate's pHash."""
        with self._lock:
            if not len(self._hashes):
                return []
            best: dict[str, tuple[int, bool]] = {}
            for which, hex_hash in phashes.items():
                distances = np.bitwise_count(self._hashes ^ np.uint64(int(hex_hash, 16)))
                for index in np.flatnonzero(distances <= self.near_threshold):
                    ref, distance = self._refs[index], int(distances[index])
                    if ref not in best or distance < best[ref][0]:
                        best[ref] = (distance, "mirror" in which)
            nearest = sorted(best.items(), key=lambda item: (item[1][0], item[0]))[:limit]
            return [Neighbour(ref, self._paths.get(ref, Path(ref)), distance, mirrored)
                    for ref, (distance, mirrored) in nearest]

    def path_of(self, ref: str) -> Path:
        with self._lock:
            return self._paths.get(ref, Path(ref))

    def candidate_phashes(self, source: Image.Image, fitted: Image.Image) -> dict[str, str]:
        """pHashes of the source picture and of the normalised one (a dataset may have padded, cropped or
        squashed its own copy), and of their mirror images when `mirror` is on."""
        hashes = {"image": phash(source), "resized image": phash(fitted)}
        if self.mirror:
            hashes["mirror image"] = phash(ImageOps.mirror(source))
            hashes["mirrored resized image"] = phash(ImageOps.mirror(fitted))
        return hashes


def index_samples(index: DedupIndex, table: pd.DataFrame, root: Path, cache: ContentCache) -> int:
    """Add every readable sample of a sample table to the index; returns how many were added."""
    from curation.image_io import load_rgb

    usable = table[(table["load_error"] == "") & table["sha256"].notna()]
    shas = usable["sha256"].tolist()
    cached = cache.get_many(PHASH_KIND, PHASH_PARAMS, shas)
    missing = usable[~usable["sha256"].isin(cached)]
    computed: dict[str, str] = {}
    for row in progress(missing.itertuples(), total=len(missing), desc="hashing existing images"):
        try:
            computed[row.sha256] = phash(load_rgb(root / row.path))
        except Exception:  # unreadable now though the scan read it: exact keys still protect it
            continue
    if computed:
        cache.put_many(PHASH_KIND, PHASH_PARAMS, computed)
    hashes = {**cached, **computed}
    for row in usable.itertuples():
        index.add(row.path, [row.sha256, row.pixel_hash], [hashes.get(row.sha256)], root / row.path)
    return len(usable)
