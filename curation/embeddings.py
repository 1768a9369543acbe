"""Image embeddings from a timm backbone, cached by file content.

The leakage audit (similarity search) and the label-issue fast path (logistic regression) share
these vectors, so each image goes through the network once per model and weights.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from curation.cache import ContentCache
from curation.image_io import load_rgb
from curation.engine import ImageTask, current_engine

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
    readable = table[table["load_error"] == ""]
    params_base = {"version": EMBEDDING_VERSION, "model": model_name, "weights": str(weights or "")}
    if image_size:  # only then: the default's cache keys stay as they were
        params_base["image_size"] = int(image_size)
    known = cache.get_many(EMBEDDING_KIND, params_base, readable["sha256"])
    missing = readable[~readable["sha256"].isin(known)].drop_duplicates("sha256")
    source = "cache"
    if len(missing):
        try:
            # loaded here first, whatever the engine: weights that cannot be found fail before any work starts
            source = _loaded_model(model_name, weights).source
            setup = _EmbedderSetup(model_name, str(weights) if weights else None, image_size)
            task = ImageTask(desc=f"embedding ({model_name})", fmt="npy", batch=_embed_batch, setup=setup,
                             local_batch=batch_size, uses_gpu=True)
            fresh = current_engine().map_images(task, root, missing["sha256"], missing["path"],
                                                sink=partial(cache.put_many, EMBEDDING_KIND, params_base, fmt="npy"))
        finally:
            _LOADED.clear()
        known.update(fresh)
    dim = len(next(iter(known.values()))) if known else 0
    vectors = np.full((len(table), dim), np.nan, dtype="float32")
    for position, sha in enumerate(table["sha256"]):
        if sha in known:
            vectors[position] = known[sha]
    return Embeddings(vectors, list(table["sample_id"]), model_name, source, len(missing))


_LOADED: dict = {}  # (model, weights) -> LoadedModel, for one compute_embeddings call: loaded once per process


def _loaded_model(model_name: str, weights: Path | str | None):
    from curation.models import load_model

    key = (model_name, str(weights or ""))
    if key not in _LOADED:
        _LOADED[key] = load_model(model_name, weights=Path(weights) if weights else None)
    return _LOADED[key]


@dataclass(frozen=True)
class _EmbedderSetup:
    """Builds the feature extractor where the task runs (this process, or each Ray actor); on a GPU
    actor the torch graph runs on CUDA."""

    model_name: str
    weights: str | None
    image_size: int | None

    def __call__(self):
        from curation.inference import extractor_for

        loaded = _loaded_model(self.model_name, self.weights)
        if self.image_size:
            loaded.data_config = {**loaded.data_config, "input_size": (3, int(self.image_size), int(self.image_size))}
        pixels_of, features_of = extractor_for(loaded, device=_device())
        return pixels_of, features_of


def _device() -> str:
    """cuda only in a Ray actor that was given a GPU: elsewhere the CPU's fp32 vectors, the same on every host."""
    ray = sys.modules.get("ray")  # imported in every Ray worker; never imported here for this check
    return "cuda" if ray is not None and ray.is_initialized() and ray.get_gpu_ids() else "cpu"


def _embed_batch(state, paths: list[Path]) -> list[np.ndarray | None]:
    pixels_of, features_of = state
    pixels, kept = [], []
    for position, path in enumerate(paths):
        try:
            pixels.append(pixels_of(load_rgb(path)))
            kept.append(position)
        except Exception:  # decoded once by the probe; a file changed since is skipped, stays NaN
            continue
    values: list[np.ndarray | None] = [None] * len(paths)
    if pixels:
        for position, vector in zip(kept, features_of(np.stack(pixels))):
            values[position] = vector
    return values


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
