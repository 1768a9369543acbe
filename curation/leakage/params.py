"""The leakage audit's settings, with the thresholds the benchmark calibrated (bench/RESULTS.md:
bench/bench_leakage_quality.py sweeps them; these are its best setting with no false positive).

Every report writes these back out, so a run can be reproduced and a threshold argued about.
"""

from __future__ import annotations

from dataclasses import dataclass

from curation.embeddings import DEFAULT_EMBEDDING_MODEL
from curation.errors import CurationError

HASH_METHODS = ("phash", "dhash", "whash", "ahash")
SPLIT_ORDER = ("train", "valid", "val", "validation", "test")


@dataclass
class LeakageParams:
    # Embedding signal: cosine similarity of L2-normalised backbone features.
    cosine_near: float = 0.90  # at or above: a near-duplicate on the embedding alone
    cosine_support: float = 0.85  # at or above: a near-duplicate when a strict hash or keypoint match agrees
    cosine_similar: float = 0.80  # at or above: "similar but different", kept for context
    # Perceptual-hash signal (Hamming distance between 64-bit hashes, the mirror image included).
    hash_methods: tuple[str, ...] = ("phash",)
    hash_strict: int = 4  # at or below, with cosine_support: a near-duplicate
    hash_max_distance: int = 10  # candidates to verify by keypoints; 'similar' when embeddings are off
    # Keypoint signal: SIFT matches (128 px, contrast-equalised) consistent with one similarity
    # transform (RANSAC inliers), computed for candidate pairs only (nearest neighbours and hash matches).
    verify: bool = True
    keypoint_features: int = 500
    inliers_near: int = 16  # at or above: a near-duplicate on the keypoints alone (different photos: <= 11)
    inliers_support: int = 12  # at or above, with cosine_support or a hash match: a near-duplicate
    # Alignment (curation.leakage.alignment): each verified pair with >= align_min_inliers keypoint
    # matches is aligned by its transform (refined densely) and its pixels compared under one tone
    # curve. Real shoes pairs labelled by eye (bench/pairs/): copies reach structure >= 0.98 and
    # tone >= 0.98, other photos (colourways, other shots) structure <= 0.91, tone <= 0.93.
    align: bool = True  # False: the earlier rules alone (for comparison in bench/bench_real_pairs.py)
    align_min_inliers: int = 6
    aligned_structure: float = 0.93  # at or above, with aligned_tone: a near-duplicate by alignment alone
    aligned_tone: float = 0.85
    # Below either, the pixels are not one picture: no other signal makes the pair a copy. Watermarked
    # and re-lit planted copies go down to 0.83 / 0.83; a colourway render with 23 inliers sits at 0.67.
    contradict_structure: float = 0.80
    contradict_tone: float = 0.80
    # Another frame of the same shoot: aligned closely over most of the picture, but not pixel for
    # pixel (a copy's figures), nor as loosely as another photo.
    scene_structure: float = 0.85
    scene_tone: float = 0.90
    scene_coverage: float = 0.5
    # Or found by its setting (curation.leakage.scene), on pictures with >= setting_share of their
    # patches not plain white: each one's setting_neighbours nearest backdrops are compared. Chosen
    # on the real pairs labelled by eye (bench/pairs/, 8 same-scene pairs): thresholds at which no pair
    # of another shoe on the same backdrop is called same_scene (they find 3 of the 8).
    setting: bool = True
    setting_share: float = 0.6
    setting_neighbours: int = 10
    setting_backdrop: float = 0.63  # share of content patches with a near-identical patch in the other
    setting_backdrop_colours: float = 0.80  # histogram intersection of the outer rings' colours
    setting_object_colours: float = 0.65  # histogram intersection of the object's colours
    setting_cosine: float = 0.50  # the embedding: side and top views of one shoe reach 0.47-0.73
    # Washed-out copies (curation.leakage.faded): an image with >= faded_fraction of its pixels at
    # its brightest is compared by its darkest pixels with its faded_candidates best-matching images.
    faded: bool = True
    faded_fraction: float = 0.85
    faded_near: float = 0.86  # ink correlation at or above: a near-duplicate (benchmark: copies >= 0.90, different photos <= 0.82)
    faded_candidates: int = 3
    # Search.
    neighbours: int = 5  # k nearest neighbours per query image and split
    exact_search_limit: int = 50_000  # above this many vectors, an approximate index (curation.leakage.cell_index)
    model: str = DEFAULT_EMBEDDING_MODEL
    weights: str | None = None
    # Input pixels for the embeddings (None: the model's own, 224 for lite0, shared with other stages).
    # 128 runs about 3x faster but ranks copies first less often (bench/RESULTS.md).
    embedding_size: int | None = None
    verify_neighbours: int = 2  # each image's nearest this many neighbours per split are always verified
    use_embeddings: bool = True
    similar_shown: int = 200  # "similar" pairs drawn in the HTML report (all are in pairs.csv)

    def validate(self) -> "LeakageParams":
        for name in ("cosine_near", "cosine_support", "cosine_similar"):
            value = getattr(self, name)
            if not -1.0 <= value <= 1.0:
                raise CurationError(f"{name} must be a cosine similarity in [-1, 1], not {value}")
        if self.cosine_support > self.cosine_near:
            raise CurationError(f"cosine_support ({self.cosine_support}) must not exceed cosine_near ({self.cosine_near})")
        unknown = set(self.hash_methods) - set(HASH_METHODS)
        if unknown or not self.hash_methods:
            raise CurationError(f"hash_methods must be some of {HASH_METHODS}, not {list(self.hash_methods)}")
        if self.inliers_support > self.inliers_near or self.inliers_support < 1 or self.keypoint_features < 50:
            raise CurationError("need 1 <= inliers_support <= inliers_near and keypoint_features >= 50")
        for name in ("hash_strict", "hash_max_distance"):
            value = getattr(self, name)
            if not 0 <= value <= 64:
                raise CurationError(f"{name} must be a Hamming distance in [0, 64], not {value}")
        if not 0.5 <= self.faded_fraction < 1 or not -1 <= self.faded_near <= 1 or self.faded_candidates < 1:
            raise CurationError("need 0.5 <= faded_fraction < 1, faded_near in [-1, 1] and faded_candidates >= 1")
        for name in ("aligned_structure", "aligned_tone", "contradict_structure", "contradict_tone", "scene_structure",
                     "scene_tone", "scene_coverage", "setting_share", "setting_backdrop", "setting_backdrop_colours",
                     "setting_object_colours", "setting_cosine"):
            if not -1.0 <= getattr(self, name) <= 1.0:
                raise CurationError(f"{name} must be in [-1, 1], not {getattr(self, name)}")
        if self.align_min_inliers < 3:
            raise CurationError(f"align_min_inliers must be at least 3 (a similarity needs 2 points), not {self.align_min_inliers}")
        if self.setting_neighbours < 1:
            raise CurationError(f"setting_neighbours must be at least 1, not {self.setting_neighbours}")
        if self.neighbours < 1:
            raise CurationError(f"neighbours must be at least 1, not {self.neighbours}")
        return self


def split_rank(split: str) -> tuple[int, str]:
    """Train first, then validation, then test, then any other split by name."""
    lowered = split.lower()
    return (SPLIT_ORDER.index(lowered) if lowered in SPLIT_ORDER else len(SPLIT_ORDER), lowered)


def is_train(split: str) -> bool:
    return split.lower() == "train"
