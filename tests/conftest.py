"""Shared fixtures: the real shoes images (read-only, from ../shared), small copies of them, a
fresh cache per test, and an environment that never reaches the internet."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.shoes_data import SHOES_ROOT, copy_subset

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
os.environ.setdefault("CURATION_PROGRESS", "0")
# FiftyOne's real MongoDB, in a throw-away folder: set before anything imports fiftyone.
os.environ["FIFTYONE_DATABASE_DIR"] = tempfile.mkdtemp(prefix="fiftyone-db-")
os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")


@pytest.fixture(scope="session")
def shoes_root() -> Path:
    if not (SHOES_ROOT / "train").is_dir():
        pytest.fail(f"the shoes dataset is missing at {SHOES_ROOT}; set CURATION_SHOES_DIR")
    return SHOES_ROOT


@pytest.fixture
def small_shoes(tmp_path, shoes_root) -> Path:
    """A writable copy of 8 train and 4 test images per class."""
    return copy_subset(shoes_root, tmp_path / "small_shoes", {"train": 8, "test": 4})


@pytest.fixture
def cache(tmp_path):
    from curation.cache import ContentCache

    with ContentCache(tmp_path / "cache") as store:
        yield store


@pytest.fixture
def reports_dir(tmp_path) -> Path:
    return tmp_path / "reports"
