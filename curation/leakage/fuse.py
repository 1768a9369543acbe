"""One decision per pair of images from every signal, and copy groups: the one place that answers
"is this the same picture?" for the audit and for the scraper (curation.leakage.engine).

Kinds, most certain first:
- exact: the same file bytes, or the same decoded pixels;
- near_duplicate: the same photograph after edits. The deciding evidence is the pair's alignment
  (curation.leakage.alignment): its keypoint transform, refined densely, lines up the two images
  block by block (structure >= aligned_structure) and one tone curve explains their content
  pixels (tone >= aligned_tone), if need be once an overlay that one image adds (a watermark, a
  caption) is set aside (the `overlay` column: its share of the picture). Without that, the earlier rules still stand as long as the
  alignment does not contradict them (structure or tone below contradict_*): >= inliers_near
  keypoint matches under one similarity transform; embedding cosine >= cosine_near; a strict
  perceptual-hash match or inliers_support matches confirmed by cosine >= cosine_support or a
  hash within hash_max_distance; or, for an image brightened until mostly blank, a fade score
  >= faded_near (curation.leakage.faded). A pair whose pixels contradict a copy is never one,
  however close its embedding, hash or keypoints: product renders of one model in two colourways
  share outline and keypoints but not one colour mapping;
- same_scene: not a copy, but another frame of the same shoot. Either >= inliers_support keypoint
  matches and aligned over most of the picture nearly as closely as one, colours included (scene_*
  thresholds); or, for a picture with a setting, the same backdrop around an object of the same
  colours, with the embedding agreeing loosely (curation.leakage.scene; setting_* thresholds).
  A leak for evaluation, counted apart from copies;
- similar: cosine >= cosine_similar, or many keypoint matches that the pixels contradict: a
  different photo of a similar object, kept for context and never called a leak.
Without embeddings (use_embeddings=False) the hash decides alone where nothing was aligned: <=
hash_strict is a near-duplicate, <= hash_max_distance similar.
A pair across splits of kind exact or near_duplicate is a leak; the same picture under two labels
is also a label conflict. Copies are grouped by connected components over copy pairs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from curation.leakage.alignment import Alignments
from curation.leakage.params import LeakageParams, split_rank
from curation.leakage.scene import SettingFigures

KINDS = ("exact", "near_duplicate", "same_scene", "similar")
COPY_KINDS = ("exact", "near_duplicate")
PAIR_COLUMNS = [
    "group", "kind", "signal", "score", "cosine", "hash_distance", "inliers", "fade_score", "structure", "tone", "colour",
    "coverage", "overlay", "backdrop", "backdrop_colours", "object_colours", "mirrored", "cross_split", "leak",
    "label_conflict", "sample_id_a", "split_a", "label_a", "path_a", "sample_id_b", "split_b", "label_b", "path_b",
]


def candidate_pairs(*arrays: np.ndarray) -> np.ndarray:
    """Union of (a, b) position arrays, each row sorted, duplicates removed."""
    stacked = [np.sort(np.asarray(p, dtype="int64").reshape(-1, 2), axis=1) for p in arrays]
    joined = np.concatenate(stacked) if stacked else np.zeros((0, 2), dtype="int64")
    return np.unique(joined, axis=0) if len(joined) else joined


def decide(exact_signal: np.ndarray, cosine: np.ndarray, hash_distance: np.ndarray, hash_mirrored: np.ndarray,
           inliers: np.ndarray, inliers_mirrored: np.ndarray, params: LeakageParams,
           fade_score: np.ndarray | None = None, alignment: Alignments | None = None,
           setting: SettingFigures | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Kind ('' for no relation) and the evidence that decided each pair. inliers is -1 where not
    verified, fade_score, the alignment and the setting figures NaN where not measured."""
    n = len(cosine)
    fade = np.nan_to_num(fade_score, nan=-1.0) if fade_score is not None else np.full(n, -1.0)
    alignment = alignment if alignment is not None else Alignments.empty(n)
    have_cosine = ~np.isnan(cosine)
    cos = np.where(have_cosine, cosine, -np.inf)
    strict = hash_distance <= params.hash_strict
    hash_name = np.where(hash_mirrored, "hash(mirror)", "hash").astype(object)
    keypoint_name = np.where(inliers_mirrored, "keypoints(mirror)", "keypoints").astype(object)
    structure, tone = np.nan_to_num(alignment.structure, nan=-2.0), np.nan_to_num(alignment.tone, nan=-2.0)
    aligned = ~np.isnan(alignment.structure) & ~np.isnan(alignment.tone)
    copy_aligned = aligned & (structure >= params.aligned_structure) & (tone >= params.aligned_tone)
    contradicted = aligned & ((structure < params.contradict_structure) | (tone < params.contradict_tone))
    # Another frame needs the keypoints' own evidence of one shoot, not only a same-pose layout.
    scene = (aligned & (inliers >= params.inliers_support) & (structure >= params.scene_structure)
             & (tone >= params.scene_tone) & (np.nan_to_num(alignment.colour) >= params.scene_tone)
             & (np.nan_to_num(alignment.coverage) >= params.scene_coverage))
    same_setting = _same_setting(setting if setting is not None else SettingFigures.empty(n), cos, params)
    kind = np.full(n, "", dtype=object)
    signal = np.full(n, "", dtype=object)

    def assign(mask, k, s):
        mask = mask & (kind == "")
        kind[mask] = k
        signal[mask] = s[mask] if isinstance(s, np.ndarray) else s

    def copy_rule(mask, s):  # an earlier rule: a copy unless the pixels say otherwise
        assign(mask & ~contradicted, "near_duplicate", s)

    assign(exact_signal != "", "exact", "exact:" + exact_signal.astype(object))
    assign(fade >= params.faded_near, "near_duplicate", "faded")  # the one signal made for washed-out images
    overlaid = np.nan_to_num(alignment.overlay) > 0
    assign(copy_aligned, "near_duplicate", keypoint_name + np.where(overlaid, "+aligned(overlay set aside)", "+aligned"))
    copy_rule(inliers >= params.inliers_near, keypoint_name)
    copy_rule((cos >= params.cosine_near) & strict, "embedding+" + hash_name)
    copy_rule(cos >= params.cosine_near, "embedding")
    copy_rule(strict & (cos >= params.cosine_support), hash_name + "+embedding")
    copy_rule((inliers >= params.inliers_support) & (cos >= params.cosine_support), keypoint_name + "+embedding")
    copy_rule((inliers >= params.inliers_support) & (hash_distance <= params.hash_max_distance),
              keypoint_name + "+" + hash_name)
    copy_rule(strict & ~have_cosine, hash_name)
    assign(scene, "same_scene", keypoint_name + "+aligned(scene)")
    assign(same_setting, "same_scene", "backdrop+object colours+embedding")
    assign(cos >= params.cosine_similar, "similar", np.where(contradicted, "embedding; pixels not one picture", "embedding"))
    assign(contradicted & (inliers >= params.inliers_support), "similar", keypoint_name + "; pixels not one picture")
    assign(~have_cosine & (hash_distance <= params.hash_max_distance), "similar", hash_name)
    return kind, signal


def _same_setting(setting: SettingFigures, cos: np.ndarray, params: LeakageParams) -> np.ndarray:
    """The same backdrop around an object of the same colours, the embedding not against it."""
    return ((np.nan_to_num(setting.backdrop) >= params.setting_backdrop)
            & (np.nan_to_num(setting.backdrop_colours) >= params.setting_backdrop_colours)
            & (np.nan_to_num(setting.object_colours) >= params.setting_object_colours)
            & (cos >= params.setting_cosine))


def copy_groups(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected-component label per table position over the given pairs (-1: in no pair)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    labels = np.full(n, -1, dtype="int64")
    if not len(pairs):
        return labels
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, components = connected_components(graph, directed=False)
    involved = np.unique(pairs.ravel())
    labels[involved] = components[involved]
    return labels


def pair_frame(table: pd.DataFrame, pairs: np.ndarray, kind: np.ndarray, signal: np.ndarray, cosine: np.ndarray,
               hash_distance: np.ndarray, inliers: np.ndarray, fade_score: np.ndarray | None = None,
               alignment: Alignments | None = None, setting: SettingFigures | None = None) -> pd.DataFrame:
    """The pairs as rows, oriented so that side a is the earlier split (train first), most certain first."""
    keep = kind != ""
    fade_score = np.full(len(pairs), np.nan) if fade_score is None else fade_score
    pairs, kind, signal = pairs[keep], kind[keep], signal[keep]
    cosine, hash_distance, inliers, fade_score = cosine[keep], hash_distance[keep], inliers[keep], fade_score[keep]
    alignment = (alignment if alignment is not None else Alignments.empty(len(keep))).take(keep)
    setting = (setting if setting is not None else SettingFigures.empty(len(keep))).take(keep)
    mirrored = np.array(["mirror" in s for s in signal], dtype=bool)
    order = [(split_rank(split), path) for split, path in zip(table["split"], table["path"])]
    swap = np.array([order[b] < order[a] for a, b in pairs], dtype=bool)
    a = np.where(swap, pairs[:, 1], pairs[:, 0]) if len(pairs) else pairs[:, 0]
    b = np.where(swap, pairs[:, 0], pairs[:, 1]) if len(pairs) else pairs[:, 1]
    frame = pd.DataFrame({"kind": kind, "signal": signal, "cosine": cosine.astype("float64"),
                          "hash_distance": hash_distance.astype("int64"), "inliers": inliers.astype("int64"),
                          "fade_score": fade_score.astype("float64"), "structure": alignment.structure,
                          "tone": alignment.tone, "colour": alignment.colour, "coverage": alignment.coverage,
                          "overlay": alignment.overlay, "backdrop": setting.backdrop.astype("float64"),
                          "backdrop_colours": setting.backdrop_colours.astype("float64"),
                          "object_colours": setting.object_colours.astype("float64"),
                          "mirrored": mirrored,
                          "_a": a, "_b": b})
    frame["score"] = certainty(frame)
    for side, column in (("a", "_a"), ("b", "_b")):
        rows = table.iloc[frame[column].to_numpy()]
        for field in ("sample_id", "split", "label", "path"):
            frame[f"{field}_{side}"] = rows[field].to_numpy()
    frame["cross_split"] = frame["split_a"] != frame["split_b"]
    copy = frame["kind"].isin(COPY_KINDS)
    frame["leak"] = copy & frame["cross_split"]
    frame["label_conflict"] = copy & (frame["label_a"] != frame["label_b"])
    frame["_kind_rank"] = frame["kind"].map({k: i for i, k in enumerate(KINDS)})
    frame = frame.sort_values(["_kind_rank", "score", "path_a", "path_b"], ascending=[True, False, True, True])
    return _number_groups(table, frame).reset_index(drop=True)


def certainty(frame: pd.DataFrame) -> np.ndarray:
    """A score in [0, 1] to sort by: exact 1; otherwise the strongest of the signals, each mapped to [0, 1)."""
    keypoints = np.clip(frame["inliers"].to_numpy(), 0, None) / (np.clip(frame["inliers"].to_numpy(), 0, None) + 50)
    cosine = frame["cosine"].fillna(0).clip(0, 1).to_numpy() * 0.999
    hashes = (1 - frame["hash_distance"].to_numpy() / 64) * 0.99
    fade = frame["fade_score"].fillna(0).clip(0, 1).to_numpy() * 0.999
    aligned = (frame["structure"].fillna(0).clip(0, 1) * frame["tone"].fillna(0).clip(0, 1)).to_numpy() * 0.999
    best = np.maximum.reduce([keypoints, cosine, fade, aligned, np.where(frame["cosine"].isna(), hashes, 0)])
    return np.where(frame["kind"] == "exact", 1.0, best)


def _number_groups(table: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """Copy groups numbered 1, 2, ... in the order of their most certain pair; 0 for 'similar' pairs."""
    copy = frame["kind"].isin(COPY_KINDS).to_numpy()
    components = copy_groups(len(table), frame.loc[copy, ["_a", "_b"]].to_numpy())
    component_of_pair = np.where(copy, components[frame["_a"].to_numpy()], -1)
    numbering: dict[int, int] = {}
    for component in component_of_pair:
        if component >= 0 and component not in numbering:
            numbering[component] = len(numbering) + 1
    frame["group"] = [numbering.get(c, 0) for c in component_of_pair]
    return frame.drop(columns=["_kind_rank", "_a", "_b"])[PAIR_COLUMNS]
