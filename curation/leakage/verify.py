"""Geometric verification of candidate pairs: ORB keypoints matched and fitted with RANSAC.

A global embedding ranks a copy's original first (the benchmark found the source as nearest
neighbour for nearly every edit) but its cosine is a poor absolute test: a 25% crop or a
downscaled copy can score below two different photos of the same white shoe. Keypoints matched
under one similarity transform (shift, rotation, scale) tell them apart: a copy keeps hundreds
of consistent matches, a different photo a few dozen at most. Keypoints are computed once per
image and per mirror image (a flipped copy matches the mirror), cached by file content; only
candidate pairs (nearest neighbours and hash matches) are verified, never all pairs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curation.cache import ContentCache
from curation.image_io import load_rgb
from curation.leakage.canonical import trim_borders
from curation.progress import progress

KEYPOINT_KIND = "orb_keypoints"
KEYPOINT_VERSION = 2  # 2: uniform borders trimmed first
CANONICAL_SIDE = 256  # images are matched at one scale: the long side resized to this
DETAIL_SIDE = 128  # ... after passing through this size, so that a downscaled copy and its original
# carry the same detail (keypoints of a blurry upscale and a sharp original do not match)
FAST_THRESHOLD = 10  # lower than ORB's 20: white product shots have faint corners
RATIO_TEST = 0.8  # Lowe's ratio test on the two nearest descriptors
RANSAC_PIXELS = 2.5  # at 256 px: a copy aligns within a pixel or two, a look-alike photo does not


@dataclass
class Keypoints:
    """Per table row: (points float32 (n, 2), descriptors uint8 (n, 32)) for the image and its mirror; None if unreadable."""

    direct: list[tuple[np.ndarray, np.ndarray] | None]
    mirror: list[tuple[np.ndarray, np.ndarray] | None]
    computed: int


def _orb_features(gray: np.ndarray, n_features: int) -> np.ndarray:
    import cv2

    orb = cv2.ORB_create(nfeatures=n_features, fastThreshold=FAST_THRESHOLD)
    points, descriptors = orb.detectAndCompute(gray, None)
    if descriptors is None:
        return np.zeros((0, 34), dtype="float32")
    coords = np.array([p.pt for p in points], dtype="float32")
    return np.hstack([coords, descriptors.astype("float32")])  # one array for the cache: x, y, 32 bytes


def _extract(path: Path, n_features: int) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        gray = np.asarray(trim_borders(load_rgb(path)).convert("L"))
    except Exception:  # decoded once by the probe; a file changed since is left unverified
        return None
    gray = _resize_long_side(_resize_long_side(gray, DETAIL_SIDE), CANONICAL_SIDE)
    return _orb_features(gray, n_features), _orb_features(np.ascontiguousarray(gray[:, ::-1]), n_features)


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
    params = {"version": KEYPOINT_VERSION, "n_features": n_features, "side": CANONICAL_SIDE, "detail": DETAIL_SIDE,
              "fast": FAST_THRESHOLD}
    known = {m: cache.get_many(KEYPOINT_KIND, {**params, "mirror": m}, rows["sha256"]) for m in (False, True)}
    todo = rows[~rows["sha256"].isin(known[False]) | ~rows["sha256"].isin(known[True])].drop_duplicates("sha256")
    if len(todo):
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = pool.map(lambda p: _extract(root / p, n_features), todo["path"])
            fresh = {sha: r for sha, r in zip(todo["sha256"], progress(results, total=len(todo), desc="keypoints")) if r}
        for mirror in (False, True):
            values = {sha: pair[int(mirror)] for sha, pair in fresh.items()}
            cache.put_many(KEYPOINT_KIND, {**params, "mirror": mirror}, values, fmt="npy")
            known[mirror].update(values)
    direct: list = [None] * len(table)
    mirror: list = [None] * len(table)
    wanted = set(int(p) for p in positions)
    for position, sha in enumerate(table["sha256"]):
        if position in wanted and sha in known[False] and sha in known[True]:
            direct[position] = _split(known[False][sha])
            mirror[position] = _split(known[True][sha])
    return Keypoints(direct, mirror, len(todo))


def _split(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.ascontiguousarray(array[:, :2]), np.ascontiguousarray(array[:, 2:].astype("uint8"))


def _inliers(a: tuple[np.ndarray, np.ndarray] | None, b: tuple[np.ndarray, np.ndarray] | None, matcher) -> int:
    """Matches consistent with one similarity transform from a to b (RANSAC inliers)."""
    import cv2

    if a is None or b is None or len(a[1]) < 8 or len(b[1]) < 8:
        return 0
    matches = matcher.knnMatch(a[1], b[1], k=2)
    good = [m[0] for m in matches if len(m) == 2 and m[0].distance < RATIO_TEST * m[1].distance]
    if len(good) < 6:
        return 0
    source = a[0][[m.queryIdx for m in good]]
    target = b[0][[m.trainIdx for m in good]]
    _, inliers = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PIXELS)
    return int(inliers.sum()) if inliers is not None else 0


def verify_pairs(pairs: np.ndarray, keypoints: Keypoints, *, enough: int, workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Inlier count per pair (the better of a~b and a~mirror(b)) and whether the mirror won.

    The mirror is tried only when the direct match has fewer than `enough` inliers.
    """
    import cv2

    def one(pair) -> tuple[int, bool]:
        matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        a, b = int(pair[0]), int(pair[1])
        direct = _inliers(keypoints.direct[a], keypoints.direct[b], matcher)
        if direct >= enough:
            return direct, False
        flipped = _inliers(keypoints.direct[a], keypoints.mirror[b], matcher)
        return (flipped, True) if flipped > direct else (direct, False)

    if not len(pairs):
        return np.zeros(0, dtype="int64"), np.zeros(0, dtype=bool)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(progress(pool.map(one, pairs), total=len(pairs), desc="verifying pairs"))
    return np.array([r[0] for r in results], dtype="int64"), np.array([r[1] for r in results], dtype=bool)
