"""The whole audit on a sample table: exact groups, perceptual hashes, embedding neighbours,
washed-out copies, fused into one decision per pair, plus copy groups, label conflicts and the leak-free view."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from curation.cache import ContentCache
from curation.leakage.exact import exact_pairs
from curation.leakage.fuse import candidate_pairs, decide, pair_frame
from curation.leakage.leak_free import leak_free_view
from curation.leakage.params import LeakageParams, split_rank
from curation.leakage.perceptual import compute_hashes, hash_candidate_pairs, hash_distances
from curation.leakage.similarity import neighbour_pairs


@dataclass
class LeakageResult:
    params: LeakageParams
    pairs: pd.DataFrame  # PAIR_COLUMNS, most certain first
    leak_free: pd.DataFrame  # LEAK_FREE_COLUMNS
    nearest_within: np.ndarray  # per table row: best cosine to another sample of its split (NaN: none)
    nearest_across: np.ndarray  # per table row: best cosine to a sample of another split
    embedding_model: str = ""
    embedding_source: str = ""
    index_kind: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    computed: dict[str, int] = field(default_factory=dict)

    @property
    def leaks(self) -> pd.DataFrame:
        return self.pairs[self.pairs["leak"]]


def audit_leakage(table: pd.DataFrame, root: Path, *, cache: ContentCache, params: LeakageParams | None = None,
                  workers: int = 2) -> LeakageResult:
    """Find every exact, near-duplicate and similar pair of images in the table, within and across splits.

    `table` is the sample table (curation.sample_table); unreadable rows take part only in the
    file-hash comparison. The dataset is only read.
    """
    params = (params or LeakageParams()).validate()
    table = table.reset_index(drop=True)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    exact = exact_pairs(table)
    timings["exact"] = time.perf_counter() - clock

    clock = time.perf_counter()
    hashes = compute_hashes(table, root, cache=cache, methods=tuple(params.hash_methods), workers=workers)
    hash_pairs = hash_candidate_pairs(hashes, params.hash_max_distance)
    timings["hashes"] = time.perf_counter() - clock

    clock = time.perf_counter()
    faded = _faded_pairs(table, root, cache, params, workers)
    timings["faded"] = time.perf_counter() - clock

    clock = time.perf_counter()
    vectors, valid, model_source, embedded, neighbours = _embedding_neighbours(table, root, cache, params)
    timings["embeddings_and_search"] = time.perf_counter() - clock

    clock = time.perf_counter()
    descriptors, setting_pairs = _setting_candidates(table, root, cache, params, workers)
    timings["settings"] = time.perf_counter() - clock

    clock = time.perf_counter()
    pairs, exact_signal, cosine, distance, hash_mirrored, worth_verifying = _candidates(
        exact, hash_pairs, np.concatenate([faded.pairs, setting_pairs]), hashes, vectors, valid, neighbours, params)
    fade_score = _lookup(pairs, faded.pairs, faded.scores)
    timings["candidates"] = time.perf_counter() - clock

    clock = time.perf_counter()
    matches, verified_now = _verify(table, root, cache, params, pairs, worth_verifying, workers)
    timings["verify"] = time.perf_counter() - clock

    clock = time.perf_counter()
    suspect = (cosine >= params.cosine_support) | (distance <= params.hash_strict)
    alignment = _align(table, root, params, pairs, matches, suspect, workers)
    timings["align"] = time.perf_counter() - clock

    clock = time.perf_counter()
    inliers = matches.inliers
    setting = _setting(descriptors, pairs, cosine, params)
    kind, signal = decide(exact_signal, cosine, distance, hash_mirrored, inliers, matches.mirrored, params, fade_score,
                          alignment, setting)
    frame = pair_frame(table, pairs, kind, signal, cosine, distance, inliers, fade_score, alignment, setting)
    timings["fuse"] = time.perf_counter() - clock

    n = len(table)
    empty = np.full(n, np.nan, dtype="float32")
    return LeakageResult(
        params=params, pairs=frame, leak_free=leak_free_view(table, frame),
        nearest_within=neighbours.nearest_within if neighbours is not None else empty,
        nearest_across=neighbours.nearest_across if neighbours is not None else empty,
        embedding_model=params.model if vectors is not None else "",
        embedding_source=model_source, index_kind=neighbours.index_kind if neighbours is not None else {},
        timings=timings, computed={"hashes": hashes.computed, "embeddings": embedded, "keypoints": verified_now,
                                   "pairs_verified": int((inliers >= 0).sum()),
                                   "pairs_aligned": int((~np.isnan(alignment.structure)).sum()),
                                   "fade_thumbnails": faded.computed,
                                   "faded_images": int(faded.faded.sum()),
                                   "setting_descriptors": descriptors.computed if descriptors is not None else 0,
                                   "setting_pairs": len(setting_pairs)},
    )


def _faded_pairs(table, root, cache, params, workers):
    from curation.leakage.faded import FadedPairs, find_faded_pairs

    if not params.faded:
        return FadedPairs(np.zeros((0, 2), dtype="int64"), np.zeros(0, dtype="float32"), np.zeros(len(table), dtype=bool), 0)
    return find_faded_pairs(table, root, cache=cache, faded_fraction=params.faded_fraction,
                            candidates=params.faded_candidates, workers=workers)


def _setting_candidates(table, root, cache, params, workers):
    """(scene descriptors or None, pairs of pictures with a setting whose backdrops are nearest)."""
    from curation.leakage.scene import backdrop_vectors, compute_scene_descriptors

    none = np.zeros((0, 2), dtype="int64")
    if not (params.setting and params.use_embeddings):  # the rule needs the embedding's agreement
        return None, none
    descriptors = compute_scene_descriptors(table, root, cache=cache, workers=workers)
    with_setting = descriptors.setting_share() >= params.setting_share
    if with_setting.sum() < 2:
        return descriptors, none
    order = sorted(table["split"].unique(), key=split_rank)
    found = neighbour_pairs(backdrop_vectors(descriptors), with_setting, list(table["split"]),
                            k=params.setting_neighbours, exact_limit=params.exact_search_limit, split_order=order)
    return descriptors, found.pairs.astype("int64").reshape(-1, 2)


def _setting(descriptors, pairs, cosine, params):
    """Setting figures for the candidate pairs of two pictures with a setting that the embedding does
    not rule out (NaN elsewhere)."""
    from curation.leakage.scene import SettingFigures, setting_figures

    if descriptors is None:
        return SettingFigures.empty(len(pairs))
    share = descriptors.setting_share()
    measure = ((share[pairs[:, 0]] >= params.setting_share) & (share[pairs[:, 1]] >= params.setting_share)
               & (np.nan_to_num(cosine, nan=-1.0) >= params.setting_cosine))
    return setting_figures(descriptors, pairs, measure, backdrop_colours_floor=params.setting_backdrop_colours)


def _lookup(pairs: np.ndarray, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """values[i] where pairs row == keys row i, NaN elsewhere (both sorted row-wise)."""
    out = np.full(len(pairs), np.nan, dtype="float32")
    if len(keys) and len(pairs):
        where = pd.MultiIndex.from_arrays([keys[:, 0], keys[:, 1]]).get_indexer(
            pd.MultiIndex.from_arrays([pairs[:, 0], pairs[:, 1]]))
        out[where >= 0] = values[where[where >= 0]]
    return out


def _candidates(exact, hash_pairs, faded_pairs, hashes, vectors, valid, neighbours, params):
    """Every pair some signal proposes, with its cheap signals and whether keypoints should check it."""
    pairs = candidate_pairs(exact[["a", "b"]].to_numpy(), hash_pairs, faded_pairs,
                            neighbours.pairs if neighbours is not None else np.zeros((0, 2)))
    a, b = pairs[:, 0], pairs[:, 1]
    exact_lookup = {(x, y): s for x, y, s in exact.itertuples(index=False)}
    exact_signal = np.array([exact_lookup.get((x, y), "") for x, y in zip(a, b)], dtype=object)
    cosine = np.full(len(pairs), np.nan, dtype="float32")
    if vectors is not None:
        both = valid[a] & valid[b]
        cosine[both] = np.einsum("ij,ij->i", vectors[a[both]], vectors[b[both]])
    distance, hash_mirrored = hash_distances(hashes, a, b)
    nearest = _is_nearest(pairs, neighbours, params.verify_neighbours)
    # Pairs that cheap signals call copies are verified too: their pixels may contradict them.
    worth_verifying = (exact_signal == "") & (nearest | (cosine >= params.cosine_similar)
                                              | (distance <= params.hash_max_distance))
    return pairs, exact_signal, cosine, distance, hash_mirrored, worth_verifying


def _embedding_neighbours(table, root, cache, params):
    """(unit vectors, valid mask, weights source, images embedded now, NeighbourPairs), or Nones."""
    if not params.use_embeddings:
        return None, None, "", 0, None
    from curation.embeddings import compute_embeddings

    embeddings = compute_embeddings(table, root, cache=cache, model_name=params.model,
                                    weights=Path(params.weights) if params.weights else None,
                                    image_size=params.embedding_size)
    if embeddings.vectors.shape[1] == 0:  # nothing readable
        return None, None, embeddings.source, embeddings.computed, None
    vectors, valid = embeddings.normalized(), embeddings.valid
    order = sorted(table["split"].unique(), key=split_rank)
    neighbours = neighbour_pairs(vectors, valid, list(table["split"]), k=params.neighbours,
                                 exact_limit=params.exact_search_limit, split_order=order)
    return vectors, valid, embeddings.source, embeddings.computed, neighbours


def _is_nearest(pairs: np.ndarray, neighbours, top: int) -> np.ndarray:
    """Whether each pair is among the `top` nearest neighbours (rank < top) of the embedding search."""
    if neighbours is None or not len(pairs):
        return np.zeros(len(pairs), dtype=bool)
    first = neighbours.pairs[neighbours.rank < top]
    return (pd.MultiIndex.from_arrays([pairs[:, 0], pairs[:, 1]])
            .isin(pd.MultiIndex.from_arrays([first[:, 0], first[:, 1]])))


def _verify(table, root, cache, params, pairs, worth_verifying, workers):
    """Keypoint matches for the pairs worth it (inliers -1: not verified): not exact, and either
    among an image's verify_neighbours nearest, or similar by embedding or hash. Copies are the
    nearest neighbour of their original in 98-99 % of the benchmark's cases; verifying every k-NN
    pair would cost k times more for little."""
    from curation.leakage.verify import Matches, compute_keypoints, verify_pairs

    matches = Matches(np.full(len(pairs), -1, dtype="int64"), np.zeros(len(pairs), dtype=bool),
                      np.full((len(pairs), 2, 3), np.nan))
    todo = np.flatnonzero(worth_verifying) if params.verify else np.zeros(0, dtype="int64")
    if not len(todo):
        return matches, 0
    keypoints = compute_keypoints(table, root, pairs[todo].ravel(), cache=cache, n_features=params.keypoint_features,
                                  workers=workers)
    found = verify_pairs(pairs[todo], keypoints, enough=params.inliers_near, workers=workers)
    matches.inliers[todo], matches.mirrored[todo], matches.transforms[todo] = found.inliers, found.mirrored, found.transforms
    return matches, keypoints.computed


def _align(table, root, params, pairs, matches, suspect, workers):
    """Alignment figures for the verified pairs with enough matches to carry a transform, and for
    those that cheap signals call copies without one (aligned from the frames' scale: a same-pose
    render in another colourway hashes and embeds like a copy, and its pixels must say no)."""
    from curation.leakage.alignment import Alignments, align_pairs

    alignment = Alignments.empty(len(pairs))
    verified = matches.inliers >= 0
    todo = np.flatnonzero(verified & ((matches.inliers >= params.align_min_inliers) | suspect) & params.align)
    if len(todo):
        alignment.put(todo, align_pairs(table, root, pairs[todo], matches.transforms[todo], workers=workers,
                                        copy_level=(params.aligned_structure, params.aligned_tone)))
    return alignment


def params_record(params: LeakageParams) -> dict:
    record = asdict(params)
    record["hash_methods"] = list(params.hash_methods)
    return record
