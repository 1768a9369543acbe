"""Is a pair one picture? Align it with its keypoint transform, then ask how much of it one global
colour mapping explains.

A copy (resized, cropped, flipped, rotated, re-encoded, re-lit, recoloured, greyed) is the same
pixels under one geometric transform and one photometric mapping. A look-alike is not, however
close its embedding, hash or keypoints: another frame of the same shoot moves the shoe against
the background, so after the best global alignment its outline and details miss one another;
another colourway of the same render aligns perfectly but needs a different colour for the same
grey level in different parts of the shoe, which no single curve per channel gives.

Both views are the keypoint stage's canonical ones (uniform borders trimmed, long side
CANONICAL_SIDE px), so the RANSAC transform of curation.leakage.verify maps a's pixels onto b's.
Measured on the pixels that carry content (not the plain studio background, which every
white-background pair shares), with one pixel of slack for resampling and JPEG:
- tone: the share of content pixels whose brightness one curve (b's grey level -> a's) predicts;
- colour: the same with one curve per channel (the tone figure where either side is grey);
- structure: correlation of the two gradient-magnitude images (edges in the same places).

An overlay (a watermark, a caption, a logo stamped on) adds strokes to one image that the other
lacks, while every edge of the clean image is still there. When the figures fall short of a copy,
those strokes (edges of one side far from any edge of the other) are set aside with a margin, and
the figures are measured again on the rest, with structure as one correlation over the remaining
pixels (a thin shoe cut tight to the frame leaves too few whole blocks for the block median). Another
frame or another photo moves edges in both images, so its figures do not recover.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from curation.image_io import load_rgb
from curation.leakage.canonical import trim_borders
from curation.progress import progress

CANONICAL_SIDE = 128  # the keypoint stage's scale (verify.CANONICAL_SIDE)
BACKGROUND_TOLERANCE = 24  # per-channel distance from the corner colour still counted as background
CURVE_BINS = 32  # a mapping curve is a table of this many grey levels (median target per level)
EXPLAINED_WITHIN = 20  # grey levels: a pixel the curve predicts this closely is explained
GREY_CHROMA = 6.0  # mean channel spread below this: the image has no colour to compare
MIN_CONTENT_PIXELS = 64
ECC_ITERATIONS = 40
BLOCK = 16  # structure is judged per block of this many pixels (8 x 8 blocks at 128 px)
MIN_EDGE_SPREAD = 2.0  # gradient spread below which a block is flat
MIN_BLOCKS = 4
EDGE_FRACTION = 0.2  # an edge pixel: gradient magnitude above this share of the image's 99th percentile
EDGE_SLACK = 5  # px (ellipse diameter): an edge this close to one of the other image counts as the same edge
OVERLAY_MARGIN = 9  # px (ellipse diameter) set aside around an overlay's strokes
OVERLAY_MAX_SHARE = 0.5  # an overlay covers less than half of the content: the rest is most of the evidence
OVERLAY_CONTAINED = 0.95  # share of the clean image's edges found in the overlaid one
FIELDS = ("coverage", "structure", "tone", "colour", "overlay")


@dataclass(frozen=True)
class Alignment:
    coverage: float  # share of a's canonical view that b covers once aligned
    structure: float  # correlation of gradient magnitudes on the content pixels
    tone: float  # share of content pixels explained by one brightness curve
    colour: float  # share explained by one curve per channel (tone where a side is grey)
    overlay: float = 0.0  # share of the content set aside as one image's overlay (0: the figures are of all of it)

    @classmethod
    def missing(cls) -> "Alignment":
        return cls(np.nan, np.nan, np.nan, np.nan, np.nan)


@dataclass
class Alignments:
    """Alignment figures per candidate pair (NaN where the pair was not aligned)."""

    coverage: np.ndarray
    structure: np.ndarray
    tone: np.ndarray
    colour: np.ndarray
    overlay: np.ndarray

    @classmethod
    def empty(cls, n: int) -> "Alignments":
        return cls(*(np.full(n, np.nan) for _ in FIELDS))

    @classmethod
    def of(cls, alignments: list[Alignment]) -> "Alignments":
        return cls(*(np.array([getattr(a, name) for a in alignments], dtype="float64").reshape(-1) for name in FIELDS))

    def put(self, where: np.ndarray, values: "Alignments") -> None:
        for name in FIELDS:
            getattr(self, name)[where] = getattr(values, name)

    def take(self, keep: np.ndarray) -> "Alignments":
        return Alignments(*(getattr(self, name)[keep] for name in FIELDS))


def canonical_view(image: Image.Image) -> np.ndarray:
    """The RGB view keypoints are found in: borders trimmed, long side CANONICAL_SIDE, float32."""
    import cv2

    rgb = np.asarray(trim_borders(image.convert("RGB")))
    scale = CANONICAL_SIDE / max(rgb.shape[:2])
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    resized = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return resized.astype("float32")


def align(view_a: np.ndarray, view_b: np.ndarray, transform: np.ndarray,
          copy_level: tuple[float, float] | None = None) -> Alignment:
    """How well `transform` (2 x 3, a's pixels to b's) and one colour mapping explain a by b. With no
    transform (too few keypoint matches), the dense alignment starts from the two frames' scale.
    copy_level (structure, tone): below it, an overlay on one image is set aside and the figures
    measured without it are returned if they reach it."""
    import cv2

    if transform is None or not np.isfinite(transform).all():
        transform = _frame_scale(view_a.shape, view_b.shape)
    height, width = view_a.shape[:2]
    transform = _refined(view_a, view_b, transform)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(view_b, transform, (width, height), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.warpAffine(np.ones(view_b.shape[:2], "float32"), transform, (width, height), flags=flags) > 0.999
    content = inside & (_foreground(view_a) | _foreground(warped, like=view_b))
    if content.sum() < MIN_CONTENT_PIXELS:
        return Alignment(float(inside.mean()), np.nan, np.nan, np.nan)
    grey_a, grey_b = _grey(view_a), _grey(warped)
    edges_a, edges_b = _edges(grey_a), _edges(grey_b)
    achromatic = min(_chroma(view_a, content), _chroma(warped, content)) < GREY_CHROMA
    whole = Alignment(float(inside.mean()), _structure(edges_a, edges_b, content),
                      *_tone_and_colour(view_a, warped, grey_a, grey_b, content, achromatic))
    if copy_level is None or _reaches(whole, copy_level):
        return whole
    overlay = _overlay(edges_a, edges_b, content, inside)
    if overlay is None:
        return whole
    region, share = overlay
    rest = content & ~region
    discounted = Alignment(whole.coverage, _correlation(edges_a[rest], edges_b[rest]),
                           *_tone_and_colour(view_a, warped, grey_a, grey_b, rest, achromatic), overlay=share)
    return discounted if _reaches(discounted, copy_level) else whole


def _reaches(alignment: Alignment, copy_level: tuple[float, float]) -> bool:
    return bool(alignment.structure >= copy_level[0] and alignment.tone >= copy_level[1])


def _tone_and_colour(view_a, warped, grey_a, grey_b, mask, achromatic) -> tuple[float, float]:
    tone = _explained(grey_a[..., None], grey_b[..., None], mask)
    return tone, tone if achromatic else _explained(view_a, warped, mask)


def _overlay(edges_a: np.ndarray, edges_b: np.ndarray, content: np.ndarray, inside: np.ndarray):
    """(region, share of content) of strokes that one image adds while holding every edge of the
    other, or None: no such strokes, edges missing on both sides, or too much of the picture."""
    level = EDGE_FRACTION * max(np.percentile(edges_a[content], 99), np.percentile(edges_b[content], 99))
    strong_a, strong_b = (edges_a > level) & inside, (edges_b > level) & inside
    near_a, near_b = _dilated(strong_a, EDGE_SLACK), _dilated(strong_b, EDGE_SLACK)
    added_a, added_b = strong_a & ~near_b, strong_b & ~near_a
    clean, added, near_overlaid = (strong_a, added_b, near_b) if added_b.sum() >= added_a.sum() else (strong_b, added_a, near_a)
    if not added.any() or (clean & near_overlaid).sum() < OVERLAY_CONTAINED * max(1, clean.sum()):
        return None
    region = _dilated(added, OVERLAY_MARGIN)
    share = float((content & region).sum() / content.sum())
    if share > OVERLAY_MAX_SHARE or (content & ~region).sum() < MIN_CONTENT_PIXELS:
        return None
    return region, share


def _dilated(mask: np.ndarray, diameter: int) -> np.ndarray:
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))
    return cv2.dilate(mask.astype("uint8"), kernel) > 0


def align_pairs(table, root: Path, pairs: np.ndarray, transforms: np.ndarray, *, workers: int = 2,
                copy_level: tuple[float, float] | None = None) -> Alignments:
    """align() for pairs of table positions, each image decoded once (an unreadable one: NaN)."""
    views: dict[int, np.ndarray | None] = {}

    def view(position: int) -> np.ndarray | None:
        if position not in views:
            try:
                views[position] = canonical_view(load_rgb(root / table["path"].iat[position]))
            except Exception:  # decoded once by the probe; a file changed since stays unaligned
                views[position] = None
        return views[position]

    for position in progress(np.unique(pairs), total=len(np.unique(pairs)), desc="aligning: reading"):
        view(int(position))

    def one(i: int) -> Alignment:
        a, b = views[int(pairs[i, 0])], views[int(pairs[i, 1])]
        return Alignment.missing() if a is None or b is None else align(a, b, transforms[i], copy_level)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return Alignments.of(list(progress(pool.map(one, range(len(pairs))), total=len(pairs), desc="aligning pairs")))


def _frame_scale(shape_a: tuple, shape_b: tuple) -> np.ndarray:
    return np.array([[shape_b[1] / shape_a[1], 0, 0], [0, shape_b[0] / shape_a[0], 0]], dtype="float64")


def _refined(view_a: np.ndarray, view_b: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """The keypoint transform refined to the best full affine one by dense alignment (ECC, which is
    blind to gain and offset): a copy squashed to another aspect ratio is not a similarity."""
    import cv2

    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ECC_ITERATIONS, 1e-4)
    warp = np.asarray(transform, dtype="float32").copy()
    try:
        cv2.findTransformECC(_grey(view_a), _grey(view_b), warp, cv2.MOTION_AFFINE, criteria, None, 3)
    except cv2.error:  # no convergence: the keypoint transform stands
        return np.asarray(transform, dtype="float32")
    return warp


def _foreground(view: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
    """Pixels that differ from the corner colour of the (unwarped) view."""
    source = view if like is None else like
    corner = source[0, 0]
    return np.abs(view - corner).max(axis=2) > BACKGROUND_TOLERANCE


def _grey(view: np.ndarray) -> np.ndarray:
    return view @ np.array([0.299, 0.587, 0.114], dtype="float32")


def _chroma(view: np.ndarray, mask: np.ndarray) -> float:
    pixels = view[mask]
    return float((pixels.max(axis=1) - pixels.min(axis=1)).mean())


def _explained(target: np.ndarray, source: np.ndarray, mask: np.ndarray) -> float:
    """Share of mask pixels where, in every channel, one curve fitted on the mask maps source to
    target within EXPLAINED_WITHIN levels, allowing the best of the 3 x 3 one-pixel shifts."""
    predicted = np.stack([_fit_curve(source[..., c], target[..., c], mask) for c in range(target.shape[2])], axis=2)
    best = np.full(mask.shape, np.inf, dtype="float32")
    padded = np.pad(predicted, ((1, 1), (1, 1), (0, 0)), mode="edge")
    for dy in range(3):
        for dx in range(3):
            shifted = padded[dy:dy + mask.shape[0], dx:dx + mask.shape[1]]
            best = np.minimum(best, np.abs(shifted - target).max(axis=2))
    return float((best[mask] <= EXPLAINED_WITHIN).mean())


def _fit_curve(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """source mapped through the median target of each of CURVE_BINS source levels (fitted on mask)."""
    levels = np.clip((source[mask] * (CURVE_BINS / 256.0)).astype("int64"), 0, CURVE_BINS - 1)
    values = target[mask]
    order = np.argsort(levels, kind="stable")
    levels, values = levels[order], values[order]
    present, starts = np.unique(levels, return_index=True)
    medians = np.array([np.median(chunk) for chunk in np.split(values, starts[1:])], dtype="float32")
    centres = (present + 0.5) * (256.0 / CURVE_BINS)
    return np.interp(source, centres, medians).astype("float32")


def _structure(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Median over the textured blocks of the mask of the correlation of the two edge images (_edges):
    a local edit (a watermark, a logo) spoils a few blocks, a misaligned frame spoils them all."""
    scores = []
    for y in range(0, mask.shape[0] - BLOCK + 1, BLOCK):
        for x in range(0, mask.shape[1] - BLOCK + 1, BLOCK):
            inside = mask[y:y + BLOCK, x:x + BLOCK]
            if inside.mean() < 0.5:
                continue
            block_a, block_b = a[y:y + BLOCK, x:x + BLOCK][inside], b[y:y + BLOCK, x:x + BLOCK][inside]
            if block_a.std() < MIN_EDGE_SPREAD and block_b.std() < MIN_EDGE_SPREAD:
                continue  # flat in both: says nothing about alignment
            scores.append(_correlation(block_a, block_b))
    return float(np.median(scores)) if len(scores) >= MIN_BLOCKS else np.nan


def _edges(grey: np.ndarray) -> np.ndarray:
    """Gradient magnitude of the lightly blurred grey view."""
    import cv2

    smooth = cv2.GaussianBlur(grey, (0, 0), 1.0)
    return np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / norm) if norm else 0.0
