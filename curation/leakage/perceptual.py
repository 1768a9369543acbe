"""Perceptual hashes (imagededup's pHash, dHash, wHash, aHash) of each image and of its mirror
image, cached by file content, and a Hamming-radius search over them.

A horizontally flipped copy is a leak too, but its hash differs from the original's in about half
of the bits; hashing the mirror as well lets a flipped copy match at a small distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from curation.cache import ContentCache
from curation.engine import ImageTask, current_engine
from curation.image_io import load_rgb
from curation.leakage.canonical import trim_borders

HASH_KIND = "perceptual_hash"
HASH_VERSION = 2  # 2: uniform borders trimmed first (canonical.trim_borders)
HASH_BYTES = 8  # imagededup's hashes are 64 bits
EXACT_HASH_SEARCH_LIMIT = 200_000  # above: multi-index hashing instead of a brute-force scan


@dataclass
class HashCodes:
    """Packed 64-bit hashes per method, aligned with the table rows; `valid` is False for unreadable rows."""

    codes: dict[str, np.ndarray]  # method -> uint8 array (n, 8)
    mirrors: dict[str, np.ndarray]  # method -> uint8 array (n, 8): the hash of the mirrored image
    valid: np.ndarray  # bool (n,)
    computed: int


def _hasher(method: str):
    from imagededup.methods import AHash, DHash, PHash, WHash

    return {"phash": PHash, "dhash": DHash, "whash": WHash, "ahash": AHash}[method](verbose=False)


def _hashers(methods: tuple[str, ...]) -> dict:
    return {method: _hasher(method) for method in methods}


def _hash_one(hashers: dict, path: Path) -> dict[str, list[str]] | None:
    from PIL import ImageOps

    try:
        image = trim_borders(load_rgb(path))
    except Exception:  # the probe decoded it once; a file changed since stays without hashes
        return None
    arrays = (np.asarray(image), np.asarray(ImageOps.mirror(image)))
    return {method: [hasher.encode_image(image_array=array) for array in arrays] for method, hasher in hashers.items()}


def compute_hashes(table: pd.DataFrame, root: Path, *, cache: ContentCache, methods: tuple[str, ...],
                   workers: int = 2) -> HashCodes:
    """Hashes of every readable sample and its mirror; only images missing from the cache are decoded."""
    readable = table[table["load_error"] == ""]
    known: dict[str, dict[str, list[str]]] = {sha: {} for sha in readable["sha256"]}
    missing_methods: dict[str, set[str]] = {}
    for method in methods:
        found = cache.get_many(HASH_KIND, {"version": HASH_VERSION, "method": method}, readable["sha256"])
        for sha in known:
            if sha in found:
                known[sha][method] = found[sha]
            else:
                missing_methods.setdefault(sha, set()).add(method)
    todo = readable[readable["sha256"].isin(missing_methods)].drop_duplicates("sha256")
    if len(todo):
        task = ImageTask(desc="perceptual hashes", fmt="json", compute=_hash_one, setup=partial(_hashers, methods))
        fresh = current_engine().map_images(task, root, todo["sha256"], todo["path"], workers=workers)
        for method in methods:
            values = {sha: value[method] for sha, value in fresh.items() if value is not None}
            cache.put_many(HASH_KIND, {"version": HASH_VERSION, "method": method}, values)
            for sha, value in values.items():
                known[sha][method] = value
    return _pack(table, known, methods, computed=len(todo))


def _pack(table: pd.DataFrame, known: dict, methods: tuple[str, ...], computed: int) -> HashCodes:
    n = len(table)
    codes = {m: np.zeros((n, HASH_BYTES), dtype="uint8") for m in methods}
    mirrors = {m: np.zeros((n, HASH_BYTES), dtype="uint8") for m in methods}
    valid = np.zeros(n, dtype=bool)
    for position, sha in enumerate(table["sha256"]):
        entry = known.get(sha)
        if not entry or any(m not in entry or entry[m][0] is None for m in methods):
            continue
        valid[position] = True
        for method in methods:
            codes[method][position] = np.frombuffer(bytes.fromhex(entry[method][0]), dtype="uint8")
            mirrors[method][position] = np.frombuffer(bytes.fromhex(entry[method][1]), dtype="uint8")
    return HashCodes(codes, mirrors, valid, computed)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Hamming distance between two uint8 arrays of packed bits, shape (n, 8) each."""
    return np.unpackbits(np.bitwise_xor(a, b), axis=1).sum(axis=1)


def hash_distances(hashes: HashCodes, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smallest distance over methods between a and b, or a and b's mirror; and whether the mirror won."""
    best = np.full(len(a), 64, dtype="int64")
    mirrored = np.zeros(len(a), dtype=bool)
    for method, codes in hashes.codes.items():
        direct = hamming(codes[a], codes[b])
        flipped = hamming(codes[a], hashes.mirrors[method][b])
        closer = np.minimum(direct, flipped)
        mirrored = np.where(closer < best, flipped < direct, mirrored)
        best = np.minimum(best, closer)
    best[~(hashes.valid[a] & hashes.valid[b])] = 64
    return best, mirrored


def hash_candidate_pairs(hashes: HashCodes, radius: int) -> np.ndarray:
    """Pairs (a < b) of table positions within `radius` bits for some method, the mirror included.

    A range search of every image and every mirror image against the originals: exact (a popcount
    scan in FAISS) up to EXACT_HASH_SEARCH_LIMIT images, multi-index hashing above it (exact for
    the radius by the pigeonhole principle, without comparing every pair).
    """
    positions = np.flatnonzero(hashes.valid)
    found: list[np.ndarray] = []
    for method, codes in hashes.codes.items():
        index = _binary_index(codes[positions], radius)
        for queries in (codes[positions], hashes.mirrors[method][positions]):
            lims, _, labels = index.range_search(np.ascontiguousarray(queries), radius + 1)  # radius is exclusive
            query_rows = np.repeat(np.arange(len(positions)), np.diff(lims.astype("int64")))
            found.append(np.stack([positions[query_rows], positions[labels]], axis=1))
    if not found:
        return np.zeros((0, 2), dtype="int64")
    pairs = np.concatenate(found)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    pairs = np.sort(pairs, axis=1)
    return np.unique(pairs, axis=0) if len(pairs) else np.zeros((0, 2), dtype="int64")


def _binary_index(codes: np.ndarray, radius: int):
    import faiss

    if len(codes) <= EXACT_HASH_SEARCH_LIMIT:
        index = faiss.IndexBinaryFlat(HASH_BYTES * 8)
    else:
        chunks = radius + 1  # distance <= radius: at least one of radius+1 disjoint chunks matches exactly
        index = faiss.IndexBinaryMultiHash(HASH_BYTES * 8, chunks, (HASH_BYTES * 8) // chunks)
    index.add(np.ascontiguousarray(codes))
    return index
