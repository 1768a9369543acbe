"""The embedded engine: per-image work on threads of this process (image decoders and OpenCV
release the GIL), models run in this process. It needs nothing running and is the default."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from curation.engine.tasks import ImageTask
from curation.progress import progress


class LocalEngine:
    name = "local"

    def map_images(self, task: ImageTask, root: Path, keys: Sequence[str], paths: Sequence[str], *,
                   workers: int = 2, sink: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """{key: value} for every image whose value is not None; `sink` receives them once, at the end."""
        keys, paths = list(keys), list(paths)
        state = task.setup()
        if task.batch is not None:  # model work: one model, sequential batches
            batches = [range(i, min(i + task.local_batch, len(paths))) for i in range(0, len(paths), task.local_batch)]
            values: list[Any] = []
            for batch in progress(batches, desc=task.desc):
                values.extend(task.run_many(state, [root / paths[i] for i in batch]))
        else:
            with ThreadPoolExecutor(max(1, workers)) as pool:
                results = pool.map(lambda path: task.compute(state, root / path), paths)
                values = list(progress(results, total=len(paths), desc=task.desc))
        found = {key: value for key, value in zip(keys, values) if value is not None}
        if sink is not None and found:
            sink(found)
        return found

    def build_index(self, vectors, exact_limit: int):
        from curation.leakage.similarity import build_index

        return build_index(vectors, exact_limit)

    def close(self) -> None:
        pass
