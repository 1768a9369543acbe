"""A content-addressed cache of per-image work.

A value is keyed by the file's sha256, the name of what was computed, and a digest of the
parameters it was computed with. A re-run over a grown dataset therefore computes only the new
images, a renamed or moved file is still a hit, and changing a parameter never returns stale
results. Values are JSON (probe results), numpy arrays (embeddings) or raw bytes (resized copies),
stored in one SQLite file so that writes are atomic and an interrupted run loses nothing already
written.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMATS = ("json", "npy", "bytes")


def default_cache_dir() -> Path:
    env = os.environ.get("CURATION_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "curation"


def params_digest(params: Mapping[str, Any]) -> str:
    """A short stable digest of a parameter mapping (key order does not matter)."""
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0


def _encode(value: Any, fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps(value).encode()
    if fmt == "npy":
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(value), allow_pickle=False)
        return buffer.getvalue()
    return bytes(value)


def _decode(blob: bytes, fmt: str) -> Any:
    if fmt == "json":
        return json.loads(blob)
    if fmt == "npy":
        return np.load(io.BytesIO(blob), allow_pickle=False)
    return blob


class ContentCache:
    """SQLite-backed store: (sha256, kind, params digest) -> value."""

    def __init__(self, directory: Path | str | None = None):
        self.directory = Path(directory) if directory else default_cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "cache.sqlite"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS entries (sha256 TEXT, kind TEXT, params TEXT, "
            "format TEXT, value BLOB, PRIMARY KEY (sha256, kind, params))"
        )
        self.stats: dict[str, CacheStats] = {}

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ContentCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get_many(self, kind: str, params: Mapping[str, Any], digests: Iterable[str]) -> dict[str, Any]:
        """Cached values for those digests that have one; counts hits and misses per kind."""
        wanted = list(dict.fromkeys(digests))
        key = params_digest(params)
        found: dict[str, Any] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):  # SQLite limits bound parameters per query
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT sha256, format, value FROM entries WHERE kind=? AND params=? AND sha256 IN ({marks})",
                    [kind, key, *chunk],
                ).fetchall()
                found.update({sha: _decode(value, fmt) for sha, fmt, value in rows})
        stats = self.stats.setdefault(kind, CacheStats())
        stats.hits += len(found)
        stats.misses += len(wanted) - len(found)
        return found

    def put_many(self, kind: str, params: Mapping[str, Any], values: Mapping[str, Any], fmt: str = "json") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"fmt must be one of {FORMATS}, not {fmt!r}")
        key = params_digest(params)
        rows = [(sha, kind, key, fmt, _encode(value, fmt)) for sha, value in values.items()]
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?)", rows)

    def copy_entries_to(self, other: "ContentCache", *, kinds: Iterable[str], digests: set[str]) -> int:
        """Copy every entry of these kinds (all params) for these file digests into `other`; returns how many."""
        kinds = list(kinds)
        marks = ",".join("?" * len(kinds))
        with self._lock:
            rows = self._db.execute(f"SELECT sha256, kind, params, format, value FROM entries WHERE kind IN ({marks})",
                                    kinds).fetchall()
        rows = [row for row in rows if row[0] in digests]
        with other._lock, other._db:
            other._db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?)", rows)
        return len(rows)

    def count(self, kind: str | None = None) -> int:
        with self._lock:
            if kind is None:
                return self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
            return self._db.execute("SELECT COUNT(*) FROM entries WHERE kind=?", (kind,)).fetchone()[0]
