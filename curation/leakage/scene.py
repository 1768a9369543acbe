"""Another frame of the same shoot, found by its setting: the same backdrop around the same object.

Two frames of one shoot (the shoe turned, seen from above, a pair against one shoe of it) share
neither keypoints nor an embedding close enough for the other signals: side and top views of one
Chuck reach a cosine of 0.47, as two different models do. What they share is the setting, lit the
same, and the object's colours. So, on images that have a setting (most of the picture is not
plain white studio background, where every product shot would match every other):
1. candidates: each image's nearest neighbours by the colours of its outer ring (the backdrop);
2. backdrop: the share of each image's content patches (16 px at 128 px, Lab mean and spread)
   that have a near-identical patch anywhere in the other (the backdrop, the floor, the legs);
3. object colours: histogram intersection of the pixels that stand out from the backdrop;
and curation.leakage.fuse calls the pair `same_scene` when all of them, and the embedding, agree.
The same backdrop with another shoe on it (the commonest look-alike of a shop's catalogue) fails
on the object's colours or the embedding; the thresholds and what they miss are in bench/RESULTS.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curation.cache import ContentCache
from curation.engine import map_missing, per_image
from curation.image_io import load_rgb

DESCRIPTOR_KIND = "scene_descriptor"
DESCRIPTOR_VERSION = 1
SIDE, PATCH, RING = 128, 16, 12  # px: the view, its patches, the width of the backdrop ring
GRID = (SIDE // PATCH) ** 2
BINS = (6, 8, 8)  # Lab histogram bins over L 0-100, a and b -60..60
HIST = int(np.prod(BINS))
PATCH_MATCH = 4.0  # Lab distance of means plus of spreads under which two patches are the same surface
STANDS_OUT = 15.0  # Lab distance from the backdrop's median colour above which a pixel is the object
LAYOUT = {"patches": GRID * 6, "content": GRID, "object": HIST, "backdrop": HIST}


@dataclass
class SceneDescriptors:
    patches: np.ndarray  # (n, GRID, 6) Lab mean and spread per patch
    content: np.ndarray  # (n, GRID) bool: the patch is not plain white background
    object_colours: np.ndarray  # (n, HIST) normalised histogram of the object's pixels
    backdrop_colours: np.ndarray  # (n, HIST) normalised histogram of the outer ring
    valid: np.ndarray  # (n,) bool
    computed: int

    def setting_share(self) -> np.ndarray:
        """Per image, the share of patches that are not plain white background (0 where invalid)."""
        return np.where(self.valid, self.content.mean(axis=1), 0.0)


def describe(path: Path) -> np.ndarray | None:
    """One image's descriptor as a flat float32 vector (LAYOUT order), None if unreadable."""
    from PIL import Image
    from skimage.color import rgb2lab

    try:
        rgb = load_rgb(path).resize((SIDE, SIDE), Image.BILINEAR)
    except Exception:  # decoded once by the probe; a file changed since takes no part
        return None
    lab = rgb2lab(np.asarray(rgb, dtype="float32") / 255.0)
    cells = lab.reshape(SIDE // PATCH, PATCH, SIDE // PATCH, PATCH, 3).swapaxes(1, 2).reshape(GRID, -1, 3)
    mean, spread = cells.mean(axis=1), cells.std(axis=1)
    plain_white = (mean[:, 0] > 92) & (np.hypot(mean[:, 1], mean[:, 2]) < 4) & (spread[:, 0] < 3)
    ring = np.concatenate([lab[:RING].reshape(-1, 3), lab[-RING:].reshape(-1, 3),
                           lab[RING:-RING, :RING].reshape(-1, 3), lab[RING:-RING, -RING:].reshape(-1, 3)])
    stands_out = np.linalg.norm(lab - np.median(ring, axis=0), axis=2) > STANDS_OUT
    obj = lab[stands_out] if stands_out.sum() > 50 else lab.reshape(-1, 3)
    return np.concatenate([np.hstack([mean, spread]).ravel(), (~plain_white).astype("float32"),
                           _histogram(obj), _histogram(ring)]).astype("float32")


def _histogram(pixels: np.ndarray) -> np.ndarray:
    counts, _ = np.histogramdd(pixels, bins=BINS, range=((0, 100), (-60, 60), (-60, 60)))
    return (counts.ravel() / max(1.0, counts.sum())).astype("float32")


def compute_scene_descriptors(table: pd.DataFrame, root: Path, *, cache: ContentCache, workers: int = 2) -> SceneDescriptors:
    """Every readable image's descriptor, cached by file content."""
    known, computed = map_missing(per_image(describe, desc="scene descriptors", fmt="npy"),
                                  table[table["load_error"] == ""], root, cache=cache, kind=DESCRIPTOR_KIND,
                                  params={"version": DESCRIPTOR_VERSION, "side": SIDE}, workers=workers)
    flat = np.zeros((len(table), sum(LAYOUT.values())), dtype="float16")  # 2.4 KB an image held
    valid = np.zeros(len(table), dtype=bool)
    for position, sha in enumerate(table["sha256"]):
        if sha in known and known[sha] is not None:
            flat[position], valid[position] = np.asarray(known[sha]).ravel(), True
    parts = np.split(flat, np.cumsum(list(LAYOUT.values()))[:-1], axis=1)
    return SceneDescriptors(parts[0].reshape(-1, GRID, 6), parts[1] > 0.5, parts[2], parts[3], valid, computed)


def backdrop_vectors(descriptors: SceneDescriptors) -> np.ndarray:
    """Unit vectors whose inner product is the Bhattacharyya coefficient of two backdrops' colours."""
    return np.sqrt(descriptors.backdrop_colours.astype("float32"))


@dataclass
class SettingFigures:
    """Per pair, each in [0, 1], NaN where not measured: the share of content patches matched (the
    backdrop), and the histogram intersections of the backdrop's and of the object's colours."""
    backdrop: np.ndarray
    backdrop_colours: np.ndarray
    object_colours: np.ndarray

    @classmethod
    def empty(cls, n: int) -> "SettingFigures":
        return cls(*(np.full(n, np.nan, dtype="float32") for _ in range(3)))

    def take(self, mask: np.ndarray) -> "SettingFigures":
        return SettingFigures(self.backdrop[mask], self.backdrop_colours[mask], self.object_colours[mask])


def setting_figures(descriptors: SceneDescriptors, pairs: np.ndarray, measure: np.ndarray,
                    backdrop_colours_floor: float = 0.0, chunk: int = 256) -> SettingFigures:
    """The figures of the pairs where `measure` holds and both sides have a descriptor. Patches
    (the costly figure, 0.3 ms a pair) are matched only where the backdrops' colours reach the floor."""
    d = descriptors
    figures = SettingFigures.empty(len(pairs))
    todo = np.flatnonzero(measure & d.valid[pairs[:, 0]] & d.valid[pairs[:, 1]]) if len(pairs) else np.zeros(0, "int64")
    a, b = pairs[todo, 0], pairs[todo, 1]
    figures.backdrop_colours[todo] = np.minimum(d.backdrop_colours[a], d.backdrop_colours[b]).sum(axis=1, dtype="float32")
    figures.object_colours[todo] = np.minimum(d.object_colours[a], d.object_colours[b]).sum(axis=1, dtype="float32")
    todo = todo[figures.backdrop_colours[todo] >= backdrop_colours_floor]
    for start in range(0, len(todo), chunk):
        rows = todo[start:start + chunk]
        a, b = pairs[rows, 0], pairs[rows, 1]
        figures.backdrop[rows] = _patches_matched(d.patches[a].astype("float32"), d.content[a],
                                                  d.patches[b].astype("float32"), d.content[b])
    return figures


def _patches_matched(x: np.ndarray, x_content: np.ndarray, y: np.ndarray, y_content: np.ndarray) -> np.ndarray:
    """Per pair of patch grids (m, GRID, 6): the smaller of the two shares of content patches that
    have a near-identical content patch in the other image (0 where either has none)."""
    distance = (np.linalg.norm(x[:, :, None, :3] - y[:, None, :, :3], axis=3)
                + np.linalg.norm(x[:, :, None, 3:] - y[:, None, :, 3:], axis=3))
    close = (distance < PATCH_MATCH) & x_content[:, :, None] & y_content[:, None, :]
    x_share = close.any(axis=2).sum(axis=1) / np.maximum(1, x_content.sum(axis=1))
    y_share = close.any(axis=1).sum(axis=1) / np.maximum(1, y_content.sum(axis=1))
    return np.minimum(x_share, y_share).astype("float32")
