"""Where the per-image work runs: in this process (`local`, the default) or on a Ray cluster (`ray`).

Every stage computes per-image values the same way: look them up in the content cache, compute the
missing ones, store them. The engine only decides where "compute the missing ones" happens, and
where the embedding search's index lives; what is computed, and how the stages decide from it, is
the same code on both. So the ray engine yields the local engine's findings, and a run on a
cluster fills the same cache that a local run reads (and the other way round).

The active engine is set once per command (`use_engine`), as Dask's scheduler setting is, rather
than handed down through every stage's signature.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from curation.engine.local import LocalEngine
from curation.engine.tasks import ImageTask, per_image

ENGINES = ("local", "ray")
_active: ContextVar = ContextVar("curation_engine", default=LocalEngine())

__all__ = ["ENGINES", "ImageTask", "LocalEngine", "add_engine_argument", "current_engine", "engine_named",
           "map_missing", "per_image", "use_engine"]


def current_engine():
    """The engine of the running command (LocalEngine unless `use_engine` says otherwise)."""
    return _active.get()


def map_missing(task: ImageTask, rows, root, *, cache, kind: str, params: dict, workers: int = 2) -> tuple[dict, int]:
    """The values of `task` for sample-table `rows`, by file sha256: those the content cache holds
    under (kind, params), and those of the images it lacks, computed on the current engine and stored
    (in the task's format). Returns (values, how many images were computed now)."""
    known = cache.get_many(kind, params, rows["sha256"])
    todo = rows[~rows["sha256"].isin(known)].drop_duplicates("sha256")
    if len(todo):
        fresh = current_engine().map_images(task, root, todo["sha256"], todo["path"], workers=workers)
        cache.put_many(kind, params, fresh, fmt=task.fmt)
        known.update(fresh)
    return known, len(todo)


@contextmanager
def use_engine(engine) -> Iterator:
    """Run the enclosed stages on `engine` (an engine, or a name from ENGINES); closes it after."""
    engine = engine_named(engine) if isinstance(engine, str) else engine
    token = _active.set(engine)
    try:
        yield engine
    finally:
        _active.reset(token)
        engine.close()


def engine_named(name: str):
    """A new engine by name: `local`, or `ray` (connects to $RAY_ADDRESS, or starts Ray on this machine)."""
    if name == "local":
        return LocalEngine()
    if name == "ray":
        from curation.engine.ray_engine import RayEngine

        return RayEngine()
    from curation.errors import CurationError

    raise CurationError(f"engine must be one of {', '.join(ENGINES)}, not {name!r}")


def add_engine_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="where per-image work runs: this process (local, default) or a Ray cluster "
                             "(ray: $RAY_ADDRESS, or a Ray started on this machine when unset)")
