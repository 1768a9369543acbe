"""Washed-out copies: a picture brightened until most of it is blank, found by its dark shapes.

Brightening a white-on-white product shot (x1.3 brightness, lower contrast) saturates every pixel
above about 196 of 255: the copy keeps only its logo, stripes and sole line, 2-15 % of its pixels.
No other signal finds such a copy (bench/RESULTS.md): its embedding cosine to the original falls
to 0.27-0.52 (one copy ranked its original 148th), its pHash moves 10-16 bits, and SIFT, even on a
contrast-equalised view, finds 0-10 consistent matches. What survives is the set of darkest pixels:
a monotone tone change keeps the order of pixels below the saturation level, so the darkest u of
the original are the copy's unsaturated u. The copy is compared with the original saturated at
the same fraction:
1. an image is faded when at least `faded_fraction` of its pixels are within 4 grey levels of
   its brightest;
2. candidates: every other image's darkest-u mask against the faded image's (32 x 32, the mirror
   included), the best few per faded image and split: a vectorised scan, cost (faded images) x (images);
3. verification: the "ink" (darkness below the saturation level) of both at 128 px, each cropped
   to its ink's bounding box, correlated over small rotations and the mirror.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curation.cache import ContentCache
from curation.engine import map_missing, per_image
from curation.image_io import load_rgb
from curation.progress import progress

THUMB_KIND = "fade_thumbnail"
THUMB_VERSION = 1
THUMB_SIDE = 64  # squashed grey thumbnail, cached for every image
MASK_SIDE = 32  # candidate masks are the thumbnail's masks averaged 2 x 2
SATURATED_LEVELS = 4  # grey levels below the brightest still counted as saturated (JPEG noise)
MIN_INK = 0.005  # a faded image needs this fraction unsaturated (a blank image has nothing to match)
CANDIDATE_FLOOR = 0.4  # mask correlation below this is not worth verifying
CHUNK = 8192  # images per block of the candidate scan (bounds its memory: ~70 MB)
VERIFY_SIDE = 128
INK_SIDE = 32
ANGLES = range(-8, 9)  # degrees: rotation searched in verification (1 degree steps)


@dataclass
class FadedPairs:
    pairs: np.ndarray  # (m, 2) table positions, each row sorted
    scores: np.ndarray  # (m,) ink correlation after alignment, in [-1, 1]
    faded: np.ndarray  # bool per table row: the image is washed out
    computed: int  # thumbnails computed now (not cached)


def _thumbnail(path: Path) -> np.ndarray | None:
    from PIL import Image

    try:
        gray = load_rgb(path).convert("L")
    except Exception:  # decoded once by the probe; a file changed since takes no part
        return None
    return np.asarray(gray.resize((THUMB_SIDE, THUMB_SIDE), Image.BOX), dtype="uint8")


def compute_thumbnails(table: pd.DataFrame, root: Path, *, cache: ContentCache, workers: int = 2) -> tuple[np.ndarray, np.ndarray, int]:
    """(thumbnails uint8 (n, THUMB_SIDE**2), valid bool (n,), computed now); cached by file content."""
    known, computed = map_missing(per_image(_thumbnail, desc="fade thumbnails", fmt="npy"),
                                  table[table["load_error"] == ""], root, cache=cache, kind=THUMB_KIND,
                                  params={"version": THUMB_VERSION, "side": THUMB_SIDE}, workers=workers)
    thumbs = np.zeros((len(table), THUMB_SIDE * THUMB_SIDE), dtype="uint8")
    valid = np.zeros(len(table), dtype=bool)
    for position, sha in enumerate(table["sha256"]):
        if sha in known:
            thumbs[position] = np.asarray(known[sha]).ravel()
            valid[position] = True
    return thumbs, valid, computed


def saturated_fraction(rows: np.ndarray) -> np.ndarray:
    """Per row of flattened grey images: the fraction of pixels within SATURATED_LEVELS of its brightest."""
    top = rows.max(axis=1, keepdims=True).astype("int16")
    return (rows.astype("int16") >= top - SATURATED_LEVELS).mean(axis=1)


def find_faded_pairs(table: pd.DataFrame, root: Path, *, cache: ContentCache, faded_fraction: float,
                     candidates: int, workers: int = 2) -> FadedPairs:
    """Candidate copies of every washed-out image, each with its verification score."""
    thumbs, valid, computed = compute_thumbnails(table, root, cache=cache, workers=workers)
    fraction = np.where(valid, saturated_fraction(thumbs), 0.0)
    faded = valid & (fraction >= faded_fraction) & (fraction <= 1 - MIN_INK)
    proposals = _candidates(thumbs, valid, faded, fraction, table["split"].to_numpy(), candidates)
    if not len(proposals):
        return FadedPairs(np.zeros((0, 2), dtype="int64"), np.zeros(0, dtype="float32"), faded, computed)
    paths = table["path"].to_numpy()
    # Proposals come grouped by faded image: each is read and its ink computed once per group.
    groups = np.split(proposals, np.flatnonzero(np.diff(proposals[:, 0])) + 1)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        verified = pool.map(lambda g: ink_similarities(root / paths[g[0, 0]], [root / paths[o] for o in g[:, 1]]), groups)
        scores = np.concatenate(list(progress(verified, total=len(groups), desc="faded copies"))).astype("float32")
    pairs = np.sort(proposals, axis=1)
    order = np.lexsort((-scores, pairs[:, 1], pairs[:, 0]))
    pairs, scores = pairs[order], scores[order]
    first = np.r_[True, np.any(pairs[1:] != pairs[:-1], axis=1)]  # a pair proposed from both sides: its best score
    return FadedPairs(pairs[first], scores[first], faded, computed)


def _candidates(thumbs, valid, faded, fraction, splits, candidates: int) -> np.ndarray:
    """(faded position, other position) for the best-matching masks of each faded image, the best
    `candidates` in every split (as the embedding search: other copies in the same split do not
    crowd out the original in train)."""
    cumulative = _cumulative_histograms(thumbs)
    others = np.flatnonzero(valid)
    by_split = [np.flatnonzero(splits[others] == split) for split in np.unique(splits[others])]
    found = []
    for w in progress(np.flatnonzero(faded), total=int(faded.sum()), desc="faded images: candidate scan"):
        rank = int((1 - fraction[w]) * thumbs.shape[1])  # the darkest `rank` pixels are the ink
        target = _unit(_mask(thumbs[w:w + 1], _thresholds(cumulative[w:w + 1], rank)).astype("float32"))[0]
        # A flip permutes a mask's cells: scoring against the flipped target is scoring the flipped mask.
        targets = np.stack([target, target.reshape(MASK_SIDE, MASK_SIDE)[:, ::-1].ravel()], axis=1)
        scores = np.full(len(others), -1.0, dtype="float32")
        for start in range(0, len(others), CHUNK):
            block = others[start:start + CHUNK]
            masks = _mask(thumbs[block], _thresholds(cumulative[block], rank)).astype("float32")
            scores[start:start + len(block)] = (masks @ targets).max(axis=1) / _centred_norms(masks)
        scores[others == w] = -1.0
        for members in by_split:
            best = members[np.argsort(-scores[members])[:candidates]]
            found += [(w, int(others[b])) for b in best if scores[b] >= CANDIDATE_FLOOR]
    return np.array(found, dtype="int64").reshape(-1, 2)


def _cumulative_histograms(thumbs: np.ndarray) -> np.ndarray:
    """Per row: how many pixels are at or below each grey level, int32 (n, 256)."""
    offsets = (np.arange(len(thumbs), dtype="int64") * 256)[:, None]
    counts = np.bincount((thumbs + offsets).ravel(), minlength=256 * len(thumbs)).reshape(len(thumbs), 256)
    return np.cumsum(counts, axis=1, dtype="int32")


def _thresholds(cumulative: np.ndarray, rank: int) -> np.ndarray:
    """Per row, the grey level of its rank-th darkest pixel (np.sort(row)[rank]); int16, as it can be 256."""
    return (cumulative <= rank).sum(axis=1).astype("int16")


def _mask(thumbs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Pixels darker than each row's threshold, counted per 2 x 2 cell: uint8 0-4 (rows, MASK_SIDE**2)."""
    dark = (thumbs < thresholds[:, None]).reshape(len(thumbs), THUMB_SIDE, THUMB_SIDE).view("uint8")
    cells = dark[:, 0::2, 0::2] + dark[:, 0::2, 1::2] + dark[:, 1::2, 0::2] + dark[:, 1::2, 1::2]
    return cells.reshape(len(thumbs), -1)


def _centred_norms(rows: np.ndarray) -> np.ndarray:
    """|row - mean(row)| per row, without forming the centred rows (a centred target needs no centred mask)."""
    sums = rows.sum(axis=1)
    squares = np.einsum("ij,ij->i", rows, rows)
    return np.sqrt(np.maximum(squares - sums * sums / rows.shape[1], 0)) + 1e-6


def _unit(rows: np.ndarray) -> np.ndarray:
    centred = rows - rows.mean(axis=1, keepdims=True)
    return centred / (np.linalg.norm(centred, axis=1, keepdims=True) + 1e-6)


def ink_similarities(faded_path: Path, other_paths: list[Path]) -> np.ndarray:
    """Per other image: the correlation of the faded image's ink with the other's saturated at the
    same fraction, aligned by the ink's bounding box, best over ANGLES and the mirror. -1 where an
    image cannot be read or has no ink."""
    scores = np.full(len(other_paths), -1.0)
    try:
        faded_gray = _gray(faded_path)
    except Exception:
        return scores
    unsaturated = 1 - float(saturated_fraction(faded_gray.reshape(1, -1))[0])
    faded_ink = _ink_thumbnail(_ink(faded_gray, unsaturated))
    if faded_ink is None:
        return scores
    for i, path in enumerate(other_paths):
        try:
            other_ink = _ink(_gray(path), unsaturated)
        except Exception:
            continue
        for view in (other_ink, np.ascontiguousarray(other_ink[:, ::-1])):
            for angle in ANGLES:
                candidate = _ink_thumbnail(_rotated(view, angle))
                if candidate is not None:
                    scores[i] = max(scores[i], float(candidate @ faded_ink))
    return scores


def _gray(path: Path) -> np.ndarray:
    from curation.leakage.verify import _resize_long_side

    return _resize_long_side(np.asarray(load_rgb(path).convert("L")), VERIFY_SIDE)


def _ink(gray: np.ndarray, unsaturated: float) -> np.ndarray:
    """Darkness below the image's u-quantile (0 above it), stretched to 0-255, float32."""
    threshold = max(float(np.quantile(gray, unsaturated)), 1.0)
    ink = 255.0 * (1.0 - gray.astype("float32") / threshold)
    return np.where(gray < threshold, ink, 0.0).astype("float32")


def _rotated(ink: np.ndarray, degrees: float) -> np.ndarray:
    import cv2

    if degrees == 0:
        return ink
    margin = max(ink.shape) // 8  # room for the corners
    padded = cv2.copyMakeBorder(ink, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=0)
    centre = (padded.shape[1] / 2, padded.shape[0] / 2)
    return cv2.warpAffine(padded, cv2.getRotationMatrix2D(centre, degrees, 1.0), padded.shape[::-1],
                          flags=cv2.INTER_LINEAR, borderValue=0)


def _ink_thumbnail(ink: np.ndarray) -> np.ndarray | None:
    """The ink's bounding box resized to INK_SIDE x INK_SIDE, centred and unit length; None if empty."""
    import cv2

    rows, cols = np.nonzero(ink > 1.0)
    if len(rows) < 4:
        return None
    box = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    small = cv2.resize(box, (INK_SIDE, INK_SIDE), interpolation=cv2.INTER_AREA).ravel()
    return _unit(small[None, :].astype("float64"))[0]
