"""Geometric verification of candidate pairs: SIFT keypoints matched and fitted with RANSAC.

A global embedding ranks a copy's original first (the benchmark found the source as nearest
neighbour for nearly every edit) but its cosine is a poor absolute test: a 25% crop or a
downscaled copy can score below two different photos of the same white shoe. Keypoints matched
under one similarity transform (shift, rotation, scale) tell them apart: a copy keeps dozens of
consistent matches, a different photo a handful. Keypoints are computed once per image and per
mirror image (a flipped copy matches the mirror), cached by file content; only candidate pairs
(nearest neighbours and hash matches) are verified, never all pairs. The mirror image's keypoints
need no second detection: SIFT is symmetric, so they are the image's own with x negated and each
descriptor's bins permuted (rows of the 4 x 4 grid reversed, orientation bins negated): for most
keypoints (two thirds or more) exactly what a detection on the flipped pixels gives, the rest differ
at the image border or in sub-pixel position.

Why SIFT on a contrast-equalised 128 px view (bench/RESULTS.md, against ORB at 256 px): white
shoes on white backgrounds have faint corners, and a brightened copy fainter ones still; local
histogram equalisation (CLAHE) brings both back to one contrast, and SIFT's scale-space detector
matches a blurry downscaled copy with its sharp original where ORB's corners do not. SIFT
doubles its input internally, so a 128 px view costs about as much as ORB at 256 px. Descriptors
are compared as RootSIFT (Hellinger distance), which separates near matches better than L2.
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
from curation.leakage.canonical import trim_borders
from curation.progress import progress

KEYPOINT_KIND = "sift_keypoints"
KEYPOINT_VERSION = 1
CANONICAL_SIDE = 128  # images are matched at one scale: the long side resized to this
CONTRAST_THRESHOLD = 0.02  # lower than SIFT's 0.04: faint detail of white-on-white shots counts
CLAHE_CLIP = 2.0  # local contrast equalisation on 4 x 4 tiles before detection
RATIO_TEST = 0.8  # Lowe's ratio test on the two nearest descriptors
RANSAC_PIXELS = 1.25  # at 128 px: a copy aligns within a pixel, a look-alike photo does not
AFFINE_GAIN = 1.5  # a full affine fit with this many times the similarity's inliers seeds the alignment
DESCRIPTOR = 128
# Descriptor bin i of a keypoint of the mirror image is bin MIRROR_BINS[i] of the original keypoint.
MIRROR_BINS = np.arange(DESCRIPTOR).reshape(4, 4, 8)[::-1, :, (-np.arange(8)) % 8].ravel()


@dataclass
class Keypoints:
    """Per table row: (points float32 (n, 2), RootSIFT descriptors float32 (n, 128)) for the image
    and its mirror; None if unreadable."""

    direct: list[tuple[np.ndarray, np.ndarray] | None]
    mirror: list[tuple[np.ndarray, np.ndarray] | None]
    computed: int


def _sift_features(gray: np.ndarray, n_features: int) -> np.ndarray:
    import cv2

    sift = cv2.SIFT_create(nfeatures=n_features, contrastThreshold=CONTRAST_THRESHOLD)
    points, descriptors = sift.detectAndCompute(gray, None)
    if descriptors is None:
        return np.zeros((0, 2 + DESCRIPTOR), dtype="float32")
    coords = np.array([p.pt for p in points], dtype="float32")
    return np.hstack([coords, descriptors.astype("float32")])  # one array for the cache: x, y, 128 bins


def _extract(path: Path, n_features: int) -> np.ndarray | None:
    try:
        image = load_rgb(path)
    except Exception:  # decoded once by the probe; a file changed since is left unverified
        return None
    return keypoint_array(image, n_features)


def keypoint_array(image, n_features: int) -> np.ndarray:
    """SIFT keypoints of the canonical view of a PIL image: rows of x, y and 128 descriptor bins."""
    import cv2

    gray = np.asarray(trim_borders(image).convert("L"))
    gray = cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=(4, 4)).apply(_resize_long_side(gray, CANONICAL_SIDE))
    return _sift_features(gray, n_features)


def image_keypoints(image, n_features: int):
    """(direct, mirror) keypoints of a PIL image, as match_pair takes them."""
    return _split(keypoint_array(image, n_features))


def _resize_long_side(gray: np.ndarray, side: int) -> np.ndarray:
    import cv2

    scale = side / max(gray.shape)
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def compute_keypoints(table: pd.DataFrame, root: Path, positions: np.ndarray, *, cache: ContentCache,
                      n_features: int, workers: int = 2) -> Keypoints:
    """Keypoints of the table rows at `positions` (others stay None); cached by file content."""
    import cv2

    cv2.setNumThreads(1)  # threads below, one per image
    rows = table.iloc[np.unique(positions)] if len(positions) else table.iloc[:0]
    rows = rows[rows["load_error"] == ""]
    params = {"version": KEYPOINT_VERSION, "n_features": n_features, "side": CANONICAL_SIDE,
              "contrast": CONTRAST_THRESHOLD, "clahe": CLAHE_CLIP}
    task = per_image(_extract, desc="keypoints", fmt="npy", n_features=n_features)
    known, computed = map_missing(task, rows, root, cache=cache, kind=KEYPOINT_KIND, params=params, workers=workers)
    direct: list = [None] * len(table)
    mirror: list = [None] * len(table)
    wanted = set(int(p) for p in positions)
    for position, sha in enumerate(table["sha256"]):
        if position in wanted and sha in known:
            direct[position], mirror[position] = _split(known[sha])
    return Keypoints(direct, mirror, computed)


def _split(array: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(points, RootSIFT descriptors) of the image and of its mirror image. RootSIFT: L1-normalised and
    square-rooted, so that L2 compares them as the Hellinger distance."""
    descriptors = array[:, 2:]
    root = np.ascontiguousarray(np.sqrt(descriptors / (descriptors.sum(axis=1, keepdims=True) + 1e-7)), dtype="float32")
    points = np.ascontiguousarray(array[:, :2])
    mirrored_points = points * np.array([-1, 1], dtype="float32")  # x -> -x: a shift away from the flip
    return (points, root), (mirrored_points, np.ascontiguousarray(root[:, MIRROR_BINS]))


def _inliers(a: tuple[np.ndarray, np.ndarray] | None, b: tuple[np.ndarray, np.ndarray] | None,
             matcher) -> tuple[int, int, np.ndarray | None]:
    """Matches consistent with one similarity transform from a to b (RANSAC inliers), the inliers of
    the better of that and a full affine fit, and the better fit's transform (2 x 3, a's canonical
    pixels to b's; None when there is none). The similarity's count is the signal (its thresholds
    were calibrated on it); a copy squashed to another aspect ratio fits an affine transform far
    better, and that one seeds the alignment and decides between the image and its mirror."""
    import cv2

    if a is None or b is None or len(a[1]) < 8 or len(b[1]) < 8:
        return 0, 0, None
    matches = matcher.knnMatch(a[1], b[1], k=2)
    good = [m[0] for m in matches if len(m) == 2 and m[0].distance < RATIO_TEST * m[1].distance]
    if len(good) < 6:
        return 0, 0, None
    source = a[0][[m.queryIdx for m in good]]
    target = b[0][[m.trainIdx for m in good]]
    transform, inliers = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PIXELS)
    if inliers is None:
        return 0, 0, None
    count = int(inliers.sum())
    affine, affine_inliers = cv2.estimateAffine2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PIXELS)
    if affine_inliers is not None and affine_inliers.sum() >= AFFINE_GAIN * count:
        return count, int(affine_inliers.sum()), affine
    return count, count, transform


@dataclass
class Matches:
    """Per verified pair: RANSAC inliers, whether b's mirror matched better, and the transform from
    a's canonical pixels to b's own (the mirror undone; NaN where no transform was found)."""

    inliers: np.ndarray  # int64 (m,)
    mirrored: np.ndarray  # bool (m,)
    transforms: np.ndarray  # float64 (m, 2, 3)


def match_pair(a, b, *, enough: int, matcher=None) -> tuple[int, bool, np.ndarray | None]:
    """(inliers, mirrored, transform) for two images' keypoints: the better of a~b and a~mirror(b),
    the mirror tried only when the direct match has fewer than `enough` inliers."""
    import cv2

    matcher = matcher or cv2.BFMatcher(cv2.NORM_L2)
    a_direct, (b_direct, b_mirror) = a[0] if a is not None else None, b if b is not None else (None, None)
    direct, direct_support, transform = _inliers(a_direct, b_direct, matcher)
    if direct >= enough:
        return direct, False, transform
    flipped, flipped_support, flipped_transform = _inliers(a_direct, b_mirror, matcher)
    if (flipped_support, flipped) > (direct_support, direct):
        # Mirrored points are (-x, y): b's own x is minus the transform's first row.
        return flipped, True, flipped_transform * np.array([[-1.0], [1.0]]) if flipped_transform is not None else None
    return direct, False, transform


def verify_pairs(pairs: np.ndarray, keypoints: Keypoints, *, enough: int, workers: int = 2) -> Matches:
    """match_pair for each pair of table positions."""
    import cv2

    def one(pair):
        a, b = int(pair[0]), int(pair[1])
        return match_pair((keypoints.direct[a], keypoints.mirror[a]), (keypoints.direct[b], keypoints.mirror[b]),
                          enough=enough, matcher=cv2.BFMatcher(cv2.NORM_L2))

    transforms = np.full((len(pairs), 2, 3), np.nan)
    if not len(pairs):
        return Matches(np.zeros(0, dtype="int64"), np.zeros(0, dtype=bool), transforms)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(progress(pool.map(one, pairs), total=len(pairs), desc="verifying pairs"))
    for i, (_, _, transform) in enumerate(results):
        if transform is not None:
            transforms[i] = transform
    return Matches(np.array([r[0] for r in results], dtype="int64"), np.array([r[1] for r in results], dtype=bool),
                   transforms)
