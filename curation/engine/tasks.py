"""A per-image computation as a value that can travel: to a thread here, or to a Ray actor elsewhere."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any


def _no_state() -> None:
    return None


@dataclass(frozen=True)
class ImageTask:
    """What to compute for one image file.

    `setup` runs once per worker (a model load, hashers) and its result is passed to every call;
    `compute(state, path)` gives the value, or None when the image cannot be used (that key is then
    left out, as the local code always did). `batch(state, paths)` replaces `compute` for model
    work that runs many images per call. Functions must be importable (module level, or partials
    of such): Ray pickles them to its workers.
    """

    desc: str  # progress label
    fmt: str  # the content cache's format of its values: json, npy or bytes
    compute: Callable[[Any, Path], Any] | None = None
    batch: Callable[[Any, list[Path]], list[Any]] | None = None
    setup: Callable[[], Any] = _no_state
    local_batch: int = 2  # images per `batch` call in this process
    remote_batch: int = 64  # images per Ray batch (one actor call)
    gpu_batch: int = 256  # images per Ray batch on a GPU actor
    uses_gpu: bool = False  # a model that may run on a GPU actor when the cluster has GPUs

    def run_many(self, state: Any, paths: list[Path], chunk: int | None = None) -> list[Any]:
        """One value per path: `batch` over chunks of `chunk` images (default local_batch), else `compute`."""
        if self.batch is not None:
            chunk = chunk or self.local_batch
            return [value for start in range(0, len(paths), chunk)
                    for value in self.batch(state, paths[start : start + chunk])]
        return [self.compute(state, path) for path in paths]


def _plain(fn: Callable[..., Any], kwargs: dict, _state: Any, path: Path) -> Any:
    return fn(path, **kwargs)


def per_image(fn: Callable[..., Any], *, desc: str, fmt: str, **kwargs) -> ImageTask:
    """A stateless task: `fn(path, **kwargs)` for each image."""
    return ImageTask(desc=desc, fmt=fmt, compute=partial(_plain, fn, kwargs))
