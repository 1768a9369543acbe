"""The Ray engine: per-image work as Ray Data `map_batches` over actor pools, and the embedding
search's index sharded over Ray actors.

Each stage hands over only the images missing from the content cache. They become a Ray Dataset of
(key, absolute path) rows; an actor pool runs the stage's ImageTask on them (its `setup`, a model
load say, once per actor; GPU actors with larger batches when the cluster has GPUs and the task
runs a model). Results stream back to this process batch by batch, as the cache's own encoding,
and go into the content cache as they arrive: the cache is where results are joined back to the
sample table, exactly as the local engine's are, and an interrupted run keeps every batch that
landed. Actors that die are restarted by Ray and their batches retried, so a lost worker costs
time, not rows (tested by killing one).

Workers read the images by the path this machine gives them (the dataset root joined with the
sample table's path): on a cluster the data must sit on a file system that every node mounts at
the same place, and every node must have this project installed (`make install`), as Ray's own
guidance for native dependencies says.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curation.cache import _decode, _encode
from curation.engine.tasks import ImageTask
from curation.errors import CurationError
from curation.progress import progress_bar

CONNECT_TIMEOUT_S = 10.0
SHARD_MIN_VECTORS = 100_000  # smaller targets are searched in one shard: an actor costs more than it saves

log = logging.getLogger("curation.engine")


def _reachable(address: str) -> None:
    """Fail fast, with a clear message, when a given Ray address does not answer (ray.init waits long)."""
    if address in ("auto", "local"):
        return
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon:
        raise CurationError(f"the Ray address {address!r} is not host:port (or auto)")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except (OSError, ValueError) as exc:
        raise CurationError(f"cannot reach the Ray cluster at {address} ({exc}); start one with "
                            f"`ray start --head`, or set RAY_ADDRESS to a running cluster, or use --engine local")


class _TaskActor:
    """One Ray actor of a pool: the task's state built once, then batch after batch."""

    def __init__(self, task: ImageTask, fmt: str, chunk: int):
        self.task, self.fmt, self.chunk = task, fmt, chunk
        self.state = task.setup()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self.task.run_many(self.state, [Path(p) for p in batch["path"]], self.chunk)
        return {"key": batch["key"],
                "found": np.array([v is not None for v in values]),
                "value": np.array([_encode(v, self.fmt) if v is not None else b"" for v in values], dtype=object)}


class RayEngine:
    """Connects to $RAY_ADDRESS (or `address`), or starts Ray on this machine when neither is given."""

    name = "ray"

    def __init__(self, address: str | None = None, *, actors: int | None = None, shard_min: int = SHARD_MIN_VECTORS,
                 batch: int | None = None):
        """`actors`: the largest pool per stage (default: the cluster's CPUs); `shard_min`: indexed vectors
        per search shard at least; `batch`: images per actor call instead of each task's own size."""
        import ray

        address = address or os.environ.get("RAY_ADDRESS") or None
        if address:
            _reachable(address)
        try:
            ray.init(address=address, ignore_reinit_error=True, logging_level=logging.WARNING,
                     log_to_driver=False, include_dashboard=False, configure_logging=False)
        except (ConnectionError, RuntimeError) as exc:
            raise CurationError(f"cannot connect to Ray at {address or 'a new local instance'}: {exc}") from exc
        from ray.data import DataContext

        DataContext.get_current().enable_progress_bars = False  # our own progress, per stage
        resources = ray.cluster_resources()
        self.cpus = int(resources.get("CPU", 1))
        self.gpus = int(resources.get("GPU", 0))
        self.actors = actors or self.cpus
        self.shard_min = shard_min
        self.batch = batch
        self.address = address or "local"

    def map_images(self, task: ImageTask, root: Path, keys: Sequence[str], paths: Sequence[str], *,
                   workers: int = 2, sink: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """{key: value} for every image whose value is not None; `sink` receives each batch as it lands."""
        import ray.data
        from ray.data import ActorPoolStrategy

        keys, paths = list(keys), list(paths)
        if not keys:
            return {}
        gpu = task.uses_gpu and self.gpus > 0
        size = self.batch or (task.gpu_batch if gpu else task.remote_batch)
        rows = [{"key": key, "path": str(Path(root) / path)} for key, path in zip(keys, paths)]
        pool = min(self.gpus if gpu else self.actors, max(1, -(-len(rows) // size)))
        # one block per actor call: a dead actor's retry redoes one batch, and results stream back evenly
        dataset = ray.data.from_items(rows, override_num_blocks=min(-(-len(rows) // size), 10_000))
        mapped = dataset.map_batches(
            _TaskActor, fn_constructor_args=(task, task.fmt, size if gpu else task.local_batch),
            batch_size=size, batch_format="numpy", compute=ActorPoolStrategy(min_size=1, max_size=pool),
            num_cpus=1, num_gpus=1 if gpu else 0)
        found: dict[str, Any] = {}
        with progress_bar(total=len(rows), desc=f"{task.desc} (ray, {pool} actor{'s' if pool > 1 else ''})") as bar:
            for batch in mapped.iter_batches(batch_size=None, batch_format="numpy"):
                fresh = {str(k): _decode(bytes(v), task.fmt)
                         for k, ok, v in zip(batch["key"], batch["found"], batch["value"]) if ok}
                found.update(fresh)
                if sink is not None and fresh:
                    sink(fresh)
                bar.update(len(batch["key"]))
        return found

    def build_index(self, vectors: np.ndarray, exact_limit: int):
        from curation.engine.sharded_index import ShardedIndex
        from curation.leakage.similarity import build_index

        shards = min(self.cpus, len(vectors) // max(1, self.shard_min))
        if shards < 2:
            return build_index(vectors, exact_limit)
        return ShardedIndex(vectors, shards, exact_limit)

    def close(self) -> None:
        pass  # Ray stays up for the process: a driver that connected once is reused by the next stage
