"""Headless Chromium, for rendering reports and pages to the DOM a person would see or to PNG.

Used by the tests (a report must open in a real browser and show its content) and by anyone who
wants a screenshot of a report. The flags keep Chromium off the network and out of the way.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from curation.errors import CurationError

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars",
]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise CurationError("Chromium is not installed (apt-get install chromium; `make install` does it)")


def _url(target: str | Path) -> str:
    text = str(target)
    return text if "://" in text else Path(text).resolve().as_uri()


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run([chromium_path(), *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout, check=False)


def dump_dom(target: str | Path, *, virtual_time_budget_ms: int = 5000, timeout: float = 90) -> str:
    """The page's DOM after scripts ran, as Chromium serialises it."""
    done = _run([f"--virtual-time-budget={virtual_time_budget_ms}", "--dump-dom", _url(target)], timeout)
    if done.returncode != 0 or not done.stdout.strip():
        raise CurationError(f"Chromium could not render {target}: {done.stderr.strip()[-500:]}")
    return done.stdout


def screenshot(target: str | Path, out_png: Path, *, width: int = 1280, height: int = 900,
               virtual_time_budget_ms: int = 5000, timeout: float = 90) -> Path:
    """A PNG of the page as rendered at width x height."""
    out_png.parent.mkdir(parents=True, exist_ok=True)
    done = _run([f"--virtual-time-budget={virtual_time_budget_ms}", f"--window-size={width},{height}",
                 f"--screenshot={out_png.resolve()}", _url(target)], timeout)
    if not out_png.is_file():
        raise CurationError(f"Chromium took no screenshot of {target}: {done.stderr.strip()[-500:]}")
    return out_png
