"""Scan throughput on the shoes set: our scan cold and warm cache, against the loop a user would
otherwise write with Pillow (open, verify, reopen, load, convert, hash), on the same images in one run.

Run: .venv/bin/python bench/bench_scan.py [DATA]. Prints a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CURATION_PROGRESS", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curation.cache import ContentCache  # noqa: E402
from curation.checks import get_check  # noqa: E402
from curation.scan import scan_dataset  # noqa: E402
from curation.layout import list_folder_samples  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "shoes"


def pillow_loop(root: Path) -> int:
    from PIL import Image

    count = 0
    for entry in list_folder_samples(root):
        path = root / entry.path
        data = path.read_bytes()
        hashlib.sha256(data).hexdigest()
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            rgb = image.convert("RGB")
            hashlib.sha256(rgb.tobytes()).hexdigest()
        count += 1
    return count


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA
    with tempfile.TemporaryDirectory() as scratch:
        cache = ContentCache(Path(scratch) / "cache")
        reports = Path(scratch) / "reports"

        def scan_and_check():
            scanned = scan_dataset(root, reports_dir=reports, cache=cache)
            get_check("integrity")(scanned.table)
            return scanned

        cold, cold_s = timed(scan_and_check)
        warm, warm_s = timed(scan_and_check)
        count, pillow_s = timed(pillow_loop, root)
    n = len(cold.table)
    assert warm.stats.probed == 0 and count == n
    print("| method | images | seconds | images/s | vs Pillow loop |\n|---|---|---|---|---|")
    for name, seconds in [("Pillow loop (verify + load + hash)", pillow_s), ("curation.scan, cold cache", cold_s),
                          ("curation.scan, warm cache", warm_s)]:
        print(f"| {name} | {n} | {seconds:.2f} | {n / seconds:.0f} | {pillow_s / seconds:.2f}x |")


if __name__ == "__main__":
    main()
