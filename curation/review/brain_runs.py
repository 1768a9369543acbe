"""fiftyone.brain runs fed with our own data: cached embeddings and the trained model's logits.

Never a zoo model (they download weights). Each run replaces the previous one of the same key, so
a re-run of the review refreshes rather than fails on an existing brain key.
"""

from __future__ import annotations

import numpy as np

from curation.review.fo_dataset import KEY

SIMILARITY_KEY = "similarity"
VISUALIZATION_KEY = "umap"


def _fresh(dataset, brain_key: str) -> None:
    if brain_key in dataset.list_brain_runs():
        dataset.delete_brain_run(brain_key)


def _embedded_view(dataset, vectors_by_id: dict[str, np.ndarray]):
    """The samples that have an embedding, and their vectors in the view's order."""
    from fiftyone import ViewField as F

    view = dataset.match(F(KEY).is_in(list(vectors_by_id)))
    order = view.values(KEY)
    return view, np.stack([vectors_by_id[key] for key in order])


def embedding_runs(dataset, vectors_by_id: dict[str, np.ndarray], *, seed: int = 51) -> list[str]:
    """uniqueness, a similarity index and a 2-D UMAP from our embeddings; returns what ran."""
    import fiftyone.brain as fob

    if len(vectors_by_id) < 3:
        return []
    view, vectors = _embedded_view(dataset, vectors_by_id)
    ran = []
    _fresh(dataset, "uniqueness")
    fob.compute_uniqueness(view, embeddings=vectors, progress=False)
    ran.append("uniqueness")
    _fresh(dataset, SIMILARITY_KEY)
    fob.compute_similarity(view, embeddings=vectors, backend="sklearn", brain_key=SIMILARITY_KEY, progress=False)
    ran.append(SIMILARITY_KEY)
    _fresh(dataset, VISUALIZATION_KEY)
    method = "umap" if len(vectors) >= 16 else "pca"  # UMAP needs a few neighbours per point
    fob.compute_visualization(view, embeddings=vectors, method=method, brain_key=VISUALIZATION_KEY,
                              seed=seed, progress=False, **({"num_neighbors": min(15, len(vectors) - 1), "verbose": False} if method == "umap" else {}))
    ran.append(VISUALIZATION_KEY)
    return ran


def prediction_runs(dataset, pred_field: str = "predictions") -> list[str]:
    """mistakenness and hardness from the logits of `pred_field`, on the samples that have it."""
    import fiftyone.brain as fob

    view = dataset.exists(pred_field)
    if len(view) == 0:
        return []
    _fresh(dataset, "mistakenness")
    fob.compute_mistakenness(view, pred_field, label_field="ground_truth", use_logits=True, progress=False)
    _fresh(dataset, "hardness")
    fob.compute_hardness(view, pred_field, progress=False)
    return ["mistakenness", "hardness"]
