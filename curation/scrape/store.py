"""The output split folder: the only place the scraper writes images.

File names are ours (`<class>/web_<sha256 prefix>.jpg`), never a server's; every path is checked to
stay inside the folder; files are written to a temporary name, fsync'd and renamed, so a kill leaves
either a whole image or a `.tmp-*` file that the next run removes. A lock file keeps two runs from
writing to the same folder at once.
"""

from __future__ import annotations

import fcntl
import os
import re
import uuid
from pathlib import Path

from curation.errors import CurationError
from curation.scrape.config import check_label

FILE_PATTERN = re.compile(r"web_[0-9a-f]{20}\.jpg")
TMP_PREFIX = ".tmp-"
LOCK_NAME = ".scrape.lock"


class OutputFolder:
    def __init__(self, path: Path):
        self.path = path.resolve()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock_handle = (self.path / LOCK_NAME).open("w")
        except OSError as exc:
            raise CurationError(f"cannot write to the output folder {self.path}: {exc.strerror}; "
                                "choose another with --output-dir") from exc
        try:
            fcntl.flock(self._lock_handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock_handle.close()
            raise CurationError(f"another scrape is writing to {self.path}; wait for it to finish") from exc

    def close(self) -> None:
        fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
        self._lock_handle.close()

    def relative_name(self, label: str, sha256: str) -> str:
        """`<class>/web_<first 20 hex digits>.jpg`, relative to the output folder."""
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return f"{check_label(label)}/web_{sha256[:20]}.jpg"

    def resolve(self, relative: str) -> Path:
        target = (self.path / relative).resolve()
        if not target.is_relative_to(self.path) or target == self.path:
            raise CurationError(f"refused to write outside the output folder: {relative!r}")
        return target

    def write_atomic(self, relative: str, data: bytes) -> Path:
        target = self.resolve(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f"{TMP_PREFIX}{uuid.uuid4().hex}"
        try:
            with tmp.open("xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)
        return target

    def clean(self, labels: list[str], kept_files: set[str]) -> list[str]:
        """Remove what an interrupted run left: temporary files, and our own images the manifest does not
        list (written, but killed before their row). Their URLs are not in the manifest, so they are
        fetched again. Files with other names (the user's) are never touched."""
        removed = []
        for label in labels:
            folder = self.path / label
            if not folder.is_dir():
                continue
            for file in folder.iterdir():
                relative = f"{label}/{file.name}"
                orphan = FILE_PATTERN.fullmatch(file.name) and relative not in kept_files
                if file.is_file() and (file.name.startswith(TMP_PREFIX) or orphan):
                    file.unlink()
                    removed.append(relative)
        return removed
