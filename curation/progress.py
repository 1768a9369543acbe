"""Progress bars for every long step, on stderr so that stdout stays machine-readable.

Set CURATION_PROGRESS=0 to silence them (the bars also stay out of the way in pipes: they redraw
at most once a second there).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "") -> Iterator[T]:
    from tqdm.auto import tqdm

    enabled = os.environ.get("CURATION_PROGRESS", "1") != "0"
    interactive = sys.stderr.isatty()
    return iter(
        tqdm(items, total=total, desc=desc, disable=not enabled, file=sys.stderr,
             mininterval=0.1 if interactive else 1.0, leave=interactive, dynamic_ncols=True)
    )


def progress_bar(*, total: int, desc: str = ""):
    """A bar updated by hand (`bar.update(n)`), for work whose results arrive in batches; a context manager."""
    from tqdm.auto import tqdm

    enabled = os.environ.get("CURATION_PROGRESS", "1") != "0"
    interactive = sys.stderr.isatty()
    return tqdm(total=total, desc=desc, disable=not enabled, file=sys.stderr,
                mininterval=0.1 if interactive else 1.0, leave=interactive, dynamic_ncols=True)
