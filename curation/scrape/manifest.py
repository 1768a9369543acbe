"""The provenance manifest: one JSON line per candidate, kept or rejected, appended and fsync'd.

A kill -9 can at worst leave a half-written last line; opening the manifest cuts it off, so every
complete row survives and no later row is glued to a fragment.
"""

from __future__ import annotations

import csv
import json
import os
import threading
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from curation.atomic_files import atomic_path

MANIFEST_NAME = "manifest.jsonl"
COLUMNS = ("time", "run_id", "label", "engine", "query", "licence", "url", "final_url", "http_status",
           "content_type", "bytes", "sha256", "pixel_hash", "source_format", "source_width", "source_height",
           "file", "file_sha256", "phash", "phash_source", "decision", "reason", "detail", "duplicate_of", "distance",
           "similarity", "closest", "closest_kind", "closest_signal")
KEPT, REJECTED = "kept", "rejected"
# Reasons a later run may try again with --retry-failed (the server, not the image, was at fault).
TRANSIENT_REASONS = {"timeout", "connection_error", "http_error"}


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Manifest:
    def __init__(self, path: Path):
        self.path = path
        self.rows: list[dict] = []
        self.dropped_fragment = 0
        self._lock = threading.Lock()
        self._load()
        self._handle = path.open("a", encoding="utf-8")

    def _load(self) -> None:
        if not self.path.exists():
            return
        raw = self.path.read_bytes()
        complete = raw[: raw.rfind(b"\n") + 1]
        if len(complete) != len(raw):  # a row cut short by a kill: drop the fragment
            self.dropped_fragment = len(raw) - len(complete)
            with self.path.open("r+b") as handle:
                handle.truncate(len(complete))
                handle.flush()
                os.fsync(handle.fileno())
        for line in complete.decode("utf-8", "replace").splitlines():
            if line.strip():
                self.rows.append(json.loads(line))

    def close(self) -> None:
        self._handle.close()

    def append(self, row: dict) -> dict:
        row = {column: row.get(column, "") for column in COLUMNS} | {"time": row.get("time") or utc_now()}
        line = json.dumps(row, ensure_ascii=False) + "\n"
        with self._lock:
            self._handle.write(line)
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self.rows.append(row)
        return row

    def kept_rows(self, label: str | None = None) -> list[dict]:
        return [r for r in self.rows if r["decision"] == KEPT and (label is None or r["label"] == label)]

    def done_urls(self, label: str, *, retry_failed: bool = False) -> set[str]:
        """URLs already decided for a class (a re-run skips them). With retry_failed, a URL whose last
        attempt failed for a transient reason is not done."""
        last: dict[str, dict] = {}
        for row in self.rows:
            if row["label"] == label:
                last[row["url"]] = row
        return {url for url, row in last.items()
                if not (retry_failed and row["decision"] == REJECTED and row["reason"] in TRANSIENT_REASONS)}

    def count_for(self, label: str, engine: str, query: str | None = None) -> int:
        """Candidates already decided for this class and engine (and query, when given)."""
        return sum(1 for r in self.rows if r["label"] == label and r["engine"] == engine
                   and (query is None or r.get("query") == query))

    def reasons(self, label: str, run_id: str | None = None) -> Counter:
        return Counter(r["reason"] for r in self.rows
                       if r["label"] == label and r["decision"] == REJECTED and (run_id is None or r["run_id"] == run_id))

    def write_csv(self, path: Path) -> Path:
        """A CSV copy for spreadsheets (the JSONL stays the record)."""
        with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows)
        return path
