"""Optional neighbours by embedding: the same picture, cropped, re-coloured or re-lit.

pHash misses a copy cropped by 15 % or shifted in colour; a CNN's embedding does not. Each
candidate that is not an exact copy is embedded with `curation.embeddings`' model (the packaged
ImageNet lite0 by default) and its most similar existing samples and kept images (cosine at or above
the threshold) go to the duplicate engine with the pHash neighbours, which decides on their pixels. Vectors are cached by content (`ContentCache`, the same kind
and parameters as `compute_embeddings`, keyed by the sha256 of the JPEG we write), so a kept image is
never embedded twice and the dataset's own vectors are shared with the leakage audit.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from curation.cache import ContentCache
from curation.embeddings import DEFAULT_EMBEDDING_MODEL, EMBEDDING_KIND, EMBEDDING_VERSION, compute_embeddings
EMBEDDING_REASON = "duplicate_embedding"  # a copy whose only neighbour came from the embeddings


def embedding_params(model_name: str = DEFAULT_EMBEDDING_MODEL) -> dict:
    """The cache parameters `compute_embeddings` uses, so both read and write the same entries."""
    return {"version": EMBEDDING_VERSION, "model": model_name, "weights": ""}


class EmbeddingIndex:
    """Unit vectors of every image a candidate must differ from; thread-safe, model loaded lazily."""

    def __init__(self, threshold: float, cache: ContentCache, model_name: str = DEFAULT_EMBEDDING_MODEL):
        self.threshold = threshold
        self.cache = cache
        self.model_name = model_name
        self._vectors = np.zeros((0, 0), dtype="float32")
        self._refs: list[str] = []
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._pixels_of = self._features_of = None  # built on first use, under _model_lock

    def __len__(self) -> int:
        return len(self._refs)

    def add(self, ref: str, vector: np.ndarray) -> None:
        self.add_many([ref], np.asarray(vector)[None, :])

    def add_many(self, refs: list[str], vectors: np.ndarray) -> None:
        units = np.stack([_unit(v) for v in vectors]) if len(refs) else None
        if units is None:
            return
        with self._lock:
            self._vectors = units if not self._refs else np.vstack([self._vectors, units])
            self._refs.extend(refs)

    def nearest(self, vector: np.ndarray, limit: int = 5) -> list[tuple[str, float]]:
        """The indexed images at or above the threshold's cosine similarity, most similar first: the
        duplicate engine's neighbours to judge, not a verdict."""
        with self._lock:
            if not self._refs:
                return []
            similarities = self._vectors @ _unit(vector)
            order = np.argsort(-similarities)[:limit]
            return [(self._refs[i], round(float(similarities[i]), 4)) for i in order if similarities[i] >= self.threshold]

    def embed_jpeg(self, jpeg: bytes, sha256: str) -> np.ndarray:
        """The vector of an image we would write, from the cache or the model (then cached)."""
        params = embedding_params(self.model_name)
        cached = self.cache.get_many(EMBEDDING_KIND, params, [sha256])
        if sha256 in cached:
            return cached[sha256]
        vector = self._run([Image.open(io.BytesIO(jpeg)).convert("RGB")])[0]
        self.cache.put_many(EMBEDDING_KIND, params, {sha256: vector}, fmt="npy")
        return vector

    def _run(self, images: list[Image.Image]) -> np.ndarray:
        with self._model_lock:  # one forward at a time: the model is shared by the download threads
            if self._features_of is None:
                from curation.inference import extractor_for
                from curation.models import load_model

                self._pixels_of, self._features_of = extractor_for(load_model(self.model_name))
            return self._features_of(np.stack([self._pixels_of(image) for image in images]))


def index_existing(index: EmbeddingIndex, table: pd.DataFrame, root: Path, kept: list[tuple[str, Path, str]]) -> int:
    """Add the dataset's readable samples (named by relative path, like the other duplicate_of values)
    and the already kept scraped images, given as (ref, file, sha256). Returns how many were added."""
    readable = table[table["load_error"] == ""] if len(table) else table
    rows = pd.DataFrame({
        "sample_id": [*readable["path"], *(ref for ref, _, _ in kept)],
        "path": [*readable["path"], *(str(file) for _, file, _ in kept)],
        "sha256": [*readable["sha256"], *(sha for _, _, sha in kept)],
    }).drop_duplicates("sample_id")
    if not len(rows):
        return 0
    rows["load_error"] = ""
    embeddings = compute_embeddings(rows, root, cache=index.cache, model_name=index.model_name)
    valid = embeddings.valid
    index.add_many(list(rows["sample_id"][valid]), embeddings.vectors[valid])
    return int(valid.sum())


def _unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype="float32").ravel()
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector
