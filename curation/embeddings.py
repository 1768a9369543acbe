"""Image embeddings from a timm backbone, cached by file content.

The leakage audit (similarity search) and the label-issue fast path (logistic regression) share
these vectors, so each image goes through the network once per model and weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curation.cache import ContentCache
from curation.image_io import load_rgb
from curation.progress import progress

EMBEDDING_KIND = "embedding"
EMBEDDING_VERSION = 1
DEFAULT_EMBEDDING_MODEL = "tf_efficientnet_lite0"


@dataclass
class Embeddings:
    """Vectors aligned with the sample table's rows; rows that could not be embedded are NaN."""

    vectors: np.ndarray  # float32, shape (n_samples, dim)
    sample_ids: list[str]
    model: str
    source: str  # where the weights came from (see curation.models.LoadedModel.source)
    computed: int  # how many images went through the network in this call

    @property
    def valid(self) -> np.ndarray:
        return ~np.isnan(self.vectors).any(axis=1)

    def normalized(self) -> np.ndarray:
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        return (self.vectors / np.where(norms == 0, 1, norms)).astype("float32")


def compute_embeddings(
    table: pd.DataFrame,
    root: Path,
    *,
    cache: ContentCache,
    model_name: str = DEFAULT_EMBEDDING_MODEL,
    weights: Path | None = None,
    # Small batches stay in the CPU caches. lite0, 1 thread, images/s at batch 1/2/4: OpenVINO
    # 160/154/150 (AVX-512 host); traced torch 84/85/78 there, 38/37/32 on an AVX2 host
    # (bench/RESULTS.md): 2 is at or near the best in every case measured.
    batch_size: int = 2,
    image_size: int | None = None,
) -> Embeddings:
    """Pooled pre-logit features for every readable sample; only uncached images are run.

    `image_size` overrides the model's input size (square, pixels): a smaller input runs faster
    for uses that need only a coarse view (the leakage audit's candidate search).
    """
    from curation.models import load_model

    readable = table[table["load_error"] == ""]
    params_base = {"version": EMBEDDING_VERSION, "model": model_name, "weights": str(weights or "")}
    if image_size:  # only then: the default's cache keys stay as they were
        params_base["image_size"] = int(image_size)
    known = cache.get_many(EMBEDDING_KIND, params_base, readable["sha256"])
    missing = readable[~readable["sha256"].isin(known)].drop_duplicates("sha256")
    source = "cache"
    if len(missing):
        loaded = load_model(model_name, weights=weights)
        source = loaded.source
        if image_size:
            loaded.data_config = {**loaded.data_config, "input_size": (3, int(image_size), int(image_size))}
        fresh = _run_model(loaded, root, missing, batch_size)
        cache.put_many(EMBEDDING_KIND, params_base, fresh, fmt="npy")
        known.update(fresh)
    dim = len(next(iter(known.values()))) if known else 0
    vectors = np.full((len(table), dim), np.nan, dtype="float32")
    for position, sha in enumerate(table["sha256"]):
        if sha in known:
            vectors[position] = known[sha]
    return Embeddings(vectors, list(table["sample_id"]), model_name, source, len(missing))


def _run_model(loaded, root: Path, rows: pd.DataFrame, batch_size: int) -> dict[str, np.ndarray]:
    from curation.inference import extractor_for

    pixels_of, features_of = extractor_for(loaded)
    results: dict[str, np.ndarray] = {}
    # plain lists, not DataFrame slices: pandas' per-batch indexing cost 1.4 s of 17 for 825 images
    items = list(zip(rows["path"], rows["sha256"]))
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    for batch in progress(batches, desc=f"embedding ({loaded.name}, {features_of.backend})"):
        pixels, shas = [], []
        for path, sha in batch:
            try:
                pixels.append(pixels_of(load_rgb(root / path)))
                shas.append(sha)
            except Exception:  # decoded once by the probe; a file changed since is skipped, stays NaN
                continue
        if not pixels:
            continue
        results.update(zip(shas, features_of(np.stack(pixels))))
    return results


def model_names(spec: str) -> list[str]:
    """'a' or 'a,b,...': the backbones of an embedding specification, in order."""
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if not names:
        raise ValueError(f"no embedding model named in {spec!r}")
    return names


def combined_vectors(table: pd.DataFrame, root: Path, *, cache: ContentCache,
                     spec: str = DEFAULT_EMBEDDING_MODEL) -> np.ndarray:
    """Features of one backbone, or of several side by side (spec 'a,b'): each backbone's vectors
    L2-normalised and scaled by 1/sqrt(count), so a combined vector has unit length and each
    backbone weighs the same. NaN rows where any backbone could not embed the image. Several
    backbones see more than one (they err on different images: lite0+lite1 probes err less
    than either, bench/RESULTS.md)."""
    names = model_names(spec)
    parts = [compute_embeddings(table, root, cache=cache, model_name=name).normalized() for name in names]
    return (np.hstack(parts) / np.sqrt(len(names))).astype("float32")
